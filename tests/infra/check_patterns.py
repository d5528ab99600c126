"""Every EventBridge rule pattern in infra/template.yaml, evaluated against the event
fixtures by a real pattern engine: moto's EventBridge, on a moto server started here
on 127.0.0.1 (a free port) and stopped by pid when done.

Each rule with an EventPattern is created with its pattern (parameters resolved to
their defaults; a rule behind a Condition is checked too) and an SQS queue as its
target (moto fails PutEvents for Lambda targets). Each fixture is sent with
put_events, then every queue is drained: the set of rules that received it must be
exactly the expected one.

Expected: aws.health-scheduled-change-* -> the Health rule, aws.ec2-state-change-* ->
the instance-state rule, aws.autoscaling-cloudtrail-* -> the CloudTrail rule,
aws.s3-object-created and aws.health-issue-rds -> no rule. Skipped: manual-* (not
EventBridge events: the function is invoked with them directly) and
aws.events-scheduled-event (made by the schedule rule, which has no pattern).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cfn import ROOT, CheckFailed, evaluate_conditions, load_template, parameter_values, resolve, run  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "events"
REGION = "us-east-1"

# fixture name prefix -> the rule's pattern it must match (by source + detail-type).
EXPECT = {
    "aws.health-scheduled-change-": ("aws.health", "AWS Health Event"),
    "aws.ec2-state-change-": ("aws.ec2", "EC2 Instance State-change Notification"),
    "aws.autoscaling-cloudtrail-": ("aws.autoscaling", "AWS API Call via CloudTrail"),
}
MATCH_NONE = {"aws.s3-object-created.json", "aws.health-issue-rds.json"}
SKIP = {"aws.events-scheduled-event.json": "skipped: made by the schedule rule, no pattern"}
SKIP_PREFIX = {"manual-": "skipped: not an EventBridge event"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(port: int, log) -> subprocess.Popen:
    exe = pathlib.Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CheckFailed(f"moto_server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    raise CheckFailed("moto_server did not answer within 30 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait(timeout=10)


def expected_rules(fixture: str, rules: dict[str, dict]) -> set[str]:
    for prefix, (source, detail_type) in EXPECT.items():
        if fixture.startswith(prefix):
            return {
                name for name, pattern in rules.items()
                if source in pattern.get("source", []) and detail_type in pattern.get("detail-type", [])
            }
    return set()


def main() -> int:
    import boto3  # imported here so `--help`-less runs fail clearly if the venv is wrong

    template = load_template()
    params = parameter_values(template)
    conditions = evaluate_conditions(template, params)
    rules: dict[str, dict] = {}
    for name, res in template["Resources"].items():
        if res.get("Type") == "AWS::Events::Rule" and "EventPattern" in res.get("Properties", {}):
            rules[name] = resolve(res["Properties"]["EventPattern"], params, conditions)
    if not rules:
        raise CheckFailed("the template has no rule with an EventPattern")

    for prefix, (source, detail_type) in EXPECT.items():
        if not any(source in p.get("source", []) and detail_type in p.get("detail-type", []) for p in rules.values()):
            raise CheckFailed(f"no rule for {source} / {detail_type} (fixtures {prefix}*)")

    fixtures = sorted(FIXTURES.glob("*.json"))
    if not fixtures:
        raise CheckFailed(f"no fixtures in {FIXTURES}")

    port = free_port()
    log = open(os.devnull, "wb")
    proc = start_moto(port, log)
    rows, failures = [], []
    try:
        kw = dict(
            endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        events, sqs = boto3.client("events", **kw), boto3.client("sqs", **kw)
        queues = {}
        for name, pattern in rules.items():
            url = sqs.create_queue(QueueName=f"rule-{name}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            events.put_rule(Name=name, EventPattern=json.dumps(pattern), State="ENABLED")
            events.put_targets(Rule=name, Targets=[{"Id": "queue", "Arn": arn}])
            queues[name] = url

        for path in fixtures:
            fixture = path.name
            reason = SKIP.get(fixture) or next((r for p, r in SKIP_PREFIX.items() if fixture.startswith(p)), None)
            if reason:
                rows.append((fixture, "", "", reason))
                continue
            event = json.loads(path.read_text())
            entry = {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event.get("detail", {})),
            }
            if event.get("resources"):
                entry["Resources"] = event["resources"]
            out = events.put_events(Entries=[entry])
            if out.get("FailedEntryCount"):
                raise CheckFailed(f"{fixture}: put_events failed: {out['Entries']}")
            got = set()
            for name, url in queues.items():
                # moto delivers synchronously; a few bounded receives drain the queue.
                for _ in range(5):
                    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
                    if not msgs:
                        break
                    got.add(name)
                    for m in msgs:
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            want = expected_rules(fixture, rules)
            if fixture not in MATCH_NONE and not want:
                failures.append(f"{fixture}: no expectation for this fixture (add it to check_patterns.py)")
            ok = got == want
            rows.append((fixture, ", ".join(sorted(got)) or "-", ", ".join(sorted(want)) or "-", "ok" if ok else "FAIL"))
            if not ok:
                failures.append(f"{fixture}: matched {sorted(got) or 'nothing'}, expected {sorted(want) or 'nothing'}")
    finally:
        stop(proc)
        log.close()

    width = max(len(r[0]) for r in rows)
    print(f"{'fixture':<{width}}  {'matched':<18} {'expected':<18} result")
    for fixture, got, want, result in rows:
        print(f"{fixture:<{width}}  {got:<18} {want:<18} {result}")
    behind = [n for n, r in template["Resources"].items() if n in rules and r.get("Condition")]
    if behind:
        print(f"(checked although behind a Condition: {', '.join(behind)})")
    if failures:
        for f in failures:
            print(f"FAIL {f}")
        return 1
    sent = sum(1 for r in rows if r[3] == "ok")
    print(f"patterns: {len(rules)} rules, {sent} fixtures sent, all as expected")
    return 0


if __name__ == "__main__":
    run(main)
