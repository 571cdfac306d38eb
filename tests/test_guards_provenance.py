"""Zero-step guards, the up-front data check with --allow-stand-in, and run provenance."""

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from mmalign import leaderboard, plugins
from mmalign.cli import app
from mmalign.errors import ConfigError, DataError
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import Task, TaskData
from mmalign.methods.late_fusion import LateFusion
from mmalign.results import ResultsStore
from mmalign.runner import RunRequest, execute
from mmalign.runner.guards import check_splits, check_stepped, steps_per_epoch
from mmalign.testing import toy_encoders
from mmalign.toys import ToyPairsTask

cli = CliRunner()
SETS = {"train.epochs": 1, "encoders": toy_encoders()}


class AbsentTask(Task):
    """A real dataset nobody downloaded."""

    name = "toy-absent"
    modalities = ("a", "b")
    label_names = ("zero", "one", "two")
    metrics = ("acc",)

    def is_present(self) -> bool:
        return False

    def load(self) -> TaskData:
        raise DataError("toy-absent must never be read")


class UngeneratedTask(ToyPairsTask):
    """An embedded task whose data is generated on first use (none on disk yet)."""

    name = "toy-ungenerated"

    def is_present(self) -> bool:
        return (self.data_dir / "done").exists()

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "done").write_text("")


class PretrainThenTrain(LateFusion):
    """late-fusion with a first stage on a real task whose stand-in is toy-pairs."""

    name = "pre-then-train"

    def stages(self, config, task):
        (train,) = super().stages(config, task)
        pre = dataclasses.replace(train, name="pre", task="toy-absent",
                                  fallback_task="toy-pairs", evaluate=False)
        return [pre, train]


class PretrainOnEmbedded(PretrainThenTrain):
    """pre-then-train whose first stage is an embedded task not generated yet."""

    name = "pre-embedded"

    def stages(self, config, task):
        pre, train = super().stages(config, task)
        return [dataclasses.replace(pre, task="toy-ungenerated"), train]


class _Plugin:
    @staticmethod
    @hookimpl
    def mmalign_register(registry):
        registry.add("task", "toy-absent", AbsentTask)
        registry.add("method", "pre-then-train", PretrainThenTrain)
        registry.add("task", "toy-ungenerated", UngeneratedTask)
        registry.add("method", "pre-embedded", PretrainOnEmbedded)


@pytest.fixture
def staged(toy_plugin):
    plugins.get_host().add_module(_Plugin(), "staged", None)


def test_steps_per_epoch_mirrors_the_loader():
    assert steps_per_epoch(168, 64, False) == 3 and steps_per_epoch(168, 64, True) == 2
    assert steps_per_epoch(10, 64, True) == 0 and steps_per_epoch(0, 8, False) == 0
    assert steps_per_epoch(65, 64, False, world=2) == 1  # a 1-sample tail cannot be split
    with pytest.raises(ConfigError, match="took no optimizer step in 3 epoch"):
        check_stepped("train", 0, 3, 10, 64)


def test_zero_step_stage_is_an_error_and_never_completed(toy_plugin):
    req = RunRequest(method="late-fusion", task="toy-pairs", quiet=True,
                     sets={**SETS, "train.batch_size": 500, "train.drop_last": True})
    with pytest.raises(ConfigError) as err:
        execute(req)
    assert "train split has 168 sample(s) and train.batch_size is 500 with drop_last" in str(
        err.value)
    (row,) = ResultsStore().runs()
    assert row["status"] == "failed"


@pytest.mark.parametrize("use_cache", [True, False])
def test_an_empty_evaluation_split_is_refused_before_any_feature_is_encoded(
    toy_plugin, mmalign_home, use_cache
):
    # 3 toy samples split 70/15/15 give train 2, validation 0, test 1
    req = RunRequest(method="late-fusion", task="toy-pairs", quiet=True, use_cache=use_cache,
                     sets={**SETS, "task.samples": 3})
    with pytest.raises(DataError, match=r"^toy-pairs: the validation split is empty "
                                        r"\(train 2, validation 0, test 1 samples"):
        execute(req)
    assert not list((mmalign_home / "cache").rglob("*.safetensors"))
    (row,) = ResultsStore().runs()
    assert row["status"] == "failed"


def test_an_unlabelled_task_may_lack_evaluation_splits_but_not_training_data():
    check_splits("coco", {"train": [1], "validation": [], "test": []}, labelled=False)
    with pytest.raises(DataError, match="coco: the train split is empty"):
        check_splits("coco", {"train": [], "validation": [1], "test": []}, labelled=False)
    with pytest.raises(DataError, match="the validation and test splits are empty"):
        check_splits("mvsa", {"train": [1], "validation": [], "test": []}, labelled=True)


def test_missing_stage_data_fails_before_work_unless_stand_in_allowed(staged):
    req = RunRequest(method="pre-then-train", task="toy-pairs", quiet=True, sets=SETS)
    with pytest.raises(DataError, match="stage 'pre' trains on 'toy-absent'.*--allow-stand-in"):
        execute(req)
    assert ResultsStore().runs() == []  # nothing started
    out = cli.invoke(app, ["run", "pre-then-train", "--task", "toy-pairs", "-q",
                           "--set", "train.epochs=1", "--set",
                           'encoders.a={name="toy-vector", config={seed=0}}', "--set",
                           'encoders.b={name="toy-vector", config={seed=1}}'])
    assert out.exit_code == 2 and "Traceback" not in out.output
    result = execute(dataclasses.replace(req, allow_stand_in=True))
    prov = result.extra["provenance"]
    assert prov["stand_in"] == ["pre: toy-pairs instead of toy-absent"]
    assert prov["stages"]["pre"]["data"]["kind"] == "stand-in"
    assert prov["stages"]["train"]["data"]["kind"] == "embedded"
    (board,) = leaderboard.build_boards(ResultsStore().runs(), None, None, False, {})
    assert board.rows[0].stand_in == ["pre: toy-pairs instead of toy-absent"]
    md = leaderboard.render_markdown(board)
    assert "stand-in: pre: toy-pairs instead of toy-absent" in md


def test_an_embedded_stage_task_is_generated_never_replaced_by_the_stand_in(staged):
    # The stage's own task is embedded: generate it, as for the main task, instead of
    # silently pretraining on the fallback (a TI-JEPA synth-scenes run once did).
    result = execute(RunRequest(method="pre-embedded", task="toy-pairs", quiet=True,
                                sets=SETS))
    prov = result.extra["provenance"]
    assert prov["stand_in"] == []
    assert prov["stages"]["pre"]["data"]["task"] == "toy-ungenerated"
    assert prov["stages"]["pre"]["data"]["kind"] == "embedded"
    assert prov["stages"]["pre"]["data"]["folder"].endswith("toy-ungenerated")


def test_provenance_is_recorded_and_shown(toy_plugin):
    result = execute(RunRequest(method="late-fusion", task="toy-pairs", quiet=True, sets=SETS))
    saved = json.loads((result.run_dir / "provenance.json").read_text())
    stage = saved["stages"]["train"]
    # 168 training samples in batches of 64: 3 steps in the one epoch
    assert stage["optimizer_steps"] == 3
    assert stage["data"]["split_sizes"] == {"train": 168, "validation": 36, "test": 36}
    assert stage["encoders"]["a"]["fingerprint"].startswith("toy-vector:")
    assert saved["precision"] == "fp32" and saved["device"] == "cpu"
    assert saved["versions"]["torch"] and saved["host"]
    assert saved["git"] is None or len(saved["git"]["commit"]) == 40
    row = ResultsStore().get(result.run_id)
    assert row["extra"]["provenance"]["stages"]["train"]["optimizer_steps"] == 3
    out = cli.invoke(app, ["runs", result.run_id])
    assert out.exit_code == 0
    assert "stages.train.optimizer_steps" in out.output and "precision" in out.output
    missing = cli.invoke(app, ["runs", "no-such-run"])
    assert missing.exit_code == 2 and "No run 'no-such-run'" in missing.output
