#!/usr/bin/env python3
"""Where the guard's CPU goes: one sweep of a bench scenario under callgrind.

Usage: profile.py [--guard PATH] [--scenario 1000] [--job notify|recover] [--out DIR]
                  [--md FILE]

Starts the bench's local AWS (bench.py's LocalAws, the same settings), seeds the
scenario, then runs the guard's first invocation twice: once plainly (CPU time from
os.wait4, as the bench measures it) and once under `valgrind --tool=callgrind`, whose
instruction counts are repeatable whatever else the machine does. It prints the
instructions per crate (from the symbols of a binary built with them: `make profile`
builds target/profiling/retirement-guard) and the top functions, writes them to
bench/profile.md, and keeps the raw callgrind file in --out for callgrind_annotate.
"""

import argparse
import collections
import datetime
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.dont_write_bytecode = True
sys.path.insert(0, str(ROOT / "bench"))

import bench  # noqa: E402 - the bench's local AWS, seeding and child runner

# A function name's crate, from a demangled Rust path or a C symbol.
CRATE = re.compile(r"^(?:<)?(?:&)?(?:mut )?([a-z_][a-z0-9_]*)::")


def crate_of(name):
    m = CRATE.match(name.strip())
    if m:
        return m.group(1)
    if name.startswith(("0x", "???")):
        return "(unknown)"
    return "(libc, allocator, kernel entry)"


def annotate(out_file):
    """(total instructions, {crate: exclusive instructions}, [(instructions, function)])."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out_file)],
        capture_output=True, text=True, check=True,
    ).stdout
    total = 0
    by_crate = collections.Counter()
    functions = []
    for line in text.splitlines():
        m = re.match(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(?:PROGRAM TOTALS|(.+?):(.+))$", line)
        if not m:
            continue
        n = int(m.group(1).replace(",", ""))
        if m.group(2) is None:
            total = n
            continue
        name = m.group(3).split(" [")[0].strip()
        by_crate[crate_of(name)] += n
        functions.append((n, name))
    return total, by_crate, functions


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--guard", default=str(ROOT / "target/profiling/retirement-guard"))
    p.add_argument("--scenario", default="1000", choices=sorted(bench.SCENARIOS))
    p.add_argument("--job", default="notify", choices=("notify", "recover"))
    p.add_argument("--out", default=str(ROOT / "target/profile"))
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--md", default=str(ROOT / "bench/profile.md"), help="the report (default bench/profile.md)")
    args = p.parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_annotate"):
        p.error("valgrind (with callgrind_annotate) is needed")
    guard = Path(args.guard).resolve()
    if not guard.exists():
        p.error(f"no binary at {guard} (make profile builds one with symbols)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = bench.SCENARIOS[args.scenario]
    with tempfile.TemporaryDirectory(prefix="rg-profile-") as tmp:
        tmp = Path(tmp)
        aws = bench.LocalAws(tmp / "aws", lifetime=3600)
        try:
            env = None
            results = {}
            for mode in ("plain", "callgrind"):
                seeded, _ = bench.seed(aws, spec)
                env = bench.guard_env(aws.endpoint, seeded["topic_arn"], args.job)
                cg = out / f"callgrind.{args.scenario}-{args.job}.out"
                argv = [str(guard), "sweep"]
                if mode == "callgrind":
                    argv = [shutil.which("valgrind"), "--tool=callgrind", f"--callgrind-out-file={cg}", *argv]
                work = tmp / mode
                work.mkdir()
                r = bench.run_child(argv, env, work, timeout=900)
                if r["rc"] != 0:
                    raise bench.BenchError(f"{mode} run exited {r['rc']}: {r['stderr'][-500:]}")
                results[mode] = r
        finally:
            aws.stop()
    total, by_crate, functions = annotate(cg)
    plain = results["plain"]
    lines = [
        "# Where the guard's CPU goes",
        "",
        f"`make profile SCENARIO={args.scenario} JOB={args.job}` (bench/profile.py), "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}, commit {bench.git('rev-parse', '--short', 'HEAD')}, "
        f"binary `{guard.relative_to(ROOT) if guard.is_relative_to(ROOT) else guard}` ({guard.stat().st_size:,} bytes).",
        "",
        f"Scenario {args.scenario} ({spec['title']}), job {args.job}, one sweep: guard CPU "
        f"**{plain['cpu']:.3f} s** (os.wait4, as the bench measures it), wall {plain['wall']:.3f} s, "
        f"peak RSS {plain['rss_kib'] / 1024:.1f} MiB. Under callgrind: **{total:,} instructions** (all threads).",
        "",
        "| share | instructions | crate (exclusive) |",
        "|---|---|---|",
    ]
    lines += [f"| {n / total:.1%} | {n:,} | {crate} |" for crate, n in by_crate.most_common() if n * 200 >= total]
    lines += ["", f"Top {args.top} functions (exclusive):", "", "| share | function |", "|---|---|"]
    lines += [f"| {n / total:.1%} | `{name[:140]}` |" for n, name in sorted(functions, reverse=True)[: args.top]]
    Path(args.md).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    summary = {"scenario": args.scenario, "job": args.job, "cpu_s": plain["cpu"], "total": total,
               "by_crate": dict(by_crate.most_common())}
    (out / f"summary.{args.scenario}-{args.job}.json").write_text(json.dumps(summary, indent=1))
    print(f"\nraw: {cg}; report: {args.md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
