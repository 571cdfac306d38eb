"""Atomic file writes: write a temporary file beside the target, then ``os.replace``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch


def _atomic(path: Path, mode: str, write: Callable[[IO[Any]], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    _atomic(path, "w", lambda fh: fh.write(text))


def write_bytes(path: Path, data: bytes) -> None:
    _atomic(path, "wb", lambda fh: fh.write(data))


def torch_save(obj: Any, path: Path) -> None:
    _atomic(path, "wb", lambda fh: torch.save(obj, fh))
