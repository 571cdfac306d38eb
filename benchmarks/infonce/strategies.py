"""The paper's central comparison: round-robin vs tri-modal joint vs quad-modal joint.

Each scenario trains the n-modal InfoNCE heads with several seeds (stopping when the
validation loss stops decreasing) and reports mean recall@10 on test and train as
mean ± sample std over seeds, averaged over

* all ordered pairs of the scenario's modalities (the Mean rows of Tables I, III, V),
* the six text/image/audio pairs every scenario has (the paper's "matching rows"),
* each query modality against "any" (the Mean rows of Tables II, IV, VI).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/infonce/strategies.py \\
        [--task synth-xmedianet] [--seeds 0 1 2] [--scenarios ...] [--set key=value ...]

Writes ``strategies-<task>[-<task settings>].json`` (every run's recall tables,
epochs, wall time) and ``.md`` (the table) into ``--out`` (default: ``results/`` here).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from mmalign_infonce.evaluation import pair_mean

from mmalign.config import parse_sets
from mmalign.runner import RunRequest, execute

TRI = ["text", "image", "audio"]
#: scenario -> (method size, extra overrides)
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "round-robin (quad)": ("round-robin", {}),
    "joint tri-modal": ("tri-modal", {}),
    "joint quad-modal": ("default", {}),
    "round-robin (tri, control)": ("round-robin", {"modalities": TRI}),
}
DEFAULT = list(SCENARIOS)[:3]
HERE = Path(__file__).resolve().parent


def summarise(recall: dict[str, float]) -> dict[str, float]:
    """The headline numbers of one split's recall tables."""
    return {
        "mean_r@10": recall["mean_r@10"],
        "tri_pairs_r@10": pair_mean(recall, TRI, k=10),
        "mean_any_r@10": recall["mean_any_r@10"],
        "mean_r@1": recall["mean_r@1"],
    }


def run_all(
    task: str, scenarios: list[str], seeds: list[int], sets: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for name in scenarios:
        for seed in seeds:
            started = time.time()
            size, extra = SCENARIOS[name]
            request = RunRequest(
                method="infonce",
                task=task,
                size=size,
                seed=seed,
                sets={**sets, **extra},
                quiet=True,
            )
            result = execute(request)
            stage = result.extra["stages"]["train"]
            recall = stage["report"]["recall"]
            modalities = sorted({k.split("->")[0] for k in recall["test"] if "->" in k})
            rows.append(
                {
                    "scenario": name,
                    "seed": seed,
                    "run_id": result.run_id,
                    "modalities": modalities,
                    "test": summarise(recall["test"]),
                    "train": summarise(recall["train"]),
                    "tables": recall,
                    "epochs_run": stage["epochs_run"],
                    "best_epoch": stage["best_epoch"],
                    "wall_s": round(time.time() - started, 1),
                }
            )
            print(f"{name:28s} seed {seed}: test {json.dumps(rows[-1]['test'])}", flush=True)
    return rows


def _cell(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {std:.3f}"


def table(rows: list[dict[str, Any]], scenarios: list[str], seeds: list[int]) -> str:
    cols = [
        ("test", "mean_r@10"),
        ("test", "tri_pairs_r@10"),
        ("test", "mean_any_r@10"),
        ("test", "mean_r@1"),
        ("train", "mean_r@10"),
        ("train", "tri_pairs_r@10"),
    ]
    head = "| scenario | " + " | ".join(f"{s} {c}" for s, c in cols) + " | epochs | s/run |"
    lines = [head, "|---|" + "---:|" * (len(cols) + 2)]
    for name in scenarios:
        runs = [r for r in rows if r["scenario"] == name]
        cells = [_cell([r[s][c] for r in runs]) for s, c in cols]
        epochs = statistics.mean(r["epochs_run"] for r in runs)
        wall = statistics.mean(r["wall_s"] for r in runs)
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {epochs:.1f} | {wall:.0f} |")
    lines += [
        "",
        f"Recall@10 as mean ± sample std over seeds {seeds}. `mean_r@10`: all ordered pairs "
        "of the scenario's modalities; `tri_pairs_r@10`: the six text/image/audio pairs "
        "every scenario shares; `mean_any_r@10`: each query modality against any item; "
        "`mean_r@1`: recall@1 over all ordered pairs.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="synth-xmedianet")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scenarios", nargs="+", choices=list(SCENARIOS), default=DEFAULT)
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--table", type=Path, help="only re-print the table of a saved JSON")
    args = parser.parse_args()
    if args.table:
        saved = json.loads(args.table.read_text())
        names = list(dict.fromkeys(r["scenario"] for r in saved["runs"]))
        print(table(saved["runs"], names, saved["seeds"]))
        return
    sets = parse_sets(args.sets)
    rows = run_all(args.task, args.scenarios, args.seeds, sets)
    args.out.mkdir(parents=True, exist_ok=True)
    task_sets = "".join(f"-{k[5:]}{v}" for k, v in sets.items() if k.startswith("task."))
    stem = args.out / f"strategies-{args.task}{task_sets}"
    stem.with_suffix(".json").write_text(
        json.dumps({"task": args.task, "seeds": args.seeds, "sets": sets, "runs": rows}, indent=1)
    )
    text = table(rows, args.scenarios, args.seeds)
    stem.with_suffix(".md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
