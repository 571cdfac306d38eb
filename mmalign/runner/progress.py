"""rich progress bars for feature extraction, epochs and batches, with throughput; silent
when not a TTY or with --quiet (then :class:`mmalign.live.EpochLog` prints one line per
epoch instead, and the extraction its one line of size and memory estimates)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Steps (batches, epochs) per second: throughput, next to the time left."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.2f}/s", style="cyan")


def make_progress(quiet: bool) -> Progress:
    console = Console(stderr=True)
    enabled = not quiet and sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=not enabled,
        transient=True,
    )


#: the run's progress display while it is shown, so that code far below the runner (the
#: feature extraction) can add a bar without every caller passing it down
_SHOWN: ContextVar[Progress | None] = ContextVar("mmalign_progress", default=None)


@contextmanager
def shown(progress: Progress) -> Iterator[Progress]:
    """Display ``progress`` and make it the one :func:`bar` adds to."""
    token = _SHOWN.set(progress)
    try:
        with progress:
            yield progress
    finally:
        _SHOWN.reset(token)


@contextmanager
def bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar on the shown display (none: a no-op); yields ``advance(n)``."""
    progress = _SHOWN.get()
    if progress is None or progress.disable:
        yield lambda n: None
        return
    task = progress.add_task(description, total=total, info="")
    yield lambda n: progress.advance(task, n)
