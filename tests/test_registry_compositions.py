"""Every registered fusion inside every method that declares it compatible (timm's
tests/test_models.py idea): the composition builds from the registry and takes one
optimizer step on toy features with a finite loss.

A method declares compatibility through its contracts: its ``Config`` has a
``fusion`` component key, and its :meth:`~mmalign.interfaces.Method.check` accepts
the fusion for the task (labels, modalities, feature keys, encoder layers, the
objective's needs). A composition that passes ``check`` must then build and step:
a refusal only when built or in forward is a failure here, not an expected one.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import mmalign
from mmalign import docs_mixing, plugins
from mmalign.compat import offered_layers
from mmalign.errors import ConfigError
from mmalign.interfaces import FusionRef, StepContext
from mmalign.runner.compose import (
    check_component_refs,
    check_method_task,
    make_task,
    method_config,
)
from mmalign.runner.run import stage_context
from mmalign.testing import ToyPairsTask, ToyScoresTask

REGISTRY = mmalign.get_registry()
BATCH = 12
#: hidden states every toy encoder returns as ``layers`` (SPP-SCL's HA weighs four)
TOY_LAYERS = 4


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
    encoders = {m: {"name": "toy-vector", "config": {"seed": i, "layers": TOY_LAYERS}}
                for i, m in enumerate(task.modalities)}
    sets = {"encoders": encoders, "fusion.name": fusion}
    cfg = method_config(method, method.default_task, method.default_size, [sets])
    check_component_refs(registry, cfg)
    check_method_task(registry, method, method_name, cfg, task)
    return method, cfg, task


@pytest.mark.parametrize(("method_name", "fusion", "task_cls"), PAIRS)
def test_fusion_in_method_takes_one_finite_step(method_name, fusion, task_cls, toy_plugin):
    try:
        method, cfg, task = _compatible(method_name, fusion, task_cls)
    except ConfigError as exc:
        if not _conforms(fusion):
            raise
        pytest.skip(f"declared incompatible: {exc}")
    _one_finite_step(method, cfg, task, f"{method_name} with '{fusion}'")


def _one_finite_step(method: Any, cfg: Any, task: Any, what: str) -> None:
    """Build the method's last stage on toy encoders and take one SGD step: the loss
    is finite and some trainable parameter moved."""
    stage = method.stages(cfg, task)[-1]
    ctx, encoders = stage_context(stage, task, cfg, {}, torch.device("cpu"))
    refs = stage.encoders or cfg.encoders
    torch.manual_seed(0)
    raw = torch.randn(BATCH, 8)
    batch: dict[str, Any] = {
        m: {k: v for k, v in enc(raw + i).items() if refs[m].keep is None or k in refs[m].keep}
        for i, (m, enc) in enumerate(encoders.items())
    }
    batch["index"] = torch.arange(BATCH)
    batch["label"] = (torch.linspace(-3, 3, BATCH) if task.label_type == "regression"
                      else torch.arange(BATCH) % 3)
    try:
        model, objective = stage.build(ctx)
    except ConfigError as exc:  # the contract wants this from Method.check, before data
        pytest.fail(f"{what} is refused only when built, not in check(): {exc}")
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
        pytest.fail(f"{what} is refused only in forward, not in check(): {exc}")
    assert math.isfinite(losses["loss"])
    assert any(not torch.equal(b, p) for b, p in zip(before, params, strict=True))


# ------------------------------------------------------- docs/mixing.md's claims


def test_the_mixing_page_is_current(mmalign_home):
    """docs/mixing.md is what ``python -m mmalign.docs_mixing`` renders now."""
    page = Path(__file__).parents[1] / "docs" / "mixing.md"
    assert page.read_text(encoding="utf-8") == docs_mixing.render(plugins.get_registry())


def _toy_like(task: Any) -> Any:
    """A toy task with ``task``'s modalities and label type (generated vectors)."""
    base = ToyScoresTask if task.label_type == "regression" else ToyPairsTask
    return type(f"Toy{type(task).__name__}", (base,), {
        "name": f"toy-{task.name}", "modalities": tuple(task.modalities),
        "label_type": task.label_type,
    })()


def _toy_encoders(registry: Any, refs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Toy encoders that offer what ``refs`` offer: the feature keys after ``keep``
    and as many ``layers`` (no weights, no data)."""
    return {
        m: {"name": "toy-vector", "keep": ref.keep,
            "config": {"seed": i, "layers": offered_layers(registry, ref, f"encoders.{m}")}}
        for i, (m, ref) in enumerate(refs.items())
    }


@pytest.mark.parametrize(
    "pairing", docs_mixing.compositions(REGISTRY),
    ids=lambda p: f"{p.method}-{p.row}-{docs_mixing.OBJECTIVE_COLUMNS_ID.get(p.column, '')}"
    .rstrip("-"),
)
def test_each_composition_the_mixing_page_calls_compatible_builds(pairing, toy_plugin):
    """Every ✓ of docs/mixing.md builds on toy features with the same keys and layers
    and takes one finite optimizer step; a ✗ is skipped with its reason."""
    registry = plugins.get_registry()
    why = docs_mixing.reason(registry, pairing.method, pairing.sets)
    if why is not None:
        pytest.skip(f"the page says ✗: {why}")
    method = registry.get("method", pairing.method)()
    cfg = method_config(method, pairing.task, method.default_size, [pairing.sets])
    task = _toy_like(make_task(registry, pairing.task, {}, None))
    sets = {**pairing.sets, "encoders": _toy_encoders(registry, cfg.encoders)}
    cfg = method_config(method, pairing.task, method.default_size, [sets])
    check_component_refs(registry, cfg)
    check_method_task(registry, method, pairing.method, cfg, task)
    _one_finite_step(method, cfg, task, f"{pairing.method} with {pairing.sets}")


def test_undeclarable_pairings_are_refused_when_resolved(toy_plugin, monkeypatch):
    """What the page marks ✗ for a reason beyond feature keys is refused by the run's
    own resolve step, before any data is read."""
    from mmalign.runner import RunRequest
    from mmalign.runner.run import resolve

    def no_load(self):
        raise AssertionError("data was loaded before the composition was checked")

    monkeypatch.setattr(ToyPairsTask, "load", no_load)
    toy = {"encoders": {m: {"name": "toy-vector", "config": {"seed": i}}
                        for i, m in enumerate("ab")}}
    # an objective with its own (multi-)step schedule cannot be a weighted-sum term
    terms = [{"name": "cross-entropy"}, {"name": "spp-scl", "weight": 0.1}]
    with pytest.raises(ConfigError, match=r"objective\.config\.terms\[1\]: objective 'spp-scl' "
                                          r"runs its own training step"):
        resolve(RunRequest(method="late-fusion", task="toy-pairs", sets={
            **toy, "fusion.name": "projected-concat", "objective.terms": terms}))
    # the JEPA loss reads the predictor's outputs, which no late-fusion model returns
    with pytest.raises(ConfigError, match=r"objective 'jepa' \(objective\) reads "
                                          r"'predictions, targets'"):
        resolve(RunRequest(method="late-fusion", task="toy-pairs",
                           sets={**toy, "objective.name": "jepa"}))
    # the CMF pairs exactly two modalities
    with pytest.raises(ConfigError, match=r"fusion 'spp-cmf' fuses exactly two modalities, "
                                          r"got \['text'\]"):
        resolve(RunRequest(method="late-fusion", task="synth-speakers",
                           sets={"fusion.name": "spp-cmf"}))
