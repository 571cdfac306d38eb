"""A regenerated task with the same sample ids must not reuse the old features: the
store files features under the content of each input, not the sample id."""

from typing import Any

import numpy as np

from mmalign import plugins
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import TaskData
from mmalign.testing import ToyPairsTask, toy_encoders


class VersionedPairs(ToyPairsTask):
    """toy-pairs whose generator version shifts every "a" vector (same sample ids)."""

    name = "toy-versioned"
    version = 1

    def load(self) -> TaskData:
        data = super().load()
        data.source = f"generated v{type(self).version}"
        for samples in data.splits.values():
            for s in samples:
                s.inputs["a"] = np.asarray(s.inputs["a"]) + (type(self).version - 1)
        return data


class _Plugin:
    @staticmethod
    @hookimpl
    def mmalign_register(registry: Any) -> None:
        registry.add("task", "toy-versioned", VersionedPairs)


def test_new_content_gets_new_features_and_old_content_is_reused(
    toy_plugin, run_method, monkeypatch
):
    from mmalign.testing import ToyVectorEncoder

    plugins.get_host().add_module(_Plugin(), "versioned", "mmalign-tests")
    encoded: list[int] = []
    original = ToyVectorEncoder.forward
    monkeypatch.setattr(ToyVectorEncoder, "forward",
                        lambda self, x: encoded.append(len(x)) or original(self, x))
    sets = {"encoders": toy_encoders(), "train.epochs": 1}
    run_method("late-fusion", task="toy-versioned", **sets)
    assert sum(encoded) == 2 * 240
    encoded.clear()
    run_method("late-fusion", task="toy-versioned", **sets)
    assert encoded == []  # same content: nothing is encoded again
    monkeypatch.setattr(VersionedPairs, "version", 2)
    run_method("late-fusion", task="toy-versioned", **sets)
    assert sum(encoded) == 240  # every "a" changed and is encoded; "b" is reused
