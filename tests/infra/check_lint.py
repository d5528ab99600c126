"""cfn-lint and checkov on infra/template.yaml, offline.

cfn-lint: errors, warnings and informational findings (--include-checks I) must all be
zero; a cfn-lint suppression in the template must carry a `# reason` on its line.
checkov (--skip-download, CloudFormation framework): no failed check, no parsing error;
each inline skip (Metadata checkov.skip) must give its reason in `comment`.
Both tools run from the same virtualenv as this script.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from cfn import ROOT, TEMPLATE, CheckFailed, run as run_check  # noqa: E402

BIN = pathlib.Path(sys.executable).parent


def run(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def cfn_lint(problems: list[str]) -> str:
    out = run([str(BIN / "cfn-lint"), "--include-checks", "I", "--format", "parseable", str(TEMPLATE)])
    findings = [line for line in out.stdout.splitlines() if line.strip()]
    problems += [f"cfn-lint: {f}" for f in findings]
    if out.returncode != 0 and not findings:
        problems.append(f"cfn-lint exited {out.returncode}: {out.stderr.strip()[-500:]}")
    # Suppressions: Metadata cfn-lint ignore_checks, or rule ids listed next to them.
    suppressed = []
    in_block = False
    for n, line in enumerate(TEMPLATE.read_text().splitlines(), 1):
        if re.match(r"\s*cfn-lint\s*:", line) or "ignore_checks" in line:
            in_block = True
        elif in_block and not re.match(r"\s*(-|config:|ignore_checks:)", line):
            in_block = False
        if in_block and re.search(r"\b[EWI]\d{4}\b", line):
            suppressed.append(n)
            if "#" not in line.split(re.search(r"\b[EWI]\d{4}\b", line).group(0), 1)[1]:
                problems.append(f"cfn-lint suppression on line {n} has no '# reason'")
    version = run([str(BIN / "cfn-lint"), "--version"]).stdout.strip()
    return f"{version}: {len(findings)} findings (errors, warnings, informational), {len(suppressed)} suppressions"


def checkov(problems: list[str]) -> tuple[str, list[tuple[str, str, str]]]:
    out = run([
        str(BIN / "checkov"), "--file", str(TEMPLATE), "--framework", "cloudformation",
        "--skip-download", "--output", "json",
    ])
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        raise CheckFailed(f"checkov gave no JSON (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    if isinstance(report, list):
        report = next((r for r in report if r.get("check_type") == "cloudformation"), {})
    summary = report.get("summary", {})
    results = report.get("results", {})
    for c in results.get("failed_checks", []):
        problems.append(f"checkov: {c['check_id']} {c['check_name']} on {c['resource']}")
    if summary.get("parsing_errors"):
        problems.append(f"checkov: {summary['parsing_errors']} parsing errors")
    if not summary.get("passed"):
        problems.append("checkov passed no check at all: did it read the template?")
    skips = []
    for c in results.get("skipped_checks", []):
        reason = (c.get("check_result") or {}).get("suppress_comment") or ""
        skips.append((c["check_id"], c["resource"], reason))
        if len(reason.strip()) < 20 or reason.strip().lower().startswith("no comment"):
            problems.append(f"checkov skip {c['check_id']} on {c['resource']} has no real reason")
    line = (f"checkov {summary.get('checkov_version', '?')}: passed {summary.get('passed', 0)}, "
            f"failed {summary.get('failed', 0)}, skipped {summary.get('skipped', 0)}")
    return line, skips


def main() -> int:
    problems: list[str] = []
    print(cfn_lint(problems))
    line, skips = checkov(problems)
    print(line)
    for check_id, resource, reason in skips:
        print(f"  skip {check_id} {resource}: {reason}")
    if problems:
        for p in problems:
            print(f"FAIL {p}")
        return 1
    print("lint: cfn-lint and checkov clean")
    return 0


if __name__ == "__main__":
    run_check(main)
