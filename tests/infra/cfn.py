"""Shared helpers for the infra checks: load infra/template.yaml with cfn-lint's decoder
(it understands !Ref, !Sub, !GetAtt, !If ...), read a parameter file, evaluate the
template's Conditions for a set of parameter values, and resolve Fn::If / Ref to
parameters / AWS::NoValue in any part of the template.

Only what the checks need is resolved; anything else (Fn::GetAtt, Fn::Sub with
resources, ...) is returned as it is.
"""

from __future__ import annotations

import json
import os
import pathlib
import re

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]
# INFRA_TEMPLATE lets a mutated copy be checked (to see that a check can fail).
TEMPLATE = pathlib.Path(os.environ.get("INFRA_TEMPLATE", ROOT / "infra" / "template.yaml"))
ENV_FILES = {"staging": ROOT / "infra" / "staging.json", "production": ROOT / "infra" / "production.json"}

_NO_VALUE = object()


class CheckFailed(Exception):
    """A check found a problem; its message says which."""


def run(main) -> None:
    """Runs a check's main(): its return code, or 1 with one FAIL line for a CheckFailed."""
    import sys

    try:
        sys.exit(main())
    except CheckFailed as e:
        print(f"FAIL {e}")
        sys.exit(1)


def load_template(path: pathlib.Path = TEMPLATE) -> dict:
    template, matches = decode(str(path))
    if matches or template is None:
        raise CheckFailed(f"{path}: cannot parse: {[str(m) for m in matches]}")
    return plain(template)


def plain(node):
    """cfn-lint's node classes -> plain dicts, lists and strings."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def read_env_file(path: pathlib.Path) -> dict[str, str]:
    """A parameter file: a JSON array of "Key=Value" strings, the format that
    `aws cloudformation deploy --parameter-overrides file://...` accepts."""
    items = json.loads(path.read_text())
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise CheckFailed(f"{path.name}: must be a JSON array of \"Key=Value\" strings")
    values: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CheckFailed(f"{path.name}: {item!r} is not Key=Value")
        if key in values:
            raise CheckFailed(f"{path.name}: {key} is given twice")
        values[key] = value
    return values


def parameter_values(template: dict, overrides: dict[str, str] | None = None) -> dict:
    """Parameter values as CloudFormation would see them: defaults, then overrides;
    CommaDelimitedList parameters become lists."""
    values = {}
    for name, spec in template.get("Parameters", {}).items():
        if overrides and name in overrides:
            raw = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raw = None
        if raw is not None and spec.get("Type") == "CommaDelimitedList":
            raw = [v.strip() for v in str(raw).split(",")] if isinstance(raw, str) else raw
        elif raw is not None:
            raw = str(raw)
        values[name] = raw
    return values


def validate_parameters(template: dict, values: dict[str, str], source: str) -> list[str]:
    """Problems with given values against the template's constraints."""
    problems = []
    params = template.get("Parameters", {})
    for key, value in values.items():
        spec = params.get(key)
        if spec is None:
            problems.append(f"{source}: {key} is not a parameter of the template")
            continue
        if re.search(r"\s", value):
            problems.append(f"{source}: {key} contains whitespace (breaks Key=Value overrides)")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(a) for a in allowed]:
            problems.append(f"{source}: {key}={value!r} is not one of {allowed}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            problems.append(f"{source}: {key}={value!r} does not match {pattern}")
        if spec.get("Type") == "Number":
            try:
                number = float(value)
            except ValueError:
                problems.append(f"{source}: {key}={value!r} is not a number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problems.append(f"{source}: {key}={value} < MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                problems.append(f"{source}: {key}={value} > MaxValue {spec['MaxValue']}")
    for key, spec in params.items():
        if "Default" not in spec and key not in values:
            problems.append(f"{source}: {key} has no default and no value")
    return problems


def evaluate_conditions(template: dict, params: dict) -> dict[str, bool]:
    conditions = template.get("Conditions", {})
    done: dict[str, bool] = {}

    def value(node):
        if isinstance(node, dict) and len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                if arg not in params:
                    raise CheckFailed(f"condition refers to {arg}, which is not a parameter")
                return params[arg]
            if fn == "Condition":
                return cond(arg)
            if fn == "Fn::Equals":
                a, b = (value(x) for x in arg)
                return str(a) == str(b) if not isinstance(a, list) else a == b
            if fn == "Fn::Not":
                return not value(arg[0])
            if fn == "Fn::Join":
                sep, items = arg
                items = value(items)
                return sep.join(str(value(x)) for x in (items if isinstance(items, list) else [items]))
            if fn == "Fn::And":
                return all(value(x) for x in arg)
            if fn == "Fn::Or":
                return any(value(x) for x in arg)
            raise CheckFailed(f"unsupported function in a condition: {fn}")
        return node

    def cond(name):
        if name not in done:
            if name not in conditions:
                raise CheckFailed(f"unknown condition {name}")
            done[name] = bool(value(conditions[name]))
        return done[name]

    for name in conditions:
        cond(name)
    return done


def resolve(node, params: dict, conditions: dict[str, bool]):
    """Resolve Fn::If, Ref to parameters and AWS::NoValue; leave everything else."""
    def walk(n):
        if isinstance(n, dict):
            if len(n) == 1:
                (fn, arg), = n.items()
                if fn == "Fn::If":
                    name, yes, no = arg
                    return walk(yes if conditions[name] else no)
                if fn == "Ref" and arg == "AWS::NoValue":
                    return _NO_VALUE
                if fn == "Ref" and arg in params:
                    return params[arg]
            out = {}
            for k, v in n.items():
                r = walk(v)
                if r is not _NO_VALUE:
                    out[k] = r
            return out
        if isinstance(n, list):
            return [r for r in (walk(v) for v in n) if r is not _NO_VALUE]
        return n

    result = walk(node)
    return None if result is _NO_VALUE else result


def active_resources(template: dict, params: dict, conditions: dict[str, bool]) -> dict[str, dict]:
    """Resources that exist for these parameter values, resolved."""
    out = {}
    for name, res in template.get("Resources", {}).items():
        cond = res.get("Condition")
        if cond is None or conditions[cond]:
            out[name] = resolve(res, params, conditions)
    return out


def refs_of(node) -> set[str]:
    """Names a node refers to with Ref, Fn::GetAtt or ${...} in Fn::Sub."""
    found: set[str] = set()

    def walk(n):
        if isinstance(n, dict):
            for k, v in n.items():
                if k == "Ref" and isinstance(v, str):
                    found.add(v)
                elif k == "Fn::GetAtt":
                    found.add(v[0] if isinstance(v, list) else str(v).split(".")[0])
                elif k == "Fn::Sub":
                    text = v[0] if isinstance(v, list) else v
                    found.update(m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text))
                    if isinstance(v, list):
                        walk(v[1])
                else:
                    walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    walk(node)
    return found


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]
