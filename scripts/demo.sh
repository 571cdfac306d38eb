#!/usr/bin/env bash
# Set up, then run the main job: the late-fusion baseline on the embedded default task.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
.venv/bin/mmalign run late-fusion "$@"
