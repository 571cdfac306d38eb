"""Suites: the issue's file format as written, skipping, failure isolation, budgets,
parallel and submitit launchers, and the report."""

import dataclasses
import json

import pytest
import torch
from typer.testing import CliRunner

from mmalign import plugins
from mmalign.cli import app
from mmalign.errors import ConfigError
from mmalign.hookspecs import hookimpl
from mmalign.methods.late_fusion import LateFusion
from mmalign.results import ResultsStore
from mmalign.runner.loop import default_loader
from mmalign.suite import launch, spec
from mmalign.suite.report import write_report

cli = CliRunner()
TOY = """
[defaults.encoders.a]
name = "toy-vector"
config = { seed = 0 }

[defaults.encoders.b]
name = "toy-vector"
config = { seed = 1 }
"""
# the format the issue gives, verbatim apart from the task and the toy encoders
AS_WRITTEN = """
methods = ["late-fusion"]
tasks = ["toy-pairs"]
seeds = [0, 1, 2]

[defaults]            # overrides for every cell
train.epochs = 3

[variants.base]       # no overrides

[variants.drop3]
dropout = 0.3
""" + TOY



def _write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_file_format_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'seed'. Did you mean 'seeds'"):
        spec.load(_write(tmp_path, 'methods = ["x"]\nseed = [1]\n'))
    with pytest.raises(ConfigError, match="'methods' is required"):
        spec.load(_write(tmp_path, "seeds = [1]\n"))
    with pytest.raises(ConfigError, match="budget.steps' must be a positive integer"):
        spec.load(_write(tmp_path, 'methods = ["x"]\n[budget]\nsteps = 0\n'))


def test_expansion_of_the_issue_format(tmp_path):
    suite = spec.load(_write(tmp_path, AS_WRITTEN))
    cells = spec.expand(suite)
    assert len(cells) == 6 and {c.variant for c in cells} == {"base", "drop3"}
    drop = next(c for c in cells if c.variant == "drop3")
    assert drop.sets["dropout"] == 0.3 and drop.sets["train.epochs"] == 3
    assert drop.sets["encoders.a.name"] == "toy-vector"


def test_run_skip_isolate_and_report(toy_env, tmp_path):
    text = AS_WRITTEN.replace("seeds = [0, 1, 2]", "seeds = [0, 1]") + """
[variants.starved]
train.batch_size = 500
train.drop_last = true
"""
    path = _write(tmp_path, text)
    lines = []
    out = launch.run_suite(spec.load(path), echo=lines.append)
    assert (out.count("completed"), out.count("failed"), out.count("skipped")) == (4, 2, 0)
    failed = [c for c in out.cells if c.status == "failed"]
    assert all("zero optimizer steps" in c.error for c in failed)
    statuses = sorted(r["status"] for r in ResultsStore().runs())
    assert statuses == ["completed"] * 4 + ["failed"] * 2
    # a second run (as after a kill) skips every completed cell and retries the failed
    again = launch.run_suite(spec.load(path), echo=lines.append)
    assert (again.count("skipped"), again.count("failed")) == (4, 2)
    assert sum(c.saved for c in again.cells) > 0
    # adding a seed runs only the new cells
    more = _write(tmp_path, text.replace("seeds = [0, 1]", "seeds = [0, 1, 2]"))
    third = launch.run_suite(spec.load(more), echo=lines.append)
    assert (third.count("skipped"), third.count("completed")) == (4, 2)
    with_steps = _write(tmp_path, more.read_text() + """
[report.columns]
steps = "provenance.stages.train.optimizer_steps"
""", "s.toml")  # same suite name, one extra column taken from each run's record
    report = write_report(spec.load(with_steps), tmp_path / "rep")
    md = report.read_text()
    # 168 training samples, batch 64: 3 steps per epoch, 3 epochs
    assert " steps |" in md and "9.0000 ± 0.0000" in md
    assert "## Leaderboard" in md and "## Paired comparisons" in md
    assert "| late-fusion | drop3 · dropout=0.3" in md and "reference" in md
    assert "Cells: 9 cells, 6 completed, 3 failed, 0 not run." in md
    assert "zero optimizer steps" in md  # failed cells listed
    pngs = list((tmp_path / "rep").glob("*.png"))
    assert pngs and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = cli.invoke(app, ["suite", "report", str(more), "--out", str(tmp_path / "r2")])
    assert res.exit_code == 0 and (tmp_path / "r2" / "report.md").exists()


def test_variant_option_runs_only_the_named_variants_cells(toy_env, tmp_path):
    path = _write(tmp_path, AS_WRITTEN.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"))
    res = cli.invoke(app, ["suite", "run", str(path), "--variant", "drop3"])
    assert res.exit_code == 0, res.output
    runs = ResultsStore().runs()
    assert len(runs) == 2 and all(r["config"]["overrides"].get("dropout") == 0.3 for r in runs)
    assert "2 completed, 0 failed, 0 skipped" in res.output
    # the rest of the suite runs later and skips what the first call did
    rest = launch.run_suite(spec.load(path), echo=lambda line: None)
    assert (rest.count("completed"), rest.count("skipped")) == (2, 2)
    bad = cli.invoke(app, ["suite", "run", str(path), "--variant", "drop5"])
    assert bad.exit_code != 0
    assert "--variant drop5: not a variant of" in bad.output and "base, drop3" in bad.output


def test_budget_sets_epochs_from_steps(toy_env, tmp_path):
    # toy-pairs has 168 training samples; batch 64 gives 3 steps per epoch, so a budget
    # of 7 steps is ceil(7 / 3) = 3 epochs, and batch 32 (6 steps per epoch) is 2 epochs
    path = _write(tmp_path, """
methods = ["late-fusion"]
tasks = ["toy-pairs"]
[budget]
steps = 7
[variants.b64]
[variants.b32]
train.batch_size = 32
""" + TOY)
    suite = spec.load(path)
    planner = launch.Planner(suite)
    reqs = {c.variant: planner.request(c) for c in spec.expand(suite)}
    assert reqs["b64"].sets["train.epochs"] == 3 and reqs["b32"].sets["train.epochs"] == 2
    assert reqs["b64"].sets["train.patience"] is None
    out = launch.run_suite(suite, echo=lambda _: None)
    assert out.count("completed") == 2
    steps = sorted(r["extra"]["provenance"]["stages"]["train"]["optimizer_steps"]
                   for r in ResultsStore().runs())
    assert steps == [9, 12]


def test_a_run_that_read_other_data_is_rerun_and_left_out_of_the_report(toy_env, tmp_path):
    # The config holds only the task keys the user set, so a run made before a task
    # default changed has this cell's config key; its provenance tells it apart.
    path = _write(tmp_path, AS_WRITTEN.replace("seeds = [0, 1, 2]", "seeds = [0, 1]"))
    launch.run_suite(spec.load(path), echo=lambda _: None)
    store = ResultsStore()
    old = next(r for r in store.runs()
               if r["seed"] == 1 and "dropout" not in r["config"]["overrides"])
    data = old["extra"]["provenance"]["stages"]["train"]["data"]
    assert data["split_protocol"]["samples"] == 240  # the resolved toy-pairs default
    data["split_protocol"]["samples"] = 120  # as if the default had been 120 then
    store.update(old["run_id"], extra=old["extra"])
    report = write_report(spec.load(path), tmp_path / "rep").read_text()
    assert "Cells: 4 cells, 3 completed, 0 failed, 1 not run, " \
           "1 completed on other data (stale)." in report
    lines = []
    again = launch.run_suite(spec.load(path), echo=lines.append)
    assert (again.count("skipped"), again.count("completed")) == (3, 1)
    assert any(line.startswith("rerun") and old["run_id"] in line
               and "task.samples: 120 then, 240 now" in line for line in lines)
    report = write_report(spec.load(path), tmp_path / "rep").read_text()
    assert "Cells: 4 cells, 4 completed, 0 failed, 0 not run." in report


class ClassZeroLoader:
    """Trains on the class-0 samples only: a loader that draws its own epoch, as one row
    per event does, so the split's size does not give its batches."""

    def _rows(self, fs):
        return torch.nonzero(fs.labels == 0).flatten()

    def batches_per_epoch(self, fs, batch_size, drop_last=False):
        return -(-len(self._rows(fs)) // batch_size)

    def __call__(self, fs, batch_size, generator, epoch, train, rank=0, world=1,
                 drop_last=False):
        if not train:
            yield from default_loader(fs, batch_size, generator, epoch, train)
            return
        rows = self._rows(fs)
        yield from fs.batches(rows[torch.randperm(len(rows), generator=generator)]
                              .split(batch_size))


class ClassZeroFusion(LateFusion):
    name = "class-zero"

    def stages(self, config, task):
        return [dataclasses.replace(s, loader=ClassZeroLoader())
                for s in super().stages(config, task)]


class _ClassZeroPlugin:
    @staticmethod
    @hookimpl
    def mmalign_register(registry):
        registry.add("method", "class-zero", ClassZeroFusion)


def test_budget_counts_the_epoch_a_stage_loader_draws(toy_env, tmp_path):
    plugins.get_host().add_module(_ClassZeroPlugin(), "class-zero", None)
    path = _write(tmp_path, """
methods = ["class-zero"]
tasks = ["toy-pairs"]
[budget]
steps = 10
[defaults]
train.batch_size = 16
[variants.only]
""" + TOY)
    suite = spec.load(path)
    (cell,) = spec.expand(suite)
    # 168 training samples would make 11 batches an epoch; the loader draws the class-0
    # ones only, ceil(n0 / 16) batches, so 10 steps take ceil(10 / that) epochs
    task = plugins.get_registry().get("task", "toy-pairs")(
        plugins.get_registry().get("task", "toy-pairs").Config())
    n0 = sum(s.label == 0 for s in task.load().splits["train"])
    per_epoch = -(-n0 // 16)
    assert per_epoch < 11
    req = launch.Planner(suite).request(cell)
    assert req.sets["train.epochs"] == -(-10 // per_epoch)
    launch.run_suite(suite, echo=lambda _: None)
    (run,) = ResultsStore().runs()
    steps = run["extra"]["provenance"]["stages"]["train"]["optimizer_steps"]
    assert steps == req.sets["train.epochs"] * per_epoch >= 10


@pytest.mark.slow
def test_parallel_jobs_and_submitit_local(toy_env, tmp_path):
    path = _write(tmp_path, AS_WRITTEN.replace("seeds = [0, 1, 2]", "seeds = [0]")
                  .replace("train.epochs = 3", "train.epochs = 1"))
    res = cli.invoke(app, ["suite", "run", str(path), "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert "2 completed, 0 failed, 0 skipped" in res.output
    more = _write(tmp_path, AS_WRITTEN.replace("seeds = [0, 1, 2]", "seeds = [0, 1]")
                  .replace("train.epochs = 3", "train.epochs = 1")
                  + '\n[launcher]\ncluster = "local"\ntimeout_min = 10\n', "t.toml")
    res = cli.invoke(app, ["suite", "run", str(more), "--launcher", "submitit", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    assert "2 completed, 0 failed, 2 skipped" in res.output
    runs = ResultsStore().runs(status="completed")
    assert sorted((r["config"]["overrides"].get("dropout", 0.1), r["seed"]) for r in runs) == [
        (0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1)]
    logs = list((toy_env / "suites" / "t" / "submitit").glob("*_result.pkl"))
    assert len(logs) == 2  # the two new cells really ran as submitit jobs
    state = json.loads((toy_env / "suites" / "t" / "cells.json").read_text())
    assert sorted(c["status"] for c in state) == ["completed", "completed", "skipped", "skipped"]


def test_every_benchmark_suite_file_resolves(mmalign_home):
    """Each shipped suite expands and every cell's config resolves (bad keys fail here)."""
    from pathlib import Path

    from mmalign.runner.run import resolve

    files = sorted(Path(__file__).parents[1].glob("benchmarks/*/*.toml"))
    assert {f.parent.name for f in files} >= {"core", "sppscl", "tecafn", "infonce"}
    for path in files:
        suite = spec.load(path)
        cells = spec.expand(suite)
        planner = launch.Planner(suite)
        for cell in cells:
            _, run_cfg, _ = resolve(planner.request(cell, budget=False))
            assert run_cfg.method == cell.method
    infonce = spec.expand(spec.load(Path(__file__).parents[1] / "benchmarks/infonce/"
                                    "strategies.toml"))
    assert sorted({(c.variant, c.size) for c in infonce}) == [
        ("joint-quad", "default"), ("joint-tri", "tri-modal"),
        ("round-robin-quad", "round-robin"), ("round-robin-tri-control", "round-robin")]
