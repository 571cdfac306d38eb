"""``mmalign config METHOD`` resolves for every registered method (timm-style: one case
per registry entry), so a new config field cannot break the command for one of them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mmalign.cli import app
from mmalign.config_view import resolved_config
from mmalign.plugins import get_registry

REGISTRY = get_registry()
METHODS = REGISTRY.names("method")


@pytest.mark.parametrize("method", METHODS)
def test_config_resolves_with_every_component_expanded(method) -> None:
    view = resolved_config(REGISTRY, method, None, None, {})
    assert view["method"] == method
    train = view["config"].get("train") or {}
    assert "num_workers" not in train  # execution-only: not part of the method's identity
    assert view["components"], f"{method}: no swappable component listed"
    for comp in view["components"]:
        assert comp["name"] in comp["choices"]


def test_config_command_prints_toml_for_late_fusion() -> None:
    result = CliRunner().invoke(app, ["config", "late-fusion"])
    assert result.exit_code == 0, result.output
    assert "[train]" in result.output and 'name = "concat"' in result.output
