"""SPP-SCL ablations on an embedded task: accuracy, F1, gate rate and IID/TTD/ITD.

Runs each configuration for each seed through the public runner and appends one
JSON line per run to ``results/<task>.jsonl`` (so a long sweep keeps what it has
done), then prints a markdown table averaged over seeds::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sppscl/ablations.py \\
        --task synth-sentiment --seeds 0 1 --configs full w/o-inter w/o-intra ce-only
    .venv/bin/python benchmarks/sppscl/ablations.py --task synth-sentiment --table
    # the same sweep with other settings for every configuration, kept apart by a tag:
    ... ablations.py --set train.lr=1e-3 --tag lr1e-3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from mmalign.config import parse_sets
from mmalign.runner import RunRequest, execute

RESULTS = Path(__file__).parent / "results"

#: name -> --set overrides (Tables 4, 5 and 7 of the paper, Figure 1's panels, ours)
CONFIGS: dict[str, dict[str, object]] = {
    "full": {},
    "one-step": {"two_step": False},
    "w/o-inter": {"inter": False},
    "w/o-intra": {"intra": False},
    "ce-only": {"intra": False, "inter": False},
    "inter-every-step": {"intra": False, "two_step": False},
    "alpha=1": {"alpha": 1.0},
    "step-2-always": {"alpha": 100.0},
    "cmf-sample": {"fusion.config.mode": "sample"},
    "cmf-none": {"fusion.name": "concat"},  # Table 7's w/o CMF as a component swap
    "unmasked-padding": {"mask_padding": False},
    "paper-losses": {"variant": "paper"},
    "paper-gate": {"gate": "paper"},
    "train-mode-encoders": {"encoder_mode": "train-mode"},
    "ha-mean": {"ha_summary": "mean"},
}


def run_one(task: str, name: str, seed: int, extra: dict[str, object]) -> dict[str, object]:
    started = time.time()
    sets = {**extra, **CONFIGS[name]}
    result = execute(RunRequest(method="spp-scl", task=task, seed=seed, sets=sets, quiet=True))
    stage = result.extra["stages"]["train"]
    report = stage["report"]
    return {
        "config": name,
        "seed": seed,
        "sets": sets,
        "n_test": int(result.extra["stages"]["train"]["report"]["distances"]["n"]),
        "test": result.metrics["test"],
        "validation": result.metrics["validation"],
        "best_epoch": stage.get("best_epoch"),
        "epochs_run": stage.get("epochs_run"),
        "gate": report.get("gate"),
        "distances": report["distances"],
        "eval_batch_dependence": report["eval_batch_dependence"],
        "run_dir": str(result.run_dir),
        "wall_s": round(time.time() - started, 1),
    }


def mean_sd(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def table(rows: list[dict]) -> str:
    """Markdown: one line per configuration, mean ± sd over its seeds. IID/TTD/ITD are
    same-label means on normalised embeddings; the last column is ITD over
    different-label pairs (runs that recorded it), the scale ITD should be below."""
    lines = [
        "| config | seeds | acc | F1 weighted | F1 macro | gate fired | IID | TTD | ITD "
        "| spread | ITD other label |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in CONFIGS:
        group = [r for r in rows if r["config"] == name]
        if not group:
            continue
        d = [r["distances"]["normalized"] for r in group]
        gates = [r["gate"]["fraction"] for r in group if r["gate"]]
        other = [
            r["distances"]["other_label_normalized"]["ITD"]
            for r in group
            if "other_label_normalized" in r["distances"]
        ]
        cells = [
            mean_sd([r["test"]["acc"] for r in group]),
            mean_sd([r["test"]["f1_weighted"] for r in group]),
            mean_sd([r["test"]["f1_macro"] for r in group]),
            mean_sd(gates) if gates else "—",
            *(mean_sd([x[k] for x in d]) for k in ("IID", "TTD", "ITD", "spread")),
            f"{mean_sd(other)} ({len(other)})" if other else "—",
        ]
        lines.append(f"| {name} | {len(group)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="synth-sentiment")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--set", dest="sets", nargs="*", default=[], metavar="KEY=VALUE",
                        help="overrides applied to every configuration")
    parser.add_argument("--tag", default="", help="suffix of the results file")
    parser.add_argument("--table", action="store_true", help="only print the table")
    args = parser.parse_args()
    extra = parse_sets(args.sets)
    out = RESULTS / f"{args.task}{'-' + args.tag if args.tag else ''}.jsonl"
    if not args.table:
        RESULTS.mkdir(exist_ok=True)
        for seed in args.seeds:
            for name in args.configs:
                row = run_one(args.task, name, seed, extra)
                with out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{name} seed {seed}: acc {row['test']['acc']:.3f} ({row['wall_s']} s)",
                      flush=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    print(table(rows))


if __name__ == "__main__":
    main()
