"""Whether the process that owns a ``running`` row is gone, judged without guessing.

A pid means something only on its own machine, in its own boot, in its own PID
namespace: a run in a container (or on another host sharing the store) may have the
same hostname and a pid that is free here. So a row records host, boot id, PID
namespace and the process start time, and a run is judged dead only when all of the
first three match this process's and its pid is gone or now belongs to a process that
started at another time (a reused pid). Anything else stays ``running``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def boot_id() -> str | None:
    return _read("/proc/sys/kernel/random/boot_id")


def pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """Clock ticks after boot at which ``pid`` started (``/proc/PID/stat`` field 22)."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def me() -> dict[str, Any]:
    """What a row records about the process that writes it."""
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pid": pid,
        "boot_id": boot_id(),
        "pid_ns": pid_namespace(),
        "proc_start": start_time(pid),
    }


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(row: dict[str, Any]) -> bool:
    """True only when ``row``'s process provably ended (see the module docstring)."""
    here = me()
    if not row.get("pid") or row.get("host") != here["host"]:
        return False
    if row.get("boot_id") != here["boot_id"] or row.get("pid_ns") != here["pid_ns"]:
        return False  # another boot, container or machine: its pids are not ours to read
    if not _exists(row["pid"]):
        return True
    recorded = row.get("proc_start")
    return recorded is not None and start_time(row["pid"]) not in (None, recorded)
