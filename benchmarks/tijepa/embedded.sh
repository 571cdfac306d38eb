#!/usr/bin/env bash
# TI-JEPA vs the late-fusion baseline on the embedded synth-sentiment task (CPU).
# Each line is one run recorded in the results store; compare with
#   mmalign compare --task synth-sentiment
# The ablations change ti-jepa's config, so read them from their run records
# (`mmalign runs`, metrics.json), not from the method x size leaderboard row.
set -euo pipefail
export OMP_NUM_THREADS=1
T="%e s wall, %U s user, %M KB maxrss"
run() { /usr/bin/time -f "$T" mmalign run "$@" --quiet; }
# Table 1's small module with the embedded encoders (--size small alone brings the paper's)
SMALL=(--size small --set encoders.text.name=minilm-l6 --set encoders.image.name=efficientnet-lite0)

run late-fusion --seed 0
run late-fusion --seed 1
run ti-jepa "${SMALL[@]}" --seed 0                       # defaults: pretrain 2 ep x 116 pairs
run ti-jepa "${SMALL[@]}" --seed 1                       # reuses the pretraining
run ti-jepa "${SMALL[@]}" --set probe.module=context     # probe the online module X
run ti-jepa "${SMALL[@]}" --set train.epochs=0           # no pretraining: random X~
# a longer CPU pretraining: 3 epochs over 256 synth-captions images (~460 pairs)
run ti-jepa "${SMALL[@]}" --set train.epochs=3 --set pretrain_task_configs.synth-captions.images=256
run ti-jepa "${SMALL[@]}" --set train.epochs=3 --set pretrain_task_configs.synth-captions.images=256 \
    --set probe.module=context
