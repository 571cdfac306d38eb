"""Every stage's data is checked before any work starts.

A multi-stage method (e.g. a pretraining stage on COCO, then fine-tuning on MVSA) must not
spend hours on its first stage and then find the second stage's data missing, nor quietly
pretrain on a stand-in: a stage whose real data is absent falls back to its embedded
stand-in only when the user passes ``--allow-stand-in``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmalign.errors import DataError
from mmalign.interfaces import Method
from mmalign.runner.compose import make_task


def _available(task: Any) -> bool:
    return task.embedded or task.is_present()


def check_data(
    registry: Any, method: Method, cfg: Any, task_name: str, task_sets: dict[str, Any],
    data_dir: Path | None, allow_stand_in: bool,
) -> None:
    """Raise :class:`DataError` for the first stage whose data is missing (and not allowed
    to fall back); the message names the stage, the task and how to get its data."""
    main = make_task(registry, task_name, task_sets, data_dir)
    if not _available(main):
        raise DataError(main.missing_message())
    for stage in method.stages(cfg, main):
        if stage.task in (None, task_name):
            continue
        task = make_task(registry, stage.task, stage.task_configs.get(stage.task, {}), None)
        if _available(task):
            continue
        if stage.fallback_task is None:
            raise DataError(f"stage '{stage.name}': {task.missing_message()}")
        if not allow_stand_in:
            raise DataError(
                f"stage '{stage.name}' trains on '{task.name}', whose data is missing: "
                f"{task.missing_message()} Or pass --allow-stand-in to train this stage on "
                f"the embedded stand-in '{stage.fallback_task}' (the run is then marked "
                "stand-in in every leaderboard)."
            )
