import csv
import io
import json
import math

import numpy as np
import pytest
from rich.console import Console
from scipy import stats as sps
from typer.testing import CliRunner

from mmalign import leaderboard, stats
from mmalign.cli import app
from mmalign.errors import ConfigError
from mmalign.results import ResultsStore


def _run(method, seed, acc, overrides=None, status="completed", task="t", size="default",
         dropout=0.1, extra=None):
    config = {"method": method, "task": task, "size": size, "seed": seed,
              "overrides": overrides or {},
              "method_config": {"method": {"dropout": dropout,
                                           "encoders": {"text": {"name": "minilm-l6"}}},
                                "task": {}}}
    return {"run_id": f"{method}-{seed}-{acc}", "method": method, "size": size, "seed": seed,
            "task": task, "status": status, "config": config, "extra": extra or {},
            "metrics": {"test": {"acc": acc, "f1_weighted": acc - 0.1},
                        "validation": {"acc": 0.0}}}


BASE = [_run("a", s, v) for s, v in zip((0, 1, 2), (0.70, 0.72, 0.74), strict=True)]
DROP = [_run("a", s, v, {"dropout": 0.3}, dropout=0.3)
        for s, v in zip((0, 1, 2), (0.75, 0.76, 0.80), strict=True)]


def test_ci_matches_a_hand_computed_t_interval_and_scipy():
    s = stats.summarize([0.70, 0.72, 0.74])
    # mean 0.72, sample std 0.02, t(0.975, df=2) = 4.302653, half width 4.302653*0.02/sqrt(3)
    assert s.n == 3 and s.mean == pytest.approx(0.72) and s.std == pytest.approx(0.02)
    assert s.ci95 == pytest.approx((0.670317, 0.769683), abs=1e-6)
    sem = sps.sem([0.70, 0.72, 0.74])  # independent: scipy's sem (ddof=1) and t quantile
    half = sps.t.ppf(0.975, 2) * sem
    assert s.ci95 == pytest.approx((0.72 - half, 0.72 + half))
    assert stats.summarize([0.5]).ci95 is None and stats.summarize([0.5]).std is None


def test_paired_test_matches_hand_computation_and_scipy():
    row, ref = {0: 0.75, 1: 0.76, 2: 0.80, 7: 0.9}, {0: 0.70, 1: 0.72, 2: 0.74}
    p = stats.paired(row, ref)  # seed 7 is not shared and must be ignored
    # differences 0.05, 0.04, 0.06: mean 0.05, sd 0.01, t = 0.05 / (0.01/sqrt 3) = 8.6603;
    # for df=2 the t CDF is 1/2 + t/(2 sqrt(t^2+2)), so p = 1 - t/sqrt(t^2+2)
    t = 0.05 / (0.01 / math.sqrt(3))
    assert p.n == 3 and p.delta == pytest.approx(0.05)
    assert p.p_value == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-6)
    assert p.p_value == pytest.approx(sps.ttest_rel([0.75, 0.76, 0.80],
                                                    [0.70, 0.72, 0.74]).pvalue)
    half = sps.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert p.delta_ci95 == pytest.approx((0.05 - half, 0.05 + half))
    assert p.distinguishable is True
    noisy = stats.paired({0: 0.7, 1: 0.9, 2: 0.6}, {0: 0.71, 1: 0.7, 2: 0.72})
    assert noisy.p_value > 0.05 and noisy.distinguishable is False
    assert stats.paired({5: 1.0}, {0: 1.0}) is None


def test_rows_group_by_resolved_config_and_show_the_variant():
    (board,) = leaderboard.build_boards(BASE + DROP, None, None, False, {"t": ["acc"]})
    assert [(r.label, r.seeds) for r in board.rows] == [("default · dropout=0.3", 3),
                                                        ("default", 3)]
    # same override string, different resolved default: never averaged together
    changed = [_run("a", 0, 0.5, dropout=0.2), _run("a", 1, 0.6, dropout=0.2)]
    (board,) = leaderboard.build_boards(BASE + changed, None, None, False, {"t": ["acc"]})
    assert sorted(r.label for r in board.rows) == ["default · config: dropout=0.1",
                                                   "default · config: dropout=0.2"]
    assert sorted(r.seeds for r in board.rows) == [2, 3]


def test_against_adds_paired_columns_in_every_format():
    runs = BASE + DROP + [_run("b", 0, 0.71), _run("b", 1, 0.73), _run("b", 2, 0.72)]
    (board,) = leaderboard.build_boards(runs, None, None, False, {"t": ["acc"]}, against="a")
    assert board.reference.label == "default" and board.reference.method == "a"
    data = json.loads(leaderboard.render_json([board]))[0]
    rows = {(r["method"], r["variant"]): r for r in data["rows"]}
    drop = rows[("a", "default · dropout=0.3")]["metrics"]["acc"]
    assert set(drop) >= {"mean", "std", "ci95", "n", "delta", "delta_ci95", "p_value"}
    assert drop["delta"] == pytest.approx(0.05) and drop["ci95"][0] < drop["mean"]
    assert drop["p_value"] == pytest.approx(sps.ttest_rel([0.75, 0.76, 0.80],
                                                          [0.70, 0.72, 0.74]).pvalue)
    b = rows[("b", "default")]["metrics"]["acc"]
    assert b["distinguishable"] is False
    md = leaderboard.render_markdown(board)
    assert "(not distinguishable)" in md and "| reference |" in md and "nan" not in md
    table = csv.DictReader(io.StringIO(leaderboard.render_csv([board])))
    ref = [r for r in table if r["variant"] == "default" and r["method"] == "a"]
    assert ref[0]["delta"] == "" and ref[0]["n"] == "3"
    board_drop = leaderboard.build_boards(runs, None, None, False, {"t": ["acc"]},
                                          against="a:dropout=0.3")[0]
    assert board_drop.reference.overrides == {"dropout": 0.3}
    with pytest.raises(ConfigError, match="no measured row.*; no measured row of zzz"):
        leaderboard.build_boards(runs, None, None, False, {"t": ["acc"]}, against="zzz")
    with pytest.raises(ConfigError, match=r"a's rows: default; default · dropout=0.3$"):
        leaderboard.build_boards(runs, None, None, False, {"t": ["acc"]}, against="a:nope")


def test_an_undefined_metric_is_counted_and_shown_not_silently_dropped():
    runs = [_run("a", s, 0.7 + s / 100) for s in range(3)]
    runs[1]["metrics"]["test"]["f1_weighted"] = float("nan")  # e.g. Corr of a constant output
    b = _run("b", 0, 0.6)
    b["metrics"]["test"]["f1_weighted"] = float("nan")
    (board,) = leaderboard.build_boards(runs + [b], None, None, False,
                                        {"t": ["acc", "f1_weighted"]})
    rows = {r["method"]: r for r in json.loads(leaderboard.render_json([board]))[0]["rows"]}
    f1 = rows["a"]["metrics"]["f1_weighted"]
    assert f1["n"] == 2 and f1["undefined_seeds"] == [1]
    assert f1["mean"] == pytest.approx(np.mean([0.6, 0.62]))
    assert rows["b"]["metrics"]["f1_weighted"] == {"mean": None, "std": None, "ci95": None,
                                                   "n": 0, "undefined_seeds": [0]}
    md = leaderboard.render_markdown(board)
    assert "(1 seed undefined)" in md and "undefined (1 seed)" in md and "nan" not in md


def test_rich_table_escapes_markup_and_blank_cells():
    runs = [_run("a", 0, 0.7, {"fusion.name": "[bold]x[/bold]"})]
    runs[0]["metrics"]["test"] = {"acc": 0.7}
    runs.append(_run("b", 0, 0.6))
    (board,) = leaderboard.build_boards(runs, None, None, False, {"t": ["acc", "f1_weighted"]})
    console = Console(record=True, width=250)
    console.print(leaderboard.render_rich(board))
    text = console.export_text()
    assert "fusion.name=[bold]x[/bold]" in text and "nan" not in text and "—" in text
    assert "[low, high] is the 95% Student-t" in " ".join(text.split())


def test_unknown_metric_is_an_error():
    with pytest.raises(ConfigError, match="Unknown --metric 'nope'"):
        leaderboard.build_boards(BASE, None, "nope", False, {"t": ["acc"]})


def test_reported_rows_only_next_to_matching_protocol(tmp_path):
    reg = tmp_path / "registry.toml"
    reg.write_text('[[reported]]\nmethod = "a"\nsize = "default"\ntask = "t"\n'
                   'source = "Paper, Table 4"\nmetrics = { acc = 0.9 }\n'
                   'protocol = { encoders = { text = "minilm-l6" } }\n')
    stand_in = [_run("a", s, 0.6, size="small",
                     extra={"provenance": {"stand_in": ["pretrain: synth-captions"]}})
                for s in (0, 1)]
    runs = BASE + DROP + stand_in
    (board,) = leaderboard.build_boards(runs, "t", None, True, {"t": ["acc"]}, registry_path=reg)
    assert [(r.reported, r.label) for r in board.rows] == [(False, "default"),
                                                           (True, "default")]
    apart = {r.label: d for r, d in board.apart}
    assert apart["default · dropout=0.3"] == ["overrides dropout=0.3"]
    assert apart["small"] == ["size small (reported: default)",
                              "stand-in data (pretrain: synth-captions)"]
    for text in (leaderboard.render_markdown(board), leaderboard.render_csv([board]),
                 leaderboard.render_json([board])):
        assert "stand-in" in text and "synth-captions" in text
    paper_enc = leaderboard.Row("a", "default", "t", reported=True,
                                protocol={"encoders": {"text": "bert-base-uncased"}})
    assert leaderboard.protocol_differences(board.rows[0], [paper_enc]) == [
        "encoders minilm-l6 (reported: bert-base-uncased)"]
    other = leaderboard.protocol_differences(
        leaderboard.measured_rows([_run("a", 0, 0.5)])[0],
        [leaderboard.Row("zz", "default", "t", reported=True)])
    assert other == ["no reported row for a"]


def _store_with_runs(path):
    store = ResultsStore(path)
    for run in BASE + DROP:
        store.start(run["run_id"], method=run["method"], task=run["task"], size=run["size"],
                    seed=run["seed"], config_hash="h", config=run["config"])
        store.update(run["run_id"], status="completed", metrics=run["metrics"],
                     extra=run["extra"])
    return store


def test_cli_compare_formats_against_and_errors(tmp_path, mmalign_home):
    db = tmp_path / "r.sqlite"
    _store_with_runs(db)
    cli = CliRunner()
    out = cli.invoke(app, ["compare", "--db", str(db), "--format", "json",
                           "--against", "late-fusion"])
    assert out.exit_code == 2 and "no measured row" in out.output
    out = cli.invoke(app, ["compare", "--db", str(db), "--format", "html"])
    assert out.exit_code == 2
    out = cli.invoke(app, ["compare", "--db", str(db), "--metric", "nope"])
    assert out.exit_code == 2 and "Unknown --metric 'nope'" in out.output
    out = cli.invoke(app, ["compare", "--db", str(db), "--format", "markdown", "--task", "t"])
    assert out.exit_code == 0 and "sample std (ddof=1)" in out.output
    assert "0.7200 ± 0.0200 [0.6703, 0.7697]" in out.output


def _read(samples):
    """A run's provenance of the data it read: toy-pairs generated with ``samples``."""
    data = {"task": "t", "kind": "embedded", "folder": f"/home/{samples}",
            "split_protocol": {"samples": samples, "seed": 0}, "generator_version": 1}
    return {"provenance": {"stages": {"train": {"data": data}}}}


def test_rows_split_by_the_data_read_not_only_by_the_config_keys():
    # one config (the user set no task key), but a changed task default between the
    # runs: seeds 0-1 read 240 samples, seed 2 read 500; never one row of three seeds
    runs = [_run("a", s, 0.7 + s / 100, extra=_read(240)) for s in (0, 1)]
    runs.append(_run("a", 2, 0.9, extra=_read(500)))
    (board,) = leaderboard.build_boards(runs, None, None, False, {"t": ["acc"]})
    got = sorted((r.label, r.seeds) for r in board.rows)
    assert got == [("default · config: data.train.split_protocol.samples=240", 2),
                   ("default · config: data.train.split_protocol.samples=500", 1)]
    assert len({r.key for r in board.rows}) == 1 and len({r.data_key for r in board.rows}) == 2
    # the folder is not identity (it moves between machines): same data, one row
    moved = [_run("a", s, 0.7, extra=_read(240)) for s in (0, 1)]
    moved[1]["extra"]["provenance"]["stages"]["train"]["data"]["folder"] = "/elsewhere"
    (board,) = leaderboard.build_boards(moved, None, None, False, {"t": ["acc"]})
    assert [r.seeds for r in board.rows] == [2]
    rows = json.loads(leaderboard.render_json([board]))[0]["rows"]
    assert rows[0]["data_key"] == leaderboard.data_key(moved[0]) != ""
    # a run recorded without provenance keeps grouping by its config alone
    assert leaderboard.data_key(_run("a", 0, 0.7)) == ""
