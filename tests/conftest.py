"""Core test configuration: torch on one thread so tests share the 2-core machine well."""

import pytest
import torch

from mmalign import plugins

torch.set_num_threads(1)


@pytest.fixture
def toy_env(mmalign_home, monkeypatch):
    """Toy components in this process and in every worker process (suite cells)."""
    monkeypatch.setenv("MMALIGN_PLUGINS", "mmalign.toys")
    plugins.reset()
    yield mmalign_home
    plugins.reset()
