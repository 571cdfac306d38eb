"""Leaderboards from the results store: one row per method x size, mean ± std over seeds."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from mmalign import paths


@dataclass
class Row:
    method: str
    size: str
    task: str
    values: dict[str, list[float]] = field(default_factory=dict)
    seeds: int = 0
    reported: bool = False
    source: str = ""

    def mean(self, metric: str) -> float | None:
        vals = self.values.get(metric)
        return statistics.fmean(vals) if vals else None

    def std(self, metric: str) -> float | None:
        vals = self.values.get(metric)
        if not vals:
            return None
        return statistics.stdev(vals) if len(vals) > 1 else 0.0


def _test_metrics(run: dict[str, Any]) -> dict[str, float]:
    metrics = run["metrics"]
    return metrics.get("test") or next(
        (v for k, v in metrics.items() if k.endswith("test")), {}
    )


def measured_rows(runs: list[dict[str, Any]]) -> list[Row]:
    rows: dict[tuple[str, str, str], Row] = {}
    for run in runs:
        if run["status"] != "completed":
            continue
        variant = run["extra"].get("variant", "") if isinstance(run["extra"], dict) else ""
        size = run["size"] + (f" [{variant}]" if variant else "")
        key = (run["method"], size, run["task"])
        row = rows.setdefault(key, Row(run["method"], size, run["task"]))
        row.seeds += 1
        for metric, value in _test_metrics(run).items():
            if isinstance(value, (int, float)) and not math.isnan(value):
                row.values.setdefault(metric, []).append(float(value))
    return list(rows.values())


def reported_rows(task: str | None, path: Path | None = None) -> list[Row]:
    path = path or paths.registry_file()
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    out = []
    for item in data.get("reported", []):
        if task and item["task"] != task:
            continue
        row = Row(item["method"], item.get("size", "default"), item["task"], reported=True,
                  source=item.get("source", ""))
        row.values = {k: [float(v)] for k, v in item.get("metrics", {}).items()}
        out.append(row)
    return out


@dataclass
class Board:
    task: str
    metrics: list[str]
    rows: list[Row]
    higher_is_better: dict[str, bool]

    def best(self, metric: str) -> float | None:
        vals = [r.mean(metric) for r in self.rows if not r.reported]
        vals = [v for v in vals if v is not None]
        if not vals:
            return None
        return max(vals) if self.higher_is_better.get(metric, True) else min(vals)


def lower_is_better(metric: str) -> bool:
    return metric in ("mae", "loss") or metric.endswith("loss")


def build_boards(
    runs: list[dict[str, Any]], task: str | None, metric: str | None, reported: bool,
    primary: dict[str, list[str]],
) -> list[Board]:
    """Group rows by task; order metrics with the primary (or requested) one first."""
    rows = measured_rows(runs) + (reported_rows(task) if reported else [])
    boards = []
    for name in sorted({r.task for r in rows if task is None or r.task == task}):
        task_rows = [r for r in rows if r.task == name]
        present = sorted({m for r in task_rows for m in r.values})
        order = [m for m in primary.get(name, []) if m in present]
        order += [m for m in present if m not in order and "/" not in m]
        if metric:
            order = [metric] + [m for m in order if m != metric]
        first = order[0] if order else None
        task_rows.sort(key=lambda r: (r.reported, _sort_value(r, first)))
        boards.append(Board(name, order, task_rows,
                            {m: not lower_is_better(m) for m in order}))
    return boards


def _sort_value(row: Row, metric: str | None) -> float:
    value = row.mean(metric) if metric else None
    if value is None:
        return math.inf
    return value if lower_is_better(metric or "") else -value


def _cell(row: Row, metric: str) -> str:
    mean = row.mean(metric)
    if mean is None:
        return "–"
    if row.reported or row.seeds <= 1:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {row.std(metric):.4f}"


def _label(row: Row) -> tuple[str, str, str]:
    kind = f"reported ({row.source})" if row.reported else f"{row.seeds} seed(s)"
    return row.method, row.size, kind


def render_rich(board: Board) -> Table:
    table = Table(title=f"{board.task}", title_justify="left")
    for col in ("method", "size", "runs", *board.metrics):
        table.add_column(col, justify="right" if col in board.metrics else "left")
    for row in board.rows:
        cells = []
        for m in board.metrics:
            text = _cell(row, m)
            best = board.best(m)
            if not row.reported and best is not None and row.mean(m) == best:
                text = f"[bold]{text}[/bold]"
            cells.append(text)
        style = "dim italic" if row.reported else None
        table.add_row(*_label(row), *cells, style=style)
    return table


def render_markdown(board: Board) -> str:
    head = ["method", "size", "runs", *board.metrics]
    lines = [f"### {board.task}", "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for row in board.rows:
        cells = []
        for m in board.metrics:
            text = _cell(row, m)
            if not row.reported and row.mean(m) is not None and row.mean(m) == board.best(m):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join([*_label(row), *cells]) + " |")
    return "\n".join(lines) + "\n"


def render_csv(boards: list[Board]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["task", "method", "size", "reported", "seeds", "metric", "mean", "std"])
    for board in boards:
        for row in board.rows:
            for m in board.metrics:
                if row.mean(m) is not None:
                    writer.writerow([board.task, row.method, row.size, row.reported,
                                     row.seeds, m, row.mean(m), row.std(m)])
    return buf.getvalue()


def render_json(boards: list[Board]) -> str:
    out = []
    for board in boards:
        out.append({
            "task": board.task,
            "metrics": board.metrics,
            "rows": [{
                "method": r.method, "size": r.size, "reported": r.reported,
                "source": r.source, "seeds": r.seeds,
                "mean": {m: r.mean(m) for m in board.metrics if r.mean(m) is not None},
                "std": {m: r.std(m) for m in board.metrics if r.std(m) is not None},
            } for r in board.rows],
        })
    return json.dumps(out, indent=2)
