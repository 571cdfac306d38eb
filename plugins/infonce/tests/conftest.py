"""Fixtures of the infonce tests."""

from __future__ import annotations

import pytest
from infonce_toys import ToyPlugin

from mmalign import plugins


@pytest.fixture
def toy_categories(toy_plugin):
    """Registers the toy category task beside mmalign's toy components."""
    plugins.get_host().add_module(ToyPlugin(), "infonce-toys", "mmalign-infonce-tests")
    return toy_plugin
