#!/usr/bin/env bash
# Offline checks of the deployment template (infra/template.yaml):
#   lint      cfn-lint and checkov: no finding, every suppression justified
#   patterns  fixtures vs the template's EventBridge patterns, on a local moto server
#   iam       the function role grants exactly the AWS calls found in src/
#   envs      staging/production parameter files: same keys, same resources and alarms
#
# Uses its own virtualenv (.venv-infra, or $INFRA_VENV) so that checkov's pins never
# disturb the moto venv of the Rust tests. Only pip needs the network, once.
# Usage: scripts/infra-check.sh            (exit 0 = all four passed)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${INFRA_VENV:-$ROOT/.venv-infra}"
PYTHON="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in tests/infra
# The versions these checks were written and run with. Change together, then re-run.
PINS=(
    "cfn-lint==1.58.0"
    "checkov==3.3.30"
    "moto[server]==5.2.5"
    "boto3==1.35.49"
    "botocore==1.35.99"
)
STAMP="$VENV/.infra-check-$(printf '%s\n' "${PINS[@]}" | cksum | cut -d' ' -f1)"

if [[ ! -f "$STAMP" ]]; then
    echo "infra-check: creating $VENV (${PINS[*]})"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    if ! "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "${PINS[@]}"; then
        rm -rf "$VENV"
        echo "infra-check: pip install failed" >&2
        exit 2
    fi
    touch "$STAMP"
fi

declare -a SUMMARY=()
failed=0
for check in lint patterns iam envs; do
    echo "== $check"
    start=$SECONDS
    if timeout 300 "$VENV/bin/python" "tests/infra/check_$check.py" 2>&1 | sed 's/^/   /'; then
        rc=${PIPESTATUS[0]}
    else
        rc=${PIPESTATUS[0]}
    fi
    if [[ $rc -eq 0 ]]; then
        SUMMARY+=("PASS $check ($((SECONDS - start)) s)")
    else
        SUMMARY+=("FAIL $check (exit $rc, $((SECONDS - start)) s)")
        failed=1
    fi
done

echo "== infra-check summary"
printf '   %s\n' "${SUMMARY[@]}"
if [[ $failed -ne 0 ]]; then
    echo "infra-check: FAILED"
    exit 1
fi
echo "infra-check: all passed"
