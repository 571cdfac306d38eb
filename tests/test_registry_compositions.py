"""Every registered fusion inside every method that declares it compatible (timm's
tests/test_models.py idea): the composition builds from the registry and takes one
optimizer step on toy features with a finite loss.

A method declares compatibility through its contracts: its ``Config`` has a
``fusion`` component key, and its :meth:`~mmalign.interfaces.Method.check` accepts
the fusion for the task (labels, modalities, feature keys, the objective's needs).
"""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import mmalign
from mmalign import plugins
from mmalign.errors import ConfigError
from mmalign.interfaces import FusionRef, StepContext
from mmalign.runner.compose import check_component_refs, check_method_task, method_config
from mmalign.runner.run import stage_context
from mmalign.testing import ToyPairsTask, ToyScoresTask

REGISTRY = mmalign.get_registry()
BATCH = 12


class ToyImageTextTask(ToyPairsTask):
    """Toy classes over modalities named like a paired image-text benchmark."""

    name = "toy-image-text"
    modalities = ("image", "text")


class ToyImageTextScores(ToyScoresTask):
    """Toy regression scores over image and text."""

    name = "toy-image-text-scores"
    modalities = ("image", "text")


def _fusion_methods() -> list[str]:
    return [
        e.name for e in REGISTRY.list("method")
        if getattr(e.obj.Config.model_fields.get("fusion"), "annotation", None) is FusionRef
    ]


def _conforms(fusion: str) -> bool:
    """Whether the fusion's constructor is the contract's ``(config, inputs)``."""
    params = inspect.signature(REGISTRY.get("fusion", fusion).__init__).parameters
    return "inputs" in params


PAIRS = [
    pytest.param(
        method, fusion, task,
        id=f"{method}-{fusion}-{task.label_type}",
        marks=[] if _conforms(fusion) else [pytest.mark.xfail(
            strict=True, reason=f"fusion '{fusion}' is not on the (config, inputs) contract")],
    )
    for method in _fusion_methods()
    for fusion in REGISTRY.names("fusion")
    for task in (ToyImageTextTask, ToyImageTextScores)
]


def _compatible(method_name: str, fusion: str, task_cls: type) -> tuple[object, object, object]:
    registry = plugins.get_registry()  # the test's own host, with the toy components
    method = registry.get("method", method_name)()
    task = task_cls()
    encoders = {m: {"name": "toy-vector", "config": {"seed": i}}
                for i, m in enumerate(task.modalities)}
    sets = {"encoders": encoders, "fusion.name": fusion}
    cfg = method_config(method, method.default_task, method.default_size, [sets])
    check_component_refs(registry, cfg)
    check_method_task(registry, method, method_name, cfg, task)
    return method, cfg, task


@pytest.fixture(autouse=True)
def toy_components(toy_plugin):
    return toy_plugin


@pytest.mark.parametrize(("method_name", "fusion", "task_cls"), PAIRS)
def test_fusion_in_method_takes_one_finite_step(method_name, fusion, task_cls):
    try:
        method, cfg, task = _compatible(method_name, fusion, task_cls)
    except ConfigError as exc:
        if not _conforms(fusion):
            raise
        pytest.skip(f"declared incompatible: {exc}")
    stage = method.stages(cfg, task)[-1]
    ctx, encoders = stage_context(stage, task, cfg, {}, torch.device("cpu"))
    torch.manual_seed(0)
    raw = torch.randn(BATCH, 8)
    batch = {m: enc(raw + i) for i, (m, enc) in enumerate(encoders.items())}
    batch["index"] = torch.arange(BATCH)
    batch["label"] = (torch.arange(BATCH) % 3 if task.label_type == "classification"
                      else torch.linspace(-3, 3, BATCH))
    try:
        model, objective = stage.build(ctx)
    except ConfigError as exc:  # the contract wants this from Method.check, before data
        pytest.xfail(f"{method_name} refuses '{fusion}' only when built, not in check(): {exc}")
    params = [p for p in [*model.parameters(), *objective.parameters()] if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1)
    before = [p.detach().clone() for p in params]

    def optimize(loss):
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.train()
    ctx_step = StepContext(model=model, batch=batch, optimize=optimize, forward=model, step=0,
                           epoch=0, total_steps=1, device=torch.device("cpu"),
                           generator=torch.Generator().manual_seed(0))
    try:
        losses = objective.training_step(ctx_step)
    except ConfigError as exc:
        pytest.xfail(f"{method_name} refuses '{fusion}' only in forward, not in check(): {exc}")
    assert math.isfinite(losses["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))
