"""``mmalign suite report``: the suite's leaderboard, paired comparisons and plots,
generated from the results store (so a README section is regenerated, never typed)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mmalign import atomic, leaderboard, plots, stats
from mmalign.errors import ConfigError
from mmalign.leaderboard import Board, Row, resolved_key
from mmalign.suite import readme
from mmalign.suite.launch import Planner, data_changes, state_dir
from mmalign.suite.spec import Suite, expand
from mmalign.suite.subsets import subset_metrics


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def suite_runs(suite: Suite, db: Path | None = None) -> tuple[list[dict[str, Any]],
                                                             dict[str, str], dict[str, int]]:
    """The store's runs of this suite's cells, the variant name of each resolved config,
    and how many cells are completed, failed or not run."""
    from mmalign.results import ResultsStore

    cells = expand(suite)
    stored = [r for r in ResultsStore(db).runs()
              if r.get("config") and r["method"] in suite.methods]
    if not stored:  # nothing to match: no need to resolve (or generate) any task
        return [], {}, {"cells": len(cells), "completed": 0, "failed": 0,
                        "not run": len(cells)}
    planner = Planner(suite, db)
    reqs = [planner.request(c) for c in cells]
    names = {planner.key(r, with_seed=False): c.variant for c, r in zip(cells, reqs,
                                                                        strict=True)}
    task_of = {planner.key(r): planner.task_data(r) for r in reqs}
    wanted = set(task_of)
    runs = [r for r in stored if resolved_key(r["config"]) in names]
    # a run that read other data than its cell's task resolves to now is not the cell's
    stale = [r for r in runs if resolved_key(r["config"], True) in task_of
             and data_changes(r, task_of[resolved_key(r["config"], True)])]
    runs = [r for r in runs if not any(r is s for s in stale)]
    for run in runs:
        _add_columns(run, suite.columns)
        if suite.subsets and run["status"] == "completed":
            run["metrics"].setdefault("test", {}).update(
                subset_metrics(run, suite.subsets, suite.subset_metrics))
    done = {resolved_key(r["config"], True) for r in runs if r["status"] == "completed"}
    failed = {resolved_key(r["config"], True) for r in runs if r["status"] == "failed"} - done
    counts = {"cells": len(wanted), "completed": len(done & wanted),
              "failed": len(failed & wanted)}
    counts["not run"] = counts["cells"] - counts["completed"] - counts["failed"]
    stale_done = {resolved_key(r["config"], True) for r in stale if r["status"] == "completed"}
    if stale_done - done:
        counts["completed on other data (stale)"] = len(stale_done - done)
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


def _verdict(p: stats.Paired) -> str:
    return {True: "distinguishable (p < 0.05)", False: "not distinguishable",
            None: "too few shared seeds"}[p.distinguishable]


def _ci(p: stats.Paired) -> str:
    return (f"[{p.delta_ci95[0]:+.4f}, {p.delta_ci95[1]:+.4f}]"
            if p.delta_ci95 else leaderboard.BLANK)


def _pv(p: stats.Paired) -> str:
    return f"{p.p_value:.3g}" if p.p_value is not None else leaderboard.BLANK


def _paired_table(board: Board, ref: Row, rows: list[Row]) -> list[str]:
    lines = [f"Against **{ref.method} · {ref.label}** (row minus reference, paired by seed; "
             "95% t-interval of the mean difference; two-sided paired t-test):", "",
             "| method | variant | metric | n | Δ | Δ 95% CI | p | verdict |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        for metric in board.metrics:
            p = board.paired(row, metric)
            if p is None:
                continue
            lines.append(f"| {row.method} | {_md(row.label)} | {metric} | {p.n} | "
                         f"{p.delta:+.4f} | {_ci(p)} | {_pv(p)} | {_verdict(p)} |")
    if len(lines) == 4:
        lines.append("| " + " | ".join([leaderboard.BLANK] * 8) + " |")
    return lines


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _group_rows(board: Board, suite: Suite, ref: Row, variant: str) -> list[Row]:
    """The rows paired with ``ref``, in the order report.pairs lists them."""
    order = suite.pairs[variant]
    rows = [r for r in board.measured if board.groups.get(r.key) is ref]
    return sorted(rows, key=lambda r: (order.index(r.name), r.method))


def _paired_sections(board: Board, suite: Suite) -> list[str]:
    if not suite.pairs:
        if board.reference is None:
            return [f"No reference row on {board.task}."]
        return _paired_table(board, board.reference,
                             [r for r in board.measured if r is not board.reference])
    lines = ["Each variant is paired with the reference of its group (`[report.pairs]` of "
             "the suite file); references are not compared with each other.", ""]
    for text in suite.against:
        method, variant = leaderboard.parse_against(text)
        ref = _reference(board, method, variant)
        lines += [f"### Against `{variant}`", ""]
        if ref is None:
            lines += [f"No completed run of {text} on {board.task} yet.", ""]
            continue
        lines += [*_paired_table(board, ref, _group_rows(board, suite, ref, variant)), ""]
    return lines


def _reference(board: Board, method: str, variant: str | None) -> Row | None:
    return next((r for r in board.references if r.method == method and r.name == variant),
                None)


def _effect(p: stats.Paired | None, higher_is_better: bool) -> str:
    """What the ablated ingredient does in one setting, read off method − ablation."""
    if p is None:
        return "not run"
    if p.distinguishable is None:
        return "too few seeds"
    if not p.distinguishable:
        return "no difference shown"
    return "helps" if (p.delta > 0) == higher_is_better else "hurts"


def _contrast(board: Board, suite: Suite) -> list[str]:
    """Each ablation in every setting side by side: the reference minus the ablation,
    paired within the setting. The settings' data differ, so no test spans them."""
    if not suite.contrast:
        return []
    settings = [leaderboard.parse_against(text) for text in suite.against]
    refs = [_reference(board, method, variant) for method, variant in settings]
    names = [variant or "" for _, variant in settings]
    head = ["ablation", "metric"]
    for name in names:
        head += [f"{name}: Δ = {name} − ablation [95% CI] (n)", f"{name}: p"]
    head.append("reading")
    lines = ["## The mechanism in each setting", "",
             "Δ is the reference minus the ablation on the seeds both share, so it is what "
             "the ingredient the ablation removes adds (↑: higher is better, so Δ > 0 is a "
             "gain; ↓: lower is better, so Δ < 0 is a gain); 95% t-interval of the paired "
             "difference, two-sided paired t-test. Each Δ is paired within its setting; the "
             "settings' data differ, so their Δs are set side by side, not tested against "
             "each other.", "",
             "| " + " | ".join(_md(h) for h in head) + " |", "|" + "---|" * len(head)]
    for label, variants in suite.contrast.items():
        for metric in board.metrics:
            higher = board.higher_is_better.get(metric, True)
            cells = [f"{_md(label)} ({', '.join(variants)})",
                     f"{metric} {'↑' if higher else '↓'}"]
            effects = []
            for (method, _), ref, name, variant in zip(settings, refs, names, variants,
                                                        strict=True):
                row = next((r for r in board.measured
                            if r.method == method and r.name == variant), None)
                p = (stats.paired(ref.by_seed(metric), row.by_seed(metric))
                     if ref is not None and row is not None else None)
                if p is None:
                    cells += [leaderboard.BLANK, leaderboard.BLANK]
                else:
                    cells += [f"{p.delta:+.4f} {_ci(p)} (n={p.n})",
                              _pv(p) + ("" if p.distinguishable else
                                        " (not distinguishable)")]
                effects.append(f"{name}: {_effect(p, higher)}")
            cells.append("; ".join(effects))
            lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


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


def _common_overrides(board: Board) -> dict[str, Any]:
    """The overrides every measured row shares (the suite's defaults, its budget), taken
    out of the row labels so that each label shows what sets its variant apart."""
    rows = board.measured
    if len(rows) < 2:
        return {}
    common = {k: v for k, v in rows[0].overrides.items()
              if all(k in r.overrides and r.overrides[k] == v for r in rows[1:])}
    for row in rows:
        row.overrides = {k: v for k, v in row.overrides.items() if k not in common}
    return common


def _boards(suite: Suite, runs: list[dict[str, Any]], names: dict[str, str]) -> list[Board]:
    from mmalign.plugins import get_host

    registry = get_host().registry
    primary = {e.name: list(e.obj.metrics) for e in registry.list("task")}
    sizes = {e.name: e.obj.default_size for e in registry.list("method")}
    against = None if suite.pairs else (
        suite.against[0] if suite.against else
        f"{suite.methods[0]}:{next(iter(suite.variants))}")
    boards = leaderboard.build_boards(runs, None, None, False, primary, against=against,
                                      default_sizes=sizes, names=names)
    for board in boards:
        if suite.pairs:
            _pair(board, suite, sizes)
        if suite.metrics:
            board.metrics = [m for m in suite.metrics if m in board.metrics]
    unknown = [m for m in suite.metrics
               if boards and not any(m in b.metrics for b in boards)]
    if unknown:
        raise ConfigError(f"{suite.path}: 'report.metrics' names '{unknown[0]}', which no "
                          "completed run of the suite recorded")
    return boards


def _pair(board: Board, suite: Suite, sizes: dict[str, str]) -> None:
    """Give each row of a report.pairs group its group's reference."""
    rows = board.measured
    for text in suite.against:
        method, variant = leaderboard.parse_against(text)
        ref = leaderboard.pick_reference(rows, (method, variant), sizes)
        if ref is None:
            continue
        board.references.append(ref)
        members = set(suite.pairs.get(variant or "", []))
        for row in rows:
            if row.name in members:
                board.groups[row.key] = ref


def recorded_steps(runs: list[dict[str, Any]], stage: str) -> str:
    """What the completed cells' provenance says they took (a budget planned before the
    planner asked the stage loader shows here as another count)."""
    steps = sorted({int(s) for r in runs if r.get("status") == "completed"
                    for s in [((r.get("extra") or {}).get("provenance") or {})
                              .get("stages", {}).get(stage, {}).get("optimizer_steps")]
                    if s is not None})
    if not steps:
        return "No completed cell recorded its optimizer steps."
    taken = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}–{steps[-1]}"
    return f"Recorded optimizer steps per completed cell ({stage} stage): {taken}."


def write_report(suite: Suite, out: Path, db: Path | None = None,
                 readme_path: Path | None = None) -> Path:
    """Write ``out/report.md`` and its PNG plots, and with ``readme_path`` the same
    report into that file's marked block; returns the report's path."""
    command = readme.command(suite.path, out, readme_path)
    if readme_path is not None:
        readme.check(readme_path, suite.path)  # a missing marker fails before any work
    runs, names, counts = suite_runs(suite, db)
    boards = _boards(suite, runs, names) if runs else []
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Suite `{suite.name}`", "",
             f"Generated by `{command}` from the results store.", "",
             "Cells: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + ".", ""]
    if suite.budget_steps is not None:
        lines += [f"Budget: {suite.budget_steps} optimizer steps per cell requested "
                  f"({suite.budget_stage}.epochs = ceil(steps / steps per epoch), early "
                  "stopping off). " + recorded_steps(runs, suite.budget_stage), ""]
    for board in boards:
        common = _common_overrides(board)
        shared = ("Every row also sets " + ", ".join(
            f"`{k}={v}`" for k, v in sorted(common.items())) + ".") if common else ""
        lines += ["## Leaderboard", "", *([shared, ""] if shared else []),
                  leaderboard.render_markdown(board), "",
                  "## Paired comparisons", "", *_paired_sections(board, suite), "",
                  *_contrast(board, suite),
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
    text = "\n".join(lines)
    atomic.write_text(path, text)
    if readme_path is not None:
        readme.embed(readme_path, suite.path, text, out)
    return path
