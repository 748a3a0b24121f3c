#!/usr/bin/env bash
# The README's test command: lint, types, then every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv/bin/python ]] || bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
exec .venv/bin/python -m pytest "$@"
