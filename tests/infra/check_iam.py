"""The function's IAM policy in infra/template.yaml allows exactly the AWS calls the
code makes: nothing missing, nothing extra, for each value of the Policy parameter.

The calls are read from the Rust source itself: every `self.<client>.<operation>(`
with client ec2, autoscaling, sns or dynamodb in src/**/*.rs, outside test code (files
named tests.rs, `#[cfg(test)]` items, comments), whitespace and line breaks allowed
around the dots (rustfmt splits long chains: `self\n    .dynamodb\n    .put_item()`).
`describe_instances` -> ec2:DescribeInstances.

Which calls each Policy needs:
  notify  : the reads (src/inventory), sns:Publish (src/notify) and the notice state
            (src/state/dynamo.rs: BatchGetItem, Scan, PutItem, DeleteItem) - no repairs
  restart : + the calls made by AwsActuator::start (src/actions/aws.rs)
  recover : + every call in src/actions/aws.rs
(src/policy.rs plans only starts below recover; a new actuator method must be placed
in WRITE_MODE below, or the check fails.)

Besides the code's calls the role may hold only what the Lambda service uses on the
function's behalf: logs:CreateLogStream/PutLogEvents on the stack's log group and
sqs:SendMessage on the stack's dead-letter queue. Write actions must be scoped to
this account's resources; tag writes must be limited (aws:TagKeys) to tag keys that
appear in the code; with OptInTag set, starts and group repairs need the tag.
sns:Publish must name exactly the topics the function is given (NOTIFY_TOPIC_ARN, the
tiers of ESCALATION_TIERS, CHAT_TOPIC_ARN and the routed team topics ROUTED_TOPIC_ARNS,
checked with the defaults and with sample values), and dynamodb actions exactly the
STATE_TABLE table.
"""

from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cfn import (  # noqa: E402
    run, ROOT, CheckFailed, as_list, evaluate_conditions, load_template, parameter_values, refs_of, resolve,
)

SRC = ROOT / "src"
# Field name of the SDK client on `self` -> IAM service prefix.
CLIENTS = {"ec2": "ec2", "autoscaling": "autoscaling", "sns": "sns", "dynamodb": "dynamodb", "cloudwatch": "cloudwatch"}
CALL = re.compile(r"\bself\s*\.\s*(" + "|".join(CLIENTS) + r")\s*\.\s*([a-z][a-z0-9_]*)\s*\(")
# The derivation must see calls however rustfmt lays them out.
_SELF_TEST = {
    "self.ec2.describe_instances()": ("ec2", "describe_instances"),
    "let r = self\n            .dynamodb\n            .put_item()\n            .table_name(t)": ("dynamodb", "put_item"),
    "self.dynamodb\n            .delete_item()": ("dynamodb", "delete_item"),
    "self .sns\n\t. publish ()": ("sns", "publish"),
}
# Methods of the write port (src/actions/aws.rs) -> the lowest Policy that may call them.
WRITE_MODE = {
    "start": "restart",
    "set_healthy": "recover",
    "resume": "recover",
    "tag_groups": "recover",
    "untag_groups": "recover",
}
MODES = ["notify", "restart", "recover"]
PLATFORM = {
    "logs:CreateLogStream": "LogGroup",
    "logs:PutLogEvents": "LogGroup",
    "sqs:SendMessage": "DeadLetterQueue",
}
OPT_IN_KEY = "retirement-guard:enabled"


def strip_test_code(text: str) -> str:
    """Remove // comments and every item marked #[cfg(test)] (up to its closing brace)."""
    text = re.sub(r"//[^\n]*", "", text)
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j = text.find("{", m.end())
        semi = text.find(";", m.end())
        if j == -1 or (semi != -1 and semi < j):  # `#[cfg(test)] mod tests;`
            i = semi + 1 if semi != -1 else len(text)
            continue
        depth = 0
        for k in range(j, len(text)):
            if text[k] == "{":
                depth += 1
            elif text[k] == "}":
                depth -= 1
                if depth == 0:
                    i = k + 1
                    break
        else:
            i = len(text)
    out.append(text[i:])
    return "".join(out)


def source_files() -> list[pathlib.Path]:
    files = [p for p in sorted(SRC.rglob("*.rs")) if p.name != "tests.rs" and "tests" not in p.relative_to(SRC).parts]
    if not files:
        raise CheckFailed(f"no Rust sources under {SRC}")
    return files


def iam_action(client: str, op: str) -> str:
    return f"{CLIENTS[client]}:{''.join(part.capitalize() for part in op.split('_'))}"


def code_calls() -> tuple[dict[str, set[str]], dict[str, str]]:
    """action -> files that call it; and write action -> lowest Policy that needs it."""
    calls: dict[str, set[str]] = {}
    write_mode: dict[str, str] = {}
    for path in source_files():
        code = strip_test_code(path.read_text())
        rel = str(path.relative_to(ROOT))
        other = set(re.findall(r"aws_sdk_([a-z0-9]+)::", code)) - set(CLIENTS)
        if other:
            raise CheckFailed(f"{rel} uses SDK crates {sorted(other)}: extend CLIENTS in check_iam.py")
        for m in CALL.finditer(code):
            calls.setdefault(iam_action(*m.groups()), set()).add(rel)
        if path == SRC / "actions" / "aws.rs":
            # Split by method to know which port method makes which write call.
            parts = re.split(r"\basync\s+fn\s+([a-z_0-9]+)", code)
            for name, body in zip(parts[1::2], parts[2::2]):
                ops = [iam_action(*m.groups()) for m in CALL.finditer(body)]
                if ops and name not in WRITE_MODE:
                    raise CheckFailed(f"src/actions/aws.rs: new write method {name}(): add it to WRITE_MODE")
                for op in ops:
                    mode = WRITE_MODE[name]
                    if op in write_mode and MODES.index(write_mode[op]) < MODES.index(mode):
                        mode = write_mode[op]
                    write_mode[op] = mode
    if not calls:
        raise CheckFailed("found no SDK calls in src/: has the calling style changed?")
    all_code = "".join(strip_test_code(p.read_text()) for p in source_files())
    for client in sorted(set(re.findall(r"aws_sdk_([a-z0-9]+)::", all_code)) & set(CLIENTS)):
        if not any(a.startswith(CLIENTS[client] + ":") for a in calls):
            raise CheckFailed(f"src/ uses aws_sdk_{client} but no `self.{client}.<op>(` call was found: "
                              "has the calling style changed?")
    return calls, write_mode


def self_test() -> None:
    for text, want in _SELF_TEST.items():
        got = [m.groups() for m in CALL.finditer(text)]
        if got != [want]:
            raise CheckFailed(f"call regex: {text!r} gave {got}, expected [{want}]")


def written_tag_keys() -> set[str]:
    """Tag keys the code passes to the actuator's tag_groups/untag_groups, their first
    argument (a literal or a `const NAME: &str = "..."` defined in src/)."""
    code = "".join(strip_test_code(p.read_text()) for p in source_files())
    consts = dict(re.findall(r"\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&str\s*=\s*\"([^\"]*)\"", code))
    keys = set()
    for arg in re.findall(r"\.\s*(?:un)?tag_groups\s*\(\s*([^,()]+?)\s*,", code):
        if arg.startswith('"'):
            keys.add(arg.strip('"'))
        elif arg in consts:
            keys.add(consts[arg])
        else:
            raise CheckFailed(f"tag key argument {arg!r} of tag_groups/untag_groups is neither a literal nor a const")
    return keys


def function_role(resources: dict) -> str:
    functions = [n for n, r in resources.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")]
    if len(functions) != 1:
        raise CheckFailed(f"expected one function, found {functions}")
    props = resources[functions[0]]["Properties"]
    if "Policies" in props:
        raise CheckFailed("the function uses SAM Policies: grant through its explicit Role only")
    role = props.get("Role")
    if not (isinstance(role, dict) and "Fn::GetAtt" in role):
        raise CheckFailed("the function's Role must be !GetAtt <role in this template>.Arn")
    return role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")[0]


def role_statements(resources: dict, role: str) -> list[dict]:
    props = resources[role]["Properties"]
    if props.get("ManagedPolicyArns"):
        raise CheckFailed(f"{role} has managed policies, whose actions this check cannot see")
    docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
    for name, res in resources.items():
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            if any(r == {"Ref": role} for r in res["Properties"].get("Roles", [])):
                docs.append(res["Properties"]["PolicyDocument"])
    statements = [s for d in docs for s in as_list(d.get("Statement", []))]
    for s in statements:
        if "NotAction" in s or "NotResource" in s or s.get("Effect") != "Allow":
            raise CheckFailed(f"statement {s.get('Sid')}: only plain Allow statements are understood")
    return statements


def granted(template: dict, overrides: dict[str, str]) -> tuple[dict[str, list[dict]], dict]:
    params = parameter_values(template, overrides)
    conditions = evaluate_conditions(template, params)
    resources = {}
    for name, res in template["Resources"].items():
        if res.get("Condition") is None or conditions[res["Condition"]]:
            resources[name] = resolve(res, params, conditions)
    role = function_role(resources)
    by_action: dict[str, list[dict]] = {}
    for s in role_statements(resources, role):
        for action in as_list(s["Action"]):
            by_action.setdefault(action, []).append(s)
    return by_action, resources


def function_targets(resources: dict) -> tuple[set[str], set[str], set[str]]:
    """Topics the function publishes to: this template's (NOTIFY_TOPIC_ARN, ESCALATION_TIERS)
    as resource names, the given ones (CHAT_TOPIC_ARN, ROUTED_TOPIC_ARNS) as ARNs; and its
    state table (STATE_TABLE)."""
    fn = next(r for r in resources.values() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function"))
    env = fn["Properties"].get("Environment", {}).get("Variables", {})
    topics = refs_of(env.get("NOTIFY_TOPIC_ARN")) | refs_of(env.get("ESCALATION_TIERS"))
    topics = {t for t in topics if resources.get(t, {}).get("Type") == "AWS::SNS::Topic"}
    given = set()
    for var in ("CHAT_TOPIC_ARN", "ROUTED_TOPIC_ARNS"):
        value = env.get(var)
        if isinstance(value, dict) and set(value) == {"Fn::Join"}:
            sep, items = value["Fn::Join"]
            value = sep.join(as_list(items))
        if not isinstance(value, str):
            raise CheckFailed(f"{var} must be a parameter (or a list parameter joined), not {value!r}")
        given |= {v.strip() for v in value.split(",") if v.strip()}
    tables = {t for t in refs_of(env.get("STATE_TABLE")) if resources.get(t, {}).get("Type") == "AWS::DynamoDB::Table"}
    return topics, given, tables


def check_scope(label: str, by_action: dict, resources: dict, problems: list[str]) -> None:
    """sns:Publish on exactly the function's topics; dynamodb:* on exactly its state table."""
    topics, given, tables = function_targets(resources)
    for action, stmts in sorted(by_action.items()):
        if action == "sns:Publish":
            got = [r for s in stmts for r in as_list(s["Resource"])]
            names = {r["Ref"] for r in got if isinstance(r, dict) and set(r) == {"Ref"}}
            arns = {r for r in got if isinstance(r, str)}
            if len(names) + len(arns) != len(got) or names != topics or arns != given:
                want = sorted(topics) + sorted(given)
                problems.append(f"{label}: sns:Publish on {got}: must be exactly the function's topics {want}")
        elif action.startswith("dynamodb:"):
            if len(tables) != 1:
                problems.append(f"{label}: {action} is granted but STATE_TABLE is not a table of this stack")
                continue
            (table,) = tables
            for s in stmts:
                for r in as_list(s["Resource"]):
                    if r not in ({"Fn::GetAtt": [table, "Arn"]}, {"Fn::GetAtt": f"{table}.Arn"}):
                        problems.append(f"{label}: {action} on {r!r}: must be exactly !GetAtt {table}.Arn")


# Given topics for the branch that checks them: a chat topic and two routed patterns.
GIVEN_TOPICS = {
    "ChatTopicArn": "arn:aws:sns:us-east-1:111122223333:chat",
    "RoutedTopicArns": "arn:aws:sns:us-east-1:111122223333:team-*,arn:aws:sns:us-east-1:444455556666:search",
}


def check_branch(template: dict, mode: str, opt_in: str, calls, write_mode, problems: list[str]) -> set[str]:
    label = f"Policy={mode}" + (f", OptInTag={opt_in}" if opt_in else ", with given topics")
    # The opt-in branches run with the defaults (no given topic), the others with GIVEN_TOPICS.
    given = {} if opt_in else GIVEN_TOPICS
    by_action, resources = granted(template, {"Policy": mode, "OptInTag": opt_in, **given})
    check_scope(label, by_action, resources, problems)
    writes = set(write_mode)
    expected = {a for a in calls if a not in writes}
    expected |= {a for a, m in write_mode.items() if MODES.index(m) <= MODES.index(mode)}
    got = set(by_action) - set(PLATFORM)
    for a in sorted(expected - got):
        problems.append(f"{label}: {a} is called in {sorted(calls[a])} but not granted")
    for a in sorted(got - expected):
        why = "a write this Policy never makes" if a in writes else "not called by the code"
        problems.append(f"{label}: {a} is granted but {why}")
    for action, target in PLATFORM.items():
        for s in by_action.get(action, []):
            if target not in refs_of(s["Resource"]):
                problems.append(f"{label}: {action} must be limited to the stack's {target}, not {s['Resource']}")
    for action in sorted(writes & set(by_action)):
        for s in by_action[action]:
            for r in as_list(s["Resource"]):
                text = r if isinstance(r, str) else str(r.get("Fn::Sub", r))
                if text == "*" or "${AWS::AccountId}" not in text:
                    problems.append(f"{label}: {action} on {r!r}: scope writes to this account's resources")
            cond = s.get("Condition", {})
            if action.startswith("autoscaling:") and action.endswith("Tags"):
                keys = cond.get("ForAllValues:StringEquals", {}).get("aws:TagKeys")
                if not keys:
                    problems.append(f"{label}: {action} needs a ForAllValues:StringEquals aws:TagKeys condition")
                for key in sorted(set(as_list(keys or [])) - written_tag_keys()):
                    problems.append(f"{label}: {action} allows tag key {key!r}, which the code never writes")
                for key in sorted(written_tag_keys() - set(as_list(keys or []))):
                    problems.append(f"{label}: the code writes tag key {key!r}, which {action} does not allow")
            elif opt_in:
                prefix = "aws:ResourceTag/" if action.startswith("ec2:") else "autoscaling:ResourceTag/"
                if cond.get("StringEquals", {}).get(prefix + opt_in) != "true":
                    problems.append(f"{label}: {action} must require {prefix}{opt_in}=true")
    return set(by_action)


def main() -> int:
    template = load_template()
    allowed_opt_in = [v for v in template["Parameters"]["OptInTag"].get("AllowedValues", []) if v]
    if allowed_opt_in != [OPT_IN_KEY]:
        raise CheckFailed(f"OptInTag must allow exactly '' and {OPT_IN_KEY!r} (the key is fixed in the IAM conditions)")
    self_test()
    calls, write_mode = code_calls()
    print(f"calls found in src/ (outside tests): {len(calls)}")
    for action in sorted(calls):
        kind = f"write, Policy>={write_mode[action]}" if action in write_mode else "every Policy"
        print(f"  {action:<40} {kind:<24} {', '.join(sorted(calls[action]))}")
    problems: list[str] = []
    print("granted to the function role:")
    for mode in MODES:
        for opt_in in ("", OPT_IN_KEY):
            actions = check_branch(template, mode, opt_in, calls, write_mode, problems)
            if not opt_in:
                code_part = sorted(actions - set(PLATFORM))
                print(f"  Policy={mode:<8} {len(code_part)} code actions: {', '.join(code_part)}")
    print(f"  + platform (all branches): {', '.join(sorted(PLATFORM))}")
    if problems:
        for p in problems:
            print(f"FAIL {p}")
        return 1
    print("iam: granted == called, for notify, restart and recover, with and without OptInTag;"
          " sns:Publish on the tier topics and the given chat and team topics only, dynamodb on the state table only")
    return 0


if __name__ == "__main__":
    run(main)
