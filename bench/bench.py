#!/usr/bin/env python3
"""Benchmark: retirement-guard against Cloud Custodian (c7n) on the same local AWS.

Usage: bench.py [--guard PATH] [--runs N] [--scenarios story,200,1000,2000] [--quick]
                [--out FILE] [--max-minutes M] [--state FILE] [--render]

For every scenario it starts a local AWS (tests/moto/realaws.py) and, in front of it,
the counting proxy tests/moto/faultproxy.py with no fault rules. Before every single
run the local AWS is reset and the scenario seeded again (timed, never measured); then
one tool runs through the proxy, the proxy's per-action counts before and after give
its requests, os.wait4 gives its CPU time and peak RSS, and the end state is checked
(a failed check makes the benchmark fail). The two tools alternate run by run. The
results go to bench/results.md (rewritten after every scenario). bench/README.md says
what is measured and why the local AWS is set up as it is.
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True  # no __pycache__ next to the scripts imported below
sys.path.insert(0, str(ROOT / "tests" / "moto"))

import faultproxy  # noqa: E402 - the counting proxy; its handler is reused for the trace
import scenario  # noqa: E402 - seeding and reading the local AWS (boto3)

# The local AWS of the benchmark (bench/README.md says why): suspension reasons on, so
# the seed's suspensions read as AWS's own; no health marking and no replacement, since
# c7n's resume never marks instances Healthy and would lose them (its bug #8660); no
# boot or status-check delay, so neither tool is timed waiting for a simulated boot.
BENCH_SETTINGS = {
    "suspension_reasons": True,
    "health_checks": False,
    "replace_unhealthy": False,
    "pending_seconds": 0,
    "initializing_seconds": 0,
}

SCENARIOS = {
    "story": {
        "title": "the story: 1 stranded group of 6 (2 stopped by a retirement), "
        "1 healthy group of 2, 1 standalone instance a person stopped",
        "seed": "story",
        "groups": 2, "stranded": 1, "stopped": 2,
        "jobs": ("recover", "notify", "health", "health-notify"),
        "wall_ratio": 1 / 5,
    },
    "200": {
        "title": "200 groups x 5, 20 stranded (30 stopped by a retirement)",
        "seed": "scale", "groups": 200, "size": 5, "stranded": 20, "stopped": 30,
        "jobs": ("recover", "notify", "health", "health-notify"),
        "wall_ratio": 1 / 2,
    },
    "1000": {
        "title": "1000 groups x 5, 100 stranded (150 stopped by a retirement)",
        "seed": "scale", "groups": 1000, "size": 5, "stranded": 100, "stopped": 150,
        "jobs": ("recover", "notify", "health", "health-notify"),
        "wall_ratio": 1 / 2,
    },
    "2000": {
        "title": "2000 groups x 5, 200 stranded (300 stopped by a retirement); "
        "notify sweep only, which must complete",
        "seed": "scale", "groups": 2000, "size": 5, "stranded": 200, "stopped": 300,
        "jobs": ("notify",),
        "wall_ratio": None,
    },
}
TARGETS = {"cpu": 1 / 20, "rss": 1 / 4, "reads": 1.0}
READ_PREFIXES = ("Describe", "List", "Get")

C7N_FILTER = [{"type": "value", "key": "SuspendedProcesses", "value": "not-null"}]
C7N_POLICIES = {
    "recover": {
        "policies": [{
            "name": "asg-retired-resume",
            "resource": "asg",
            "filters": C7N_FILTER,
            "actions": [{"type": "resume", "delay": 0}],
        }]
    },
    "notify": {
        "policies": [{"name": "asg-retired-notify", "resource": "asg", "filters": C7N_FILTER}]
    },
}
IGNORED_EVENT = ROOT / "events" / "aws.s3-object-created.json"
SPAWN = Path(__file__).resolve().parent / "spawn.py"
# tests/moto/faultproxy.py as it is, with TCP_NODELAY on its connections: http.server
# writes an answer's headers and body in two sends, and Nagle's algorithm with the
# client's delayed ACK then holds every answer ~40 ms, a cost per request that would be
# charged to whichever tool makes more requests (bench/README.md).
PROXY_MAIN = (
    "import sys; sys.path.insert(0, {moto!r}); import faultproxy; "
    "faultproxy.Handler.disable_nagle_algorithm = True; sys.exit(faultproxy.main(sys.argv[1:]))"
).format(moto=str(ROOT / "tests" / "moto"))
CHILD_TIMEOUT = 900.0  # seconds, one tool run (a guard invocation, a c7n run)
START_TIMEOUT = 30.0  # seconds, a server to listen
RECOVERING_TAG = "retirement-guard:recovering"


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, what):
    deadline = time.monotonic() + START_TIMEOUT
    for _ in range(int(START_TIMEOUT / 0.1) + 1):
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise BenchError(f"{what} did not listen on port {port} within {START_TIMEOUT:.0f} s")


def stop_process(proc):
    """End a server this script started (by its own Popen handle), bounded in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class LocalAws:
    """tests/moto/realaws.py on a free port, with the counting proxy in front."""

    def __init__(self, workdir, lifetime):
        self.workdir = workdir
        self.moto = self.proxy = None
        self.logs = []
        try:
            self._start(workdir, lifetime)
        except BaseException:
            self.stop()
            raise

    def _start(self, workdir, lifetime):
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.logs.append(open(workdir / "moto.log", "wb"))  # noqa: SIM115 - closed in stop()
        self.moto = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/moto/realaws.py"), "-H", "127.0.0.1", "-p", str(port)],
            cwd=workdir, stdout=self.logs[-1], stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self.endpoint = f"http://127.0.0.1:{port}"
        wait_listening(port, self.moto, "the local AWS (realaws.py)")
        rules = workdir / "rules.json"
        rules.write_text("")  # no rules: every request is forwarded and counted
        self.logs.append(open(workdir / "proxy.log", "wb"))  # noqa: SIM115 - closed in stop()
        self.proxy = subprocess.Popen(
            [sys.executable, "-c", PROXY_MAIN, "--upstream", self.endpoint,
             "--rules", str(rules), "--max-lifetime", str(int(lifetime)), "--upstream-timeout", "120"],
            cwd=workdir, stdout=subprocess.PIPE, stderr=self.logs[-1],
            stdin=subprocess.DEVNULL,
        )
        line = self._first_line(self.proxy.stdout, 10.0)
        try:
            self.proxy_port = int(json.loads(line)["port"])
        except (ValueError, KeyError, TypeError) as e:
            raise BenchError(f"faultproxy.py did not print its port: {line!r}") from e
        self.proxy_endpoint = f"http://127.0.0.1:{self.proxy_port}"
        wait_listening(self.proxy_port, self.proxy, "faultproxy.py")

    @staticmethod
    def _first_line(pipe, timeout):
        got = []
        reader = threading.Thread(target=lambda: got.append(pipe.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not got:
            raise BenchError("faultproxy.py printed nothing")
        return got[0].decode("utf-8", "replace")

    def counts(self):
        status, raw = scenario.moto_api(self.proxy_endpoint, "/__faults/stats", method="GET")
        return dict(json.loads(raw)["requests"])

    def stop(self):
        stop_process(self.proxy)
        stop_process(self.moto)
        for f in self.logs:
            f.close()


def run_child(argv, env, cwd, timeout=CHILD_TIMEOUT, first_output=False):
    """Run one tool process through bench/spawn.py: wall time around the tool, CPU time
    and peak RSS from its os.wait4 (spawn.py says why not straight from here)."""
    out_path, err_path, spec_path = cwd / "stdout", cwd / "stderr", cwd / "spawn.json"
    spec_path.write_text(json.dumps({
        "argv": [str(a) for a in argv], "env": env, "cwd": str(cwd), "stdout": str(out_path),
        "stderr": str(err_path), "timeout": timeout, "first_output": first_output,
    }))
    try:
        done = subprocess.run([sys.executable, "-I", "-S", str(SPAWN), str(spec_path)],
                              capture_output=True, text=True, timeout=timeout + 60)
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError) as e:
        raise BenchError(f"spawn.py failed for {argv[0]}: {e}") from e
    result["stdout"] = out_path.read_text("utf-8", "replace")
    result["stderr"] = err_path.read_text("utf-8", "replace")
    result["timed_out"] = result["rc"] == -signal.SIGKILL
    return result


def rss_floor(workdir):
    """The peak RSS spawn.py reports for /bin/true: the floor of every RSS figure."""
    workdir.mkdir(parents=True, exist_ok=True)
    true = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
    return max(run_child([true], {}, workdir, timeout=10)["rss_kib"] for _ in range(3))


def diff_counts(before, after):
    out = {}
    for action, n in after.items():
        d = n - before.get(action, 0)
        if d:
            out[action] = d
    return dict(sorted(out.items()))


def is_read(action):
    return action.startswith(READ_PREFIXES)


# ---------------------------------------------------------------- the tools


def guard_env(endpoint, topic, policy):
    """The environment tests/integration/common/mod.rs gives the binary (Moto::guard), nothing else."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "NOTIFY_TOPIC_ARN": topic,
        "POLL_SECONDS": "1",
        "POLICY": policy,
    }


def c7n_env(endpoint, home):
    """boto3 honours AWS_ENDPOINT_URL and c7n sets no endpoint of its own (it does only
    for STS with --assume and for SQS); HOME and the config files point into the run's
    directory so that no profile, credential file or cache of this machine is read."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def custodian_path():
    return Path(sys.executable).parent / "custodian"


def c7n_argv(policy_file, outdir):
    return [str(custodian_path()), "run", "-s", str(outdir), "-r", "us-east-1",
            "--cache-period", "0", str(policy_file)]


def bound_reached(report):
    """Did this invocation stop at MAX_STARTS_PER_INVOCATION with starts left over?"""
    skipped = (report.get("plan") or {}).get("skipped") or []
    if isinstance(skipped, list):
        return any("MAX_STARTS_PER_INVOCATION" in str(s.get("reason", "")) for s in skipped
                   if isinstance(s, dict))
    return "MAX_STARTS_PER_INVOCATION" in json.dumps(skipped)


# ---------------------------------------------------------------- seeding and checks


def seed(aws, spec):
    """Reset, apply the bench settings, seed; returns the normalised seed and seconds."""
    t0 = time.perf_counter()
    ep = aws.endpoint
    scenario.cmd_reset(argparse.Namespace(endpoint=ep))
    scenario.realism_api(ep, "/__realism/settings", BENCH_SETTINGS)
    if spec["seed"] == "story":
        s = scenario.cmd_seed(argparse.Namespace(endpoint=ep, group_name="es-data",
                                                 stopped_by="retirement", suspended_by="aws"))
        out = {
            "topic_arn": s["topic_arn"],
            "groups": {k: sorted(v) for k, v in s["groups"].items()},
            "stranded": ["es-data"],
            "stopped": sorted(s["stopped"]),
            "outside": [s["standalone"]],
        }
    else:
        s = scenario.cmd_seed_scale(argparse.Namespace(
            endpoint=ep, groups=spec["groups"], size=spec["size"], stranded=spec["stranded"],
            stopped=spec["stopped"], prefix="bench"))
        out = {"topic_arn": s["topic_arn"], "groups": s["groups"], "stranded": s["stranded"],
               "stopped": s["stopped"], "outside": []}
    if len(out["stranded"]) != spec["stranded"] or len(out["stopped"]) != spec["stopped"]:
        raise BenchError(f"seeded {len(out['stranded'])} stranded groups / "
                         f"{len(out['stopped'])} stopped, not {spec['stranded']} / {spec['stopped']}")
    out["member_of"] = {i: g for g, ids in out["groups"].items() for i in ids}
    return out, time.perf_counter() - t0


def world(aws):
    """Groups (members, suspended processes, tags), the ids of instances not running,
    and what the realism layer did itself; read straight from the local AWS."""
    ep = aws.endpoint
    asg, ec2 = scenario.client(ep, "autoscaling"), scenario.client(ep, "ec2")
    groups = {}
    for g in scenario.all_groups(asg):
        groups[g["AutoScalingGroupName"]] = {
            "members": sorted(i["InstanceId"] for i in g.get("Instances", [])),
            "suspended": sorted(p["ProcessName"] for p in g.get("SuspendedProcesses", [])),
            "tags": {t["Key"]: t.get("Value", "") for t in g.get("Tags", [])},
        }
    not_running = {}
    states = ["pending", "stopping", "stopped", "shutting-down", "terminated"]
    for res in scenario.paginate(ec2, "describe_instances", "Reservations",
                                 Filters=[{"Name": "instance-state-name", "Values": states}]):
        for inst in res.get("Instances", []):
            not_running[inst["InstanceId"]] = inst["State"]["Name"]
    stats = scenario.realism_api(ep, "/__realism/stats")
    return groups, not_running, stats


def check_world(aws, seeded, repaired):
    """Problems with the end state: `repaired` groups fully running with nothing
    suspended, every other group exactly as seeded, nothing replaced or terminated."""
    groups, not_running, stats = world(aws)
    problems, notes = [], []
    stopped = set(seeded["stopped"])
    extra = sorted(set(groups) - set(seeded["groups"]))
    if extra:
        problems.append(f"groups not seeded: {extra[:5]}")
    for name, ids in seeded["groups"].items():
        g = groups.get(name)
        if g is None:
            problems.append(f"{name}: gone")
            continue
        if g["members"] != ids:
            problems.append(f"{name}: members changed ({len(ids)} seeded, {len(g['members'])} now; "
                            f"new {sorted(set(g['members']) - set(ids))[:3]})")
        down = sorted(i for i in g["members"] if i in not_running)
        if name in repaired:
            if down:
                problems.append(f"{name}: not running: {', '.join(f'{i} {not_running[i]}' for i in down[:5])}")
            if g["suspended"]:
                problems.append(f"{name}: still suspended: {','.join(g['suspended'])}")
            if RECOVERING_TAG in g["tags"]:
                notes.append(f"{name}: {RECOVERING_TAG} tag left")
        else:
            want_down = sorted(i for i in ids if i in stopped)
            if down != want_down:
                problems.append(f"{name}: not repaired here, yet not-running members are {down[:5]}, "
                                f"seeded {want_down[:5]}")
            want_suspended = ["Launch", "Terminate"] if name in seeded["stranded"] else []
            if g["suspended"] != want_suspended:
                problems.append(f"{name}: suspended {g['suspended']}, seeded {want_suspended}")
            if set(g["tags"]) != {"Name"}:
                problems.append(f"{name}: tags changed: {sorted(g['tags'])}")
    for iid in seeded["outside"]:
        if not_running.get(iid) != "stopped":
            problems.append(f"{iid} (outside any group, stopped by a person): "
                            f"{not_running.get(iid, 'running')}")
    if stats.get("terminated") or stats.get("launched"):
        problems.append(f"the group replaced members: terminated {stats.get('terminated')[:5]}, "
                        f"launched {stats.get('launched')[:5]}")
    return problems, notes


# ---------------------------------------------------------------- one run


def run_guard(aws, seeded, job, workdir, event=None, endpoint=None):
    policy = "notify" if job in ("notify", "health-notify") else "recover"
    env = guard_env(endpoint or aws.proxy_endpoint, seeded["topic_arn"], policy)
    argv = [str(ARGS.guard), "invoke", str(event)] if event else [str(ARGS.guard), "sweep"]
    # Enough invocations for every start under the bound, and a few more; never unbounded.
    cap = min(60, math.ceil(len(seeded["stopped"]) / 10) + 5) if job == "recover" else 1
    invocations, problems = [], []
    for _ in range(cap):
        r = run_child(argv, env, workdir)
        invocations.append(r)
        if r["rc"] != 0:
            problems.append(f"guard exited {r['rc']}: {r['stderr'].strip().splitlines()[-1:]}")
            break
        try:
            report = json.loads(r["stdout"])
        except ValueError:
            problems.append("guard printed no JSON report")
            break
        r["report"] = report
        if job == "notify":
            found = [f for f in report.get("findings", []) if f.get("kind") == "StrandedInstance"]
            if "findings" in report and len(found) != len(seeded["stopped"]):
                problems.append(f"guard reported {len(found)} stranded instances, "
                                f"{len(seeded['stopped'])} seeded")
        if not bound_reached(report):
            break
    else:
        problems.append(f"MAX_STARTS_PER_INVOCATION still reached after {cap} invocations")
    return invocations, problems


def run_c7n(aws, seeded, job, workdir):
    policy_file = workdir / f"c7n-{job}.json"  # JSON is YAML: c7n reads it as a policy file
    policy_file.write_text(json.dumps(C7N_POLICIES[job], indent=2))
    outdir = workdir / "c7n-out"
    r = run_child(c7n_argv(policy_file, outdir), c7n_env(aws.proxy_endpoint, workdir), workdir)
    problems = []
    if r["rc"] != 0:
        problems.append(f"c7n exited {r['rc']}: {r['stderr'].strip().splitlines()[-1:]}")
    name = C7N_POLICIES[job]["policies"][0]["name"]
    try:
        found = json.loads((outdir / name / "resources.json").read_text())
        names = sorted(g["AutoScalingGroupName"] for g in found)
        if names != sorted(seeded["stranded"]):
            problems.append(f"c7n's filter selected {len(names)} groups, "
                            f"{len(seeded['stranded'])} are stranded")
    except (OSError, ValueError, KeyError, TypeError) as e:
        problems.append(f"c7n wrote no readable resources.json: {e}")
    errors = [ln for ln in r["stderr"].splitlines() if ":ERROR " in ln or "Traceback" in ln]
    if errors:
        problems.append(f"c7n logged errors: {errors[:2]}")
    return [r], problems


def one_run(aws, spec, tool, job, workdir, health_instances=None, trace=False):
    workdir.mkdir(parents=True, exist_ok=True)
    seeded, seed_s = seed(aws, spec)
    event = None
    repaired = set()
    if job == "recover":
        repaired = set(seeded["stranded"])
    elif job in ("health", "health-notify"):
        ids = health_instances(seeded)
        event_doc = scenario.cmd_health_event(argparse.Namespace(
            instances=",".join(ids), account=scenario.ACCOUNT, region=scenario.REGION))
        event = workdir / "health-event.json"
        event.write_text(json.dumps(event_doc))
        repaired = {seeded["member_of"][ids[0]]} if job == "health" else set()
    tracer = Tracer(aws.proxy_endpoint) if trace else None
    before = aws.counts()
    try:
        if tool == "guard":
            invocations, problems = run_guard(
                aws, seeded, job, workdir, event, tracer.endpoint if tracer else None)
        else:
            invocations, problems = run_c7n(aws, seeded, job, workdir)
    finally:
        if tracer:
            tracer.stop()
    requests = diff_counts(before, aws.counts())
    world_problems, notes = check_world(aws, seeded, repaired)
    problems += world_problems
    writes = {a: n for a, n in requests.items() if not is_read(a)}
    if job in ("notify", "health-notify"):
        allowed = {"Publish"} if tool == "guard" else set()
        if set(writes) - allowed:
            problems.append(f"notify-only run made writes: {writes}")
    result = {
        "tool": tool, "job": job, "seed_seconds": seed_s,
        "invocations": len(invocations),
        "wall": sum(r["wall"] for r in invocations),
        "first_wall": invocations[0]["wall"],
        "cpu": sum(r["cpu"] for r in invocations),
        "rss_kib": max(r["rss_kib"] for r in invocations),
        "requests": requests,
        "reads": sum(n for a, n in requests.items() if is_read(a)),
        "writes": sum(writes.values()),
        "problems": problems,
        "notes": notes,
    }
    if tracer:
        result["trace"] = tracer.summary()
    return result


# ---------------------------------------------------------------- trace (health event, notify sweep)


class TraceHandler(faultproxy.Handler):
    """faultproxy's handler, forwarding every request and recording when it ran."""

    disable_nagle_algorithm = True  # as the counting proxy (PROXY_MAIN)

    def _handle(self):
        body = self._read_body()
        _, action = faultproxy.request_shape(self.headers, body)
        t0 = time.perf_counter()
        try:
            status, headers, data = self._forward(body)
        except OSError as e:
            self.close_connection = True
            self._send(502, {"Content-Type": "text/plain"}, f"trace: {e}\n".encode())
            return
        t1 = time.perf_counter()
        with self.server.lock:
            self.server.events.append((t0, t1, action))
        self._send(status, headers, data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


class Tracer:
    """A pass-through in front of the counting proxy, for the one traced run of a job."""

    def __init__(self, upstream):
        self.server = faultproxy.Server(("127.0.0.1", 0), TraceHandler)
        self.server.upstream = urllib.parse.urlsplit(upstream)
        self.server.upstream_timeout = 120.0
        self.server.verbose = False
        self.server.lock = threading.Lock()
        self.server.events = []
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def summary(self):
        """The longest chain of requests each starting after the previous one ended:
        the round trips on the critical path (requests that overlap count once)."""
        ev = sorted(self.server.events, key=lambda e: e[1])
        best, prev = [1] * len(ev), [-1] * len(ev)
        for i, (s_i, _, _) in enumerate(ev):
            for j in range(i):
                if ev[j][1] <= s_i and best[j] + 1 > best[i]:
                    best[i], prev[i] = best[j] + 1, j
        chain = []
        i = max(range(len(ev)), key=lambda k: best[k]) if ev else -1
        while i >= 0:
            chain.append(i)
            i = prev[i]
        chain.reverse()
        busy, end = 0.0, None  # time covered by at least one request in flight
        for s_, e_, _ in sorted(ev):
            if end is None or s_ > end:
                busy, end = busy + (e_ - s_), e_
            elif e_ > end:
                busy, end = busy + (e_ - end), e_
        slowest = {}
        for s_, e_, action in ev:
            slowest[action] = max(slowest.get(action, 0.0), round((e_ - s_) * 1000, 1))
        return {
            "slowest_ms": slowest,
            "busy_ms": round(busy * 1000, 1),
            "requests": len(ev),
            "critical_path": [ev[i][2] for i in chain],
            "critical_path_ms": round(sum(ev[i][1] - ev[i][0] for i in chain) * 1000, 1),
            "span_ms": round((ev[-1][1] - min(e[0] for e in ev)) * 1000, 1) if ev else 0.0,
        }


# ---------------------------------------------------------------- summaries


def fmt_s(x):
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def med_range(xs, fmt):
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def ops_text(runs):
    ops = sorted({a for r in runs for a in r["requests"]}, key=lambda a: (not is_read(a), a))
    parts = []
    for a in ops:
        vals = [r["requests"].get(a, 0) for r in runs]
        lo, hi = min(vals), max(vals)
        parts.append(f"{a} {lo}" if lo == hi else f"{a} {statistics.median(vals):g} ({lo}–{hi})")
    return ", ".join(parts) or "none"


def agg(runs):
    return {
        "wall": statistics.median(r["wall"] for r in runs),
        "cpu": statistics.median(r["cpu"] for r in runs),
        "rss": statistics.median(r["rss_kib"] for r in runs),
        "reads": statistics.median(r["reads"] for r in runs),
        "writes": statistics.median(r["writes"] for r in runs),
    }


def ratio_line(what, g, c, target, fmt):
    if c <= 0:
        return f"| {what} | {fmt(g)} | {fmt(c)} | – | ≤ {target:.3g} | n/a |"
    r = g / c
    verdict = "PASS" if r <= target else "MISS"
    return f"| {what} | {fmt(g)} | {fmt(c)} | {r:.3f} | ≤ {target:.3g} | {verdict} |"


# ---------------------------------------------------------------- results.md


def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), {mem} memory, {platform.system()} {platform.release()}"


def elf_sections(path):
    """Section names of a 64-bit ELF file, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:
                return None
            e = "<" if head[5] == 1 else ">"
            shoff = struct.unpack_from(e + "Q", head, 0x28)[0]
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", head, 0x3A)
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            hdr = [struct.unpack_from(e + "IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
            f.seek(hdr[shstrndx][4])
            names = f.read(hdr[shstrndx][5])
            return [names[h[0]:names.index(b"\0", h[0])].decode("ascii", "replace") for h in hdr]
    except (OSError, struct.error, ValueError, IndexError):
        return None


def build_kind(path):
    sections = elf_sections(path) or []
    if any(s.startswith(".debug_") for s in sections):
        return "debug"
    if ".symtab" in sections:
        return "unstripped"
    return "release (stripped)" if sections else "unknown"


def git(*args):
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def versions():
    cargo = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^version\s*=\s*"([^"]+)"', cargo, re.M)
    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock")
    out = {
        "retirement-guard": f"{m.group(1) if m else '?'} (git {rev}"
        + (", with uncommitted changes in src/)" if dirty else ")"),
        "python": platform.python_version(),
    }
    for pkg in ("c7n", "moto", "boto3", "botocore"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def write_results(state):
    g = Path(ARGS.guard)
    kind = build_kind(g)
    lines = ["# retirement-guard vs Cloud Custodian: benchmark results", ""]
    if kind != "release (stripped)":
        lines += [f"> **These figures come from a {kind} build of the guard** "
                  f"(`{g}`), not from the release binary `make bench` builds: "
                  "the guard's CPU time, RSS, start-up and binary size are not its release figures.", ""]
    if ARGS.note:
        lines += [f"> {ARGS.note}", ""]
    if state.get("stopped_early"):
        lines += [f"> **Stopped early:** {state['stopped_early']}", ""]
    lines += ["Written by `bench/bench.py` (`make bench`); what it measures and why the local AWS",
              "is set up as it is: [README.md](README.md). Where the guard's CPU goes (instructions by",
              "crate and function under callgrind, `make profile`): [profile.md](profile.md).", ""]
    # Kept in the state when measured, so that --render writes them as they were.
    v = state.setdefault("versions", versions())
    finished = state.setdefault("finished", f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    lines += [
        f"- date: {state['date']} (finished {finished})",
        f"- machine: {machine()}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- guard binary: `{g}`, {kind} build, {g.stat().st_size:,} bytes, modified "
        f"{datetime.datetime.fromtimestamp(g.stat().st_mtime, datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
        " (the versions above are the working tree's when the benchmark ran)",
        f"- harness: `{' '.join(shlex.quote(a) for a in state['argv'])}`",
        f"- runs per tool and job: {state['runs_text']}; tools alternate run by run "
        "(guard first in even runs, c7n first in odd ones); every run on a freshly reset and seeded local AWS",
        "",
        "## Local AWS",
        "",
        "`tests/moto/realaws.py` (moto "
        f"{v['moto']}) with realism settings `{json.dumps(BENCH_SETTINGS)}`, reset (`POST /moto-api/reset`)",
        "and seeded before every run (the story: `scenario.py seed`; the others: `scenario.py seed-scale`).",
        "Retired members are stopped by `POST /__realism/retire` (`Server.ScheduledStop`), Launch and",
        "Terminate suspended by `POST /__realism/suspend` (a reason that is AWS's), so the guard's production",
        "defaults apply. Health marking and replacement are **off** because c7n's `resume` never marks the",
        "started members Healthy: on real AWS (and on this local AWS with them on) the group would replace",
        "them once Terminate runs again — c7n's bug #8660. With them off c7n can reach the end state; the",
        "guard marks Healthy only the members it started that read Unhealthy, so here it has nothing to mark;",
        "any SetInstanceHealth it sends is counted below like every other request. Both tools talk to the local",
        "AWS through `tests/moto/faultproxy.py` with no rules, whose per-action counts are the request counts",
        "(run with TCP_NODELAY on its connections: without, Nagle's algorithm and delayed ACKs add about",
        "40 ms to every answer, which would charge the tool that makes more requests; bench/README.md).",
        "",
        "Wall time is taken around the tool's process (fork to exit), CPU time (user + system) and peak RSS",
        "from its `os.wait4`, both through `bench/spawn.py`, a small process that forks the tool so that the",
        f"RSS a fork inherits stays below either tool's own peak: its floor (`/bin/true`) is {mib(state['rss_floor'])}.",
        "The local AWS's own CPU time is neither tool's and is not counted.",
        "",
        "## Commands",
        "",
        "```sh",
        "# guard (recover; notify: POLICY=notify; health event: `invoke EVENT.json` instead of `sweep`)",
        "env -i PATH=$PATH AWS_ENDPOINT_URL=$PROXY AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\",
        "  AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true NOTIFY_TOPIC_ARN=$TOPIC POLL_SECONDS=1 \\",
        f"  POLICY=recover {g} sweep      # again while the report skips starts at MAX_STARTS_PER_INVOCATION",
        "# c7n (HOME, AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE point into the run's directory)",
        "env -i PATH=$PATH HOME=$RUN AWS_ENDPOINT_URL=$PROXY AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \\",
        "  AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \\",
        f"  {custodian_path()} run -s $RUN/c7n-out -r us-east-1 --cache-period 0 POLICY_FILE",
        "```",
        "",
        "c7n policies (`--cache-period 0` turns its resource cache off; the notify-only policy is the same",
        "filter with no action: a filter run that makes no AWS write — c7n's own `notify` action would need",
        "c7n-mailer and an SQS queue, a write):",
        "",
        "```yaml",
    ]
    for job, doc in C7N_POLICIES.items():
        lines.append(f"# {job}")
        lines += to_yaml(doc)
    lines += ["```", ""]
    lines += ["## Guard only", ""]
    if state.get("ignored"):
        ig = state["ignored"]
        lines += [
            f"- binary size: {g.stat().st_size:,} bytes ({kind})",
            arm64_line(),
            f"- an ignored event (`{IGNORED_EVENT.relative_to(ROOT)}`, `invoke`), {len(ig['runs'])} runs: "
            f"process start to the report on stdout {med_range([r['first_output'] for r in ig['runs']], ms)}, "
            f"to exit {med_range([r['wall'] for r in ig['runs']], ms)}; CPU "
            f"{ms(statistics.median(r['cpu'] for r in ig['runs']))}, peak RSS "
            f"{mib(statistics.median(r['rss_kib'] for r in ig['runs']))}; AWS requests: {ig['requests'] or 'none'}",
            "",
        ]
    for key, sc in state["scenarios"].items():
        lines += scenario_section(key, sc)
    lines += ["## Failures", ""]
    fails = [(k, r) for k, sc in state["scenarios"].items() for r in sc["runs"] if r["problems"]]
    fails += [(k, {"job": "traced runs", "tool": "guard", "problems": sc["traced_problems"]})
              for k, sc in state["scenarios"].items() if sc.get("traced_problems")]
    if not fails:
        lines += ["None: every run reached its expected end state.", ""]
    for k, r in fails:
        lines.append(f"- {k} / {r['job']} / {r['tool']}: " + "; ".join(r["problems"][:5]))
    if fails:
        lines.append("")
    Path(ARGS.out).write_text("\n".join(lines) + "\n")


def ms(x):
    return f"{x * 1000:.1f} ms"


def to_yaml(doc, indent=0):
    """Just enough YAML for the policies (dicts, lists, scalars)."""
    pad = "  " * indent
    out = []
    if isinstance(doc, dict):
        for k, val in doc.items():
            if isinstance(val, (dict, list)):
                out.append(f"{pad}{k}:")
                out += to_yaml(val, indent + 1)
            else:
                out.append(f"{pad}{k}: {json.dumps(val)}")
    else:
        for item in doc:
            sub = to_yaml(item, indent + 1)
            out.append(f"{pad}- {sub[0].strip()}")
            out += sub[1:]
    return out


def scenario_section(key, sc):
    spec = SCENARIOS[key]
    seeds = [r["seed_seconds"] for r in sc["runs"]]
    load = sc.get("load") or []
    lines = [f"## Scenario {key}: {spec['title']}", "",
             f"Seeding (reset + seed, not measured): {med_range(seeds, fmt_s)} per run, {len(seeds)} seeds; "
             f"the whole scenario took {fmt_s(sc.get('elapsed', 0.0))}"
             + (f"; 1-minute load average {min(load):.2f}–{max(load):.2f} on {os.cpu_count()} CPUs "
                "(sampled before every run; above 1 means other work competed with the runs)" if load else "")
             + ".", ""]
    for job in spec["jobs"]:
        runs = {t: [r for r in sc["runs"] if r["job"] == job and r["tool"] == t] for t in ("guard", "c7n")}
        if not runs["guard"] and not runs["c7n"]:
            continue
        name = {"recover": "recover", "notify": "notify-only sweep",
                "health": "one AWS Health event for 2 instances (guard only, POLICY=recover)",
                "health-notify": "one AWS Health event for 2 instances (guard only, POLICY=notify)"}[job]
        lines += [f"### {key} / {name}", "",
                  "| tool | runs | wall median (min–max) | CPU | peak RSS | reads | writes | invocations | requests by operation |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for tool in ("guard", "c7n"):
            rs = runs[tool]
            if not rs:
                continue
            bad = sum(1 for r in rs if r["problems"])
            inv = sorted({r["invocations"] for r in rs})
            lines.append(
                f"| {tool}{' (**' + str(bad) + ' failed**)' if bad else ''} | {len(rs)} | "
                f"{med_range([r['wall'] for r in rs], fmt_s)} | {fmt_s(agg(rs)['cpu'])} | "
                f"{mib(agg(rs)['rss'])} | {agg(rs)['reads']:g} | {agg(rs)['writes']:g} | "
                f"{'–'.join(map(str, inv)) if len(inv) <= 2 else inv} | {ops_text(rs)} |")
        lines.append("")
        g_runs = runs["guard"]
        if any(r["invocations"] > 1 for r in g_runs):
            lines += [f"The default MAX_STARTS_PER_INVOCATION (10) is below the {spec['stopped']} starts "
                      f"needed: the guard needs {'/'.join(str(r['invocations']) for r in g_runs)} invocations "
                      "(one after another, each a fresh process); wall, CPU and requests above are their "
                      "totals, peak RSS their maximum. The first invocation alone took "
                      f"{med_range([r['first_wall'] for r in g_runs], fmt_s)}.", ""]
        notes = sorted({n for r in g_runs + runs["c7n"] for n in r.get("notes", [])})
        if notes:
            lines += ["Notes: " + "; ".join(notes[:5]) + (" …" if len(notes) > 5 else ""), ""]
        traces = [r["trace"] for r in g_runs if r.get("trace")] + sc.get("traces", {}).get(job, [])
        for t in traces:
            lines += [f"Traced run ({t['requests']} requests, an extra run not in the table): "
                      f"{len(t['critical_path'])} round trips on the critical path — "
                      f"{' → '.join(t['critical_path'])} — {t['critical_path_ms']} ms in those requests, "
                      f"{t['busy_ms']} ms with any request in flight, of {t['span_ms']} ms from the "
                      "first request to the last answer."
                      + (" Slowest single request (one page) per operation: "
                         + ", ".join(f"{a} {ms:g} ms" for a, ms in sorted(t["slowest_ms"].items()))
                         + "; the SDK's attempt timeout is 10 s." if t.get("slowest_ms") else ""), ""]
            if job == "health-notify":
                n = len(t["critical_path"])
                lines += [f"Target: the notify-only Health event at 3 sequential round trips "
                          f"(DescribeInstances → DescribeAutoScalingGroups → Publish): {n}, "
                          f"{'PASS' if n <= 3 else 'MISS'}.", ""]
        if g_runs and runs["c7n"]:
            g, c = agg(g_runs), agg(runs["c7n"])
            lines += ["| target (guard / c7n) | guard | c7n | ratio | target | verdict |", "|---|---|---|---|---|---|"]
            if spec["wall_ratio"]:
                lines.append(ratio_line("wall time, median", g["wall"], c["wall"], spec["wall_ratio"], fmt_s))
            else:
                done = not any(r["problems"] for r in g_runs + runs["c7n"])
                lines.append(f"| wall time, median | {fmt_s(g['wall'])} | {fmt_s(c['wall'])} | "
                             f"{g['wall'] / c['wall']:.3f} | none; both must complete | "
                             f"{'PASS' if done else 'FAIL'} |")
            lines.append(ratio_line("CPU time, median", g["cpu"], c["cpu"], TARGETS["cpu"], fmt_s))
            lines.append(ratio_line("peak RSS, median", g["rss"], c["rss"], TARGETS["rss"], mib))
            lines.append(ratio_line("read requests, median", g["reads"], c["reads"], TARGETS["reads"],
                                    lambda x: f"{x:g}"))
            lines.append("")
    return lines


# ---------------------------------------------------------------- main


def health_instances(seeded):
    """The stopped members of the first stranded group (two of them where it has two)."""
    group = seeded["stranded"][0]
    ids = [i for i in seeded["groups"][group] if i in set(seeded["stopped"])]
    return ids[:2]


def runs_for(key):
    if key in ("story", "200"):
        return ARGS.runs
    if key == "1000":
        return min(ARGS.runs, 2) if ARGS.quick else ARGS.runs
    return 1 if ARGS.quick else min(ARGS.runs, 3)  # 2000


def arm64_line():
    """The arm64 Lambda artefact `make package` built, with that build's time, if any."""
    art = ROOT / "target/lambda/retirement-guard/bootstrap"
    if not art.exists():
        return "- arm64 Lambda artefact: not built (`make package` builds it)"
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(art.stat().st_mtime))
    took = ROOT / "target/lambda/retirement-guard/build-seconds"
    build = ""
    if took.exists():
        secs, _, kind = took.read_text().strip().partition(" ")
        build = f"; that `make package` ({kind or 'unknown'} build) took {int(secs) // 60} min {int(secs) % 60} s"
    return (f"- arm64 Lambda artefact (`make package`, `cargo lambda build --release --arm64`): "
            f"`target/lambda/retirement-guard/bootstrap`, {art.stat().st_size:,} bytes, built {when}{build}")


def bench_ignored(aws, workdir, n):
    env = guard_env(aws.proxy_endpoint, "arn:aws:sns:us-east-1:123456789012:retirement-guard-notices",
                    "recover")
    before = aws.counts()
    runs = []
    for i in range(n):
        d = workdir / f"ignored-{i}"
        d.mkdir(parents=True, exist_ok=True)
        r = run_child([str(ARGS.guard), "invoke", str(IGNORED_EVENT)], env, d, timeout=60,
                      first_output=True)
        if r["rc"] != 0 or '"ignored"' not in r["stdout"]:
            raise BenchError(f"the ignored event was not reported as ignored: rc {r['rc']}, {r['stdout'][:200]}")
        runs.append(r)
    return {"runs": runs, "requests": diff_counts(before, aws.counts())}


def main(argv=None):
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--guard", default=str(ROOT / "target/release/retirement-guard"),
                   help="the retirement-guard binary (default: target/release/retirement-guard)")
    p.add_argument("--runs", type=int, default=5, help="runs per tool and job (default 5)")
    p.add_argument("--scenarios", default="story,200,1000,2000",
                   help="comma list of story,200,1000,2000 (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="fewer runs for the big scenarios (1000: 2, 2000: 1)")
    p.add_argument("--out", default=str(ROOT / "bench/results.md"))
    p.add_argument("--note", default="", help="a line to put at the top of results.md")
    p.add_argument("--max-minutes", type=float, default=240.0,
                   help="stop starting new runs after this long (default 240)")
    p.add_argument("--state", default=str(ROOT / "target/bench-state.json"),
                   help="where the measurements are kept as JSON (default: target/bench-state.json)")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: write --out again from --state (e.g. after `make package`)")
    ARGS = p.parse_args(argv)
    ARGS.guard = Path(ARGS.guard).resolve()
    if ARGS.render:
        write_results(json.loads(Path(ARGS.state).read_text()))
        log(f"wrote {ARGS.out} from {ARGS.state}")
        return 0
    keys = [k.strip() for k in ARGS.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown or not keys:
        p.error(f"unknown scenarios {unknown}; choose from {','.join(SCENARIOS)}")
    if not 1 <= ARGS.runs <= 50:
        p.error("--runs must be 1..50")
    if not os.access(ARGS.guard, os.X_OK):
        p.error(f"no executable guard binary at {ARGS.guard} (cargo build --release)")
    if not custodian_path().exists():
        p.error(f"no c7n in this virtualenv ({custodian_path()}): pip install c7n (make bench does)")

    deadline = time.monotonic() + ARGS.max_minutes * 60
    state = {
        "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
        "argv": [Path(sys.executable).name, "bench/bench.py", *sys.argv[1:]] if argv is None else argv,
        "runs_text": ", ".join(f"{k}: {runs_for(k)}" for k in keys),
        "scenarios": {},
    }
    failed = False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        tmp = Path(tmp)
        state["rss_floor"] = rss_floor(tmp / "floor")
        for key in keys:
            spec = SCENARIOS[key]
            n = runs_for(key)
            started = time.monotonic()
            sc = state["scenarios"][key] = {"runs": [], "traces": {}}
            log(f"scenario {key}: {spec['title']}; {n} runs per tool and job")
            aws = LocalAws(tmp / key, lifetime=max(60, deadline - time.monotonic() + 600))
            try:
                if "ignored" not in state:
                    state["ignored"] = bench_ignored(aws, tmp / "ignored", max(10, 2 * ARGS.runs))
                for run in range(n):
                    for job in spec["jobs"]:
                        tools = ("guard",) if job.startswith("health") else (
                            ("guard", "c7n") if run % 2 == 0 else ("c7n", "guard"))
                        for tool in tools:
                            if time.monotonic() > deadline:
                                state["stopped_early"] = f"--max-minutes {ARGS.max_minutes:g} reached"
                                raise TimeoutError
                            sc.setdefault("load", []).append(os.getloadavg()[0])
                            r = one_run(aws, spec, tool, job, tmp / key / f"{job}-{tool}-{run}",
                                        health_instances)
                            sc["runs"].append(r)
                            log(f"  {key} {job:7} {tool:5} run {run + 1}/{n}: wall {r['wall']:.3f} s "
                                f"(x{r['invocations']}), cpu {r['cpu']:.3f} s, rss {r['rss_kib']} KiB, "
                                f"reads {r['reads']}, writes {r['writes']}, seed {r['seed_seconds']:.1f} s"
                                + (f" PROBLEMS: {r['problems']}" if r["problems"] else ""))
                            failed |= bool(r["problems"])
                # One traced run per guard-only job, and of the notify sweep: its slowest page.
                for job in (j for j in spec["jobs"] if j.startswith("health") or j == "notify"):
                    r = one_run(aws, spec, "guard", job, tmp / key / f"{job}-traced",
                                health_instances, trace=True)
                    failed |= bool(r["problems"])
                    sc.setdefault("traced_problems", []).extend(r["problems"])
                    sc["traces"][job] = [r["trace"]]
            except TimeoutError:
                log(state["stopped_early"])
            finally:
                aws.stop()
                sc["elapsed"] = time.monotonic() - started
                state.pop("finished", None)
                state.pop("versions", None)
                write_results(state)
                Path(ARGS.state).parent.mkdir(parents=True, exist_ok=True)
                Path(ARGS.state).write_text(json.dumps(state, default=str))
            if state.get("stopped_early"):
                break
    log(f"wrote {ARGS.out}")
    if failed:
        log("FAILED: a run did not reach its expected end state (see the Failures section)")
        return 1
    return 1 if state.get("stopped_early") else 0


ARGS = None

if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench.py: {e}", file=sys.stderr)
        sys.exit(1)
