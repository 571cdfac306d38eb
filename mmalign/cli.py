"""The ``mmalign`` command line (typer)."""

from __future__ import annotations

import json
import logging
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mmalign.cli_errors import exit_with, print_error, repair_store, report
from mmalign.errors import MMAlignError
from mmalign.signals import Terminated, sigterm_as_interrupt

app = typer.Typer(
    help="Multimodal alignment methods as composable, benchmarkable plugins.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)
Format = Annotated[str, typer.Option("--format", "-f", help="table or json")]


def _fail(exc: MMAlignError) -> None:
    print_error(err, exc)
    raise typer.Exit(2)


def _registry() -> Any:
    from mmalign.plugins import get_registry

    return get_registry()


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


@app.command("list")
def list_components(
    kind: Annotated[str | None, typer.Argument(help="encoder, fusion, objective, task, "
                                                    "method or metric")] = None,
    pattern: Annotated[str | None, typer.Option("--filter", help="glob on the name")] = None,
    fmt: Format = "table",
) -> None:
    """Every registered component with its kind, plugin, distribution and summary."""
    try:
        entries = _registry().list(kind, pattern)
    except MMAlignError as exc:
        _fail(exc)
    if fmt == "json":
        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return
    table = Table("kind", "name", "plugin", "distribution", "summary")
    for e in entries:
        summary = f"{e.summary}\npaper: {e.paper}" if e.paper else e.summary
        table.add_row(e.kind, e.name, e.plugin, e.distribution, escape(summary))
    console.print(table)


@app.command()
def plugins(fmt: Format = "table") -> None:
    """Loaded plugins with their modules, distributions and versions."""
    from mmalign.plugins import get_host

    try:
        infos = get_host().plugins
    except MMAlignError as exc:
        _fail(exc)
    if fmt == "json":
        print(json.dumps([i.__dict__ for i in infos], indent=2))
        return
    table = Table("plugin", "module", "distribution", "version")
    for i in infos:
        table.add_row(i.name, i.module, i.distribution, i.version)
    console.print(table)


@app.command()
def run(
    method: Annotated[str, typer.Argument(help="a registered method, e.g. late-fusion")],
    task: Annotated[str | None, typer.Option(help="default: the method's embedded task")] = None,
    size: Annotated[str | None, typer.Option(help="a size preset of the method")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="override a config key: --set train.lr=1e-4 (repeatable)")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file of overrides")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="the task's data folder")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1 ...")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="recompute features")] = False,
    data_fraction: Annotated[float | None, typer.Option(
        help="use this share of every split (same as --set data.fraction=F)")] = None,
    store_dtype: Annotated[str | None, typer.Option(
        help="fp16 (default), bf16 or fp32 feature store (--set data.store_dtype=...)")] = None,
    resume: Annotated[str | None, typer.Option(help="run id or run directory")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    allow_stand_in: Annotated[bool, typer.Option(
        "--allow-stand-in", help="a stage whose real data is missing trains on its embedded "
                                 "stand-in (the row is marked stand-in)")] = False,
    loggers: Annotated[list[str] | None, typer.Option(
        "--logger", help="send each epoch to a logger plugin, e.g. tensorboard "
                         "(repeatable)")] = None,
) -> None:
    """Train and evaluate METHOD on a task; the result is recorded in the results store."""
    from mmalign.config import parse_sets
    from mmalign.runner import RunRequest, execute

    try:
        overrides = parse_sets(sets or [])
        if data_fraction is not None:
            overrides["data.fraction"] = data_fraction
        if store_dtype is not None:
            overrides["data.store_dtype"] = store_dtype
        req = RunRequest(method=method, task=task, size=size, seed=seed,
                         sets=overrides, config_file=config, data_dir=data_dir,
                         device=device, use_cache=not no_cache, resume=resume, quiet=quiet,
                         allow_stand_in=allow_stand_in, loggers=list(loggers or []))
        with sigterm_as_interrupt():
            result = execute(req)
    except MMAlignError as exc:
        _fail(exc)
    except Terminated as exc:
        raise typer.Exit(report(err, exc)) from None
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return
    for note in result.extra.get("notices", []):
        print_error(err, note, "notice:")
    table = Table(title=f"{method} · run {result.run_id} · {result.wall_time:.1f} s",
                  title_justify="left")
    splits = list(result.metrics)
    names = sorted({m for s in splits for m in result.metrics[s]},
                   key=lambda m: ("/" in m, m))
    table.add_column("metric")
    for s in splits:
        table.add_column(s, justify="right")
    for name in names:
        table.add_row(name, *(f"{result.metrics[s].get(name, float('nan')):.4f}"
                              for s in splits))
    console.print(table)
    console.print(f"run directory: {result.run_dir}", highlight=False)


@app.command()
def info(
    method: Annotated[str, typer.Argument()],
    size: Annotated[str | None, typer.Option()] = None,
    task: Annotated[str | None, typer.Option()] = None,
    sets: Annotated[list[str] | None, typer.Option("--set")] = None,
    fmt: Format = "table",
) -> None:
    """The composed model: components with trainable and frozen parameter counts."""
    from mmalign.config import parse_sets
    from mmalign.inspect_model import describe_method

    try:
        report = describe_method(method, size, task, parse_sets(sets or []))
    except MMAlignError as exc:
        _fail(exc)
    if fmt == "json":
        print(json.dumps(report, indent=2))
        return
    console.print(f"[bold]{report['method']}[/bold] size={report['size']} "
                  f"task={report['task']}")
    for stage, comps in report["stages"].items():
        table = Table("component", "trainable", "frozen", title=f"stage {stage}",
                      title_justify="left")
        for name, counts in comps.items():
            table.add_row(name, f"{counts['trainable']:,}", f"{counts['frozen']:,}")
        console.print(table)


class ConfigFormat(StrEnum):
    toml = "toml"
    json = "json"


@app.command("config")
def config_command(
    method: Annotated[str, typer.Argument(help="a registered method, e.g. late-fusion")],
    size: Annotated[str | None, typer.Option(help="a size preset of the method")] = None,
    task: Annotated[str | None, typer.Option(help="default: the method's embedded task")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="override a config key: --set fusion.name=concat (repeatable)")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML file of overrides")] = None,
    fmt: Annotated[ConfigFormat, typer.Option(
        "--format", "-f", help="toml (a valid --config file) or json")] = ConfigFormat.toml,
) -> None:
    """The resolved configuration: every swappable component with all its options."""
    from mmalign import config_view
    from mmalign.config import parse_sets

    try:
        view = config_view.resolved_config(_registry(), method, size, task,
                                           parse_sets(sets or []), config)
    except MMAlignError as exc:
        _fail(exc)
    text = config_view.render_json(view) if fmt == ConfigFormat.json else (
        config_view.render_toml(view))
    print(text, end="" if text.endswith("\n") else "\n")


class BoardFormat(StrEnum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@app.command()
def compare(
    task: Annotated[str | None, typer.Option()] = None,
    metric: Annotated[str | None, typer.Option(help="sort by this metric")] = None,
    fmt: Annotated[BoardFormat, typer.Option(
        "--format", "-f", help="table, markdown, csv or json")] = BoardFormat.table,
    reported: Annotated[bool, typer.Option("--reported",
                                           help="show the papers' reported rows")] = False,
    against: Annotated[str | None, typer.Option(
        "--against",
        help="METHOD[:VARIANT]: paired differences on shared seeds vs this row")] = None,
    db: Annotated[Path | None, typer.Option(help="results database")] = None,
) -> None:
    """Leaderboards: rows per resolved configuration, n, mean ± sample std, 95% CI."""
    from mmalign import leaderboard
    from mmalign.results import ResultsStore

    try:
        runs = ResultsStore.for_reading(db).runs(task=task)
        registry = _registry()
        primary = {e.name: list(e.obj.metrics) for e in registry.list("task")}
        sizes = {e.name: e.obj.default_size for e in registry.list("method")}
        boards = leaderboard.build_boards(runs, task, metric, reported, primary,
                                          against=against, default_sizes=sizes)
    except MMAlignError as exc:
        _fail(exc)
    if not boards:
        err.print("No completed runs" + (f" for task {task}" if task else "") + ".")
        return
    if fmt is BoardFormat.json:
        print(leaderboard.render_json(boards))
    elif fmt is BoardFormat.csv:
        print(leaderboard.render_csv(boards), end="")
    elif fmt is BoardFormat.markdown:
        print("\n".join(leaderboard.render_markdown(b) for b in boards))
    else:
        for board in boards:
            console.print(leaderboard.render_rich(board))


@app.command()
def runs(
    run_id: Annotated[str | None, typer.Argument(help="one run: its provenance")] = None,
    task: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    fmt: Format = "table",
    db: Annotated[Path | None, typer.Option(help="results database")] = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="move a damaged results store aside so a new one can start")] = False,
) -> None:
    """Recorded runs with their status; with RUN_ID, that run's record and provenance."""
    from mmalign.results import ResultsStore

    if repair:
        moved = repair_store(db)
        console.print(f"moved the damaged store to {moved}" if moved else "the store is fine",
                      markup=False, highlight=False)
        return
    try:
        store = ResultsStore.for_reading(db)
    except MMAlignError as exc:
        _fail(exc)
    if run_id is not None:
        _show_run(store, run_id, fmt)
        return
    rows = store.runs(task=task, status=status)
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table()
    table.add_column("run id", overflow="fold")  # `runs RUN_ID` needs it whole: never cut
    for name in ("method", "task", "size", "seed", "status", "wall s", "skipped"):
        table.add_column(name)
    for r in rows:
        wall = f"{r['wall_time']:.1f}" if r["wall_time"] else ""
        table.add_row(r["run_id"], r["method"], r["task"], r["size"], str(r["seed"]),
                      r["status"], wall, str(r["skipped"]))
    console.print(table)


def _show_run(store: Any, run_id: str, fmt: str) -> None:
    from mmalign.errors import ConfigError
    from mmalign.provenance import flat_fields

    row = store.get(run_id)
    if row is None:
        _fail(ConfigError(f"No run '{run_id}' in {store.path}"))
    prov = (row["extra"] or {}).get("provenance")
    if fmt == "json":
        print(json.dumps(row, indent=2, default=str))
        return
    head = {k: row[k] for k in ("run_id", "method", "task", "size", "seed", "status",
                                "config_hash", "run_dir", "error") if row.get(k) is not None}
    head["variant"] = (row["extra"] or {}).get("variant") or "default"
    table = Table("field", "value", title=f"run {run_id}", title_justify="left")
    for key, value in flat_fields(head):
        table.add_row(key, escape(value))
    for key, value in flat_fields(prov or {"provenance": "not recorded (an older run)"}):
        if key.startswith("stages.") and ".history" in key:
            continue
        table.add_row(escape(key), escape(value))
    console.print(table)


suite_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(suite_app, name="suite",
              help="Run a benchmark suite (TOML) resumably and report it.")


@suite_app.command("run")
def suite_run(
    file: Annotated[Path, typer.Argument(help="the suite file (TOML)")],
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="cells run in parallel")] = 1,
    launcher: Annotated[str, typer.Option(
        help="local (processes) or submitit (SLURM; submitit's local executor without "
             "a cluster)")] = "local",
    data_dir: Annotated[Path | None, typer.Option(help="the tasks' data folder")] = None,
    db: Annotated[Path | None, typer.Option(help="results database")] = None,
    variant: Annotated[list[str] | None, typer.Option(
        "--variant", help="run only this variant's cells (repeatable)")] = None,
) -> None:
    """Run every cell not yet completed with the same resolved config; failures are
    recorded and the rest go on. Exit 1 when a cell failed."""
    from mmalign.suite.launch import run_suite
    from mmalign.suite.spec import load

    try:
        outcome = run_suite(load(file), jobs, launcher, db, data_dir,
                            echo=lambda line: console.print(line, highlight=False,
                                                            markup=False),
                            variants=variant)
    except MMAlignError as exc:
        _fail(exc)
    saved = sum(c.saved for c in outcome.cells if c.status == "skipped")
    console.print(
        f"suite {file.stem}: {outcome.count('completed')} completed, "
        f"{outcome.count('failed')} failed, {outcome.count('skipped')} skipped "
        f"(their earlier runs took {saved:.1f} s) in {outcome.wall:.1f} s", highlight=False)
    if outcome.count("failed"):
        raise typer.Exit(1)


@suite_app.command("report")
def suite_report(
    file: Annotated[Path, typer.Argument(help="the suite file (TOML)")],
    out: Annotated[Path, typer.Option("--out", help="folder for report.md and plots")],
    readme: Annotated[Path | None, typer.Option(
        "--readme", help="also write the report between this file's markers "
                         "'<!-- mmalign suite report FILE: begin -->' and '...: end -->'")] = None,
    db: Annotated[Path | None, typer.Option(help="results database")] = None,
) -> None:
    """Write OUT/report.md: the suite's leaderboard, paired comparisons and PNG plots
    (and, with --readme, the same report into a README's marked block)."""
    from mmalign.suite.report import write_report
    from mmalign.suite.spec import load

    try:
        path = write_report(load(file), out, db, readme)
    except MMAlignError as exc:
        _fail(exc)
    console.print(f"wrote {path}" + (f" and the block in {readme}" if readme else ""),
                  highlight=False)


def _mount_data_commands() -> None:
    try:
        from mmalign.cli_data import data_app
    except ImportError:
        return
    app.add_typer(data_app, name="data", help="List, check and fetch datasets.")


_mount_data_commands()


def entry() -> None:
    try:
        app()
    except Exception as exc:  # MMAlignError and environment faults: one line; bugs re-raise
        exit_with(err, exc)
