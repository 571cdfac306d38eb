#!/usr/bin/env bash
# The toolkit's point in one go: a method and the late-fusion baseline on the same
# premise task (synth-clash: image-text pairs that share content and sometimes
# contradict, the situation SPP-SCL's inter-modal step is built for), then the
# leaderboard with their paired comparison. SEEDS="0 1 2" runs more seeds per method
# (one seed takes about 2 minutes per method on 2 CPU cores; features are cached
# after the first run). Extra arguments go to both runs, e.g. --set task.structure=control.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
for seed in ${SEEDS:-0}; do
    .venv/bin/mmalign run late-fusion --task synth-clash --seed "$seed" "$@"
    .venv/bin/mmalign run spp-scl --task synth-clash --seed "$seed" "$@"
done
.venv/bin/mmalign compare --task synth-clash --against late-fusion
