"""Suite report metrics on subsets of the test items (``[report.subsets]``): computed
from each run's saved predictions and its task's truth file, checked against values
worked out by hand, and their one-line errors."""

import json
from dataclasses import replace

import pytest
from scipy import stats as sps

from mmalign.artefacts import PREDICTIONS
from mmalign.data.synth.structure import TRUTH_FILE, write_truth
from mmalign.errors import ConfigError
from mmalign.results import ResultsStore
from mmalign.runner.run import resolve
from mmalign.suite import launch, spec
from mmalign.suite.report import write_report
from mmalign.suite.subsets import subset_metrics
from tests.test_suite import TOY

SUITE = """
methods = ["late-fusion"]
tasks = ["toy-pairs"]
seeds = [0, 1, 2]
""" + TOY + """
[variants.full]

[variants.ablated]
dropout = 0.3

[report]
against = "late-fusion:full"
metrics = ["acc", "acc@noisy", "acc@clean"]
subset_metrics = ["acc"]

[report.subsets]
noisy = { state = ["missing", "corrupted"] }
clean = { state = "clean", side = "a" }
"""
#: six test items: their truth rows (state, side) and labels
TRUTH = [("clean", "a"), ("clean", "a"), ("clean", "b"), ("missing", "a"), ("corrupted", "b"),
         ("missing", "b")]
LABELS = [0, 1, 2, 0, 1, 2]
#: predictions per variant and seed: full is right on the noisy items (3, 4, 5) in
#: every seed; ablated gets one noisy item right in seed 0, two in seeds 1 and 2
PREDICTED = {
    "full": [[0, 1, 0, 0, 1, 2], [0, 0, 2, 0, 1, 2], [0, 1, 2, 0, 1, 2]],
    "ablated": [[0, 1, 0, 0, 0, 0], [0, 0, 2, 0, 1, 0], [0, 1, 2, 1, 1, 2]],
}



def _data_folder(tmp_path):
    folder = tmp_path / "data" / "toy-pairs"
    folder.mkdir(parents=True)
    write_truth(folder / TRUTH_FILE, [{"id": f"toy{i}", "split": "test", "state": s, "side": d}
                                      for i, (s, d) in enumerate(TRUTH)])
    return folder


def _write_run(run_dir, predicted):
    run_dir.mkdir(parents=True)
    rows = [{"id": f"toy{i}", "label": y, "prediction": p,
             "probabilities": [1.0 if c == p else 0.0 for c in range(3)]}
            for i, (y, p) in enumerate(zip(LABELS, predicted, strict=True))]
    (run_dir / PREDICTIONS).write_text("".join(json.dumps(r) + "\n" for r in rows))


def _fabricate(suite, tmp_path, folder):
    store = ResultsStore()
    planner = launch.Planner(suite)
    for cell in spec.expand(suite):
        _, run_cfg, _ = resolve(replace(planner.request(cell), seed=cell.seed))
        run_id = f"{cell.variant}-{cell.seed}"
        predicted = PREDICTED[cell.variant][cell.seed]
        _write_run(tmp_path / "runs" / run_id, predicted)
        store.start(run_id, method=cell.method, task=cell.task, size=run_cfg.size,
                    seed=cell.seed, config_hash="h", config=run_cfg.model_dump(mode="json"),
                    run_dir=str(tmp_path / "runs" / run_id))
        acc = sum(p == y for p, y in zip(predicted, LABELS, strict=True)) / len(LABELS)
        provenance = {"stages": {"train": {"data": {"task": "toy-pairs",
                                                    "folder": str(folder)}}}}
        store.update(run_id, status="completed", metrics={"test": {"acc": acc}},
                     extra={"provenance": provenance})


def _suite(tmp_path, text=SUITE):
    path = tmp_path / "subsets.toml"
    path.write_text(text)
    return spec.load(path)


def test_subset_metrics_are_computed_per_run_and_paired_by_seed(toy_env, tmp_path):
    suite = _suite(tmp_path)
    _fabricate(suite, tmp_path, _data_folder(tmp_path))
    md = write_report(suite, tmp_path / "rep").read_text()
    paired = [line for line in md.splitlines() if line.startswith("| late-fusion | ablated")
              and " | acc@" in line]
    # acc on the noisy items (3, 4, 5): full 1, 1, 1; ablated 1/3, 2/3, 2/3, so the
    # paired differences ablated - full are -2/3, -1/3, -1/3: mean -4/9
    noisy = [line for line in paired if "| acc@noisy |" in line]
    p = sps.ttest_rel([1 / 3, 2 / 3, 2 / 3], [1.0, 1.0, 1.0]).pvalue
    assert len(noisy) == 1 and f"| 3 | -0.4444 | [-0.9225, +0.0336] | {p:.3g} |" in noisy[0]
    # clean side a (items 0, 1): full 1, 0.5, 1; ablated 1, 0.5, 1 -> no difference
    clean = [line for line in paired if "| acc@clean |" in line]
    assert len(clean) == 1 and "| 3 | +0.0000 |" in clean[0]
    board = next(line for line in md.splitlines() if line.startswith("| late-fusion | full"))
    assert "0.8333 ± 0.2887" in board  # acc@clean of full: mean of 1, 0.5, 1


def test_subset_metrics_of_one_run_against_hand_counts(tmp_path):
    folder = _data_folder(tmp_path)
    _write_run(tmp_path / "run", [0, 1, 0, 0, 0, 2])
    run = {"run_id": "r", "task": "toy-pairs", "run_dir": str(tmp_path / "run"),
           "extra": {"provenance": {"stages": {"train": {"data": {"task": "toy-pairs",
                                                                  "folder": str(folder)}}}}}}
    got = subset_metrics(run, {"noisy": {"state": ["missing", "corrupted"]},
                               "b": {"side": ["b"]}}, ["acc", "f1_macro"])
    assert got["acc@noisy"] == pytest.approx(2 / 3)  # items 3 and 5 right, 4 wrong
    assert got["acc@b"] == pytest.approx(1 / 3)  # items 2, 4 wrong, 5 right
    # f1_macro on b: labels 2, 1, 2 predicted 0, 0, 2 -> class 2 F1 = 2/3, class 1 F1 = 0
    # and class 0 (predicted, never true) F1 = 0: mean 2/9
    assert got["f1_macro@b"] == pytest.approx(2 / 9)
    with pytest.raises(ConfigError, match="'colour' is not a column of .*synth_truth.tsv"):
        subset_metrics(run, {"x": {"colour": ["red"]}}, ["acc"])
    with pytest.raises(ConfigError, match="'mae' is not a metric of task 'toy-pairs'"):
        subset_metrics(run, {"noisy": {"state": ["missing"]}}, ["mae"])
    (folder / TRUTH_FILE).unlink()
    with pytest.raises(ConfigError, match="synth_truth.tsv: not found"):
        subset_metrics(run, {"noisy": {"state": ["missing"]}}, ["acc"])


def test_subset_rules_are_checked_when_the_file_is_read(tmp_path):
    with pytest.raises(ConfigError, match="'report.subsets' needs 'report.subset_metrics'"):
        _suite(tmp_path, SUITE.replace('subset_metrics = ["acc"]\n', ""))
    with pytest.raises(ConfigError, match="'report.subsets.noisy.state' must be a value"):
        _suite(tmp_path, SUITE.replace('["missing", "corrupted"]', "[]"))
    with pytest.raises(ConfigError, match="'report.subsets.clean' must be a table"):
        _suite(tmp_path, SUITE.replace('clean = { state = "clean", side = "a" }',
                                       'clean = "clean"'))
