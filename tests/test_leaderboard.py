import json

import pytest

from mmalign import leaderboard


def _run(method, size, seed, acc, status="completed", task="t"):
    return {"method": method, "size": size, "seed": seed, "task": task, "status": status,
            "extra": {}, "metrics": {"test": {"acc": acc, "f1_weighted": acc - 0.1},
                                     "validation": {"acc": 0.0}}}


RUNS = [_run("a", "small", 0, 0.8), _run("a", "small", 1, 0.6), _run("b", "default", 0, 0.75),
        _run("c", "default", 0, 0.99, status="failed")]


def test_mean_std_over_seeds_and_best_first():
    (board,) = leaderboard.build_boards(RUNS, None, None, False, {"t": ["acc", "f1_weighted"]})
    assert board.metrics == ["acc", "f1_weighted"]
    assert [(r.method, r.seeds) for r in board.rows] == [("b", 1), ("a", 2)]
    a = board.rows[1]
    assert a.mean("acc") == pytest.approx(0.7) and a.std("acc") == pytest.approx(0.1414, 1e-3)
    md = leaderboard.render_markdown(board)
    assert "**0.7500**" in md and "0.7000 ± 0.1414" in md
    assert "c" not in [r.method for r in board.rows]  # failed runs never enter a board


def test_metric_option_reorders_and_reported_rows(tmp_path):
    reg = tmp_path / "registry.toml"
    reg.write_text('[[reported]]\nmethod = "a"\nsize = "small"\ntask = "t"\n'
                   'source = "Paper, Table 4"\nmetrics = { acc = 0.9 }\n')
    rows = leaderboard.reported_rows("t", reg)
    assert rows[0].reported and rows[0].mean("acc") == 0.9
    (board,) = leaderboard.build_boards(RUNS, "t", "f1_weighted", False, {"t": ["acc"]})
    assert board.metrics[0] == "f1_weighted"
    data = json.loads(leaderboard.render_json([board]))
    assert data[0]["rows"][1]["std"]["acc"] == pytest.approx(0.1414, 1e-3)
    assert "task,method" in leaderboard.render_csv([board])


def test_lower_is_better_for_mae():
    runs = [{"method": m, "size": "d", "seed": 0, "task": "t", "status": "completed",
             "extra": {}, "metrics": {"test": {"mae": v}}} for m, v in (("x", 0.9), ("y", 0.7))]
    (board,) = leaderboard.build_boards(runs, None, None, False, {"t": ["mae"]})
    assert board.rows[0].method == "y" and board.best("mae") == 0.7
