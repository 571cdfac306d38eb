"""``mmalign config``: the resolved configuration, every component with its options,
printed as a TOML file that ``--config`` reads back to the same run."""

from __future__ import annotations

import json
import tomllib

from typer.testing import CliRunner

from mmalign.cli import app
from mmalign.config import load_file

runner = CliRunner()
SWAP = ["--task", "toy-pairs", "--set",
        'encoders={a={name="toy-vector"}, b={name="toy-vector", config={seed=1}}}',
        "--set", "fusion.name=projected-concat", "--set",
        'objective.terms=[{name="cross-entropy"},{name="toy-align",weight=0.1}]']


def test_toml_lists_components_with_their_defaults_and_reads_back(toy_plugin, tmp_path):
    result = runner.invoke(app, ["config", "late-fusion", *SWAP])
    assert result.exit_code == 0, result.output
    tree = tomllib.loads(result.output)
    assert tree["fusion"] == {"name": "projected-concat",
                              "config": {"dim": 128, "normalize": True}}
    terms = tree["objective"]["config"]["terms"]
    assert [(t["name"], t["weight"]) for t in terms] == [("cross-entropy", 1.0),
                                                          ("toy-align", 0.1)]
    assert tree["head"] == {"name": "linear", "config": {}}
    assert "# fusion 'projected-concat'; registered: concat, projected-concat" in result.output
    path = tmp_path / "printed.toml"
    path.write_text(result.output)
    assert load_file(path)["fusion.config.dim"] == 128
    again = runner.invoke(app, ["config", "late-fusion", "--task", "toy-pairs", "--config",
                                str(path)])
    assert again.exit_code == 0, again.output
    reread = tomllib.loads(again.output)
    for key in ("fusion", "head", "objective", "train", "dropout", "task"):
        assert reread[key] == tree[key], key


def test_json_lists_every_swappable_key(toy_plugin):
    result = runner.invoke(app, ["config", "late-fusion", *SWAP, "--format", "json"])
    view = json.loads(result.output)
    keys = {c["key"]: c["name"] for c in view["components"]}
    assert keys == {"encoders.a": "toy-vector", "encoders.b": "toy-vector",
                    "fusion": "projected-concat", "head": "linear",
                    "objective": "weighted-sum", "objective.config.terms[0]": "cross-entropy",
                    "objective.config.terms[1]": "toy-align"}
    assert view["task"] == "toy-pairs" and view["task_config"]["samples"] == 240


def test_bad_names_exit_2_with_one_line(toy_plugin):
    result = runner.invoke(app, ["config", "late-fusion", "--set", "fusion.name=concatt"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Did you mean 'concat'" in lines[0]
    result = runner.invoke(app, ["config", "late-fusion", "--format", "yaml"])
    assert result.exit_code == 2
