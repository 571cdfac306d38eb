"""TeCaFN ablation on an embedded task: full model vs w/o hard negatives vs w/o gates.

Each variant is trained with several seeds; the table gives the test metrics
(model selected on validation MAE) as mean ± sample std over seeds.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tecafn/ablation.py \\
        [--task synth-mosi] [--seeds 0 1 2] [--variants NAME ...] [--name STEM]
        [--set train.epochs=20 ...] [--out DIR]

By default the three variants of the README table; ``--variants`` picks any row of
the paper's Table 5 or the Figure 3 core switch (see ``VARIANTS``). Writes
``<stem>-<task>.json`` (every run's metrics, epochs, wall time and diagnostics
report) and ``<stem>-<task>.md`` (the table) into ``--out``.
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

BOTH = ["audio", "video"]
#: key -> (table label, overrides): every row of the paper's Table 5, the Figure 3
#: core switch and the published bicon axis
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "full": ("full", {}),
    "random-neg": ("w/o hard negatives (random)", {"random_negatives": BOTH}),
    "no-gate": ("w/o gates (no L_ap)", {"no_gate": BOTH}),
    "no-Lta": ("w/o L_ta", {"no_contrast": ["audio"]}),
    "no-Ltv": ("w/o L_tv", {"no_contrast": ["video"]}),
    "no-Ltcon": ("w/o L_ta + L_tv", {"no_contrast": BOTH}),
    "no-bicon": ("w/o L_bicon", {"no_bicon": True}),
    "no-Ltap": ("w/o L_tap", {"no_gate": ["audio"]}),
    "no-Ltvp": ("w/o L_tvp", {"no_gate": ["video"]}),
    "random-neg-ta": ("w/o Hardneg_ta", {"random_negatives": ["audio"]}),
    "random-neg-tv": ("w/o Hardneg_tv", {"random_negatives": ["video"]}),
    "no-V": ("w/o V", {"drop": ["video"]}),
    "no-A": ("w/o A", {"drop": ["audio"]}),
    "no-VA": ("w/o V, A", {"drop": BOTH}),
    "bicon-code": ("L_bicon on the code's axis", {"bicon_variant": "code"}),
    "audio-core": ("audio-centred (AeCaFN)", {"core": "audio"}),
    "video-core": ("vision-centred (VeCaFN)", {"core": "video"}),
}
#: the default comparison: the full model against its two cross-sample ingredients
DEFAULT_VARIANTS = ["full", "random-neg", "no-gate"]
COLUMNS = ("mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
HERE = Path(__file__).resolve().parent


def run_all(
    task: str, variants: list[str], seeds: list[int], sets: dict[str, Any]
) -> list[dict[str, Any]]:
    rows = []
    for name in variants:
        label, overrides = VARIANTS[name]
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
                    "label": label,
                    "seed": seed,
                    "run_id": result.run_id,
                    "data": stage.get("source", ""),
                    "test": result.metrics["test"],
                    "validation": result.metrics["validation"],
                    "epochs_run": stage.get("epochs_run"),
                    "best_epoch": stage.get("best_epoch"),
                    "report": stage.get("report", {}),
                    "wall_s": round(time.time() - started, 1),
                }
            )
            print(f"{label:30s} seed {seed}: " + json.dumps(rows[-1]["test"]), flush=True)
    return rows


def table(rows: list[dict[str, Any]], variants: list[str], seeds: list[int]) -> str:
    head = "| variant | " + " | ".join(COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for name in variants:
        runs = [r["test"] for r in rows if r["variant"] == name]
        cells = []
        for col in COLUMNS:
            values = [r[col] for r in runs]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {std:.3f}")
        lines.append(f"| {VARIANTS[name][0]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Test split, mean ± std over seeds {seeds}; model selected on validation MAE.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="synth-mosi")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=DEFAULT_VARIANTS,
        choices=list(VARIANTS),
        metavar="KEY",
        help=f"any of: {', '.join(VARIANTS)}",
    )
    parser.add_argument("--name", default="ablation", help="output file stem")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    sets = parse_sets(args.sets)
    rows = run_all(args.task, args.variants, args.seeds, sets)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.name}-{args.task}"
    payload = {"task": args.task, "seeds": args.seeds, "sets": sets, "runs": rows}
    (args.out / f"{stem}.json").write_text(json.dumps(payload, indent=2))
    md = table(rows, args.variants, args.seeds)
    (args.out / f"{stem}.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
