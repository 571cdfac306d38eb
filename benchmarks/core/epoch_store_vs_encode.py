"""Per epoch: training from the feature store versus encoding the inputs again.

    python benchmarks/core/epoch_store_vs_encode.py [--fraction 0.25] [--epochs 3]
        [--record benchmarks/core/results/epoch_store_vs_encode.jsonl]

On the embedded task of ``late-fusion`` (its default encoders, a ``--fraction`` of
each split): one cold run fills the store; a warm run of ``--epochs`` epochs gives the
seconds per epoch from the store (``train_stage`` / epochs, validation included); then
the train split is encoded once more in memory (``use_cache=False``), which is what
every epoch would cost on top if the frozen encoders ran in the loop. Prints one JSON
line with both per-epoch figures and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    os.environ["MMALIGN_HOME"] = tempfile.mkdtemp(prefix="epoch-store-")
    from mmalign.features import build_feature_set
    from mmalign.plugins import get_host
    from mmalign.runner import RunRequest, execute, run
    from mmalign.store.options import take_fraction

    sets: dict[str, Any] = {"data.fraction": args.fraction, "train.epochs": 1}
    execute(RunRequest(method="late-fusion", sets=sets, quiet=True))  # cold: fills the store
    spent = {"train": 0.0}
    original = run.train_stage

    def timed(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            spent["train"] += time.perf_counter() - t

    run.train_stage = timed
    sets["train.epochs"] = args.epochs
    sets["train.patience"] = args.epochs + 1
    result = execute(RunRequest(method="late-fusion", sets=sets, seed=1, quiet=True))
    epochs = result.extra["stages"]["train"]["epochs_run"]
    store_epoch = spent["train"] / epochs

    method = get_host().registry.get("method", "late-fusion")()
    _, run_cfg, cfg = run.resolve(RunRequest(method="late-fusion", sets=sets))
    task = run.make_task(get_host().registry, run_cfg.task, {}, None)
    encoders = run.make_encoders(get_host().registry, cfg.encoders, task.modalities)
    for enc in encoders.values():
        if hasattr(enc, "real"):
            enc.real()  # build it: this pass measures encoding, not the store
    train = take_fraction(task.load().splits["train"], args.fraction)
    t = time.perf_counter()
    build_feature_set("train", train, encoders, {m: True for m in encoders}, "bench",
                      use_cache=False)
    encode = time.perf_counter() - t
    line = {
        "task": run_cfg.task,
        "method": method.name,
        "fraction": args.fraction,
        "train_rows": len(train),
        "epochs": epochs,
        "epoch_from_store_s": round(store_epoch, 2),
        "epoch_re_encoding_s": round(store_epoch + encode, 2),
        "ratio": round((store_epoch + encode) / store_epoch, 1),
    }
    print(json.dumps(line))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
