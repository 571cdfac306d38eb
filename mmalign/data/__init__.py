"""Dataset readers, embedded dataset generators and data tooling.

Every task reads its data from one folder: ``--data-dir`` when given, else
``MMALIGN_DATA/<task>``, else ``MMALIGN_HOME/data/<task>``. Embedded tasks generate
their data into that folder in the real on-disk format of their counterpart and are
then read by the same reader, so the readers are exercised on every run.
"""

from __future__ import annotations

from pathlib import Path

from mmalign.paths import data_root


def resolve_data_dir(task_name: str, override: Path | None = None) -> Path:
    """The folder a task reads: ``override`` itself, else ``data_root()/<task_name>``."""
    if override is not None:
        return Path(override).expanduser()
    return data_root() / task_name


__all__ = ["resolve_data_dir"]
