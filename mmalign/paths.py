"""Where mmalign keeps what it writes: everything lives under ``MMALIGN_HOME``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """``MMALIGN_HOME``, default ``~/.mmalign``; created on first use."""
    path = Path(os.environ.get("MMALIGN_HOME", Path.home() / ".mmalign")).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_root(override: Path | None = None) -> Path:
    """``--data-dir`` beats ``MMALIGN_DATA`` beats ``MMALIGN_HOME/data``."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("MMALIGN_DATA")
    return Path(env).expanduser() if env else home() / "data"


def runs_dir() -> Path:
    return _sub("runs")


def cache_dir() -> Path:
    return _sub("cache")


def stages_dir() -> Path:
    return _sub("stages")


def results_db() -> Path:
    return home() / "results.sqlite"


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def task_data_dir(task: str, override: Path | None = None) -> Path:
    """A task's data folder: ``--data-dir`` itself, else ``data_root()/<task>``."""
    return Path(override).expanduser() if override is not None else data_root() / task


def registry_file() -> Path:
    """``registry.toml``: inside the installed package, or at the source tree's root."""
    here = Path(__file__).resolve().parent
    packaged = here / "registry.toml"
    return packaged if packaged.exists() else here.parent / "registry.toml"
