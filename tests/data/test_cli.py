"""`mmalign data list` and `mmalign data check --format json`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mmalign.builtin.tasks import TASKS
from mmalign.cli_data import data_app
from tests.data.fixtures import write_mvsa_single
from tests.data.test_mvsa import SINGLE_LABEL_PROBLEMS, SINGLE_SAMPLE_PROBLEMS


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(data_app, list(args))
    return result.exit_code, result.stdout


def test_list_shows_every_task_and_where_it_looks(isolated_home: Path) -> None:
    write_mvsa_single(isolated_home / "datasets" / "mvsa-single")
    code, out = invoke("list", "--format", "json")
    assert code == 0
    rows = {r["task"]: r for r in json.loads(out)}
    assert {t.name for t in TASKS} <= set(rows)
    assert rows["mvsa-single"]["present"] is True
    assert rows["mvsa-multi"]["present"] is False
    assert rows["mvsa-multi"]["data_dir"] == str(isolated_home / "datasets" / "mvsa-multi")
    assert rows["mvsa-multi"]["from"] == "MMALIGN_DATA"
    assert rows["mvsa-multi"]["get"] == "request"
    assert rows["coco-captions"]["get"] == "fetch"
    assert rows["synth-sentiment"]["embedded"] is True
    assert rows["mvsa-multi"]["stand_in"] == "synth-sentiment"


def test_check_prints_one_json_object(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")
    code, out = invoke("check", "mvsa-single", "--data-dir", str(tmp_path / "mvsa"), "-f", "json")
    assert code == 1  # problems found
    report = json.loads(out)
    assert report["task"] == "mvsa-single"
    assert report["samples"] == 7
    assert report["splits"] == {"train": 5, "validation": 1, "test": 1}
    assert report["labels"] == {"positive": 3, "neutral": 2, "negative": 2}
    assert report["problems"][:6] == SINGLE_LABEL_PROBLEMS + SINGLE_SAMPLE_PROBLEMS[:3]
    assert report["problems"][6]["file"] == "data/14.jpg"
    assert report["problems"][7:] == SINGLE_SAMPLE_PROBLEMS[3:]


def test_check_clean_dataset_exits_zero(tmp_path: Path) -> None:
    root = tmp_path / "mvsa"
    write_mvsa_single(root)
    lines = (root / "labelResultAll.txt").read_text().splitlines()
    keep = [line for line in lines if line.split("\t")[0] in ("ID", "1", "2", "3", "4", "5")]
    (root / "labelResultAll.txt").write_text("\n".join(keep[:6]) + "\n")
    code, out = invoke("check", "mvsa-single", "--data-dir", str(root), "--format", "json")
    assert code == 0
    assert json.loads(out)["problems"] == []


def test_check_absent_data(isolated_home: Path) -> None:
    code, out = invoke("check", "hfm", "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["samples"] == 0
    (problem,) = report["problems"]
    assert problem["file"] == str(isolated_home / "datasets" / "hfm")
    assert "--task synth-sarcasm" in problem["error"]


def test_check_task_config(tmp_path: Path) -> None:
    write_mvsa_single(tmp_path / "mvsa")
    args = ("check", "mvsa-single", "--data-dir", str(tmp_path / "mvsa"), "-f", "json")
    code, out = invoke(*args, "--set", "split=clmlf")
    assert json.loads(out)["problems"] == [
        {"file": "10-flod-1/train.json", "error": "missing CLMLF split file"}
    ]
    result = CliRunner().invoke(data_app, [*args, "--set", "spilt=clmlf"])
    assert result.exit_code == 2 and "spilt" in result.output
