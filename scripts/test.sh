#!/usr/bin/env bash
# Set up, then run the test suite. `scripts/test.sh -m slow` runs the slow tests instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
