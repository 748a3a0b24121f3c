#!/usr/bin/env bash
# The README's test command: lint, format, types, then every test suite, the real Pulumi engine, the
# Kubernetes control plane with its real node and the service images under Docker included. Their
# toolchains are built first when missing (one line per stage). VENTA_E2E=skip is the only way to leave those
# suites out, and says what it skipped; otherwise a skipped or missing test of theirs fails the run,
# judged from pytest's own report (scripts/e2e_ran.py).
# Arguments go to pytest (a subset of tests runs without the completeness check).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python && -s .venv/pulumi-engine ]] || bash scripts/setup.sh

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .

e2e="${VENTA_E2E:-required}"
selection=()
case "$e2e" in
  required)
    bash scripts/toolchain/engine.sh >/dev/null
    bash scripts/toolchain/build-cluster.sh >/dev/null
    bash scripts/toolchain/build-node.sh >/dev/null
    bash scripts/toolchain/build-promtool.sh >/dev/null
    bash scripts/toolchain/build-kube-score.sh >/dev/null
    ;;
  skip)
    echo "test: VENTA_E2E=skip: tests/e2e (the real Pulumi engine, the control plane), tests/images" \
      "(the service images under Docker) and tests/node (the real node) are not run"
    selection=(-m "not e2e" --ignore=tests/images --ignore=tests/node)
    ;;
  *)
    echo "test: VENTA_E2E must be 'required' (the default) or 'skip', not '$e2e'" >&2
    exit 2
    ;;
esac

report=$(mktemp --suffix=.xml)
trap 'rm -f "$report"' EXIT
status=0
# The slowest tests close the output: what the CI budget (docs/ci-budget.md) is spent on.
VENTA_E2E="$e2e" .venv/bin/python -m pytest "${selection[@]}" --junitxml="$report" --durations=15 "$@" || status=$?
if [[ "$e2e" == required && $# -eq 0 ]]; then
  .venv/bin/python scripts/e2e_ran.py "$report" || status=1
fi
exit "$status"
