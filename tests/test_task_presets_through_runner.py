"""A structured task's ``structure`` preset must survive the runner's ``task.*`` path.

The runner once started the task config from the dumped defaults (the premise's knob
values), so ``--set task.structure=control`` gave a task named control with premise
data. These tests go through :func:`make_task`, the path ``mmalign run`` and the
suites take, for every registered task whose config has presets.
"""

from __future__ import annotations

import pytest

from mmalign.data.synth.structure import StructuredConfig
from mmalign.plugins import get_registry
from mmalign.runner.compose import make_task

REGISTRY = get_registry()
STRUCTURED = sorted(
    e.name for e in REGISTRY.list("task")
    if issubclass(getattr(e.obj, "Config", object), StructuredConfig)
)


def test_every_structured_embedded_task_is_covered() -> None:
    assert {"synth-clash", "synth-speakers", "synth-events", "synth-scenes"} <= set(STRUCTURED)


@pytest.mark.parametrize("name", STRUCTURED)
@pytest.mark.parametrize("structure", ["premise", "control"])
def test_structure_set_on_the_command_line_fills_its_preset(name, structure, tmp_path) -> None:
    cls = REGISTRY.get("task", name)
    task = make_task(REGISTRY, name, {"structure": structure}, tmp_path)
    preset = cls.Config.PRESETS[structure]
    assert {k: getattr(task.config, k) for k in preset} == preset
    assert task.config == cls.Config(structure=structure)


@pytest.mark.parametrize("name", STRUCTURED)
def test_premise_and_control_differ_through_the_runner(name, tmp_path) -> None:
    premise = make_task(REGISTRY, name, {"structure": "premise"}, tmp_path).config
    control = make_task(REGISTRY, name, {"structure": "control"}, tmp_path).config
    differing = [k for k in type(premise).PRESETS["control"]
                 if getattr(premise, k) != getattr(control, k)]
    assert differing, f"{name}: control has the premise's knobs"


def test_an_explicit_knob_beats_the_preset(tmp_path) -> None:
    task = make_task(REGISTRY, "synth-clash", {"structure": "control", "contradiction": 0.4},
                     tmp_path)
    assert task.config.contradiction == 0.4
    assert task.config.shared == type(task.config).PRESETS["control"]["shared"]
