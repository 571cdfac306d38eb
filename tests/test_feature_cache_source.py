"""A regenerated task (same sample ids, new content) must not reuse cached features."""

from typing import Any

from mmalign import paths, plugins
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import TaskData
from mmalign.testing import ToyPairsTask, toy_encoders


class VersionedPairs(ToyPairsTask):
    """toy-pairs whose ``source`` names a generator version, as embedded tasks' do."""

    name = "toy-versioned"
    version = 1

    def load(self) -> TaskData:
        data = super().load()
        data.source = f"generated v{type(self).version}"
        return data


class _Plugin:
    @staticmethod
    @hookimpl
    def mmalign_register(registry: Any) -> None:
        registry.add("task", "toy-versioned", VersionedPairs)


def test_a_new_data_source_gets_new_features(toy_plugin, run_method, monkeypatch):
    plugins.get_host().add_module(_Plugin(), "versioned", "mmalign-tests")
    sets = {"encoders": toy_encoders(), "train.epochs": 1}
    run_method("late-fusion", task="toy-versioned", **sets)
    first = set(paths.cache_dir().glob("*.pt"))
    run_method("late-fusion", task="toy-versioned", **sets)
    assert set(paths.cache_dir().glob("*.pt")) == first  # same data: the cache is reused
    monkeypatch.setattr(VersionedPairs, "version", 2)
    run_method("late-fusion", task="toy-versioned", **sets)
    assert len(set(paths.cache_dir().glob("*.pt")) - first) == len(first)  # 2 encoders x 3 splits
