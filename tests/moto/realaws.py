#!/usr/bin/env python3
"""moto's server, patched to behave like AWS where retirement-guard's safety lives.

Usage: realaws.py [-H HOST] [-p PORT] [--plain]      (env REALAWS_PLAIN=1 = --plain)

Serves the same app as `moto_server` (every service, /moto-api/ included), with
four behaviours of real AWS that moto lacks. Each can be switched at run time:

  retirement     POST /__realism/retire lists a scheduled instance-retirement (or
                 instance-stop) event in DescribeInstanceStatus and, with "stop",
                 stops the instance as AWS does (Server.ScheduledStop).
  suspension     SuspendProcesses records "User suspended at <time>" as the reason
  reasons        (moto records ""); POST /__realism/suspend makes a suspension by
                 AWS itself, with a reason that is not a user's.
  health and     a stopped (or stopping, terminated...) InService member of a group
  replacement    whose HealthCheck process runs turns Unhealthy and stays so until
                 SetInstanceHealth says Healthy; while Terminate and ReplaceUnhealthy
                 run, Unhealthy members are terminated, and replaced while Launch runs
                 (a replacement owed while Launch is suspended follows its resume).
                 Standby members are left alone; the grace period is not modelled.
  timing         StartInstances gives pending, then running; status checks read
                 initializing, then ok (or impaired for listed ids); a start moves
                 LaunchTime and drops the instance's pending retirement events.
  standby        EnterStandby takes only InService members and, decrementing desired
                 capacity, refuses to go below MinSize; ExitStandby takes only
                 Standby members (ValidationError, as AWS; moto checks neither).

One protocol moto lacks: CloudWatch answers the Rust SDK in Smithy RPC v2 CBOR
(`smithy-protocol: rpc-v2-cbor`), which moto does not parse; DescribeAlarms over it is
answered here from moto's own alarms (the query protocol, boto3's, stays moto's).

One change is for speed only, with the same answers: an EC2 resource's tags are read
from its own entry of moto's tag store, not by scanning every tag of the region.

Settings (GET/POST /__realism/settings; --plain sets the booleans false and the
seconds 0, which leaves moto's own behaviour):
  suspension_reasons      true   SuspendProcesses records "User suspended at ..."
  health_checks           true   stopped InService members turn Unhealthy ...
  unhealthy_after_seconds 1.0    ... after this long in a non-running state
  replace_unhealthy       true   Unhealthy members are terminated and replaced
  pending_seconds         1.0    StartInstances: pending this long, then running
  initializing_seconds    2.0    status checks initializing this long after running
  impaired                []     instance ids whose instance status check fails
  start_moves_launch_time true   a start sets LaunchTime to now
  standby_checks          true   EnterStandby/ExitStandby check state and MinSize

Control endpoints, JSON in and out (errors: HTTP 400 {"error": "..."}):
  GET  /__realism/settings   every switch and its value
  POST /__realism/settings   partial update, e.g. {"health_checks": false}
  POST /__realism/retire     {"instance_ids": [...], "code": "instance-retirement" |
                             "instance-stop", "not_before": ISO-8601 (default now +
                             14 days), "description": "...", "stop": false}
                             -> {"retired": [...], "stopped": bool}
  POST /__realism/suspend    {"group": NAME, "processes": [...], "reason": "..."}
                             -> {"group": NAME, "suspended": [...], "reason": "..."}
  GET  /__realism/stats      what this layer did itself:
                             {"marked_unhealthy": [...], "terminated": [...], "launched": [...]}
POST /moto-api/reset also clears this layer's stats and restores the start-up settings.
--plain starts with every behaviour off, so the answers are moto's own.

Why this mechanism: the behaviours are changes of state over time (a member
turning Unhealthy, being terminated and replaced, an instance leaving pending)
that a rewriting proxy in front of moto cannot make, and a proxy would have to
keep every API's view of them consistent by hand. Patching moto's model objects
in-process keeps them the one source of truth, so DescribeInstances,
DescribeInstanceStatus, DescribeAutoScalingGroups and boto3 in scenario.py all
see the same world. Time is evaluated lazily: that world can only be observed
through requests, so it is advanced to "now" before each request, under one lock
that also serialises the requests, instead of by a thread racing moto's models.
SQS requests skip the lock (a long poll would hold it for up to 20 s; this layer
never touches SQS state).
"""

import argparse
import copy
import datetime
import json
import os
import secrets
import signal
import sys
import threading
import time

import cbor2
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

from moto.cloudwatch.models import cloudwatch_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup, autoscaling_backends
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.ec2.models.instances import Instance, StateReason
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

DEFAULTS = {
    "suspension_reasons": True,
    "health_checks": True,
    "replace_unhealthy": True,
    "unhealthy_after_seconds": 1.0,
    "pending_seconds": 1.0,
    "initializing_seconds": 2.0,
    "impaired": [],
    "start_moves_launch_time": True,
    "standby_checks": True,
}
PLAIN = {
    "suspension_reasons": False,
    "health_checks": False,
    "replace_unhealthy": False,
    "pending_seconds": 0.0,
    "initializing_seconds": 0.0,
    "start_moves_launch_time": False,
    "standby_checks": False,
}
PROCESSES = {"Launch", "Terminate", "AddToLoadBalancer", "AlarmNotification", "AZRebalance",
             "HealthCheck", "InstanceRefresh", "ReplaceUnhealthy", "ScheduledActions"}
AWS_SUSPENSION = "Administrative suspension: the group failed to launch instances for over 24 hours"
DEGRADED = "The instance is running on degraded hardware"

startup = dict(DEFAULTS)
settings = dict(DEFAULTS)
stats = {"marked_unhealthy": [], "terminated": [], "launched": []}
world_lock = threading.Lock()


class BadRequest(Exception):
    pass


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def backends(backend_dict):
    """The backends moto has created so far (iterating never creates one)."""
    return [b for acct in list(dict.values(backend_dict)) for b in list(dict.values(acct))]


def state_since(inst):
    """(state name, since when) of an instance, stamped when this layer first sees it."""
    if getattr(inst, "_rl_since", (None,))[0] != inst._state.name:
        inst._rl_since = (inst._state.name, time.time())
    return inst._rl_since


# ------------------------------------------- 1 and 4: instances (retirement, timing)
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-retirement.html
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instances-status-check_sched.html
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-system-instance-status-check.html

_orig = {name: getattr(Instance, name) for name in ("start", "stop", "terminate", "reboot")}


def _stamped(name):
    def method(self, *args, **kwargs):
        before = self._state.name
        result = _orig[name](self, *args, **kwargs)
        if self._state.name != before:  # e.g. stopping a stopped instance changes nothing
            self._rl_since = (self._state.name, time.time())
        return result

    return method


def _start(self):
    if self._state.name == "pending":  # AWS: starting a pending instance changes nothing
        return copy.copy(self._state)
    previous = _orig["start"](self)
    if previous.name == "stopped":
        now = time.time()
        if settings["start_moves_launch_time"]:
            self.launch_time = utcnow()  # LaunchTime moves on every start
        # A stop and start moves the instance to healthy hardware: its scheduled stop is moot.
        self._rl_events = [e for e in getattr(self, "_rl_events", [])
                           if e["Description"].startswith("[Completed]")
                           or e["Code"] not in ("instance-retirement", "instance-stop")]
        if settings["pending_seconds"] > 0:
            self._state.name, self._state.code = "pending", 0
            self._rl_pending_until = now + settings["pending_seconds"]
        else:
            self._rl_running_since = now
    if self._state.name != previous.name:
        self._rl_since = (self._state.name, time.time())
    return previous


def _status(self, system):
    if self.state_code != 16:
        return {"Status": "not-applicable"}
    since = getattr(self, "_rl_running_since", None)  # None: created running, long booted
    ready_at = (since or 0.0) + settings["initializing_seconds"]
    if since is not None and time.time() < ready_at:
        return {"Status": "initializing",
                "Details": [{"Name": "reachability", "Status": "initializing"}]}
    if not system and self.id in settings["impaired"]:
        impaired_since = (datetime.datetime.fromtimestamp(ready_at, datetime.timezone.utc)
                          .replace(tzinfo=None) if since is not None else self.launch_time)
        return {"Status": "impaired", "Details": [
            {"Name": "reachability", "Status": "failed", "ImpairedSince": impaired_since}]}
    return {"Status": "ok", "Details": [{"Name": "reachability", "Status": "passed"}]}


for _name in ("stop", "terminate", "reboot"):
    setattr(Instance, _name, _stamped(_name))
Instance.start = _start
Instance.instance_status = property(lambda self: _status(self, system=False))
Instance.system_status = property(lambda self: _status(self, system=True))
# moto's serialiser picks the InstanceStatus member `Events` as attribute `events`.
# None (no events) leaves the member out of the answer, as moto does.
Instance.events = property(lambda self: list(getattr(self, "_rl_events", [])) or None)

# DescribeInstanceStatus filter `event.code` (moto ignores filters it does not know):
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceStatus.html
_orig_applies = Instance.applies


def _applies(self, filters):
    for f in filters or []:
        if f["name"] == "event.code":
            codes = {e["Code"] for e in getattr(self, "_rl_events", [])}
            if not codes.intersection(f["values"]):
                return False
    return _orig_applies(self, filters)


Instance.applies = _applies


def find_instance(iid):
    for be in backends(ec2_backends):
        inst = be.get_instance_by_id(iid)
        if inst is not None:
            return inst
    raise BadRequest(f"unknown instance id: {iid}")


def retire(body):
    ids = body.get("instance_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise BadRequest("instance_ids must be a non-empty list of instance ids")
    code = body.get("code", "instance-retirement")
    if code not in ("instance-retirement", "instance-stop"):
        raise BadRequest(f"code must be instance-retirement or instance-stop, not {code!r}")
    not_before = utcnow() + datetime.timedelta(days=14)
    if "not_before" in body:
        try:
            not_before = datetime.datetime.fromisoformat(body["not_before"])
        except (TypeError, ValueError) as e:
            raise BadRequest(f"not_before is not ISO-8601: {e}") from e
    if not_before.tzinfo:  # moto's timestamps are naive UTC
        not_before = not_before.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    stop = body.get("stop", False)
    if not isinstance(stop, bool):
        raise BadRequest("stop must be true or false")
    instances = [find_instance(i) for i in ids]  # every id checked before any change
    gone = [i.id for i in instances if i.state in ("shutting-down", "terminated")]
    if stop and gone:
        raise BadRequest(f"cannot stop terminated instances: {', '.join(gone)}")
    for inst in instances:
        events = inst._rl_events = getattr(inst, "_rl_events", [])
        # A stop completes the event announced before (retire --announce-only, then retire).
        event = next((e for e in events if stop and e["Code"] == code
                      and not e["Description"].startswith("[Completed]")), None)
        if event is None:
            event = {"InstanceEventId": "instance-event-" + secrets.token_hex(9)[:17], "Code": code,
                     "Description": str(body.get("description") or DEGRADED),
                     "NotBefore": not_before, "NotAfter": not_before + datetime.timedelta(days=7)}
            events.append(event)
        if stop:
            inst.stop()
            inst.state_reason = StateReason(  # (message, code): moto's order
                "Server.ScheduledStop: Stopped due to scheduled retirement", "Server.ScheduledStop")
            inst._reason = f"Service initiated ({utcnow():%Y-%m-%d %H:%M:%S} GMT)"
            event["Description"] = "[Completed] " + event["Description"]
    return {"retired": ids, "stopped": stop}


# ------------------------------------------------------------ 2: suspension reasons
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_SuspendedProcess.html
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-suspend-resume-processes.html

_orig_suspend = AutoScalingBackend.suspend_processes
_orig_resume = AutoScalingBackend.resume_processes


def _reasons(group):
    if not hasattr(group, "_rl_reasons"):
        group._rl_reasons = {}
    return group._rl_reasons


def _suspended_processes(group):
    reasons = _reasons(group)
    return [{"ProcessName": p, "SuspensionReason": reasons.get(p, "")}
            for p in group._suspended_processes]


def _suspend(self, group_name, scaling_processes):
    group = self.autoscaling_groups.get(group_name)
    before = set(group._suspended_processes) if group else set()
    _orig_suspend(self, group_name, scaling_processes)
    if group and settings["suspension_reasons"]:
        reason = f"User suspended at {utcnow():%Y-%m-%dT%H:%M:%SZ}"
        for p in set(group._suspended_processes) - before:
            _reasons(group)[p] = reason


def _resume(self, group_name, scaling_processes):
    _orig_resume(self, group_name, scaling_processes)
    group = self.autoscaling_groups.get(group_name)
    if group:
        kept = group._suspended_processes
        group._rl_reasons = {p: r for p, r in _reasons(group).items() if p in kept}


FakeAutoScalingGroup.suspended_processes = property(
    _suspended_processes, FakeAutoScalingGroup.suspended_processes.fset)
AutoScalingBackend.suspend_processes = _suspend
AutoScalingBackend.resume_processes = _resume


# ---------------------------------------------------------------- 5: standby
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/as-enter-exit-standby.html
# https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_EnterStandby.html

_orig_enter_standby = AutoScalingBackend.enter_standby_instances
_orig_exit_standby = AutoScalingBackend.exit_standby_instances


def _checked(backend, group_name, instance_ids, lifecycle):
    """The group, when standby checks are on, after checking every instance is in `lifecycle`."""
    group = backend.autoscaling_groups.get(group_name)
    if group is None or not settings["standby_checks"]:
        return None
    states = {s.instance.id: s.lifecycle_state for s in group.instance_states}
    for iid in instance_ids:
        if states.get(iid) != lifecycle:
            raise ValidationError(f"The instance {iid} is not in {lifecycle} (it is {states.get(iid, 'not a member')}).")
    return group


def _enter_standby(self, group_name, instance_ids, should_decrement):
    group = _checked(self, group_name, instance_ids, "InService")
    if group is not None and should_decrement and group.desired_capacity - len(instance_ids) < group.min_size:
        raise ValidationError(
            f"AutoScalingGroup {group_name} has min-size={group.min_size}, desired-capacity="
            f"{group.desired_capacity}: decrementing it by {len(instance_ids)} would go below min-size.")
    return _orig_enter_standby(self, group_name, instance_ids, should_decrement)


def _exit_standby(self, group_name, instance_ids):
    _checked(self, group_name, instance_ids, "Standby")
    return _orig_exit_standby(self, group_name, instance_ids)


AutoScalingBackend.enter_standby_instances = _enter_standby
AutoScalingBackend.exit_standby_instances = _exit_standby


# ---------------------------------------------------------------- speed, same answers
# moto's TaggedEC2Resource.get_tags runs describe_tags over every tag of the region to
# find one resource's: a DescribeInstances that returns or tag-filters N instances costs
# O(N x all tags), seconds at a few thousand instances, where AWS indexes tags (and the
# tool that reads instances would pay for moto's emulation). The same list, in the same
# order, from that resource's own entry of moto's tag store; always on, also --plain.
def _get_tags(self):
    if not self.id:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    own = dict(self.ec2_backend.tags.get(self.id, {}))
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in own.items()]


_orig_get_tags = TaggedEC2Resource.get_tags
TaggedEC2Resource.get_tags = _get_tags


def aws_suspend(body):
    name, processes = body.get("group"), body.get("processes")
    reason = body.get("reason", AWS_SUSPENSION)
    if not isinstance(processes, list) or not processes or not set(processes) <= PROCESSES:
        raise BadRequest(f"processes must be a non-empty list of {sorted(PROCESSES)}")
    if not isinstance(reason, str):
        raise BadRequest("reason must be a string")
    group = next((g for be in backends(autoscaling_backends)
                  for g in be.autoscaling_groups.values() if g.name == name), None)
    if group is None:
        raise BadRequest(f"unknown group: {name}")
    group.suspended_processes = sorted(set(group._suspended_processes) | set(processes))
    _reasons(group).update({p: reason for p in processes})  # AWS's reason replaces a user's
    return {"group": name, "suspended": sorted(processes), "reason": reason}


# ------------------------------------------------------ 3: health and replacement
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-health-checks.html
# https://docs.aws.amazon.com/autoscaling/ec2/userguide/understand-how-suspending-processes-affects-other-processes.html
# Marking ignores the grace period on purpose: the story's members are long in service.


def advance_world():
    now = time.time()
    for be in backends(ec2_backends):
        for inst in be.all_instances():
            until = getattr(inst, "_rl_pending_until", None)
            if inst._state.name == "pending" and until is not None and now >= until:
                inst._state.name, inst._state.code = "running", 16
                inst._rl_running_since = until
                inst._rl_since = ("running", until)
    for be in backends(autoscaling_backends):
        for group in list(be.autoscaling_groups.values()):
            advance_group(be, group, now)


def advance_group(be, group, now):
    suspended = set(group._suspended_processes)
    in_service = [s for s in group.instance_states if s.lifecycle_state == "InService"]
    if settings["health_checks"] and "HealthCheck" not in suspended:
        for st in in_service:
            name, since = state_since(st.instance)
            if (st.health_status != "Unhealthy" and name not in ("running", "pending")
                    and now - since >= settings["unhealthy_after_seconds"]):
                st.health_status = "Unhealthy"  # stays so until SetInstanceHealth Healthy
                stats["marked_unhealthy"].append(st.instance.id)
    owed = getattr(group, "_rl_owed", 0)
    if settings["replace_unhealthy"] and not suspended & {"Terminate", "ReplaceUnhealthy"}:
        for st in [s for s in in_service if s.health_status == "Unhealthy"]:
            if st.instance.state != "terminated":
                st.instance.terminate()  # the model, not TerminateInstances: no moto replacement
            group.instance_states.remove(st)
            stats["terminated"].append(st.instance.id)
            owed += 1
    # "ReplaceUnhealthy continues to terminate unhealthy instances, but does not launch
    # replacements" while Launch is suspended; the group catches up once it resumes.
    owed = min(owed, (group.desired_capacity or 0) - len(group.instance_states))  # <= desired
    if owed > 0 and "Launch" not in suspended:
        before = {s.instance.id for s in group.instance_states}
        group.replace_autoscaling_group_instances(owed, group.get_propagated_tags())
        stats["launched"].extend(
            s.instance.id for s in group.instance_states if s.instance.id not in before)
        be.update_attached_elbs(group.name)
        be.update_attached_target_groups(group.name)
        owed = 0
    group._rl_owed = max(owed, 0)


# ---------------------------------------------------------------- the server


def update_settings(body):
    for key, value in body.items():
        if key not in DEFAULTS:
            raise BadRequest(f"unknown setting: {key}")
        kind = type(DEFAULTS[key])
        if kind is bool:
            ok, want = isinstance(value, bool), "true or false"
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            want = "a non-negative number"
        else:
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            want = "a list of instance ids"
        if not ok:
            raise BadRequest(f"wrong type for setting {key}: {json.dumps(value)} (want {want})")
    settings.update({k: float(v) if type(DEFAULTS[k]) is float else v for k, v in body.items()})
    return dict(settings)


ROUTES = {
    ("GET", "/__realism/settings"): lambda body: dict(settings),
    ("POST", "/__realism/settings"): update_settings,
    ("POST", "/__realism/retire"): retire,
    ("POST", "/__realism/suspend"): aws_suspend,
    ("GET", "/__realism/stats"): lambda body: {k: list(v) for k, v in stats.items()},
}


def control(environ, start_response):
    req = Request(environ)
    route = ROUTES.get((req.method, req.path))
    status, result = 200, None
    try:
        if route is None:
            raise BadRequest(f"no such endpoint: {req.method} {req.path}")
        try:
            body = json.loads(req.get_data() or b"{}") if req.method == "POST" else {}
        except ValueError as e:
            raise BadRequest(f"the body is not JSON: {e}") from e
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        with world_lock:
            advance_world()
            result = route(body)
    except BadRequest as e:
        status, result = (404 if route is None else 400), {"error": str(e)}
    answer = Response(json.dumps(result, default=str), status, mimetype="application/json")
    return answer(environ, start_response)


def reset_realism():
    settings.clear()
    settings.update(startup)
    for ids in stats.values():
        ids.clear()


def is_sqs(environ):
    credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2]
    scope = credential.split(",")[0].split("/")  # KEY/date/region/service/aws4_request
    return (len(scope) > 3 and scope[3] == "sqs") or environ.get(
        "HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS")


CLOUDWATCH_CBOR = "/service/GraniteServiceVersion20100801/operation/"


def credential_scope(environ):
    """(region, service) of a SigV4-signed request."""
    credential = environ.get("HTTP_AUTHORIZATION", "").partition("Credential=")[2]
    scope = credential.split(",")[0].split("/")  # KEY/date/region/service/aws4_request
    return (scope[2], scope[3]) if len(scope) > 3 else ("us-east-1", "")


def cloudwatch_cbor(environ, start_response):
    """CloudWatch over RPC v2 CBOR: DescribeAlarms (by name, metric and composite)."""
    operation = environ["PATH_INFO"][len(CLOUDWATCH_CBOR):]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]

    def answer(status, body):
        data = cbor2.dumps(body, datetime_as_timestamp=True, timezone=datetime.timezone.utc)
        start_response(status, headers + [("Content-Length", str(len(data)))])
        return [data]

    try:
        params = cbor2.loads(raw) if raw else {}
    except Exception as e:  # noqa: BLE001 - any undecodable body
        return answer("400 Bad Request", {"__type": "SerializationException", "message": str(e)})
    if operation != "DescribeAlarms":
        why = f"{operation} over rpc-v2-cbor is not served by this local AWS"
        return answer("400 Bad Request", {"__type": "InvalidAction", "message": why})
    region, _ = credential_scope(environ)
    with world_lock:
        backend = cloudwatch_backends[DEFAULT_ACCOUNT_ID][region]
        names = params.get("AlarmNames") or []
        alarms = backend.get_alarms_by_alarm_names(names) if names else backend.describe_alarms()

    def shown(a):
        since = a.state_updated_timestamp
        if since.tzinfo is None:  # moto's timestamps are naive UTC
            since = since.replace(tzinfo=datetime.timezone.utc)
        return {"AlarmName": a.name, "AlarmArn": a.alarm_arn, "StateValue": a.state_value,
                "StateReason": a.state_reason or "", "StateUpdatedTimestamp": since}

    return answer("200 OK", {
        "MetricAlarms": [shown(a) for a in alarms if a.rule is None],
        "CompositeAlarms": [shown(a) for a in alarms if a.rule is not None],
    })


def realism(app):
    def middleware(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/__realism/"):
            return control(environ, start_response)
        if path.startswith(CLOUDWATCH_CBOR) and environ.get("HTTP_SMITHY_PROTOCOL") == "rpc-v2-cbor":
            return cloudwatch_cbor(environ, start_response)
        if is_sqs(environ):
            with world_lock:
                advance_world()
            return app(environ, start_response)
        status = []

        def recording_start_response(code, headers, *exc_info):
            status.append(code)
            return start_response(code, headers, *exc_info)

        with world_lock:
            advance_world()
            result = app(environ, recording_start_response)
            try:
                body = b"".join(result)  # moto's work happens inside the lock
            finally:
                getattr(result, "close", lambda: None)()
            if path == "/moto-api/reset" and status and status[0].startswith("200"):
                reset_realism()  # moto's models, and so this layer's marks on them, are new
        return [body]

    return middleware


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-H", "--host", default="127.0.0.1")
    p.add_argument("-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", 5000)))
    p.add_argument("--plain", action="store_true", default=os.environ.get("REALAWS_PLAIN") == "1",
                   help="start with every behaviour off (moto's own answers)")
    args = p.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    if args.plain:
        startup.update(PLAIN)
    reset_realism()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True
    run_simple(args.host, args.port, realism(app), threaded=True,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
