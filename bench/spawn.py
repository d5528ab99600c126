"""Run one command and report its wall time, CPU time and peak RSS (bench/bench.py).

Usage: python -I -S bench/spawn.py SPEC.json      (prints one JSON line)

SPEC: {"argv": [...], "env": {...}, "cwd": DIR, "stdout": FILE, "stderr": FILE,
       "timeout": SECONDS, "first_output": bool}

Why a separate, small process: on Linux a child's ru_maxrss starts from the RSS of the
process it was forked from (the fork copies the parent's resident pages into its
accounting, and exec keeps the high-water mark), so a tool forked straight from the
benchmark (~75 MiB with boto3 loaded) would never report less. Forked from this
interpreter (started with -I -S, standard library only) the floor is a few MiB, below
either tool's own peak; bench.py measures and reports that floor (/bin/true).
"""

import json
import os
import signal
import sys
import time


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    out_fd = os.open(spec["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err_fd = os.open(spec["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    read_fd = write_fd = None
    if spec.get("first_output"):
        read_fd, write_fd = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: its own files, then the tool
        try:
            os.chdir(spec["cwd"])
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(write_fd if write_fd is not None else out_fd, 1)
            os.dup2(err_fd, 2)
            os.execve(spec["argv"][0], spec["argv"], spec["env"])
        finally:
            os._exit(127)
    signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.setitimer(signal.ITIMER_REAL, float(spec["timeout"]))
    t_first = None
    if read_fd is not None:
        os.close(write_fd)
        for _ in range(1_000_000):  # bounded; ends at EOF
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            if t_first is None:
                t_first = time.perf_counter()
            os.write(out_fd, chunk)
        os.close(read_fd)
    _, status, usage = os.wait4(pid, 0)  # an interrupting signal: Python retries (PEP 475)
    wall = time.perf_counter() - t0
    signal.setitimer(signal.ITIMER_REAL, 0)
    print(json.dumps({
        "rc": os.waitstatus_to_exitcode(status),
        "wall": wall,
        "first_output": None if t_first is None else t_first - t0,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_kib": usage.ru_maxrss,
    }))


if __name__ == "__main__":
    main()
