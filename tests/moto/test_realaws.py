#!/usr/bin/env python3
"""Self-test of realaws.py (and of scenario.py against it and against plain moto).

Usage: .venv/bin/python tests/moto/test_realaws.py [-v]

Starts its own servers on free 127.0.0.1 ports and kills them at the end. Every
wait is bounded in count and time. Standard library unittest, plus boto3 (through
scenario.py's client helper).
"""

import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ next to the scripts
sys.path.insert(0, HERE)
import scenario  # noqa: E402

PYTHON = sys.executable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(what, check, timeout=10.0, interval=0.1):
    """check() until truthy, at most timeout seconds and timeout/interval + 1 tries."""
    return scenario.wait_until(what, check, timeout, interval, int(timeout / interval) + 1)


class Server:
    """A server process on a free port, killed by stop()."""

    def __init__(self, argv):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.TemporaryDirectory()
        self.log = open(os.path.join(self.dir.name, "server.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv + ["-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.dir.name, stdout=self.log, stderr=subprocess.STDOUT,
        )

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early ({self.proc.returncode}): {argv}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        poll(f"{argv[-1]} to listen", listening, timeout=30.0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        self.dir.cleanup()


def http(endpoint, path, body=None):
    """(status, JSON answer) of a control endpoint."""
    data = None if body is None else json.dumps(body).encode()
    method = "GET" if body is None else "POST"
    req = urllib.request.Request(endpoint + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def run_scenario(endpoint, *args):
    out = subprocess.run(
        [PYTHON, os.path.join(HERE, "scenario.py"), "--endpoint", endpoint, *args],
        capture_output=True, text=True, timeout=120,
    )
    if out.returncode != 0:
        raise AssertionError(f"scenario.py {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


class World(unittest.TestCase):
    """Base: one server per class, state reset before every test."""

    argv = [PYTHON, os.path.join(HERE, "realaws.py")]

    @classmethod
    def setUpClass(cls):
        cls.server = Server(cls.argv)
        cls.addClassCleanup(cls.server.stop)
        cls.ep = cls.server.endpoint
        cls.ec2 = scenario.client(cls.ep, "ec2")
        cls.asg = scenario.client(cls.ep, "autoscaling")

    def setUp(self):
        scenario.moto_api(self.ep, "/moto-api/reset")

    def group(self, name, size=3, suspend=()):
        image = scenario.pick_image(self.ec2)
        scenario.ensure_launch_template(self.ec2, image)
        ids = scenario.create_group(self.asg, name, size, scenario.default_subnets(self.ec2))
        if suspend:
            self.asg.suspend_processes(AutoScalingGroupName=name, ScalingProcesses=list(suspend))
        return ids

    def lifecycle(self, name):
        groups = scenario.all_groups(self.asg, [name])
        return {i["InstanceId"]: i["LifecycleState"] for g in groups for i in g.get("Instances", [])}

    def members(self, name):
        groups = scenario.all_groups(self.asg, [name])
        return {i["InstanceId"]: i["HealthStatus"] for g in groups for i in g.get("Instances", [])}

    def instance(self, iid):
        return scenario.all_instances(self.ec2, [iid])[0]

    def status(self, iid):
        found = self.ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)
        return found["InstanceStatuses"][0]

    def reasons(self, name):
        group = scenario.all_groups(self.asg, [name])[0]
        return {p["ProcessName"]: p["SuspensionReason"] for p in group["SuspendedProcesses"]}

    def stats(self):
        return http(self.ep, "/__realism/stats")[1]

    def unhealthy(self, name, iid, timeout=5.0):
        return poll(f"{iid} Unhealthy", lambda: self.members(name).get(iid) == "Unhealthy", timeout)


class Realism(World):
    def test_retirement_is_announced_then_stops_the_instance(self):
        iid = self.group("g", 2)[0]
        code, answer = http(self.ep, "/__realism/retire", {"instance_ids": [iid]})
        self.assertEqual((code, answer), (200, {"retired": [iid], "stopped": False}))
        [event] = self.status(iid)["Events"]
        self.assertRegex(event["InstanceEventId"], r"^instance-event-[0-9a-f]{17}$")
        self.assertEqual(event["Code"], "instance-retirement")
        self.assertEqual(event["Description"], "The instance is running on degraded hardware")
        self.assertEqual(event["NotAfter"] - event["NotBefore"], datetime.timedelta(days=7))
        self.assertGreater(event["NotBefore"], datetime.datetime.now(datetime.timezone.utc)
                           + datetime.timedelta(days=13))
        self.assertEqual(self.instance(iid)["State"]["Name"], "running", "announced only")

        self.assertEqual(run_scenario(self.ep, "retire", "--instances", iid)["stopped"], True)
        inst = self.instance(iid)
        self.assertEqual(inst["State"], {"Code": 80, "Name": "stopped"})
        self.assertEqual(inst["StateReason"], {
            "Code": "Server.ScheduledStop",
            "Message": "Server.ScheduledStop: Stopped due to scheduled retirement"})
        self.assertRegex(inst["StateTransitionReason"],
                         r"^Service initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$")
        [done] = self.status(iid)["Events"]
        self.assertEqual((done["InstanceEventId"], done["Description"]),
                         (event["InstanceEventId"], "[Completed] " + event["Description"]))

        code, answer = http(self.ep, "/__realism/retire", {"instance_ids": ["i-0123456789abcdef0"]})
        self.assertEqual(code, 400)
        self.assertIn("i-0123456789abcdef0", answer["error"])
        bad_code = {"instance_ids": [iid], "code": "x"}
        self.assertEqual(http(self.ep, "/__realism/retire", bad_code)[0], 400)
        other = self.group("h", 1)[0]
        stop = run_scenario(self.ep, "retire", "--instances", other, "--code", "instance-stop",
                            "--announce-only")
        self.assertEqual(stop, {"retired": [other], "stopped": False})
        self.assertEqual(self.status(other)["Events"][0]["Code"], "instance-stop")
        # The event.code filter lists only the instances with such an event.
        by_code = self.ec2.describe_instance_status(
            Filters=[{"Name": "event.code", "Values": ["instance-stop"]}])["InstanceStatuses"]
        self.assertEqual([s["InstanceId"] for s in by_code], [other])

    def test_suspension_reasons_tell_a_user_from_aws(self):
        self.group("g", 1, suspend=["Launch"])
        self.assertRegex(self.reasons("g")["Launch"],
                         r"^User suspended at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        first = self.reasons("g")["Launch"]
        self.asg.suspend_processes(AutoScalingGroupName="g",
                                   ScalingProcesses=["Launch", "AZRebalance"])
        self.assertEqual(self.reasons("g")["Launch"], first, "kept for an already suspended one")
        run_scenario(self.ep, "aws-suspend", "--group", "g", "--processes", "Terminate")
        self.assertTrue(self.reasons("g")["Terminate"].startswith("Administrative suspension"))
        run_scenario(self.ep, "aws-suspend", "--group", "g", "--processes", "AlarmNotification",
                     "--reason", "Something AWS said")
        self.assertEqual(self.reasons("g")["AlarmNotification"], "Something AWS said")
        self.asg.resume_processes(AutoScalingGroupName="g", ScalingProcesses=["Terminate"])
        self.assertNotIn("Terminate", self.reasons("g"))
        unknown = {"group": "nope", "processes": ["Launch"]}
        self.assertEqual(http(self.ep, "/__realism/suspend", unknown)[0], 400)

        run_scenario(self.ep, "realism", "--set", "suspension_reasons=false")
        self.asg.suspend_processes(AutoScalingGroupName="g", ScalingProcesses=["HealthCheck"])
        self.assertEqual(self.reasons("g")["HealthCheck"], "", "moto's own answer")

    def test_a_stopped_member_turns_unhealthy_and_stays_so(self):
        ids = self.group("g", 3, suspend=["Terminate"])
        quiet = self.group("q", 2, suspend=["HealthCheck", "Terminate"])
        started = time.monotonic()
        self.ec2.stop_instances(InstanceIds=[ids[0], quiet[0]])
        self.unhealthy("g", ids[0])
        took = time.monotonic() - started
        self.assertTrue(0.9 <= took <= 3.0, f"Unhealthy after {took:.2f} s")
        self.assertEqual(self.members("g")[ids[1]], "Healthy")
        self.assertEqual(self.members("q")[quiet[0]], "Healthy", "HealthCheck suspended")
        self.ec2.start_instances(InstanceIds=[ids[0]])
        poll("running", lambda: self.instance(ids[0])["State"]["Name"] == "running", 5.0)
        time.sleep(0.5)
        self.assertEqual(self.members("g")[ids[0]], "Unhealthy", "AWS never heals it by itself")
        self.assertEqual(self.stats()["marked_unhealthy"], [ids[0]])

    def test_standby_members_are_left_alone(self):
        ids = self.group("g", 2, suspend=["Terminate"])
        self.asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=1)  # room to decrement
        self.asg.enter_standby(AutoScalingGroupName="g", InstanceIds=[ids[0]],
                               ShouldDecrementDesiredCapacity=True)
        self.ec2.stop_instances(InstanceIds=[ids[0]])
        time.sleep(1.5)
        self.assertEqual(self.members("g")[ids[0]], "Healthy")
        self.assertEqual(self.stats()["marked_unhealthy"], [])

    def test_resuming_terminate_before_healthy_loses_the_member(self):
        ids = self.group("g", 3, suspend=["Launch", "Terminate"])
        self.ec2.stop_instances(InstanceIds=[ids[0]])
        self.unhealthy("g", ids[0])
        self.ec2.start_instances(InstanceIds=[ids[0]])
        self.asg.resume_processes(AutoScalingGroupName="g", ScalingProcesses=["Terminate"])
        poll("termination", lambda: ids[0] not in self.members("g"), 5.0)
        self.assertEqual(self.instance(ids[0])["State"]["Name"], "terminated")
        self.assertEqual(len(self.members("g")), 2, "no replacement while Launch is suspended")
        self.assertEqual(self.stats()["terminated"], [ids[0]])
        self.assertEqual(self.stats()["launched"], [])

        self.asg.resume_processes(AutoScalingGroupName="g", ScalingProcesses=["Launch"])
        members = poll("replacement",
                       lambda: len(self.members("g")) == 3 and self.members("g"), 5.0)
        [new] = set(members) - set(ids)
        self.assertEqual(self.stats()["launched"], [new])
        self.assertEqual(self.instance(new)["State"]["Name"], "running")

    def test_an_unhealthy_member_is_replaced_at_once_when_nothing_is_suspended(self):
        ids = self.group("g", 2)
        self.ec2.stop_instances(InstanceIds=[ids[1]])
        poll("replacement",
             lambda: ids[1] not in self.members("g") and len(self.members("g")) == 2, 5.0)
        stats = self.stats()
        self.assertEqual((stats["marked_unhealthy"], stats["terminated"], len(stats["launched"])),
                         ([ids[1]], [ids[1]], 1))

    def test_marking_healthy_before_the_resume_keeps_the_member(self):
        ids = self.group("g", 3, suspend=["Launch", "Terminate"])
        self.ec2.stop_instances(InstanceIds=[ids[0]])
        self.unhealthy("g", ids[0])
        self.ec2.start_instances(InstanceIds=[ids[0]])
        poll("running", lambda: self.instance(ids[0])["State"]["Name"] == "running", 5.0)
        self.asg.set_instance_health(InstanceId=ids[0], HealthStatus="Healthy")
        self.asg.resume_processes(AutoScalingGroupName="g")
        time.sleep(0.5)
        self.assertEqual(self.members("g"), {i: "Healthy" for i in ids})
        self.assertEqual(self.stats()["terminated"], [])

    def test_start_passes_through_pending_and_initializing(self):
        iid = self.group("g", 1, suspend=["HealthCheck"])[0]
        self.assertEqual(self.status(iid)["InstanceStatus"]["Status"], "ok",
                         "instances created running are long since booted")
        launched = self.instance(iid)["LaunchTime"]
        self.ec2.stop_instances(InstanceIds=[iid])
        self.assertEqual(self.status(iid)["InstanceStatus"]["Status"], "not-applicable")
        time.sleep(1.0)  # LaunchTime has a resolution of one second
        started = time.monotonic()
        answer = self.ec2.start_instances(InstanceIds=[iid])["StartingInstances"][0]
        self.assertEqual(answer["CurrentState"], {"Code": 0, "Name": "pending"})
        self.assertEqual(self.instance(iid)["State"], {"Code": 0, "Name": "pending"})
        self.assertGreater(self.instance(iid)["LaunchTime"], launched)
        poll("running", lambda: self.instance(iid)["State"]["Name"] == "running", 5.0)
        running = time.monotonic() - started
        self.assertTrue(0.9 <= running <= 2.5, f"running after {running:.2f} s")
        status = self.status(iid)
        self.assertEqual((status["InstanceStatus"]["Status"], status["SystemStatus"]["Status"]),
                         ("initializing", "initializing"))
        poll("ok", lambda: self.status(iid)["InstanceStatus"]["Status"] == "ok", 5.0)
        ok = time.monotonic() - started
        self.assertTrue(2.8 <= ok <= 5.0, f"ok after {ok:.2f} s")

        run_scenario(self.ep, "realism", "--set", f'impaired=["{iid}"]')
        status = self.status(iid)
        self.assertEqual(status["InstanceStatus"]["Status"], "impaired")
        self.assertEqual(status["InstanceStatus"]["Details"][0]["Status"], "failed")
        self.assertEqual(status["SystemStatus"]["Status"], "ok")

    def test_a_start_drops_the_pending_retirement_event(self):
        iid = self.group("g", 1, suspend=["HealthCheck"])[0]
        run_scenario(self.ep, "retire", "--instances", iid, "--announce-only")
        self.ec2.stop_instances(InstanceIds=[iid])
        self.ec2.start_instances(InstanceIds=[iid])
        poll("running", lambda: self.instance(iid)["State"]["Name"] == "running", 5.0)
        self.assertNotIn("Events", self.status(iid))

    def test_a_long_poll_does_not_hold_up_other_requests(self):
        sqs = scenario.client(self.ep, "sqs")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        poller = threading.Thread(
            target=lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=3), daemon=True)
        poller.start()
        time.sleep(0.3)
        started = time.monotonic()
        self.ec2.describe_instances()
        self.assertLess(time.monotonic() - started, 2.0)
        poller.join(10)
        self.assertFalse(poller.is_alive())

    def test_indexed_tags_are_the_tags_moto_would_give(self):
        # In this process: importing realaws patches moto's models here too.
        import boto3
        import realaws
        from moto import mock_aws
        from moto.ec2.models import ec2_backends

        with mock_aws():
            ec2 = boto3.client("ec2", region_name="us-east-1")
            image = ec2.describe_images()["Images"][0]["ImageId"]
            tags = [{"Key": f"k{n}", "Value": f"v{n}"} for n in range(3)]
            ids = [i["InstanceId"] for i in ec2.run_instances(
                ImageId=image, MinCount=4, MaxCount=4,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])["Instances"]]
            ec2.create_tags(Resources=ids[:1], Tags=[{"Key": "aws-guard", "Value": "x"}])
            ec2.create_tags(Resources=ids[1:2], Tags=[{"Key": "k0", "Value": "changed"}])
            backend = ec2_backends[scenario.ACCOUNT]["us-east-1"]
            instances = [backend.get_instance(i) for i in ids]
            for inst in instances:
                self.assertEqual(realaws._get_tags(inst), realaws._orig_get_tags(inst), inst.id)
            self.assertEqual(len(realaws._get_tags(instances[0])), 4)
            found = ec2.describe_instances(Filters=[{"Name": "tag:k0", "Values": ["changed"]}])
            self.assertEqual([i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]], ids[1:2])

    def test_cloudwatch_answers_describe_alarms_over_rpc_v2_cbor_as_the_rust_sdk_asks(self):
        import cbor2
        run_scenario(self.ep, "alarm", "--name", "es-green", "--state", "ALARM")
        body = cbor2.dumps({"AlarmNames": ["es-green", "gone"], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]})
        path = "/service/GraniteServiceVersion20100801/operation/DescribeAlarms"
        headers = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": "application/cbor", "Accept": "application/cbor"}
        req = urllib.request.Request(self.ep + path, data=body, method="POST", headers=headers)
        with urllib.request.urlopen(req, timeout=10) as resp:
            self.assertEqual(resp.headers["smithy-protocol"], "rpc-v2-cbor")
            out = cbor2.loads(resp.read())
        [alarm] = out["MetricAlarms"]
        self.assertEqual((alarm["AlarmName"], alarm["StateValue"]), ("es-green", "ALARM"))
        self.assertIsInstance(alarm["StateUpdatedTimestamp"], datetime.datetime)
        self.assertEqual(out["CompositeAlarms"], [])
        other = path.replace("DescribeAlarms", "PutMetricData")
        req = urllib.request.Request(self.ep + other, data=cbor2.dumps({}), method="POST", headers=headers)
        with self.assertRaises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cbor2.loads(refused.exception.read())["__type"], "InvalidAction")

    def test_standby_takes_only_in_service_members_and_never_drops_desired_below_min_size(self):
        import botocore.exceptions
        ids = self.group("g", 3)  # MinSize = desired = 3
        with self.assertRaises(botocore.exceptions.ClientError) as below:
            self.asg.enter_standby(AutoScalingGroupName="g", InstanceIds=[ids[0]], ShouldDecrementDesiredCapacity=True)
        self.assertIn("below min-size", str(below.exception))
        self.asg.update_auto_scaling_group(AutoScalingGroupName="g", MinSize=2)
        self.asg.enter_standby(AutoScalingGroupName="g", InstanceIds=[ids[0]], ShouldDecrementDesiredCapacity=True)
        group = scenario.all_groups(self.asg, ["g"])[0]
        self.assertEqual((group["DesiredCapacity"], self.lifecycle("g")[ids[0]]), (2, "Standby"))
        with self.assertRaises(botocore.exceptions.ClientError) as twice:
            self.asg.enter_standby(AutoScalingGroupName="g", InstanceIds=[ids[0]], ShouldDecrementDesiredCapacity=True)
        self.assertIn("is not in InService", str(twice.exception))
        self.asg.exit_standby(AutoScalingGroupName="g", InstanceIds=[ids[0]])
        group = scenario.all_groups(self.asg, ["g"])[0]
        self.assertEqual((group["DesiredCapacity"], self.lifecycle("g")[ids[0]]), (3, "InService"))
        with self.assertRaises(botocore.exceptions.ClientError) as out:
            self.asg.exit_standby(AutoScalingGroupName="g", InstanceIds=[ids[1]])
        self.assertIn("is not in Standby", str(out.exception))

    def test_settings_are_checked(self):
        code, settings = http(self.ep, "/__realism/settings")
        self.assertEqual(code, 200)
        self.assertEqual(settings, {
            "suspension_reasons": True, "health_checks": True, "replace_unhealthy": True,
            "unhealthy_after_seconds": 1.0, "pending_seconds": 1.0, "initializing_seconds": 2.0,
            "impaired": [], "start_moves_launch_time": True, "standby_checks": True})
        for bad, name in (({"nope": 1}, "nope"), ({"health_checks": "yes"}, "health_checks"),
                          ({"pending_seconds": -1}, "pending_seconds"),
                          ({"impaired": "i-1"}, "impaired")):
            code, answer = http(self.ep, "/__realism/settings", bad)
            self.assertEqual(code, 400, bad)
            self.assertIn(name, answer["error"])
        changed = run_scenario(self.ep, "realism", "--set", "pending_seconds=0",
                               "--set", "health_checks=false")
        self.assertEqual((changed["pending_seconds"], changed["health_checks"]), (0.0, False))
        self.assertEqual(run_scenario(self.ep, "realism"), changed)

    def test_reset_clears_everything(self):
        ids = self.group("g", 2)
        self.ec2.stop_instances(InstanceIds=[ids[0]])
        poll("replacement", lambda: self.stats()["launched"], 5.0)
        http(self.ep, "/__realism/settings", {"health_checks": False})
        self.assertEqual(run_scenario(self.ep, "reset"), {"reset": True})
        self.assertEqual(self.stats(), {"marked_unhealthy": [], "terminated": [], "launched": []})
        self.assertTrue(http(self.ep, "/__realism/settings")[1]["health_checks"])
        self.assertEqual(scenario.all_instances(self.ec2), [])
        self.assertEqual(scenario.all_groups(self.asg), [])

    def test_seed_builds_the_aws_story(self):
        seed = run_scenario(self.ep, "seed")
        stopped = seed["stopped"]
        self.assertEqual((seed["realism"], seed["stopped_by"], seed["suspended_by"]),
                         (True, "retirement", "aws"))
        self.assertEqual(seed["stopped_health"], {i: "Unhealthy" for i in stopped})
        state = run_scenario(self.ep, "state")
        for iid in stopped:
            self.assertEqual(state["instances"][iid]["state_reason"], "Server.ScheduledStop")
            self.assertRegex(state["instances"][iid]["launch_time"],
                             r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(state["instances"][seed["standalone"]]["state_reason"],
                         "Client.UserInitiatedShutdown")
        reasons = state["groups"]["es-data"]["suspension_reasons"]
        self.assertEqual(sorted(reasons), ["Launch", "Terminate"])
        self.assertFalse(any(r.startswith("User suspended at") for r in reasons.values()))

        repaired = run_scenario(self.ep, "repair", "--group", "es-data")
        self.assertEqual((repaired["started"], repaired["marked_healthy"]), (stopped, stopped))
        members = run_scenario(self.ep, "state")["groups"]["es-data"]["members"]
        self.assertEqual(sorted(members), seed["groups"]["es-data"], "no member lost")
        self.assertEqual(self.stats()["terminated"], [])

        run_scenario(self.ep, "reset")
        seed = run_scenario(self.ep, "seed", "--stopped-by", "user", "--suspended-by", "user")
        self.assertEqual((seed["stopped_by"], seed["suspended_by"]), ("user", "user"))
        state = run_scenario(self.ep, "state")
        self.assertEqual(state["instances"][seed["stopped"][0]]["state_reason"],
                         "Client.UserInitiatedShutdown")
        self.assertTrue(all(r.startswith("User suspended at")
                            for r in state["groups"]["es-data"]["suspension_reasons"].values()))


class PlainMoto(World):
    """scenario.py against moto's own server keeps its old behaviour."""

    argv = [os.path.join(os.path.dirname(PYTHON), "moto_server")]

    def test_seed_on_plain_moto(self):
        seed = run_scenario(self.ep, "seed")
        self.assertEqual((seed["realism"], seed["stopped_by"], seed["suspended_by"]),
                         (False, "user", "user"))
        self.assertEqual(seed["stopped_health"], {i: "Healthy" for i in seed["stopped"]})
        state = run_scenario(self.ep, "state")
        self.assertEqual(state["groups"]["es-data"]["suspension_reasons"],
                         {"Launch": "", "Terminate": ""})
        repaired = run_scenario(self.ep, "repair", "--group", "es-data")
        self.assertEqual((repaired["started"], repaired["marked_healthy"]), (seed["stopped"], []))


class PlainRealAws(World):
    """realaws.py --plain answers as moto does."""

    argv = [PYTHON, os.path.join(HERE, "realaws.py"), "--plain"]

    def test_plain_switches_every_behaviour_off(self):
        ids = self.group("g", 2, suspend=["Terminate"])
        launched = self.instance(ids[0])["LaunchTime"]
        self.ec2.stop_instances(InstanceIds=[ids[0]])
        time.sleep(1.5)
        self.assertEqual(self.members("g"), {i: "Healthy" for i in ids})
        self.assertEqual(self.reasons("g"), {"Terminate": ""})
        self.ec2.start_instances(InstanceIds=[ids[0]])
        self.assertEqual(self.instance(ids[0])["State"]["Name"], "running")
        self.assertEqual(self.instance(ids[0])["LaunchTime"], launched)
        self.assertEqual(self.status(ids[0])["InstanceStatus"]["Status"], "ok")
        # moto's own Standby: below MinSize is let through.
        self.asg.enter_standby(AutoScalingGroupName="g", InstanceIds=[ids[1]], ShouldDecrementDesiredCapacity=True)
        run_scenario(self.ep, "reset")
        self.assertFalse(http(self.ep, "/__realism/settings")[1]["health_checks"],
                         "--plain survives a reset")


if __name__ == "__main__":
    unittest.main()
