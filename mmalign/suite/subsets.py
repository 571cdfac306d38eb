"""Test metrics on subsets of an embedded task's test items, picked by the generating
latents its generator wrote (``synth_truth.tsv``): e.g. a TeCaFN run's MAE on the clips
whose audio was lost, next to its MAE on the clean ones. A mechanism that acts on part
of the data (a gate on corrupted inputs, an inter-modal step on contradicting pairs)
shows there even when the whole test split averages it away.

The suite file names each subset by its conditions on the truth file's columns, all of
which must hold (a value or a list of allowed values)::

    [report]
    subset_metrics = ["mae"]

    [report.subsets]
    clean = { audio_state = "clean", video_state = "clean" }
    audio-lost = { audio_state = ["missing", "corrupted"] }

and the report gains the columns ``mae@clean`` and ``mae@audio-lost``, with their
paired comparisons, computed from each run's saved test predictions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmalign import metrics
from mmalign.artefacts import PREDICTIONS, read_predictions
from mmalign.data.synth.structure import TRUTH_FILE, read_truth
from mmalign.errors import ConfigError

Conditions = dict[str, list[str]]


def parse(report: dict[str, Any], path: Path) -> tuple[dict[str, Conditions], list[str]]:
    """``[report.subsets]`` and ``report.subset_metrics``, checked when the file is read."""
    raw, names = report.get("subsets", {}), report.get("subset_metrics", [])
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: 'report.subsets' must map a subset name to its "
                          "conditions, e.g. clean = {{ audio_state = \"clean\" }}")
    subsets: dict[str, Conditions] = {}
    for name, conditions in raw.items():
        if not isinstance(conditions, dict) or not conditions:
            raise ConfigError(f"{path}: 'report.subsets.{name}' must be a table of truth "
                              "columns and their allowed values")
        subsets[name] = {}
        for column, allowed in conditions.items():
            values = [allowed] if isinstance(allowed, str | int | float) else allowed
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: 'report.subsets.{name}.{column}' must be a value "
                                  "or a non-empty list of values")
            subsets[name][column] = [str(v) for v in values]
    if not isinstance(names, list) or not all(isinstance(m, str) for m in names):
        raise ConfigError(f"{path}: 'report.subset_metrics' must be a list of metric names")
    if subsets and not names:
        raise ConfigError(f"{path}: 'report.subsets' needs 'report.subset_metrics', the "
                          "metrics to compute on each subset (e.g. [\"mae\"])")
    return subsets, names


def _test_folder(run: dict[str, Any]) -> Path:
    """The data folder of the run's last stage on the run's own task."""
    stages = run.get("extra", {}).get("provenance", {}).get("stages", {})
    folders = [s["data"]["folder"] for s in stages.values()
               if s.get("data", {}).get("task") == run["task"] and s["data"].get("folder")]
    if not folders:
        raise ConfigError(f"run {run['run_id']}: its provenance names no data folder of "
                          f"task '{run['task']}', so its test items cannot be matched")
    return Path(folders[-1])


def _score(rows: list[dict[str, Any]]) -> dict[str, float]:
    labels = [r["label"] for r in rows]
    predictions = [r["prediction"] for r in rows]
    if rows and "probabilities" in rows[0]:
        return metrics.classification(labels, predictions)
    return metrics.sentiment_regression(labels, predictions)


def subset_metrics(run: dict[str, Any], subsets: dict[str, Conditions],
                   names: list[str]) -> dict[str, float]:
    """``{"METRIC@SUBSET": value}`` for one completed run, from its test predictions
    and its task's truth file; a one-line error naming the file or column at fault."""
    run_dir = Path(run.get("run_dir") or "")
    if not (run_dir / PREDICTIONS).exists():
        raise ConfigError(f"run {run['run_id']}: no {PREDICTIONS} in {run_dir}; subset "
                          "metrics need the run's saved test predictions")
    folder = _test_folder(run)
    if not (folder / TRUTH_FILE).exists():
        raise ConfigError(f"{folder / TRUTH_FILE}: not found; subsets are defined on an "
                          "embedded task's truth file")
    truth = {row["id"]: row for row in read_truth(folder)}
    rows = read_predictions(run_dir)
    missing = [r["id"] for r in rows if r["id"] not in truth]
    if missing:
        raise ConfigError(f"{folder / TRUTH_FILE}: no row for test item '{missing[0]}' "
                          f"({len(missing)} of {len(rows)} missing)")
    columns = set(next(iter(truth.values())))
    out: dict[str, float] = {}
    for name, conditions in subsets.items():
        unknown = sorted(set(conditions) - columns)
        if unknown:
            raise ConfigError(f"report.subsets.{name}: '{unknown[0]}' is not a column of "
                              f"{folder / TRUTH_FILE} ({', '.join(sorted(columns))})")
        picked = [r for r in rows if all(truth[r["id"]][c] in allowed
                                         for c, allowed in conditions.items())]
        if not picked:
            continue  # no such item in this run's test split: the cell stays blank
        scores = _score(picked)
        for metric in names:
            if metric not in scores:
                raise ConfigError(f"report.subset_metrics: '{metric}' is not a metric of "
                                  f"task '{run['task']}' ({', '.join(scores)})")
            out[f"{metric}@{name}"] = scores[metric]
    return out
