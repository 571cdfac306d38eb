"""The Python twins of the command line, for notebooks: :func:`run` and :func:`load_run`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmalign.artefacts import LoadedRun
from mmalign.artefacts import load_run as _load_run


def run(
    method: str,
    task: str | None = None,
    *,
    size: str | None = None,
    seed: int = 0,
    sets: dict[str, Any] | None = None,
    config_file: Path | None = None,
    data_dir: Path | None = None,
    device: str | None = None,
    use_cache: bool = True,
    resume: str | None = None,
    quiet: bool = True,
    allow_stand_in: bool = False,
    loggers: list[str] | None = None,
    results_db: Path | None = None,
) -> Any:
    """``mmalign run`` as a function: trains, records the run, returns its
    :class:`~mmalign.runner.RunResult` (``metrics``, ``run_id``, ``run_dir``, ``extra``).

    ``sets`` takes the ``--set`` keys as a dict: ``{"train.epochs": 3, "dropout": 0.3}``.
    """
    from mmalign.runner import RunRequest, execute

    return execute(RunRequest(
        method=method, task=task, size=size, seed=seed, sets=dict(sets or {}),
        config_file=config_file, data_dir=data_dir, device=device, use_cache=use_cache,
        resume=resume, quiet=quiet, results_db=results_db, allow_stand_in=allow_stand_in,
        loggers=list(loggers or []),
    ))


def load_run(run_id: str | Path, device: str | None = None) -> LoadedRun:
    """A completed run's trained model (by run id or run directory); ``.predict()``."""
    return _load_run(run_id, device)
