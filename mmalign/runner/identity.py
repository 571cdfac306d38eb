"""Run identity: a run id no other process can get, and the data folder a run is bound to.

A timestamp plus the config hash is not unique: identical runs started in the same
second (a determinism check, a suite on two machines sharing a store) would share one
directory and one results row. A random suffix plus an exclusive ``mkdir`` makes the
claim atomic on the file system, so two processes can never end up with one id.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

from mmalign import paths
from mmalign.config import RunConfig
from mmalign.errors import ResumeError

#: hex digits of randomness in a run id (32 bits: a collision also needs the same second
#: and config hash, and is then caught by the exclusive mkdir)
SUFFIX_BYTES = 4


def new_run_id(run_cfg: RunConfig, chash: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    suffix = secrets.token_hex(SUFFIX_BYTES)
    return f"{stamp}-{run_cfg.method}-{run_cfg.task}-{chash[:8]}-{suffix}"


def claim_run_dir(run_cfg: RunConfig, chash: str, runs_dir: Path | None = None) -> Path:
    """Create a new, empty run directory that belongs to this process alone."""
    parent = runs_dir if runs_dir is not None else paths.runs_dir()
    while True:
        run_dir = parent / new_run_id(run_cfg, chash)
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        return run_dir


def data_dir_of(task: str, override: Path | None) -> str:
    """The absolute data folder a run reads (``--data-dir``, ``MMALIGN_DATA`` or the home)."""
    return str(paths.task_data_dir(task, override).expanduser().resolve())


def resume_data_dir(saved: RunConfig, asked: Path | None) -> Path | None:
    """The data folder a resumed run must use: the one it started on.

    Resuming on other data would finish training on a different dataset and record the
    result as if it were one run, so a different ``--data-dir`` is refused.
    """
    if saved.data_dir is None:  # a run recorded before data folders were saved
        return asked
    if asked is not None and data_dir_of(saved.task, asked) != saved.data_dir:
        raise ResumeError(
            f"Cannot resume on other data: the run started on {saved.data_dir}, "
            f"you asked for --data-dir {asked}. Leave out --data-dir to use the saved folder."
        )
    return Path(saved.data_dir)


def load_run_config(run_dir: Path) -> RunConfig:
    """``run.json`` of a run to resume, with a named error when it is damaged."""
    path = run_dir / "run.json"
    try:
        return RunConfig.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ResumeError(f"{path}: cannot read the run description ({first})") from None


def refuse_changes(saved: RunConfig, sets: dict[str, Any]) -> None:
    """A resume continues the recorded run: overrides that differ from the recorded ones
    would silently not apply, so they are refused (repeating the same ones is fine)."""
    recorded = json.loads(json.dumps(saved.overrides))
    asked = json.loads(json.dumps(sets, default=str))
    changed = sorted(k for k, v in asked.items() if recorded.get(k) != v)
    if changed:
        raise ResumeError(
            f"--resume continues the recorded run with its own settings; these overrides "
            f"differ from it: {', '.join(changed)}. Drop them or start a new run"
        )
