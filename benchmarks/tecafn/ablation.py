"""TeCaFN ablation on an embedded task: full model vs w/o hard negatives vs w/o gates.

Each variant is trained with several seeds; the table gives the test metrics
(model selected on validation MAE) as mean ± sample std over seeds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tecafn/ablation.py \\
        [--task synth-mosi] [--seeds 0 1 2] [--set train.epochs=20 ...] [--out DIR]

Writes ``ablation-<task>.json`` (every run's metrics, history length, wall time and
diagnostics report) and ``ablation-<task>.md`` (the table) into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from mmalign.config import parse_sets
from mmalign.runner import RunRequest, execute

VARIANTS: dict[str, dict[str, Any]] = {
    "full": {},
    "w/o hard negatives (random)": {"random_negatives": ["audio", "video"]},
    "w/o gates (no L_ap)": {"no_gate": ["audio", "video"]},
}
COLUMNS = ("mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
HERE = Path(__file__).resolve().parent


def run_all(task: str, seeds: list[int], sets: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, overrides in VARIANTS.items():
        for seed in seeds:
            started = time.time()
            result = execute(
                RunRequest(
                    method="tecafn", task=task, seed=seed, sets={**sets, **overrides}, quiet=True
                )
            )
            stage = result.extra["stages"]["train"]
            rows.append(
                {
                    "variant": name,
                    "seed": seed,
                    "run_id": result.run_id,
                    "test": result.metrics["test"],
                    "validation": result.metrics["validation"],
                    "epochs_run": stage.get("epochs_run"),
                    "best_epoch": stage.get("best_epoch"),
                    "report": stage.get("report", {}),
                    "wall_s": round(time.time() - started, 1),
                }
            )
            print(f"{name:30s} seed {seed}: " + json.dumps(rows[-1]["test"]), flush=True)
    return rows


def table(rows: list[dict[str, Any]], seeds: list[int]) -> str:
    head = "| variant | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name in VARIANTS:
        runs = [r["test"] for r in rows if r["variant"] == name]
        cells = []
        for col in COLUMNS:
            values = [r[col] for r in runs]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {std:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Test split, mean ± std over seeds {seeds}; model selected on validation MAE.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="synth-mosi")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sets = parse_sets(args.sets)
    rows = run_all(args.task, args.seeds, sets)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"ablation-{args.task}"
    payload = {"task": args.task, "seeds": args.seeds, "sets": sets, "runs": rows}
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    md = table(rows, args.seeds)
    stem.with_suffix(".md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
