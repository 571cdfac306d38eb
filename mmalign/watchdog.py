"""A time limit on code mmalign does not control: importing and registering a plugin.

A plugin that hangs in its import or in ``mmalign_register`` would otherwise freeze
every command with no output at all. A hung Python thread cannot be interrupted from
outside, so when the limit passes the watchdog names the plugin on stderr and ends the
process with exit status 2. ``MMALIGN_PLUGIN_TIMEOUT`` sets the limit in seconds
(0 turns it off).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

TIMEOUT_ENV = "MMALIGN_PLUGIN_TIMEOUT"
DEFAULT_TIMEOUT = 120.0
EXIT_STATUS = 2


def limit_seconds() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def _expire(what: str, limit: float, hint: str) -> None:
    sys.stderr.write(
        f"error: {what} did not return within {limit:g} s ({TIMEOUT_ENV}); {hint}\n"
    )
    sys.stderr.flush()
    os._exit(EXIT_STATUS)


@contextmanager
def time_limit(what: str, hint: str) -> Iterator[None]:
    """End the process with a message naming ``what`` if the block overruns the limit."""
    limit = limit_seconds()
    if limit <= 0:
        yield
        return
    timer = threading.Timer(limit, _expire, args=(what, limit, hint))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
