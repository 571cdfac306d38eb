"""Every registered component, parametrized over the whole registry (timm's habit):
a plugin that registers something malformed fails here, not in a user's run."""

import pytest

import mmalign
from mmalign.interfaces import Encoder, Fusion, Method, Objective, Task
from mmalign.registry import KINDS

REGISTRY = mmalign.get_registry()
BASES = {"encoder": Encoder, "fusion": Fusion, "objective": Objective, "task": Task,
         "method": Method}


@pytest.mark.parametrize("entry", REGISTRY.list(), ids=lambda e: f"{e.kind}:{e.name}")
def test_entry_is_well_formed(entry):
    assert entry.kind in KINDS and entry.summary, "every component needs a docstring summary"
    base = BASES.get(entry.kind)
    if base is not None and isinstance(entry.obj, type):
        assert issubclass(entry.obj, base)
    if entry.kind == "metric":
        assert callable(entry.obj)


@pytest.mark.parametrize("entry", REGISTRY.list("task"), ids=lambda e: e.name)
def test_task_declares_what_the_runner_needs(entry):
    task = entry.obj
    assert task.name == entry.name and task.modalities and task.metrics
    assert task.label_type in ("classification", "regression", "retrieval", "none")
    if task.label_type == "classification":
        assert len(task.label_names) >= 2
    if task.stand_in:
        assert task.stand_in in REGISTRY.names("task")


@pytest.mark.parametrize("entry", REGISTRY.list("method"), ids=lambda e: e.name)
def test_method_defaults_and_sizes_resolve(entry):
    from mmalign.runner.compose import method_config

    method = entry.obj()
    assert method.default_task in REGISTRY.names("task")
    for size in method.sizes:
        cfg = method_config(method, method.default_task, size, [])
        for ref in getattr(cfg, "encoders", {}).values():
            assert ref.name in REGISTRY.names("encoder")
    for task_name in method.task_overrides:
        assert task_name in REGISTRY.names("task")
        method_config(method, task_name, method.default_size, [])
