#!/usr/bin/env python3
"""Drive a running moto server for retirement-guard's end-to-end tests and demo.

Usage: scenario.py --endpoint URL SUBCOMMAND [options]

Every subcommand writes exactly one JSON document to stdout. On failure it
writes one line to stderr and exits non-zero. The moto server itself is started
and stopped by the caller.

Subcommands:
  seed [--group-name NAME]     build the retirement scenario (plus three tier
                               topics with queues and the state table)
  state                        EC2 instances and Auto Scaling groups right now
  messages [--wait-seconds N] [--queue NAME]
                               drain an SQS queue (SNS envelopes): `notices`
                               or a tier queue (chat, email, pager)
  health-event --instances i-a,i-b [--account A] [--region R]
                               print an AWS Health retirement event (current schema)
  record-start                 reset and start moto's request recorder
  record-writes                list the AWS actions recorded since record-start
  repair [--group NAME]        start the group's stopped members, resume its processes
  terminate --instance ID      terminate one instance
  reset                        wipe all moto state (POST /moto-api/reset)
"""

import argparse
import base64
import datetime
import email.utils
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

REGION = "us-east-1"
ACCOUNT = "123456789012"
TOPIC_NAME = "retirement-guard-notices"
QUEUE_NAME = "notices"
# Escalation tiers of the e2e tests: topic rg-NAME delivers to queue NAME.
TIER_QUEUES = ("chat", "email", "pager")
STATE_TABLE = "retirement-guard-state"
WEB_GROUP = "web"
STANDALONE_NAME = "batch-worker"
LAUNCH_TEMPLATE = "retirement-guard-scenario"
INSTANCE_TYPE = "t3.medium"
# Marker put in the User-Agent of every request this script makes, so that
# `record-writes` can leave this script's own calls out of the recording.
UA_MARKER = "retirement-guard-scenario"
READ_PREFIXES = ("Describe", "List", "Get", "Receive")

HTTP_TIMEOUT = 10  # seconds, for each raw HTTP call to the moto API


class ScenarioError(Exception):
    pass


# ---------------------------------------------------------------- helpers


def client(endpoint, service):
    import boto3
    from botocore.config import Config

    cfg = Config(
        region_name=REGION,
        user_agent_extra=UA_MARKER,
        retries={"max_attempts": 2, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token=None,
        config=cfg,
    )


def moto_api(endpoint, path, method="POST", data=b""):
    url = endpoint.rstrip("/") + path
    req = urllib.request.Request(url, data=data if method != "GET" else None, method=method)
    req.add_header("User-Agent", UA_MARKER)
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        raise ScenarioError(f"{method} {path} answered HTTP {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        raise ScenarioError(f"{method} {path} failed: {e}") from e


def wait_until(what, check, timeout=30.0, interval=0.5, max_tries=200):
    """Call check() until it returns a truthy value; bounded in time and count."""
    deadline = time.monotonic() + timeout
    for _ in range(max_tries):
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise ScenarioError(f"timed out waiting for {what}")


def paginate(cl, operation, key, **kwargs):
    out = []
    for page in cl.get_paginator(operation).paginate(
        PaginationConfig={"MaxItems": 10000}, **kwargs
    ):
        out.extend(page.get(key, []))
    return out


def all_instances(ec2, ids=None):
    kwargs = {"InstanceIds": ids} if ids else {}
    out = []
    for res in paginate(ec2, "describe_instances", "Reservations", **kwargs):
        out.extend(res.get("Instances", []))
    return out


def all_groups(asg, names=None):
    kwargs = {"AutoScalingGroupNames": names} if names else {}
    return paginate(asg, "describe_auto_scaling_groups", "AutoScalingGroups", **kwargs)


def rfc1123(dt):
    return email.utils.format_datetime(dt.astimezone(datetime.timezone.utc), usegmt=True)


# ---------------------------------------------------------------- seed


def pick_image(ec2):
    images = ec2.describe_images().get("Images", [])
    ebs = [i for i in images if i.get("RootDeviceType", "ebs") == "ebs" and i.get("ImageId")]
    pool = ebs or [i for i in images if i.get("ImageId")]
    if not pool:
        raise ScenarioError("moto lists no images (DescribeImages returned nothing)")
    return sorted(i["ImageId"] for i in pool)[0]


def default_subnets(ec2):
    subnets = ec2.describe_subnets(
        Filters=[{"Name": "default-for-az", "Values": ["true"]}]
    ).get("Subnets", [])
    if not subnets:
        raise ScenarioError("no default-VPC subnets found")
    return sorted(s["SubnetId"] for s in subnets)


def ensure_launch_template(ec2, image_id):
    try:
        ec2.describe_launch_templates(LaunchTemplateNames=[LAUNCH_TEMPLATE])
        return
    except Exception:  # noqa: BLE001 - NotFound: create it below
        pass
    ec2.create_launch_template(
        LaunchTemplateName=LAUNCH_TEMPLATE,
        LaunchTemplateData={"ImageId": image_id, "InstanceType": INSTANCE_TYPE},
    )


def create_group(asg, name, size, subnets):
    asg.create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": LAUNCH_TEMPLATE, "Version": "$Latest"},
        MinSize=size,
        MaxSize=size,
        DesiredCapacity=size,
        HealthCheckType="EC2",
        HealthCheckGracePeriod=300,
        VPCZoneIdentifier=",".join(subnets),
        Tags=[
            {
                "ResourceId": name,
                "ResourceType": "auto-scaling-group",
                "Key": "Name",
                "Value": name,
                "PropagateAtLaunch": True,
            }
        ],
    )

    def members():
        groups = all_groups(asg, [name])
        ids = sorted(i["InstanceId"] for g in groups for i in g.get("Instances", []))
        return ids if len(ids) == size else None

    return wait_until(f"{size} instances in group {name}", members)


def wait_state(ec2, ids, state):
    def check():
        insts = all_instances(ec2, ids)
        return len(insts) == len(ids) and all(i["State"]["Name"] == state for i in insts)

    wait_until(f"{','.join(ids)} to be {state}", check)


def cmd_seed(args):
    ep = args.endpoint
    ec2, asg = client(ep, "ec2"), client(ep, "autoscaling")
    sns, sqs = client(ep, "sns"), client(ep, "sqs")
    group = args.group_name
    if group == WEB_GROUP:
        raise ScenarioError(f"--group-name must differ from {WEB_GROUP!r}")

    existing = [g["AutoScalingGroupName"] for g in all_groups(asg, [group, WEB_GROUP])]
    if existing:
        # moto silently replaces a group created twice, orphaning its instances.
        raise ScenarioError(
            f"already seeded (groups {', '.join(sorted(existing))} exist); run reset first"
        )

    image_id = pick_image(ec2)
    subnets = default_subnets(ec2)
    ensure_launch_template(ec2, image_id)

    data_ids = create_group(asg, group, 6, subnets)
    asg.suspend_processes(AutoScalingGroupName=group, ScalingProcesses=["Launch", "Terminate"])
    stopped = data_ids[:2]
    ec2.stop_instances(InstanceIds=stopped)
    wait_state(ec2, stopped, "stopped")

    web_ids = create_group(asg, WEB_GROUP, 2, subnets)

    run = ec2.run_instances(
        ImageId=image_id,
        InstanceType=INSTANCE_TYPE,
        MinCount=1,
        MaxCount=1,
        SubnetId=subnets[0],
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": STANDALONE_NAME}]}
        ],
    )
    standalone = run["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[standalone])
    wait_state(ec2, [standalone], "stopped")

    topic_arn, queue_url = topic_with_queue(sns, sqs, TOPIC_NAME, QUEUE_NAME)
    tiers = {name: topic_with_queue(sns, sqs, f"rg-{name}", name)[0] for name in TIER_QUEUES}
    client(ep, "dynamodb").create_table(
        TableName=STATE_TABLE,
        KeySchema=[{"AttributeName": "condition", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "condition", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    return {
        "topic_arn": topic_arn,
        "queue_url": queue_url,
        "tier_topics": tiers,
        "state_table": STATE_TABLE,
        "groups": {group: data_ids, WEB_GROUP: web_ids},
        "stopped": stopped,
        "standalone": standalone,
    }


def topic_with_queue(sns, sqs, topic_name, queue_name):
    """An SNS topic with an SQS queue subscribed (SNS envelope, not raw delivery)."""
    topic_arn = sns.create_topic(Name=topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowTopic",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return topic_arn, queue_url


# ---------------------------------------------------------------- state


def cmd_state(args):
    ec2, asg = client(args.endpoint, "ec2"), client(args.endpoint, "autoscaling")
    groups = {}
    member_of = {}
    for g in all_groups(asg):
        name = g["AutoScalingGroupName"]
        members = {}
        for i in g.get("Instances", []):
            members[i["InstanceId"]] = {
                "health": i.get("HealthStatus"),
                "lifecycle": i.get("LifecycleState"),
            }
            member_of[i["InstanceId"]] = name
        groups[name] = {
            "suspended": sorted(p["ProcessName"] for p in g.get("SuspendedProcesses", [])),
            "members": dict(sorted(members.items())),
        }
    instances = {}
    for inst in all_instances(ec2):
        iid = inst["InstanceId"]
        tag_group = next(
            (t["Value"] for t in inst.get("Tags", []) if t["Key"] == "aws:autoscaling:groupName"),
            None,
        )
        instances[iid] = {
            "state": inst["State"]["Name"],
            "group": member_of.get(iid, tag_group),
        }
    return {"instances": dict(sorted(instances.items())), "groups": dict(sorted(groups.items()))}


# ---------------------------------------------------------------- messages


def parse_notice(body):
    try:
        env = json.loads(body)
    except ValueError:
        env = None
    if not isinstance(env, dict) or "Message" not in env:
        # Raw delivery or something else: hand the body back as it is.
        return {"subject": None, "message": body, "attributes": {}}
    attrs = {}
    for name, val in (env.get("MessageAttributes") or {}).items():
        attrs[name] = val.get("Value") if isinstance(val, dict) else val
    return {"subject": env.get("Subject"), "message": env.get("Message"), "attributes": attrs}


def cmd_messages(args):
    sqs = client(args.endpoint, "sqs")
    wait = max(0, min(int(args.wait_seconds), 20))
    try:
        queue_url = sqs.get_queue_url(QueueName=args.queue)["QueueUrl"]
    except Exception as e:  # noqa: BLE001
        raise ScenarioError(f"queue {args.queue!r} not found (run seed first): {e}") from e
    out = []
    deadline = time.monotonic() + 60 + wait
    for _ in range(200):
        resp = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            VisibilityTimeout=30,
        )
        batch = resp.get("Messages", [])
        if not batch:
            break
        for m in batch:
            out.append(parse_notice(m.get("Body", "")))
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)
            ],
        )
        if time.monotonic() >= deadline:
            break
    return out


# ---------------------------------------------------------------- health-event


def cmd_health_event(args):
    ids = [i.strip() for i in args.instances.split(",") if i.strip()]
    if not ids:
        raise ScenarioError("--instances needs at least one instance id")
    for i in ids:
        if not i.startswith("i-"):
            raise ScenarioError(f"not an instance id: {i!r}")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    start = now + datetime.timedelta(days=14)
    code = "AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED"
    suffix = uuid.uuid4().hex.upper()
    event_arn = (
        f"arn:aws:health:{args.region}::event/EC2/{code}/{code}_{suffix[:6]}-{suffix[6:12]}"
    )
    description = (
        "EC2 has detected degradation of the underlying hardware hosting your "
        "Amazon EC2 instance(s) in the {region} region. Due to this degradation your "
        "instance(s) could already be unreachable. We will stop your instance(s) after "
        "{start}. Stopping and starting an EBS-backed instance moves it to healthy "
        "hardware; any data on instance-store volumes will be lost."
    ).format(region=args.region, start=rfc1123(start))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": args.account,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": args.region,
        "detail": {
            "eventArn": event_arn,
            "service": "EC2",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "communicationId": f"{uuid.uuid4().hex[:23]}-1",
            "lastUpdatedTime": rfc1123(now),
            "eventRegion": args.region,
            "eventTypeCode": code,
            "eventTypeCategory": "scheduledChange",
            "statusCode": "upcoming",
            "startTime": rfc1123(start),
            "page": "1",
            "totalPages": "1",
            "affectedAccount": args.account,
            "eventDescription": [{"language": "en_US", "latestDescription": description}],
            "affectedEntities": [
                {"entityValue": f"arn:aws:ec2:{args.region}:{args.account}:instance/{i}"}
                for i in ids
            ],
        },
    }


# ---------------------------------------------------------------- recording


def cmd_record_start(args):
    moto_api(args.endpoint, "/moto-api/recorder/reset-recording")
    moto_api(args.endpoint, "/moto-api/recorder/start-recording")
    return {"recording": True}


def recorded_action(entry):
    """(service, action) of one recorder entry, or (None, None) if unknown."""
    headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
    service = None
    auth = headers.get("authorization", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            service = scope[3]
    target = headers.get("x-amz-target")
    if target:
        return service, target.rsplit(".", 1)[-1]
    url = entry.get("url") or ""
    parsed = urllib.parse.urlsplit(url)
    # Smithy RPC v2 CBOR: POST /service/<Service>/operation/<Operation>
    parts = parsed.path.strip("/").split("/")
    if len(parts) >= 4 and parts[0] == "service" and parts[2] == "operation":
        return service, parts[3]
    query = urllib.parse.parse_qs(parsed.query)
    if "Action" in query:
        return service, query["Action"][0]
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        try:
            body = base64.b64decode(body).decode("utf-8", "replace")
        except ValueError:
            body = ""
    if isinstance(body, str) and "Action=" in body:
        form = urllib.parse.parse_qs(body)
        if "Action" in form:
            return service, form["Action"][0]
    return service, None


def cmd_record_writes(args):
    try:
        _, raw = moto_api(args.endpoint, "/moto-api/recorder/download-recording", method="GET")
    except ScenarioError as e:
        if "HTTP 500" in str(e):
            raise ScenarioError(f"{e} (no recording file yet: run record-start first)") from e
        raise
    calls = []
    for line in raw.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        ua = next(
            (v for k, v in (entry.get("headers") or {}).items() if k.lower() == "user-agent"), ""
        )
        if UA_MARKER in ua and not args.include_own:
            continue
        service, action = recorded_action(entry)
        if action is None:
            action = f"{entry.get('method', '?')} {urllib.parse.urlsplit(entry.get('url', '')).path}"
        calls.append({"service": service, "action": action})
    actions = [c["action"] for c in calls]
    writes = [a for a in actions if not a.startswith(READ_PREFIXES)]
    return {"actions": actions, "writes": writes, "calls": calls}


def cmd_repair(args):
    """What an operator would do by hand: start the group's stopped members, resume everything."""
    ec2, asg = client(args.endpoint, "ec2"), client(args.endpoint, "autoscaling")
    groups = all_groups(asg, [args.group])
    if not groups:
        raise ScenarioError(f"group {args.group!r} not found")
    members = [i["InstanceId"] for i in groups[0].get("Instances", [])]
    stopped = [
        inst["InstanceId"]
        for inst in all_instances(ec2)
        if inst["InstanceId"] in members and inst["State"]["Name"] == "stopped"
    ]
    if stopped:
        ec2.start_instances(InstanceIds=stopped)
        wait_state(ec2, stopped, "running")
    asg.resume_processes(AutoScalingGroupName=args.group)
    return {"started": sorted(stopped), "resumed": args.group}


def cmd_terminate(args):
    ec2 = client(args.endpoint, "ec2")
    ec2.terminate_instances(InstanceIds=[args.instance])
    wait_state(ec2, [args.instance], "terminated")
    return {"terminated": args.instance}


def cmd_reset(args):
    moto_api(args.endpoint, "/moto-api/reset")
    return {"reset": True}


# ---------------------------------------------------------------- main


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one stderr line, like every other failure."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def build_parser():
    p = OneLineParser(prog="scenario.py", description=__doc__.split("\n")[0])
    p.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5123")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("seed", help="build the retirement scenario")
    s.add_argument("--group-name", default="es-data", help="name of the stranded group")
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("state", help="print instances and groups")
    s.set_defaults(func=cmd_state)

    s = sub.add_parser("messages", help="drain the notices queue")
    s.add_argument("--wait-seconds", type=int, default=2, help="long-poll per receive (0-20)")
    s.add_argument("--queue", default=QUEUE_NAME, help=f"queue to drain ({QUEUE_NAME} or a tier: chat, email, pager)")
    s.set_defaults(func=cmd_messages)

    s = sub.add_parser("health-event", help="print an AWS Health retirement event")
    s.add_argument("--instances", required=True, help="comma-separated instance ids")
    s.add_argument("--account", default=ACCOUNT)
    s.add_argument("--region", default=REGION)
    s.set_defaults(func=cmd_health_event)

    s = sub.add_parser("record-start", help="reset and start moto's request recorder")
    s.set_defaults(func=cmd_record_start)

    s = sub.add_parser("record-writes", help="list recorded actions and writes")
    s.add_argument(
        "--include-own",
        action="store_true",
        help="also count requests made by this script (left out by default)",
    )
    s.set_defaults(func=cmd_record_writes)

    s = sub.add_parser("repair", help="start a group's stopped members and resume its processes")
    s.add_argument("--group", default="es-data")
    s.set_defaults(func=cmd_repair)

    s = sub.add_parser("terminate", help="terminate one instance")
    s.add_argument("--instance", required=True)
    s.set_defaults(func=cmd_terminate)

    s = sub.add_parser("reset", help="wipe all moto state")
    s.set_defaults(func=cmd_reset)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        result = args.func(args)
    except ScenarioError as e:
        print(f"scenario.py {args.command}: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - one line, no traceback
        msg = " ".join(str(e).split()) or type(e).__name__
        print(f"scenario.py {args.command}: {type(e).__name__}: {msg}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); not this script's failure.
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - silence the exit flush
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
