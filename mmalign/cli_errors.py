"""How the CLI reports a failure: one plain line on stderr and an exit code.

Messages are printed as plain text, never parsed as Rich markup: a path such as
``data/[/x]`` or a key such as ``[train/image]`` must come out exactly as written (and
an unbalanced tag must not crash the printer). Faults of the environment (a read-only or
full disk, a damaged results store) are not bugs of mmalign, so they get the same one
line, naming the path, instead of a traceback; ``MMALIGN_TRACEBACK=1`` shows it anyway.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from mmalign.errors import MMAlignError

#: exit status of a run stopped by Ctrl-C (SIGINT) and by SIGTERM, as shells report them
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_HINTS = {
    errno.ENOSPC: "free some space or point MMALIGN_HOME at a larger disk",
    errno.EROFS: "MMALIGN_HOME must be writable for this command; set it to a writable folder",
    errno.EACCES: "check the permissions, or set MMALIGN_HOME to a folder of your own",
    errno.ENAMETOOLONG: "a file name is longer than the file system allows",
    errno.EEXIST: "a file stands where mmalign needs a folder (is MMALIGN_HOME a file?)",
    errno.ENOTDIR: "a file stands where mmalign needs a folder (is MMALIGN_HOME a file?)",
}


def print_error(console: Console, message: object, label: str = "error:") -> None:
    """``label message`` with only the label styled; the message is literal text."""
    line = Text(label, style="bold red")
    line.append(" ")
    line.append(str(message))
    console.print(line, highlight=False, soft_wrap=True)


def plain(text: object) -> Text:
    """A table cell or line shown exactly as written (no markup)."""
    return Text(str(text))


def describe_fault(exc: BaseException) -> str | None:
    """One line for an environment fault, or ``None`` when ``exc`` is not one."""
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        what = exc.strerror or str(exc)
        hint = _HINTS.get(exc.errno or 0)
        text = f"{where}: {what}" if where else what
        return f"{text} ({hint})" if hint else text
    if isinstance(exc, sqlite3.Error):
        return f"the results store failed: {exc}"
    return None


def report(console: Console, exc: BaseException) -> int:
    """Print ``exc`` as the CLI reports it and return the exit status (re-raise if a bug)."""
    if isinstance(exc, MMAlignError):
        print_error(console, exc)
        return 2
    from mmalign.signals import Terminated

    if isinstance(exc, Terminated):
        print_error(console, "terminated (SIGTERM); the run is recorded as killed", "stopped:")
        return EXIT_TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        print_error(console, "interrupted; the run is recorded as killed", "stopped:")
        return EXIT_INTERRUPTED
    fault = describe_fault(exc)
    if fault is None or os.environ.get("MMALIGN_TRACEBACK") == "1":
        raise exc
    print_error(console, fault)
    return 1


def exit_with(console: Console, exc: BaseException) -> None:
    sys.exit(report(console, exc))


def repair_store(db: Path | None) -> Path | None:
    """Move the results store aside when it cannot be opened; ``None`` if it is fine."""
    from mmalign import paths
    from mmalign.results import ResultsStore, StoreError, move_aside

    try:
        ResultsStore(db)
    except StoreError:
        return move_aside(Path(db) if db is not None else paths.results_db())
    return None
