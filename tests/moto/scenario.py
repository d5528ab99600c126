#!/usr/bin/env python3
"""Drive a running moto server for retirement-guard's end-to-end tests and demo.

Usage: scenario.py --endpoint URL SUBCOMMAND [options]

Every subcommand writes exactly one JSON document to stdout. On failure it
writes one line to stderr and exits non-zero. The moto server itself is started
and stopped by the caller: plain `moto_server`, or the realism server
tests/moto/realaws.py (moto made to behave like AWS where the guard's safety
lives). Subcommands marked (realism) need the latter.

Subcommands:
  seed [--group-name NAME] [--stopped-by retirement|user] [--suspended-by aws|user]
                               build the retirement scenario (plus three tier
                               topics with queues and the state table). On the
                               realism server the two stopped members are stopped
                               by a retirement and Launch,Terminate are suspended
                               by AWS (a non-user reason) unless told `user`, and
                               seed waits until the stopped members read Unhealthy
                               (with health checks on); on plain moto: StopInstances
                               and SuspendProcesses, as ever
  stranded-group --name NAME [--size N] [--retired K]
                               (realism, after seed) one more group with Launch and
                               Terminate suspended by AWS and K members retired
  seed-scale --groups N [--size S] --stranded K --stopped M [--prefix P]
                               (realism, on a reset server) many groups fast for
                               the benchmark: one launch template, N groups of S
                               members (no per-group wait; moto launches them in
                               the call), K of them spread evenly stranded: Launch,
                               Terminate suspended by AWS and M members in all
                               retired with a stop (each stranded group at least
                               one, its first members); plus the notices topic
                               with its queue
  state                        EC2 instances (state, state_reason code, launch_time)
                               and Auto Scaling groups right now
  messages [--wait-seconds N] [--queue NAME]
                               drain an SQS queue (SNS envelopes): `notices`
                               or a tier queue (chat, email, pager)
  health-event --instances i-a,i-b [--account A] [--region R]
                               print an AWS Health retirement event (current schema)
  record-start                 reset and start moto's request recorder
  record-writes                list the AWS actions recorded since record-start
  repair [--group NAME] [--naive]
                               start the group's stopped members, wait until they run
                               (through pending) and their status checks are done,
                               mark the Unhealthy ones Healthy (not with --naive),
                               resume its processes
  terminate --instance ID      terminate one instance
  reset                        wipe all moto state (POST /moto-api/reset)
  realism [--set KEY=JSON_VALUE ...]
                               (realism) print its settings, after changing some
  retire --instances i-a,i-b [--code instance-retirement|instance-stop] [--announce-only]
                               (realism) list a scheduled retirement event for the
                               instances, then stop them as AWS does (not with
                               --announce-only)
  aws-suspend --group NAME --processes A,B [--reason TEXT]
                               (realism) suspend processes as AWS itself does
  realism-stats                (realism) what the realism layer did itself: ids it
                               marked Unhealthy, terminated and launched
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


def realism_api(endpoint, path, body=None):
    """JSON in and out of a control endpoint of the realism server (realaws.py)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        endpoint.rstrip("/") + path, data=data, method="GET" if body is None else "POST"
    )
    req.add_header("User-Agent", UA_MARKER)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        try:
            detail = json.loads(e.read()).get("error")
        except (ValueError, AttributeError):
            detail = "not the realism server (start tests/moto/realaws.py)"
        raise ScenarioError(f"{req.method} {path} answered HTTP {e.code}: {detail}") from e
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise ScenarioError(f"{req.method} {path} failed: {e}") from e


def realism_settings(endpoint):
    """The realism server's settings, or None when the server is plain moto."""
    try:
        found = realism_api(endpoint, "/__realism/settings")
    except ScenarioError:
        return None
    return found if isinstance(found, dict) and "health_checks" in found else None


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
    """Wait (bounded) until every instance is in state; e.g. through pending to running."""

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

    realism = realism_settings(ep)
    stopped_by = args.stopped_by or ("retirement" if realism else "user")
    suspended_by = args.suspended_by or ("aws" if realism else "user")
    if realism is None and (stopped_by, suspended_by) != ("user", "user"):
        raise ScenarioError(
            "--stopped-by retirement and --suspended-by aws need the realism server (realaws.py)"
        )

    image_id = pick_image(ec2)
    subnets = default_subnets(ec2)
    ensure_launch_template(ec2, image_id)

    data_ids = create_group(asg, group, 6, subnets)
    if suspended_by == "aws":
        body = {"group": group, "processes": ["Launch", "Terminate"]}
        realism_api(ep, "/__realism/suspend", body)
    else:
        asg.suspend_processes(AutoScalingGroupName=group, ScalingProcesses=["Launch", "Terminate"])
    stopped = data_ids[:2]
    if stopped_by == "retirement":
        realism_api(ep, "/__realism/retire", {"instance_ids": stopped, "stop": True})
    else:
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

    def health():
        members = (i for g in all_groups(asg, [group]) for i in g.get("Instances", []))
        return {
            i["InstanceId"]: i.get("HealthStatus") for i in members if i["InstanceId"] in stopped
        }

    stopped_health = health()
    if realism and realism.get("health_checks"):
        # Start the tests from AWS's real state: the stopped members are Unhealthy by now.
        def all_unhealthy():
            found = health()
            return found if list(found.values()) == ["Unhealthy"] * len(stopped) else None

        timeout = float(realism.get("unhealthy_after_seconds", 1.0)) + 15.0
        stopped_health = wait_until("the stopped members to read Unhealthy", all_unhealthy, timeout)

    return {
        "topic_arn": topic_arn,
        "queue_url": queue_url,
        "tier_topics": tiers,
        "state_table": STATE_TABLE,
        "groups": {group: data_ids, WEB_GROUP: web_ids},
        "stopped": stopped,
        "standalone": standalone,
        "realism": realism is not None,
        "stopped_by": stopped_by,
        "suspended_by": suspended_by,
        "stopped_health": dict(sorted(stopped_health.items())),
    }


def cmd_stranded_group(args):
    """One more group as a retirement leaves it (after seed, on the realism server):
    Launch and Terminate suspended by AWS, the first --retired members stopped by a
    retirement."""
    ep = args.endpoint
    ec2, asg = client(ep, "ec2"), client(ep, "autoscaling")
    if realism_settings(ep) is None:
        raise ScenarioError("stranded-group needs the realism server (realaws.py)")
    if all_groups(asg, [args.name]):
        raise ScenarioError(f"group {args.name!r} exists already")
    if not 0 <= args.retired <= args.size <= 50:
        raise ScenarioError("need 0 <= --retired <= --size <= 50")
    ensure_launch_template(ec2, pick_image(ec2))
    ids = create_group(asg, args.name, args.size, default_subnets(ec2))
    realism_api(ep, "/__realism/suspend", {"group": args.name, "processes": ["Launch", "Terminate"]})
    retired = ids[: args.retired]
    if retired:
        realism_api(ep, "/__realism/retire", {"instance_ids": retired, "stop": True})
        wait_state(ec2, retired, "stopped")
    return {"group": args.name, "members": ids, "retired": retired}


def stranded_layout(groups, stranded, stopped, size):
    """(indices of the stranded groups, spread evenly; members to retire in each)."""
    if groups < 1 or size < 1 or size > 50:
        raise ScenarioError("need --groups >= 1 and 1 <= --size <= 50")
    if not 0 <= stranded <= groups:
        raise ScenarioError("need 0 <= --stranded <= --groups")
    if not stranded <= stopped <= stranded * size or (stranded == 0 and stopped):
        raise ScenarioError("need --stranded <= --stopped <= --stranded * --size")
    picked = [i * groups // stranded for i in range(stranded)] if stranded else []
    per = [stopped // stranded + (1 if n < stopped % stranded else 0) for n in range(stranded)]
    return dict(zip(picked, per))


def cmd_seed_scale(args):
    """Many groups at once for bench/bench.py, without the per-group waits of `seed`:
    moto launches a group's instances inside CreateAutoScalingGroup, so one check at the
    end (every group complete, the retired members stopped) replaces them."""
    started = time.monotonic()
    ep = args.endpoint
    ec2, asg = client(ep, "ec2"), client(ep, "autoscaling")
    sns, sqs = client(ep, "sns"), client(ep, "sqs")
    if realism_settings(ep) is None:
        raise ScenarioError("seed-scale needs the realism server (realaws.py)")
    layout = stranded_layout(args.groups, args.stranded, args.stopped, args.size)
    if asg.describe_auto_scaling_groups(MaxRecords=1).get("AutoScalingGroups"):
        raise ScenarioError("groups exist already; run reset first")
    ensure_launch_template(ec2, pick_image(ec2))
    subnets = default_subnets(ec2)
    width = max(4, len(str(args.groups - 1)))
    names = [f"{args.prefix}-{i:0{width}d}" for i in range(args.groups)]
    for n, name in enumerate(names):
        # moto puts a group's instances in its first subnet; a default subnet (/20) holds
        # about 4,000, so the groups take turns over the subnets.
        turn = n % len(subnets)
        zones = subnets[turn:] + subnets[:turn]
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": LAUNCH_TEMPLATE, "Version": "$Latest"},
            MinSize=args.size,
            MaxSize=args.size,
            DesiredCapacity=args.size,
            HealthCheckType="EC2",
            HealthCheckGracePeriod=300,
            VPCZoneIdentifier=",".join(zones),
            Tags=[{"ResourceId": name, "ResourceType": "auto-scaling-group", "Key": "Name",
                   "Value": name, "PropagateAtLaunch": True}],
        )
    members = {
        g["AutoScalingGroupName"]: sorted(i["InstanceId"] for i in g.get("Instances", []))
        for g in all_groups(asg)
    }
    short = [n for n in names if len(members.get(n, [])) != args.size]
    if len(members) != args.groups or short:
        raise ScenarioError(
            f"{len(members)} groups listed for {args.groups} created; incomplete: {short[:5]}"
        )
    stranded = [names[i] for i in sorted(layout)]
    retired = []
    for i in sorted(layout):
        realism_api(ep, "/__realism/suspend", {"group": names[i], "processes": ["Launch", "Terminate"]})
        retired.extend(members[names[i]][: layout[i]])
    if retired:
        realism_api(ep, "/__realism/retire", {"instance_ids": retired, "stop": True})
        states = {}
        for chunk in range(0, len(retired), 200):
            ids = retired[chunk : chunk + 200]
            states.update({i["InstanceId"]: i["State"]["Name"] for i in all_instances(ec2, ids)})
        still = sorted(i for i in retired if states.get(i) != "stopped")
        if still:
            raise ScenarioError(f"retired members not stopped: {still[:5]}")
    topic_arn, queue_url = topic_with_queue(sns, sqs, TOPIC_NAME, QUEUE_NAME)
    return {
        "topic_arn": topic_arn,
        "queue_url": queue_url,
        "groups": dict(sorted(members.items())),
        "stranded": stranded,
        "stopped": sorted(retired),
        "seconds": round(time.monotonic() - started, 3),
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
        suspended = g.get("SuspendedProcesses", [])
        groups[name] = {
            "suspended": sorted(p["ProcessName"] for p in suspended),
            "suspension_reasons": {
                p["ProcessName"]: p.get("SuspensionReason", "")
                for p in sorted(suspended, key=lambda p: p["ProcessName"])
            },
            "members": dict(sorted(members.items())),
        }
    instances = {}
    for inst in all_instances(ec2):
        iid = inst["InstanceId"]
        tag_group = next(
            (t["Value"] for t in inst.get("Tags", []) if t["Key"] == "aws:autoscaling:groupName"),
            None,
        )
        launched = inst.get("LaunchTime")
        if launched:
            launched = launched.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        instances[iid] = {
            "state": inst["State"]["Name"],
            "group": member_of.get(iid, tag_group),
            "state_reason": (inst.get("StateReason") or {}).get("Code") or None,
            "launch_time": launched or None,
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
    message = env.get("Message")
    # A structured publish gives SQS its default part: the notice document (JSON).
    try:
        document = json.loads(message) if message else None
    except ValueError:
        document = None
    if not (isinstance(document, dict) and document.get("schema") == "retirement-guard/notice"):
        document = None
    return {"subject": env.get("Subject"), "message": message, "document": document, "attributes": attrs}


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
    """What a careful operator does by hand: start the group's stopped members, wait until
    they run and their status checks are done, mark those of them that the group marked
    Unhealthy Healthy again (else resuming Terminate replaces them), resume everything.
    With --naive the marking is left out, as a start-then-resume tool does (Cloud
    Custodian's asg `resume` action, its bug #8660)."""
    ec2, asg = client(args.endpoint, "ec2"), client(args.endpoint, "autoscaling")

    def members():
        groups = all_groups(asg, [args.group])
        if not groups:
            raise ScenarioError(f"group {args.group!r} not found")
        return {i["InstanceId"]: i.get("HealthStatus") for i in groups[0].get("Instances", [])}

    ids = list(members())
    states = {i["InstanceId"]: i["State"]["Name"] for i in all_instances(ec2, ids)} if ids else {}
    stopped = sorted(i for i, st in states.items() if st == "stopped")
    starting = sorted(i for i, st in states.items() if st in ("stopped", "pending"))
    marked = []
    if stopped:
        ec2.start_instances(InstanceIds=stopped)
    if starting:
        wait_state(ec2, starting, "running")

        def checked():
            found = ec2.describe_instance_status(InstanceIds=starting)["InstanceStatuses"]
            done = {
                s["InstanceId"]: s["InstanceStatus"]["Status"]
                for s in found
                if "initializing"
                not in (s["InstanceStatus"]["Status"], s["SystemStatus"]["Status"])
            }
            return done if len(done) == len(starting) else None

        statuses = wait_until("status checks of " + ",".join(starting), checked)
        health = {} if args.naive else members()
        for iid in starting:
            if health.get(iid) == "Unhealthy" and statuses[iid] == "ok":
                asg.set_instance_health(InstanceId=iid, HealthStatus="Healthy")
                marked.append(iid)
    asg.resume_processes(AutoScalingGroupName=args.group)
    return {"started": stopped, "marked_healthy": marked, "resumed": args.group}


def cmd_terminate(args):
    ec2 = client(args.endpoint, "ec2")
    ec2.terminate_instances(InstanceIds=[args.instance])
    wait_state(ec2, [args.instance], "terminated")
    return {"terminated": args.instance}


def cmd_tag_group(args):
    asg = client(args.endpoint, "autoscaling")
    if not all_groups(asg, [args.group]):
        raise ScenarioError(f"group {args.group!r} not found (run seed first)")
    tag = {
        "ResourceId": args.group,
        "ResourceType": "auto-scaling-group",
        "Key": args.key,
        "Value": args.value,
        "PropagateAtLaunch": False,
    }
    asg.create_or_update_tags(Tags=[tag])
    return {"group": args.group, "tag": {args.key: args.value}}


def cmd_topic(args):
    sns, sqs = client(args.endpoint, "sns"), client(args.endpoint, "sqs")
    topic_arn, queue_url = topic_with_queue(sns, sqs, args.name, args.queue)
    return {"topic_arn": topic_arn, "queue_url": queue_url}


def cmd_alarm(args):
    cw = client(args.endpoint, "cloudwatch")
    if not cw.describe_alarms(AlarmNames=[args.name]).get("MetricAlarms"):
        cw.put_metric_alarm(
            AlarmName=args.name,
            Namespace="AWS/ES",
            MetricName="ClusterStatus.green",
            Statistic="Minimum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="LessThanThreshold",
        )
    cw.set_alarm_state(AlarmName=args.name, StateValue=args.state, StateReason="set by scenario.py")
    alarm = cw.describe_alarms(AlarmNames=[args.name])["MetricAlarms"][0]
    return {"name": args.name, "state": alarm["StateValue"], "since": str(alarm["StateUpdatedTimestamp"])}


def cmd_reset(args):
    moto_api(args.endpoint, "/moto-api/reset")
    return {"reset": True}


# ---------------------------------------------------------------- realism server


def cmd_realism(args):
    changes = {}
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ScenarioError(f"--set wants KEY=JSON_VALUE, not {item!r}")
        try:
            changes[key] = json.loads(raw)
        except ValueError as e:
            raise ScenarioError(f"--set {key}: value is not JSON: {raw!r}") from e
    if changes:
        return realism_api(args.endpoint, "/__realism/settings", changes)
    return realism_api(args.endpoint, "/__realism/settings")


def id_list(text):
    ids = [i.strip() for i in text.split(",") if i.strip()]
    if not ids:
        raise ScenarioError("needs at least one comma-separated value")
    return ids


def cmd_retire(args):
    body = {
        "instance_ids": id_list(args.instances),
        "code": args.code,
        "stop": not args.announce_only,
    }
    return realism_api(args.endpoint, "/__realism/retire", body)


def cmd_aws_suspend(args):
    body = {"group": args.group, "processes": id_list(args.processes)}
    if args.reason is not None:
        body["reason"] = args.reason
    return realism_api(args.endpoint, "/__realism/suspend", body)


def cmd_realism_stats(args):
    return realism_api(args.endpoint, "/__realism/stats")


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
    s.add_argument(
        "--stopped-by",
        choices=("retirement", "user"),
        help="how the two members are stopped (default: retirement on the realism server, "
        "else user = StopInstances)",
    )
    s.add_argument(
        "--suspended-by",
        choices=("aws", "user"),
        help="who suspends Launch,Terminate (default: aws on the realism server, "
        "else user = SuspendProcesses)",
    )
    s.set_defaults(func=cmd_seed)

    s = sub.add_parser("stranded-group", help="(realism) one more group with retired members")
    s.add_argument("--name", required=True)
    s.add_argument("--size", type=int, default=3)
    s.add_argument("--retired", type=int, default=1)
    s.set_defaults(func=cmd_stranded_group)

    s = sub.add_parser("seed-scale", help="(realism) many groups fast, some stranded (benchmark)")
    s.add_argument("--groups", type=int, required=True)
    s.add_argument("--size", type=int, default=5)
    s.add_argument("--stranded", type=int, required=True, help="groups with retired members")
    s.add_argument("--stopped", type=int, required=True, help="retired members over all of them")
    s.add_argument("--prefix", default="bench")
    s.set_defaults(func=cmd_seed_scale)

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
    s.add_argument("--naive", action="store_true", help="resume without marking restarted members Healthy first")
    s.set_defaults(func=cmd_repair)

    s = sub.add_parser("terminate", help="terminate one instance")
    s.add_argument("--instance", required=True)
    s.set_defaults(func=cmd_terminate)

    s = sub.add_parser("tag-group", help="set one tag on a group")
    s.add_argument("--group", required=True)
    s.add_argument("--key", required=True)
    s.add_argument("--value", required=True)
    s.set_defaults(func=cmd_tag_group)

    s = sub.add_parser("topic", help="one more topic, with a queue subscribed to it")
    s.add_argument("--name", required=True)
    s.add_argument("--queue", required=True)
    s.set_defaults(func=cmd_topic)

    s = sub.add_parser("alarm", help="a CloudWatch metric alarm in this state (created if missing)")
    s.add_argument("--name", required=True)
    s.add_argument("--state", choices=("OK", "ALARM", "INSUFFICIENT_DATA"), required=True)
    s.set_defaults(func=cmd_alarm)

    s = sub.add_parser("reset", help="wipe all moto state")
    s.set_defaults(func=cmd_reset)

    s = sub.add_parser("realism", help="(realism server) print or change its settings")
    s.add_argument("--set", action="append", metavar="KEY=JSON_VALUE", help="repeatable")
    s.set_defaults(func=cmd_realism)

    s = sub.add_parser("retire", help="(realism server) retire instances as AWS does")
    s.add_argument("--instances", required=True, help="comma-separated instance ids")
    s.add_argument(
        "--code", choices=("instance-retirement", "instance-stop"), default="instance-retirement"
    )
    s.add_argument("--announce-only", action="store_true", help="list the event, do not stop")
    s.set_defaults(func=cmd_retire)

    s = sub.add_parser("aws-suspend", help="(realism server) suspend processes as AWS itself")
    s.add_argument("--group", required=True)
    s.add_argument("--processes", required=True, help="comma-separated process names")
    s.add_argument("--reason", help="suspension reason (default: an administrative one)")
    s.set_defaults(func=cmd_aws_suspend)

    s = sub.add_parser("realism-stats", help="(realism server) what the realism layer did")
    s.set_defaults(func=cmd_realism_stats)
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
