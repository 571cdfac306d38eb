"""Live run logging: every epoch is appended to the run directory as it happens
(``history.jsonl`` and ``history-<stage>.csv``), printed as one line when stderr is not a
terminal (SLURM logs), and sent to logger plugins.

A logger plugin implements the ``mmalign_loggers`` hook (see :mod:`mmalign.hookspecs`)
and returns ``{name: factory}``; ``--logger NAME`` calls
``factory(run_dir=..., run_id=..., config=...)`` and gets an object with
``log_epoch(stage, row, step)`` and ``close()``. TensorBoard ships built in.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mmalign.errors import ConfigError
from mmalign.suggest import did_you_mean


class RunLogger(Protocol):
    def log_epoch(self, stage: str, row: dict[str, float], step: int) -> None: ...

    def close(self) -> None: ...


class TensorBoardLogger:
    """Scalars per epoch under ``<run_dir>/tensorboard`` (``tensorboard --logdir``)."""

    def __init__(self, run_dir: Path, run_id: str, config: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", f"```\n{json.dumps(config, indent=2)}\n```")

    def log_epoch(self, stage: str, row: dict[str, float], step: int) -> None:
        epoch = int(row.get("epoch", step))
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{stage}/{key}", value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def builtin_loggers() -> dict[str, Callable[..., RunLogger]]:
    return {"tensorboard": TensorBoardLogger}


def available_loggers() -> dict[str, Callable[..., RunLogger]]:
    from mmalign.plugins import get_host

    out: dict[str, Callable[..., RunLogger]] = {}
    for found in get_host().pm.hook.mmalign_loggers():
        out.update(found or {})
    return out


def check_names(names: list[str]) -> None:
    """An unknown logger name is an error before any work."""
    if not names:
        return
    known = available_loggers()
    for name in names:
        if name not in known:
            raise ConfigError(f"Unknown logger '{name}'.{did_you_mean(name, known)} "
                              f"Loggers: {', '.join(sorted(known)) or 'none'}")


def make_loggers(names: list[str], run_dir: Path, run_id: str,
                 config: dict[str, Any]) -> list[RunLogger]:
    """The loggers asked for; an unknown name is an error before training starts."""
    check_names(names)
    known = available_loggers() if names else {}
    return [known[name](run_dir=run_dir, run_id=run_id, config=config) for name in names]


class EpochLog:
    """The ``on_epoch`` callback of one stage: files, plain-text line, logger plugins."""

    def __init__(self, run_dir: Path, stage: str, loggers: list[RunLogger],
                 quiet: bool, epochs: int) -> None:
        self.run_dir, self.stage, self.loggers = Path(run_dir), stage, loggers
        self.epochs = epochs
        self.plain = not quiet and not sys.stderr.isatty()
        self.started = time.time()
        self.csv_fields: list[str] | None = None

    def __call__(self, row: dict[str, float]) -> None:
        record = {"stage": self.stage, "time": round(time.time() - self.started, 3), **row}
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / "history.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._csv(record)
        step = int(row.get("epoch", 0))
        for logger in self.loggers:
            logger.log_epoch(self.stage, row, step)
        if self.plain:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                              if k != "epoch" and isinstance(v, float))
            elapsed = time.time() - self.started
            print(f"[{self.stage}] epoch {step + 1}/{self.epochs} ({elapsed:.1f} s): {shown}",
                  file=sys.stderr, flush=True)

    def _csv(self, record: dict[str, Any]) -> None:
        path = self.run_dir / f"history-{self.stage}.csv"
        if self.csv_fields is None:
            if path.exists():  # a resumed stage keeps the columns it started with
                with open(path, newline="") as fh:
                    self.csv_fields = next(csv.reader(fh), None)
            if not self.csv_fields:
                self.csv_fields = list(record)
                with open(path, "w", newline="") as fh:
                    csv.writer(fh).writerow(self.csv_fields)
        with open(path, "a", newline="") as fh:
            csv.DictWriter(fh, self.csv_fields, extrasaction="ignore").writerow(record)
