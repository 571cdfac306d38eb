"""``mmalign suite report``: the suite's leaderboard, paired comparisons and plots,
generated from the results store (so a README section is regenerated, never typed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mmalign import atomic, leaderboard, plots
from mmalign.leaderboard import Board, resolved_key
from mmalign.suite.launch import Planner, state_dir
from mmalign.suite.spec import Suite, expand


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def suite_runs(suite: Suite, db: Path | None = None) -> tuple[list[dict[str, Any]],
                                                             dict[str, str], dict[str, int]]:
    """The store's runs of this suite's cells, the variant name of each resolved config,
    and how many cells are completed, failed or not run."""
    from mmalign.results import ResultsStore

    planner = Planner(suite, db)
    cells = expand(suite)
    reqs = [planner.request(c) for c in cells]
    names = {planner.key(r, with_seed=False): c.variant for c, r in zip(cells, reqs,
                                                                        strict=True)}
    wanted = {planner.key(r) for r in reqs}
    runs = [r for r in ResultsStore(db).runs()
            if r.get("config") and resolved_key(r["config"]) in names]
    for run in runs:
        _add_columns(run, suite.columns)
    done = {resolved_key(r["config"], True) for r in runs if r["status"] == "completed"}
    failed = {resolved_key(r["config"], True) for r in runs if r["status"] == "failed"} - done
    counts = {"cells": len(wanted), "completed": len(done & wanted),
              "failed": len(failed & wanted)}
    counts["not run"] = counts["cells"] - counts["completed"] - counts["failed"]
    return runs, names, counts


def _add_columns(run: dict[str, Any], columns: dict[str, str]) -> None:
    """Copy the suite's extra report columns from the run record into its test metrics."""
    test = run.get("metrics", {}).get("test")
    if not columns or not isinstance(test, dict):
        return
    for name, dotted in columns.items():
        node: Any = run.get("extra", {})
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            test[name] = float(node)


def _paired_table(board: Board) -> list[str]:
    ref = board.reference
    if ref is None:
        return [f"No reference row on {board.task}."]
    lines = [f"Against **{ref.method} · {ref.label}** (row minus reference, paired by seed; "
             "95% t-interval of the mean difference; two-sided paired t-test):", "",
             "| method | variant | metric | n | Δ | Δ 95% CI | p | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for row in board.measured:
        if row is ref:
            continue
        for metric in board.metrics:
            p = board.paired(row, metric)
            if p is None:
                continue
            ci = (f"[{p.delta_ci95[0]:+.4f}, {p.delta_ci95[1]:+.4f}]"
                  if p.delta_ci95 else leaderboard.BLANK)
            pv = f"{p.p_value:.3g}" if p.p_value is not None else leaderboard.BLANK
            verdict = {True: "distinguishable (p < 0.05)", False: "not distinguishable",
                       None: "too few shared seeds"}[p.distinguishable]
            lines.append(f"| {row.method} | {row.label} | {metric} | {p.n} | "
                         f"{p.delta:+.4f} | {ci} | {pv} | {verdict} |")
    return lines


def _plot(board: Board, out: Path) -> list[str]:
    if not board.metrics:
        return []
    metric = board.metrics[0]
    rows = [r for r in board.measured if r.summary(metric) is not None]
    if not rows:
        return []
    summaries = [r.summary(metric) for r in rows]
    name = f"{_slug(board.task)}-{_slug(metric)}.png"
    plots.means_with_ci([f"{r.method}\n{r.name or r.label}" for r in rows],
                        [s.mean for s in summaries], [s.ci95 for s in summaries],
                        [list(r.by_seed(metric).values()) for r in rows], metric,
                        f"{board.task}: test {metric}, mean and 95% CI, dots are seeds",
                        out / name)
    return [f"![{board.task} {metric}]({name})"]


def write_report(suite: Suite, out: Path, db: Path | None = None) -> Path:
    """Write ``out/report.md`` and its PNG plots; returns the report's path."""
    from mmalign.plugins import get_host

    registry = get_host().registry
    runs, names, counts = suite_runs(suite, db)
    primary = {e.name: list(e.obj.metrics) for e in registry.list("task")}
    sizes = {e.name: e.obj.default_size for e in registry.list("method")}
    against = suite.against or f"{suite.methods[0]}:{next(iter(suite.variants))}"
    boards = leaderboard.build_boards(runs, None, None, False, primary, against=against,
                                      default_sizes=sizes, names=names) if runs else []
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Suite `{suite.name}`", "",
             f"Generated by `mmalign suite report {suite.path} --out {out}` from the results "
             "store.", "",
             "Cells: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".", ""]
    if suite.budget_steps is not None:
        lines += [f"Budget: {suite.budget_steps} optimizer steps per cell "
                  f"({suite.budget_stage}.epochs = ceil(steps / steps per epoch), early "
                  "stopping off).", ""]
    for board in boards:
        lines += ["## Leaderboard", "", leaderboard.render_markdown(board), "",
                  "## Paired comparisons", "", *_paired_table(board), "",
                  "## Plots", "", *_plot(board, out), ""]
    if not boards:
        lines += ["No completed runs of this suite yet: `mmalign suite run "
                  f"{suite.path}`.", ""]
    state = state_dir(suite) / "cells.json"
    failed = [c for c in json.loads(state.read_text())
              if c["status"] == "failed"] if state.exists() else []
    if failed:
        lines += ["## Failed cells (last `suite run`)", ""]
        lines += [f"- {c['cell']}: {c['error']}" for c in failed]
        lines.append("")
    path = out / "report.md"
    atomic.write_text(path, "\n".join(lines))
    return path
