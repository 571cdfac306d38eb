"""``mmalign data``: list, check and fetch datasets (mounted by ``mmalign.cli``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from mmalign.cli_errors import plain, print_error
from mmalign.data import resolve_data_dir
from mmalign.errors import ConfigError, DataError, MMAlignError

if TYPE_CHECKING:
    from mmalign.interfaces import Task

data_app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)

TaskArg = Annotated[str, typer.Argument(help="task name (see `mmalign data list`)")]
DataDir = Annotated[Path | None, typer.Option("--data-dir", help="the task's data folder itself")]
Format = Annotated[str, typer.Option("--format", "-f", help="table or json")]
Sets = Annotated[
    list[str] | None, typer.Option("--set", help="task config key=value (e.g. split=clmlf)")
]


def _fail(exc: MMAlignError) -> None:
    print_error(err, exc)
    raise typer.Exit(2)


def _task_class(name: str) -> type[Task]:
    from mmalign.plugins import get_registry

    return get_registry().get("task", name)


def make_task(name: str, data_dir: Path | None, sets: list[str] | None = None) -> Task:
    """The registered task ``name`` reading from ``data_dir`` (default location if None)."""
    from mmalign.config import parse_sets

    cls = _task_class(name)
    try:
        config = cls.Config(**parse_sets(sets or []))
    except ValidationError as exc:
        raise ConfigError(f"Task '{name}' config: {exc}") from exc
    return cls(config, data_dir=resolve_data_dir(name, data_dir))


def _where(override: Path | None) -> str:
    if override is not None:
        return "--data-dir"
    return "MMALIGN_DATA" if os.environ.get("MMALIGN_DATA") else "MMALIGN_HOME"


@data_app.command("list")
def list_tasks(fmt: Format = "table") -> None:
    """Every task, whether its data is present, and the folder it reads."""
    from mmalign.data import catalog
    from mmalign.plugins import get_registry

    try:
        sources = catalog.sources()
        rows: list[dict[str, Any]] = []
        for entry in get_registry().list("task"):
            cls = entry.obj
            task = cls(data_dir=resolve_data_dir(entry.name))
            src = sources.get(entry.name)
            if cls.embedded:
                how = "embedded"  # generated on first use
            elif src is not None and src.files:
                how = "fetch"  # `mmalign data fetch` downloads it
            else:
                how = "request"  # `mmalign data fetch` says where to ask for it
            rows.append(
                {
                    "task": entry.name,
                    "embedded": bool(cls.embedded),
                    "present": task.is_present(),
                    "data_dir": str(task.data_dir),
                    "from": _where(None),
                    "get": how,
                    "stand_in": cls.stand_in,
                }
            )
    except MMAlignError as exc:
        _fail(exc)
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    table = Table("task", "present", "source", "stand-in", "data folder")
    for r in rows:
        mark = "[green]yes[/green]" if r["present"] else "[dim]no[/dim]"
        table.add_row(r["task"], mark, r["get"], r["stand_in"] or "", r["data_dir"])
    table.columns[0].no_wrap = True
    table.columns[4].overflow = "fold"
    console.print(table)
    console.print(
        "[dim]source: embedded = generated on first use; fetch = `mmalign data fetch TASK`; "
        "request = `mmalign data fetch TASK` says where to ask for it. Data folders: "
        f"--data-dir, else $MMALIGN_DATA/<task>, else $MMALIGN_HOME/data/<task> "
        f"(now from {_where(None)}).[/dim]"
    )


@data_app.command("check")
def check(
    task: TaskArg,
    data_dir: DataDir = None,
    fmt: Format = "table",
    sets: Sets = None,
) -> None:
    """Validate a dataset (decoding every file); exit 1 when it has problems."""
    from mmalign.data.check import check_task

    try:
        report = check_task(make_task(task, data_dir, sets))
    except MMAlignError as exc:
        _fail(exc)
    if fmt == "json":
        print(json.dumps(report, ensure_ascii=False))
    else:
        console.print(f"{report['task']} in {report['data_dir']}", markup=False)
        console.print(f"samples: {report['samples']}  splits: {report['splits']}")
        console.print(f"labels: {report['labels']}")
        if report["dropped"]:
            console.print(f"dropped by the dataset's rules: {report['dropped']}")
        if report["repaired"]:
            console.print(f"repaired: {report['repaired']}")
        if report["problems"]:
            table = Table("file", "problem")
            for p in report["problems"]:
                table.add_row(plain(p["file"]), plain(p["error"]))
            console.print(table)
        else:
            console.print("[green]no problems[/green]")
    if report["problems"]:
        raise typer.Exit(1)


@data_app.command("fetch")
def fetch(
    task: TaskArg,
    data_dir: DataDir = None,
    url: Annotated[str | None, typer.Option(help="download from this URL instead")] = None,
    sha256: Annotated[str | None, typer.Option(help="expected sha256 of the download")] = None,
    verify: Annotated[bool, typer.Option(help="require a matching sha256")] = True,
) -> None:
    """Download a task's data, verify its sha256, resume partial downloads and unpack."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from mmalign.data import catalog
    from mmalign.data import fetch as fetching

    try:
        instance = make_task(task, data_dir)
        assert instance.data_dir is not None
        if instance.embedded:
            instance.prepare()
            console.print(f"{task} is embedded: generated in {instance.data_dir}")
            return
        src = catalog.source(task)
        files = list(src.files) if src is not None else []
        if url is not None:
            files = [catalog.Download(url=url, sha256=sha256.lower() if sha256 else None)]
        elif sha256 is not None and len(files) == 1:
            files = [catalog.Download(files[0].url, sha256.lower(), files[0].strip, files[0].name)]
        if not files:
            request = src.request if src is not None and src.request else "see docs/datasets.md."
            raise DataError(
                f"Task '{task}' has no public download. {request} "
                f"Put the data in {instance.data_dir} or pass --data-dir."
            )
        quiet = not console.is_terminal
        with Progress(
            "{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=console, disable=quiet, transient=True,
        ) as bars:  # fmt: skip

            def progress(name: str) -> fetching.Progress:
                bar = bars.add_task(name, total=None)
                return lambda done, total: bars.update(bar, completed=done, total=total)

            done = fetching.fetch(task, files, instance.data_dir, verify, progress)
    except MMAlignError as exc:
        _fail(exc)
    for line in done:
        console.print(line, highlight=False)
    if not instance.is_present():
        _fail(DataError(instance.missing_message()))
    console.print(f"[green]{task} is ready[/green] in {instance.data_dir}")
