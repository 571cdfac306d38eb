"""The command line, in process through typer's runner."""

import json

from typer.testing import CliRunner

from mmalign.cli import app
from mmalign.results import ResultsStore

runner = CliRunner()
TOY = ["--task", "toy-pairs", "--quiet", "--set", "train.epochs=2",
       "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
       "--set", 'encoders.b={name="toy-vector", config={seed=1}}']


def test_run_prints_metrics_and_compare_reads_them(toy_plugin):
    for seed in ("0", "1"):
        out = runner.invoke(app, ["run", "late-fusion", *TOY, "--seed", seed])
        assert out.exit_code == 0, out.output
        assert "f1_weighted" in out.output and "run directory" in out.output
    assert len(ResultsStore().runs(status="completed")) == 2
    board = runner.invoke(app, ["compare", "--task", "toy-pairs", "--format", "json"])
    (task,) = json.loads(board.output)
    assert task["metrics"][0] == "acc" and task["rows"][0]["n"] == 2
    md = runner.invoke(app, ["compare", "--format", "markdown"])
    assert "| late-fusion | default · " in md.output and "| 2 |" in md.output
    out = runner.invoke(app, ["run", "late-fusion", *TOY, "--set", "dropout=0.5"])
    assert out.exit_code == 0, out.output
    board = runner.invoke(app, ["compare", "--task", "toy-pairs", "--format", "json"])
    rows = json.loads(board.output)[0]["rows"]
    assert sorted(r["n"] for r in rows) == [1, 2]  # the variant gets its own row
    assert any("dropout=0.5" in r["variant"] for r in rows)
    listing = runner.invoke(app, ["runs", "--format", "json"])
    assert {r["status"] for r in json.loads(listing.output)} == {"completed"}


def test_unknown_key_is_a_clear_error(toy_plugin):
    out = runner.invoke(app, ["run", "late-fusion", *TOY, "--set", "train.epocs=3"])
    assert out.exit_code == 2
    assert "Unknown config key 'train.epocs'" in out.output and "epochs" in out.output


def test_missing_data_names_path_fetch_and_stand_in(mmalign_home):
    out = runner.invoke(app, ["run", "late-fusion", "--task", "mvsa-single", "--quiet"])
    assert out.exit_code == 2
    text = " ".join(out.output.split())
    assert "mvsa-single" in text and "mmalign data fetch" in text
    assert "synth-sentiment" in text and str(mmalign_home) in text


def test_info_json_counts_parameters(toy_plugin):
    out = runner.invoke(app, ["info", "late-fusion", "--task", "toy-pairs", "--format", "json",
                              "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
                              "--set", 'encoders.b={name="toy-vector", config={seed=1}}'])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    train = report["stages"]["train"]
    assert train["model.head"] == {"trainable": 32 * 3 + 3, "frozen": 0}


PAPER_TITLES = {
    "ti-jepa": "TI-JEPA: An Innovative Energy-based Joint Embedding Strategy",
    "spp-scl": "SPP-SCL: Semi-Push-Pull Supervised Contrastive Learning",
    "infonce": "A Comparison of Late-fusion Training Strategies for Quad-modal",
    "tecafn": "Text-centered cross-sample fusion network",
}


def test_list_cites_each_method_paper(mmalign_home):
    rows = {r["name"]: r for r in json.loads(
        runner.invoke(app, ["list", "method", "--format", "json"]).output)}
    for method, title in PAPER_TITLES.items():
        assert rows[method]["paper"].startswith(title), rows[method]
    assert "paper" not in rows["late-fusion"]  # a baseline, no paper of its own
    table = runner.invoke(app, ["list", "method"], env={"COLUMNS": "400"})
    assert table.exit_code == 0 and "paper: TI-JEPA: An Innovative" in table.output


def test_list_json_and_kind_filter(mmalign_home):
    out = runner.invoke(app, ["list", "method", "--format", "json"])
    rows = json.loads(out.output)
    assert {r["kind"] for r in rows} == {"method"}
    late = next(r for r in rows if r["name"] == "late-fusion")
    assert late["plugin"] == "builtin" and late["distribution"] == "mmalign"
