"""Describing a composed method without data: components and parameter counts."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmalign.plugins import get_host
from mmalign.runner.compose import make_task
from mmalign.runner.run import RunRequest, component_parameters, resolve, stage_context


def describe_method(
    method_name: str, size: str | None, task: str | None, sets: dict[str, Any]
) -> dict[str, Any]:
    """Build every stage's model as a run would and count its parameters."""
    method, run_cfg, cfg = resolve(RunRequest(method=method_name, task=task, size=size,
                                              sets=sets))
    registry = get_host().registry
    main_task = make_task(registry, run_cfg.task, run_cfg.method_config["task"], None)
    previous: dict[str, nn.Module] = {}
    stages: dict[str, dict[str, dict[str, int]]] = {}
    torch.manual_seed(0)
    for stage in method.stages(cfg, main_task):
        task_obj = main_task if stage.task in (None, run_cfg.task) else make_task(
            registry, stage.task, {}, None)
        ctx, encoders = stage_context(stage, task_obj, cfg, previous, torch.device("cpu"))
        model, objective = stage.build(ctx)
        previous[stage.name] = model
        stages[stage.name] = component_parameters(model, encoders, objective)
    return {"method": run_cfg.method, "size": run_cfg.size, "task": run_cfg.task,
            "stages": stages}
