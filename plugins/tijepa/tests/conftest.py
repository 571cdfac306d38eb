"""Fixtures of the TI-JEPA tests."""

from __future__ import annotations

import pytest
from tijepa_toys import AbsentPlugin

from mmalign import plugins


@pytest.fixture
def absent_task(toy_plugin):
    """Registers a caption task without data beside mmalign's toy components."""
    plugins.get_host().add_module(AbsentPlugin(), "tijepa-toys", "mmalign-tijepa-tests")
    return toy_plugin
