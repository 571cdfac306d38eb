"""The worked examples of docs/plugins.md run as written: a Fusion, an Objective and a
Method, registered like a plugin's and mixed with the built-ins."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from mmalign.testing import toy_encoders

DOC = Path(__file__).parents[1] / "docs" / "plugins.md"
ENCODERS = {"encoders": toy_encoders(), "train.epochs": 3, "train.lr": 0.01}


@pytest.fixture
def examples(toy_plugin, monkeypatch):
    section = DOC.read_text().split("## Worked examples", 1)[1].split("\n## ", 1)[0]
    module = types.ModuleType("docs_plugin_example")  # pydantic resolves names in it
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        exec(compile(block, str(DOC), "exec"), module.__dict__)
    namespace = module.__dict__
    toy_plugin.add("fusion", "gated-sum", namespace["GatedSum"])
    toy_plugin.add("objective", "cosine-align", namespace["CosineAlign"])
    toy_plugin.add("method", "gated-align", namespace["GatedAlign"])
    return namespace


def test_documented_method_trains_with_its_documented_parts(examples, run_method):
    result = run_method("gated-align", task="toy-pairs",
                        **{**ENCODERS, "encoders": {"a": toy_encoders()["a"],
                                                    "b": toy_encoders()["b"]}})
    first = result.extra["stages"]["train"]["history"][0]
    assert {"train_cross-entropy", "train_cosine-align"} <= set(first)
    assert result.metrics["test"]["acc"] > 0.5


def test_documented_fusion_and_objective_inside_late_fusion(examples, run_method):
    result = run_method("late-fusion", task="toy-pairs", **ENCODERS, **{
        "fusion.name": "gated-sum",
        "objective.terms": [{"name": "cross-entropy"}, {"name": "cosine-align", "weight": 0.1}]})
    assert result.metrics["test"]["acc"] > 0.5
