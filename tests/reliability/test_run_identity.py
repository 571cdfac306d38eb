"""Run ids are unique per process and a run stays bound to the data folder it started on."""

import json

import pytest

from mmalign.config import RunConfig
from mmalign.errors import ResumeError
from mmalign.results import ResultsStore
from mmalign.runner import RunRequest, execute, identity
from mmalign.testing import toy_encoders

FAST = {"encoders": toy_encoders(), "train.epochs": 1, "task.samples": 60}


def _cfg(**kw):
    return RunConfig(method="late-fusion", task="toy-pairs", size="base",
                     method_config={}, **kw)


def test_claims_in_one_second_never_share_a_directory(tmp_path):
    dirs = [identity.claim_run_dir(_cfg(), "0123456789abcdef", tmp_path) for _ in range(200)]
    assert len({d.name for d in dirs}) == 200
    assert all(d.is_dir() and not any(d.iterdir()) for d in dirs)


def test_identical_runs_get_their_own_rows(toy_plugin, run_method):
    first = run_method("late-fusion", task="toy-pairs", **FAST)
    second = run_method("late-fusion", task="toy-pairs", **FAST)
    assert first.run_id != second.run_id and first.run_dir != second.run_dir
    assert len(ResultsStore().runs()) == 2


def test_data_folder_is_saved_and_a_resume_refuses_another(toy_plugin, tmp_path):
    data = tmp_path / "data-a"
    data.mkdir()
    result = execute(RunRequest(method="late-fusion", task="toy-pairs", sets=FAST,
                                data_dir=data, quiet=True))
    saved = json.loads((result.run_dir / "run.json").read_text())
    assert saved["data_dir"] == str(data.resolve())
    other = tmp_path / "data-b"
    other.mkdir()
    with pytest.raises(ResumeError, match="Cannot resume on other data.*data-a"):
        execute(RunRequest(method="late-fusion", resume=str(result.run_dir),
                           data_dir=other, quiet=True))
    saved_cfg = RunConfig.model_validate(saved)
    assert identity.resume_data_dir(saved_cfg, None) == data.resolve()
    assert identity.resume_data_dir(saved_cfg, data) == data.resolve()


def test_resume_refuses_new_overrides_and_names_a_damaged_run_json(toy_plugin, run_method):
    result = run_method("late-fusion", task="toy-pairs", **FAST)
    with pytest.raises(ResumeError, match=r"overrides differ from it: train.lr\. Drop"):
        execute(RunRequest(method="late-fusion", resume=str(result.run_dir),
                           sets={**FAST, "train.lr": 0.5}, quiet=True))
    (result.run_dir / "run.json").write_text('{"method": ')
    with pytest.raises(ResumeError, match=r"run\.json: cannot read the run description"):
        execute(RunRequest(method="late-fusion", resume=str(result.run_dir), quiet=True))
