#!/usr/bin/env bash
# retirement-guard demo: a local AWS (moto server behaving like AWS where the
# guard's safety lives, tests/moto/realaws.py), two Elasticsearch data nodes
# stopped by a retirement, one AWS Health event, and the guard, with its
# production defaults and POLICY=recover, repairing the group.
#
# Usage: scripts/demo.sh BINARY        (env VENV=.venv: a venv with moto + boto3)
# Called by `make demo` once the binary and the venv exist. Every wait is bounded.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BINARY   (env VENV=path to a venv with moto[server] and boto3)" >&2
    exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SCENARIO="$ROOT/tests/moto/scenario.py"
REALAWS="$ROOT/tests/moto/realaws.py"
GROUP="search-es-data"

BINARY="$1"
[[ "$BINARY" == */* ]] || BINARY="./$BINARY"
if [[ ! -x "$BINARY" ]]; then
    echo "demo: binary not found or not executable: $1" >&2
    exit 2
fi
BINARY="$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")"

VENV="${VENV:-.venv}"
if [[ ! -x "$VENV/bin/python" && "$VENV" != /* && -x "$ROOT/$VENV/bin/python" ]]; then
    VENV="$ROOT/$VENV"
fi
VENV="$(cd "$VENV" 2>/dev/null && pwd || printf '%s' "$VENV")"
PY="$VENV/bin/python"
MOTO="$VENV/bin/moto_server"
for f in "$PY" "$MOTO"; do
    if [[ ! -x "$f" ]]; then
        echo "demo: $f not found (set VENV to a venv with moto[server] and boto3)" >&2
        exit 2
    fi
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/retirement-guard-demo.XXXXXX")"
MOTO_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n "$MOTO_PID" ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
        kill "$MOTO_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$MOTO_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a command with a time limit when coreutils `timeout` is available.
bounded() {
    local secs="$1"
    shift
    if command -v timeout >/dev/null 2>&1; then
        timeout --kill-after=5 "$secs" "$@"
    else
        "$@"
    fi
}

say() { printf '%s\n' "$*"; }
rule() { say "------------------------------------------------------------------------"; }

# --------------------------------------------------------------- local AWS

PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
ENDPOINT="http://127.0.0.1:$PORT"
MOTO_LOG="$WORK/moto.log"

say "Starting a local AWS (moto server, with AWS's retirement, health-check and boot behaviour) on $ENDPOINT ..."
# Run from the work dir so nothing moto writes lands in the repository.
(cd "$WORK" && exec "$PY" "$REALAWS" -H 127.0.0.1 -p "$PORT") >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!

ready=""
for _ in $(seq 1 100); do # at most ~20 s
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then
        echo "demo: moto server exited during start-up; its log:" >&2
        cat "$MOTO_LOG" >&2
        exit 1
    fi
    if "$PY" - "$ENDPOINT" <<'EOF' 2>/dev/null; then
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1).read()
EOF
        ready=1
        break
    fi
    sleep 0.2
done
if [[ -z "$ready" ]]; then
    echo "demo: moto server did not answer on $ENDPOINT within 20 s; its log:" >&2
    cat "$MOTO_LOG" >&2
    exit 1
fi

scenario() {
    bounded 120 "$PY" "$SCENARIO" --endpoint "$ENDPOINT" "$@"
}

# Print a table of groups and instances from `scenario.py state` output.
print_table() {
    "$PY" - "$1" <<'EOF'
import json, sys

state = json.load(open(sys.argv[1]))
instances = state.get("instances", {})
groups = state.get("groups", {})
rows = []
for gname, g in sorted(groups.items()):
    for iid, m in sorted(g.get("members", {}).items()):
        inst = instances.get(iid, {})
        rows.append((gname, iid, inst.get("state", "?"), m.get("health") or "?", m.get("lifecycle") or "?"))
for iid, inst in sorted(instances.items()):
    if not inst.get("group") or inst.get("group") not in groups:
        rows.append(("(no group)", iid, inst.get("state", "?"), "-", "-"))
head = ("GROUP", "INSTANCE", "EC2 STATE", "ASG HEALTH", "LIFECYCLE")
widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
fmt = "  ".join("{:<%d}" % w for w in widths)
print("  " + fmt.format(*head))
for r in rows:
    mark = "  <-- stopped" if r[2] != "running" else ""
    print("  " + fmt.format(*r) + mark)
print()
for gname, g in sorted(groups.items()):
    susp = g.get("suspended") or []
    print(f"  {gname}: suspended processes: {', '.join(susp) if susp else 'none'}")
EOF
}

# --------------------------------------------------------------- the story

SEED="$WORK/seed.json"
scenario seed --group-name "$GROUP" >"$SEED"
read -r TOPIC_ARN STOPPED_CSV < <("$PY" - "$SEED" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["topic_arn"], ",".join(d["stopped"]))
EOF
)

cat <<EOF

========================================================================
 retirement-guard demo
========================================================================
AWS retires EC2 instances whose hardware is failing: at the deadline an
EBS-backed instance is stopped. An Auto Scaling group would normally replace
it at once - but not when its Launch/Terminate processes are suspended. Then
the instance just stays stopped, the group cannot heal, and no alarm fires.

This local AWS now holds exactly that situation, as AWS leaves it:
  * group "$GROUP": 6 Elasticsearch data nodes, processes Launch and
    Terminate suspended (by AWS, not by a person), and 2 of the 6 nodes stopped
    by their scheduled retirement (StateReason Server.ScheduledStop); the group's
    health check has already marked them Unhealthy, so resuming Terminate now
    would replace them at once;
  * group "web": 2 healthy instances, nothing suspended;
  * one standalone instance (batch-worker), stopped by a person, in no group.

BEFORE
EOF
rule
scenario state >"$WORK/before.json"
print_table "$WORK/before.json"
rule

EVENT="$WORK/health-event.json"
scenario health-event --instances "$STOPPED_CSV" >"$EVENT"

cat <<EOF

Now the AWS Health retirement event for those 2 nodes reaches the guard
(AWS_EC2_PERSISTENT_INSTANCE_RETIREMENT_SCHEDULED, shaped as EventBridge
delivers it). We hand that event to the guard with policy "recover" and every
other setting at its production default: start the nodes AWS stopped (never one
a person stopped), wait until they run with status checks OK (they boot for a
few seconds here), mark them Healthy, then resume the processes AWS suspended.

Running: POLICY=recover $(basename "$BINARY") invoke <health event>
EOF

REPORT="$WORK/report.json"
GUARD_ERR="$WORK/guard.stderr"
set +e
bounded 300 env -u AWS_PROFILE -u AWS_SESSION_TOKEN \
    AWS_ENDPOINT_URL="$ENDPOINT" \
    AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 \
    AWS_DEFAULT_REGION=us-east-1 \
    AWS_EC2_METADATA_DISABLED=true \
    NOTIFY_TOPIC_ARN="$TOPIC_ARN" \
    POLICY=recover \
    POLL_SECONDS=1 \
    "$BINARY" invoke "$EVENT" >"$REPORT" 2>"$GUARD_ERR"
GUARD_RC=$?
set -e
if [[ $GUARD_RC -ne 0 ]]; then
    echo "demo: the guard failed (exit code $GUARD_RC); its stderr:" >&2
    cat "$GUARD_ERR" >&2
    if [[ -s "$REPORT" ]]; then
        echo "demo: its stdout:" >&2
        cat "$REPORT" >&2
    fi
    exit 1
fi
if [[ "${DEMO_VERBOSE:-}" == 1 ]]; then
    say ""
    say "Guard log (stderr):"
    cat "$GUARD_ERR"
fi

say ""
say "WHAT THE GUARD REPORTED"
rule
"$PY" - "$REPORT" <<'EOF'
import json, sys

raw = open(sys.argv[1]).read()
try:
    report = json.loads(raw)
except ValueError:
    print("  (the guard's output is not JSON; shown as it is)")
    print(raw)
    print("demo: the guard's stdout must be a JSON report", file=sys.stderr)
    sys.exit(1)
if not isinstance(report, dict):
    print(json.dumps(report, indent=2))
    sys.exit(0)

LABEL_KEYS = ("kind", "type", "action", "step", "outcome", "status", "result")


def scalar(v):
    return v is None or isinstance(v, (str, int, float, bool))


def short(v, limit=90):
    if isinstance(v, list) and all(scalar(x) for x in v):
        s = ", ".join(str(x) for x in v)
    elif scalar(v):
        s = str(v)
    else:
        s = json.dumps(v, separators=(",", ":"))
    return s if len(s) <= limit else s[: limit - 3] + "..."


def describe(item):
    """One line for a finding / step / outcome, whatever its exact shape."""
    if not isinstance(item, dict):
        return short(item, 150)
    # serde's externally tagged enums: {"Variant": {...}}
    if len(item) == 1:
        (k, v), = item.items()
        if isinstance(v, dict):
            inner = describe(v)
            return f"{k}: {inner}" if inner else k
    label_key = next((k for k in LABEL_KEYS if k in item and scalar(item[k])), None)
    label = str(item[label_key]) if label_key else ""
    reason = item.get("reason")
    parts = []
    for k, v in item.items():
        if k == label_key or k == "reason" or v in (None, "", [], {}):
            continue
        if isinstance(v, dict):
            continue
        parts.append(f"{k}={short(v, 60)}")
    line = (label + "  " if label else "") + " ".join(parts)
    if reason:
        line += f"\n        because: {short(reason, 200)}"
    return line.strip()


def section(title, items):
    items = items or []
    print(f"  {title} ({len(items)}):")
    if not items:
        print("    (none)")
    for it in items:
        print("    - " + describe(it))


if "status" in report:
    print(f"  status: {short(report['status'])}")
for key in ("dry_run", "trigger", "scope"):
    if key in report and report[key] not in (None, "", [], {}):
        print(f"  {key}: {short(report[key], 150)}")
section("findings", report.get("findings"))
plan = report.get("plan")
if isinstance(plan, dict):
    section("plan steps", plan.get("steps"))
    section("skipped", plan.get("skipped"))
elif isinstance(plan, list):
    section("plan steps", plan)
section("outcomes", report.get("outcomes"))
note = report.get("notification")
if note not in (None, {}, []):
    print("  notification:")
    if isinstance(note, dict):
        for k, v in note.items():
            print(f"    {k}: {short(v, 150)}")
    else:
        print("    " + short(note, 150))
known = {"status", "dry_run", "trigger", "scope", "findings", "plan", "outcomes", "notification"}
if not known & set(report):
    print(json.dumps(report, indent=2))
EOF
rule
if [[ "${DEMO_FULL_REPORT:-}" == 1 ]]; then
    say "Full report:"
    "$PY" -m json.tool "$REPORT"
    rule
fi

say ""
say "THE NOTICE OPERATORS RECEIVED (SNS topic -> SQS queue)"
rule
scenario messages --wait-seconds 2 >"$WORK/messages.json"
"$PY" - "$WORK/messages.json" <<'EOF'
import json, sys

msgs = json.load(open(sys.argv[1]))
if not msgs:
    print("  (no notification arrived)")
for n, m in enumerate(msgs, 1):
    if len(msgs) > 1:
        print(f"  [message {n} of {len(msgs)}]")
    print(f"  Subject: {m.get('subject')}")
    attrs = m.get("attributes") or {}
    if attrs:
        print("  Attributes: " + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())))
    print()
    for line in str(m.get("message", "")).splitlines():
        print("    " + line)
    print()
EOF
rule

say ""
say "AFTER"
rule
scenario state >"$WORK/after.json"
print_table "$WORK/after.json"
scenario realism-stats >"$WORK/stats.json"
"$PY" - "$WORK/stats.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"\n  instances the groups terminated or replaced: {len(s['terminated'])} terminated, {len(s['launched'])} launched")
EOF
rule
say ""
say "Demo finished; stopping the local AWS."
