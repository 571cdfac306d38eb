"""Describing a composed method without data: components and parameter counts.

It prepares every stage exactly as a run does (:func:`mmalign.runner.run.prepare_stage`,
stand-in tasks included) but loads no data and trains nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmalign.plugins import get_host
from mmalign.runner.compose import make_task
from mmalign.runner.distributed import Dist
from mmalign.runner.run import (
    RunContext,
    RunRequest,
    component_parameters,
    prepare_stage,
    resolve,
)


def describe_method(
    method_name: str, size: str | None, task: str | None, sets: dict[str, Any]
) -> dict[str, Any]:
    """Build every stage's model as a run would and count its parameters."""
    req = RunRequest(method=method_name, task=task, size=size, sets=sets)
    method, run_cfg, cfg = resolve(req)
    registry = get_host().registry
    run = RunContext(req, run_cfg, cfg, Path(), torch.device("cpu"), Dist(), registry)
    main_task = make_task(registry, run_cfg.task, run_cfg.method_config["task"], None)
    previous: dict[str, nn.Module] = {}
    stages: dict[str, dict[str, dict[str, int]]] = {}
    for index, stage in enumerate(method.stages(cfg, main_task)):
        prepared = prepare_stage(run, index, stage, main_task, previous, load_data=False)
        previous[stage.name] = prepared.model
        stages[stage.name] = component_parameters(
            prepared.model, prepared.encoders, prepared.objective
        )
    return {"method": run_cfg.method, "size": run_cfg.size, "task": run_cfg.task,
            "stages": stages}
