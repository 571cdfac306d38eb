"""Pytest fixtures and toy components for plugin authors (loaded as a pytest plugin).

Toy components need no data and no download, so a plugin's own tests can run a
full method end to end in seconds::

    def test_my_method_runs(toy_plugin, run_method):
        result = run_method("my-method", task="toy-pairs", **{"train.epochs": 2})
        assert result.metrics["test"]["acc"] > 0.5
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mmalign import plugins

if TYPE_CHECKING:
    from mmalign.registry import RegistryView

#: the toy classes live in :mod:`mmalign.toys`, imported (with torch) on first use, so
#: that this pytest plugin costs nothing in a test session that does not use it
_TOYS = ("ToyAlignObjective", "ToyPairsTask", "ToyPairsConfig", "ToyScoresTask",
         "ToyVectorConfig", "ToyVectorEncoder", "_ToyPlugin", "mmalign_register", "tiny_bert")


def __getattr__(name: str) -> Any:
    if name in _TOYS:
        return getattr(import_module("mmalign.toys"), name)
    raise AttributeError(f"module 'mmalign.testing' has no attribute '{name}'")


# ------------------------------------------------------------------------ fixtures


@pytest.fixture
def mmalign_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An isolated ``MMALIGN_HOME`` (runs, results, cache, data) and a fresh plugin host."""
    home = tmp_path / "mmalign-home"
    monkeypatch.setenv("MMALIGN_HOME", str(home))
    monkeypatch.delenv("MMALIGN_DATA", raising=False)
    plugins.reset()
    yield home
    plugins.reset()


@pytest.fixture
def toy_plugin(mmalign_home: Path) -> RegistryView:
    """Registers the toy encoder and task; returns a view on the registry."""
    from mmalign.toys import _ToyPlugin

    host = plugins.get_host()
    host.add_module(_ToyPlugin(), "toy", "mmalign-testing")
    return host.registry.view("toy", "mmalign-testing")


def toy_encoders(modalities: tuple[str, ...] = ("a", "b")) -> dict[str, dict[str, Any]]:
    """Encoder overrides that point every toy modality at the toy encoder."""
    return {m: {"name": "toy-vector", "config": {"seed": i}} for i, m in enumerate(modalities)}


@pytest.fixture
def run_method(mmalign_home: Path) -> Callable[..., Any]:
    """Run a method quietly and return its :class:`~mmalign.runner.RunResult`."""
    from mmalign.runner import RunRequest, execute

    def run(method: str, task: str | None = None, seed: int = 0,
            allow_stand_in: bool = False, size: str | None = None, **sets: Any) -> Any:
        return execute(RunRequest(method=method, task=task, seed=seed, sets=sets, quiet=True,
                                  allow_stand_in=allow_stand_in, size=size))

    return run


def limit_free_disk(monkeypatch: pytest.MonkeyPatch, free_bytes: int) -> None:
    """Make every free-disk query report ``free_bytes`` (the feature store's fit check)."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 0, free_bytes))
