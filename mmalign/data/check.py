"""``mmalign data check``: validate a dataset and summarise it as one JSON object."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mmalign.data.base import DataTask
from mmalign.data.report import DataFileError, Report
from mmalign.errors import DataError
from mmalign.interfaces import Sample, Task


def label_key(task: Task, label: Any, names: list[str] | None) -> str | None:
    """How a label is counted: its class name, or the rounded score for regression."""
    if label is None or task.label_type == "none":
        return None
    if task.label_type == "regression":
        return str(int(round(min(max(float(label), -3.0), 3.0))))
    if names and 0 <= int(label) < len(names):
        return names[int(label)]
    return str(label)


def _sort_labels(counts: Counter[str], names: list[str] | None) -> dict[str, int]:
    order = {n: i for i, n in enumerate(names or [])}

    def key(k: str) -> tuple[int, float, str]:
        if k in order:
            return (0, order[k], k)
        try:
            return (1, float(k), k)
        except ValueError:
            return (2, 0.0, k)

    return {k: counts[k] for k in sorted(counts, key=key)}


def check_task(task: Task) -> dict[str, Any]:
    """Read every file of ``task`` (decoding all media) and report what is wrong.

    ``samples`` counts what passed every check; a task that cannot be read at all
    reports 0 samples and the reason as its problem.
    """
    root = getattr(task, "root", task.data_dir)
    out: dict[str, Any] = {
        "task": task.name,
        "data_dir": str(root),
        "samples": 0,
        "splits": {},
        "labels": {},
        "problems": [],
        "repaired": {},
        "dropped": {},
    }
    report = Report()
    splits: dict[str, list[Sample]] = {}
    names: list[str] | None = list(task.label_names) or None
    try:
        task.prepare()
        if not task.is_present():
            report.problem(str(root), task.missing_message())
        elif isinstance(task, DataTask):
            splits = task.read(report, deep=True)
            names = task.data_label_names()
        else:  # a plugin's task: only its own loader can read it
            data = task.load()
            splits, names = data.splits, data.label_names or names
            report.problems.extend(data.problems)
            report.repairs.update(data.repaired)
    except DataFileError as exc:
        report.problem(exc.file, exc.error)
    except DataError as exc:
        report.problem(str(root), str(exc))
    counts: Counter[str] = Counter()
    for samples in splits.values():
        for sample in samples:
            key = label_key(task, sample.label, names)
            if key is not None:
                counts[key] += 1
    out["samples"] = sum(len(v) for v in splits.values())
    out["splits"] = {k: len(v) for k, v in splits.items()}
    out["labels"] = _sort_labels(counts, names)
    out["problems"] = report.problems
    out["repaired"] = dict(sorted(report.repairs.items()))
    out["dropped"] = dict(sorted(report.drops.items()))
    return out
