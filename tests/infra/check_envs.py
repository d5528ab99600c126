"""The environment parameter files differ only in values, and give the same stack shape.

- infra/staging.json and infra/production.json have the same keys, every key is a
  template parameter, every value passes the parameter's constraints;
- for each file the template yields the same resources and the same alarms (alarms
  carry no Condition at all), including the four the design asks for, with counting
  statistics (Sum/Maximum) and the heartbeat treating missing data as breaching over
  a window longer than the sweep interval;
- alarm actions go to a topic that depends on nothing of the function;
- every variable src/config.rs reads is set on the function, and nothing else;
- the function Timeout leaves room after the longest allowed WaitSeconds;
- the heartbeat alarm watches the namespace, metric and dimension src/metrics.rs emits;
- ESCALATION_TIERS and ESCALATION_REPEAT, with each file's values, are what
  src/escalation.rs accepts (first tier 0, delays strictly ascending, repeat at least 1m),
  tier 0 is NOTIFY_TOPIC_ARN, every tier is its own encrypted topic of the stack, and no
  tier topic is an alarm topic;
- STATE_TABLE names a table of the stack whose TTL attribute is expires_at.
"""

from __future__ import annotations

import pathlib
import re
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cfn import (  # noqa: E402
    run, ENV_FILES, ROOT, CheckFailed, active_resources, evaluate_conditions, load_template, parameter_values,
    read_env_file, refs_of, validate_parameters,
)

REQUIRED_ALARMS = {
    ("AWS/Lambda", "Errors"): "Sum",
    ("AWS/Lambda", "Throttles"): "Sum",
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): "Maximum",
    ("RetirementGuard", "Heartbeat"): "Sum",
}


def alarms_of(resources: dict) -> dict[str, tuple]:
    out = {}
    for name, res in resources.items():
        if res["Type"] == "AWS::CloudWatch::Alarm":
            p = res["Properties"]
            out[name] = (p.get("Namespace"), p.get("MetricName"), p.get("Statistic"), p.get("TreatMissingData"))
    return out


def depends_on(template: dict, start: str) -> set[str]:
    """Every resource `start` refers to, directly or through other resources."""
    resources = template["Resources"]
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        for ref in refs_of(resources[name]) | set(resources[name].get("DependsOn", []) or []):
            if ref in resources and ref not in seen:
                seen.add(ref)
                todo.append(ref)
    return seen


UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int | None:
    """Seconds of `0`, `90s`, `30m`, `2h`, `1d`, as src/escalation.rs parse_duration reads them."""
    text = text.strip()
    if text == "0":
        return 0
    m = re.fullmatch(r"([0-9]+)([smhd])", text)
    if not m or int(m.group(1)) > 100_000:
        return None
    return int(m.group(1)) * UNITS[m.group(2)]


def escalation_problems(template: dict, params: dict, env: str) -> list[str]:
    """The tiers and repeat the function gets with these parameter values."""
    resources = template["Resources"]
    variables = resources["Function"]["Properties"]["Environment"]["Variables"]
    tiers = variables.get("ESCALATION_TIERS")
    if not (isinstance(tiers, dict) and isinstance(tiers.get("Fn::Sub"), str)):
        return ["ESCALATION_TIERS must be a !Sub string of AFTER=${Topic} pairs"]
    problems = []

    def sub(m):
        name = m.group(1)
        if name in params:
            return str(params[name])
        if resources.get(name, {}).get("Type") == "AWS::SNS::Topic":
            return f"<topic:{name}>"
        problems.append(f"ESCALATION_TIERS refers to {name}, neither a parameter nor a topic")
        return "?"

    text = re.sub(r"\$\{([^}]+)\}", sub, tiers["Fn::Sub"])
    parsed = []
    for i, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
        after, sep, topic = part.partition("=")
        seconds = duration(after)
        if not sep or seconds is None:
            problems.append(f"{env}: tier {part!r} is not AFTER=TOPIC with AFTER like 0, 90s, 30m, 2h, 1d")
            continue
        m = re.fullmatch(r"<topic:(.+)>", topic.strip())
        if not m:
            problems.append(f"{env}: tier {i} topic {topic!r} is not a topic of this stack")
            continue
        parsed.append((seconds, m.group(1)))
    if not parsed:
        return problems + [f"{env}: ESCALATION_TIERS has no tier"]
    if parsed[0][0] != 0:
        problems.append(f"{env}: the first tier must be 0 (notify at once)")
    for (a, _), (b, _) in zip(parsed, parsed[1:]):
        if b <= a:
            problems.append(f"{env}: tier delays must be strictly ascending: {text}")
    names = [topic for _, topic in parsed]
    if len(set(names)) != len(names):
        problems.append(f"{env}: a topic is used by more than one tier: {names}")
    if variables.get("NOTIFY_TOPIC_ARN") != {"Ref": names[0]}:
        problems.append(f"tier 0 is {names[0]}, not the NOTIFY_TOPIC_ARN topic")
    alarm_topics = {a.get("Ref") for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"
                    for a in r["Properties"].get("AlarmActions", []) if isinstance(a, dict)}
    for name in names:
        if name in alarm_topics:
            problems.append(f"tier topic {name} is also an alarm topic: notices and alarms must stay apart")
        if not resources[name].get("Properties", {}).get("KmsMasterKeyId"):
            problems.append(f"tier topic {name} is not encrypted (KmsMasterKeyId)")
    repeat = variables.get("ESCALATION_REPEAT")
    if isinstance(repeat, dict) and set(repeat) == {"Ref"}:
        value = str(params.get(repeat["Ref"], repeat["Ref"]) or "").strip()
        if value and (duration(value) is None or duration(value) < 60):
            problems.append(f"{env}: ESCALATION_REPEAT {value!r} is not a delay of at least 1m")
    elif repeat is not None:
        problems.append("ESCALATION_REPEAT must be a !Ref to a parameter")
    return problems


def state_table_problems(template: dict) -> list[str]:
    resources = template["Resources"]
    ref = resources["Function"]["Properties"]["Environment"]["Variables"].get("STATE_TABLE")
    name = ref.get("Ref") if isinstance(ref, dict) else None
    table = resources.get(name or "", {})
    if table.get("Type") != "AWS::DynamoDB::Table":
        return ["STATE_TABLE must be !Ref to a DynamoDB table of this stack"]
    props = table.get("Properties", {})
    problems = []
    if "Condition" in table:
        problems.append(f"{name} has a Condition: the state table must exist in every environment")
    if "TableName" in props:
        problems.append(f"{name}: leave TableName to CloudFormation (a replacement must not collide)")
    if props.get("KeySchema") != [{"AttributeName": "condition", "KeyType": "HASH"}]:
        problems.append(f"{name}: the key must be `condition` (HASH) only, as src/state/dynamo.rs writes it")
    ttl = props.get("TimeToLiveSpecification", {})
    if ttl.get("AttributeName") != "expires_at" or str(ttl.get("Enabled")).lower() != "true":
        problems.append(f"{name}: TTL must be enabled on expires_at")
    code = (ROOT / "src" / "state" / "dynamo.rs").read_text().split("#[cfg(test)]")[0]
    if '"expires_at"' not in code or '"condition"' not in code:
        problems.append("src/state/dynamo.rs no longer writes condition/expires_at, which the table's key and TTL use")
    return problems


def config_variables() -> set[str]:
    text = (ROOT / "src" / "config.rs").read_text()
    text = text.split("#[cfg(test)]")[0]
    return set(re.findall(r"\b(?:get|flag|number|list|lookup)\(\s*\"([A-Z][A-Z0-9_]*)\"", text))


def main() -> int:
    template = load_template()
    problems: list[str] = []
    values = {env: read_env_file(path) for env, path in ENV_FILES.items()}
    keys = {env: set(v) for env, v in values.items()}
    first, *rest = ENV_FILES
    for env in rest:
        for k in sorted(keys[first] ^ keys[env]):
            problems.append(f"{k} is in only one of {first}.json and {env}.json")
    for env, v in values.items():
        problems += validate_parameters(template, v, f"{env}.json")
        problems += escalation_problems(template, parameter_values(template, v), env)
    problems += escalation_problems(template, parameter_values(template), "defaults")
    problems += state_table_problems(template)

    shapes = {}
    for env, v in values.items():
        params = parameter_values(template, v)
        conditions = evaluate_conditions(template, params)
        resources = active_resources(template, params, conditions)
        alarms = alarms_of(resources)
        shapes[env] = (set(resources), alarms)
        heartbeat = [n for n, a in alarms.items() if a[:2] == ("RetirementGuard", "Heartbeat")]
        for n in heartbeat:
            p = resources[n]["Properties"]
            period = p["Period"]
            if isinstance(period, dict) and "Fn::FindInMap" in period:
                m, key, attr = period["Fn::FindInMap"]
                period = template["Mappings"][m][str(key)][attr]
            minutes = int(params["ScheduleMinutes"])
            if int(period) * int(p.get("EvaluationPeriods", 1)) <= minutes * 60:
                problems.append(f"{env}: heartbeat window {period}s is not longer than the {minutes}-minute schedule")
            dims = {d["Name"]: d["Value"] for d in p.get("Dimensions", [])}
            if dims != {"Environment": params["Environment"]}:
                problems.append(f"{env}: heartbeat dimensions {dims} != Environment={params['Environment']}")
            if p.get("ComparisonOperator") != "LessThanThreshold":
                problems.append(f"{env}: the heartbeat alarm must fire when the Sum is below its threshold")

    (r0, a0) = shapes[first]
    for env in rest:
        r, a = shapes[env]
        for n in sorted(r0 ^ r):
            problems.append(f"resource {n} exists in only one of {first} and {env}")
        if a0 != a:
            problems.append(f"alarms differ between {first} ({sorted(a0)}) and {env} ({sorted(a)})")

    function = template["Resources"]["Function"]["Properties"]
    notice_topic = function["Environment"]["Variables"].get("NOTIFY_TOPIC_ARN")
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::CloudWatch::Alarm":
            if "Condition" in res:
                problems.append(f"alarm {name} has a Condition: alarms must exist in every environment")
            p = res["Properties"]
            if p.get("Statistic") == "Average":
                problems.append(f"alarm {name} uses Average: counts need Sum or Maximum")
            actions = p.get("AlarmActions", [])
            if not actions:
                problems.append(f"alarm {name} has no AlarmActions")
            for action in actions:
                topic = action.get("Ref") if isinstance(action, dict) else None
                if topic not in template["Resources"]:
                    problems.append(f"alarm {name}: action {action} is not a topic of this stack")
                    continue
                deps = depends_on(template, topic) | {topic}
                bad = sorted(d for d in deps if template["Resources"][d]["Type"] in (
                    "AWS::Serverless::Function", "AWS::Lambda::Function", "AWS::IAM::Role"))
                if bad:
                    problems.append(f"alarm {name}: its topic {topic} depends on {bad}")
                if {"Ref": topic} == notice_topic:
                    problems.append(f"alarm {name} notifies the function's own notice topic")
    for (ns, metric), stat in REQUIRED_ALARMS.items():
        found = [a for a in a0.values() if a[:2] == (ns, metric)]
        if not found:
            problems.append(f"no alarm on {ns} {metric}")
        elif any(a[2] != stat for a in found):
            problems.append(f"alarm on {ns} {metric} must use {stat}")
    if not any(a[:2] == ("RetirementGuard", "Heartbeat") and a[3] == "breaching" for a in a0.values()):
        problems.append("the heartbeat alarm must treat missing data as breaching")

    metrics = ROOT / "src" / "metrics.rs"
    if metrics.exists():  # the heartbeat alarm must watch what the code emits
        code = metrics.read_text().split("#[cfg(test)]")[0]
        namespace = re.search(r"NAMESPACE\s*:\s*&str\s*=\s*\"([^\"]+)\"", code)
        if not namespace or namespace.group(1) != "RetirementGuard":
            problems.append("src/metrics.rs: NAMESPACE is not RetirementGuard, which the heartbeat alarm watches")
        for literal in ('"Heartbeat"', '"Environment"'):
            if literal not in code:
                problems.append(f"src/metrics.rs no longer emits {literal}, which the heartbeat alarm watches")
    else:
        problems.append("src/metrics.rs is missing: nothing emits the heartbeat the alarm watches")
    env_vars = set(function["Environment"]["Variables"])
    wanted = config_variables()
    for var in sorted(wanted - env_vars):
        problems.append(f"src/config.rs reads {var}, which the template does not set")
    for var in sorted(env_vars - wanted):
        problems.append(f"the template sets {var}, which src/config.rs does not read")
    wait_max = int(template["Parameters"]["WaitSeconds"]["MaxValue"])
    if int(function["Timeout"]) < wait_max + 60:
        problems.append(f"Timeout {function['Timeout']} leaves under 60 s after WaitSeconds {wait_max}")
    if function.get("ReservedConcurrentExecutions") != 1:
        problems.append("ReservedConcurrentExecutions must be 1 (invocations must not fight over a group)")

    print(f"{'environment':<12} {'keys':>4} {'resources':>9}  alarms")
    for env in ENV_FILES:
        r, a = shapes[env]
        print(f"{env:<12} {len(keys[env]):>4} {len(r):>9}  {', '.join(sorted(a))}")
    if problems:
        for p in problems:
            print(f"FAIL {p}")
        return 1
    for env, v in values.items():
        params = parameter_values(template, v)
        repeat = params.get("EscalationRepeat") or "none"
        print(f"{env:<12} escalation: 0, {params.get('EmailAfter')}, {params.get('PagerAfter')}; repeat {repeat}")
    print(f"envs: same keys, same {len(r0)} resources and {len(a0)} alarms; {len(wanted)} config variables all set;"
          " escalation tiers valid")
    return 0


if __name__ == "__main__":
    run(main)
