"""Running a suite's cells: skip what is done, isolate failures, run in parallel.

A cell is skipped when the results store holds a completed run with the same *resolved*
configuration and seed, so a killed suite resumes where it stopped and a changed default
re-runs only what it changes. The config holds only the task keys the user set, so a
completed run also has to have read the data the cell's task resolves to now (its
provenance records the resolved task config): a run made before a task preset or a
generator default changed is re-run, with the differing keys named. A failing cell is
recorded ``failed`` (in the store and in the suite's ``cells.json``) and the others go
on. Cells run in this process (``jobs=1``), in ``jobs`` worker processes, or as submitit
jobs (SLURM, or submitit's local executor where there is no cluster).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mmalign import atomic, paths
from mmalign.errors import ConfigError, MMAlignError
from mmalign.leaderboard import resolved_key, stage_data
from mmalign.suite.spec import Cell, Suite, expand

LAUNCHERS = ("local", "submitit")


@dataclass
class CellOutcome:
    cell: Cell
    status: str  # completed, failed, skipped
    run_id: str | None = None
    error: str | None = None
    wall: float = 0.0
    #: for a skipped cell: the wall time of the earlier run it reuses
    saved: float = 0.0


@dataclass
class SuiteOutcome:
    cells: list[CellOutcome] = field(default_factory=list)
    wall: float = 0.0

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.cells)


def state_dir(suite: Suite) -> Path:
    path = paths.home() / "suites" / suite.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _train_config(cfg: Any, dotted: str, where: Path) -> Any:
    node = cfg
    for part in dotted.split("."):
        if not hasattr(node, part):
            raise ConfigError(f"{where}: budget.stage '{dotted}' is not a train config of "
                              f"the method (no '{part}')")
        node = getattr(node, part)
    if not hasattr(node, "batch_size"):
        raise ConfigError(f"{where}: budget.stage '{dotted}' is not a train config")
    return node


class Planner:
    """Turns cells into run requests (with the step budget applied) and resolved keys."""

    def __init__(self, suite: Suite, db: Path | None = None, data_dir: Path | None = None):
        self.suite, self.db, self.data_dir = suite, db, data_dir
        self._train_splits: dict[str, tuple[Any, list[Any]]] = {}
        self._task_data: dict[str, tuple[str, dict[str, Any], int | None]] = {}

    def request(self, cell: Cell, budget: bool = True) -> Any:
        """The cell's run request; ``budget=False`` leaves the epochs as written (the
        step budget needs each task's training split, which may have to be generated)."""
        from mmalign.runner import RunRequest

        req = RunRequest(method=cell.method, task=cell.task, size=cell.size, seed=cell.seed,
                         sets=dict(cell.sets), data_dir=self.data_dir, quiet=True,
                         results_db=self.db)
        if budget and self.suite.budget_steps is not None:
            req = self._with_budget(req)
        return req

    def _with_budget(self, req: Any) -> Any:
        """Epochs from the optimizer-step budget: ceil(steps / steps per epoch), with
        early stopping off so every cell takes the same number of steps."""
        from mmalign.runner.run import resolve

        method, run_cfg, cfg = resolve(req)
        train = _train_config(cfg, self.suite.budget_stage, self.suite.path)
        per_epoch = self._steps_per_epoch(method, cfg, train, run_cfg.task,
                                          run_cfg.method_config["task"])
        epochs = math.ceil(self.suite.budget_steps / per_epoch)
        stage = self.suite.budget_stage
        sets = {**req.sets, f"{stage}.epochs": epochs, f"{stage}.patience": None}
        return replace(req, sets=sets)

    def _steps_per_epoch(self, method: Any, cfg: Any, train: Any, task_name: str,
                         task_sets: dict[str, Any]) -> int:
        """As the runner counts them: the budgeted stage's loader says how many batches
        its epoch has when it draws its own (one tuple per event, one caption per
        image), else the training split's samples make the batches."""
        from mmalign.features import index_set
        from mmalign.runner.guards import check_steps

        task, samples = self._train_split(task_name, task_sets)
        stages = [s for s in method.stages(cfg, task) if s.train is train]
        count = getattr(stages[0].loader, "batches_per_epoch", None) if stages else None
        counted = None
        if count is not None and stages[0].task in (None, task_name):
            covered = stages[0].encoders or cfg.encoders
            split = index_set("train", samples, [m for m in task.modalities if m in covered])
            counted = count(split, train.batch_size, train.drop_last)
        return check_steps(self.suite.budget_stage, len(samples), train.batch_size,
                           train.drop_last, 1, counted)

    def _train_split(self, task_name: str, task_sets: dict[str, Any]) -> tuple[Any, list[Any]]:
        key = json.dumps([task_name, task_sets], sort_keys=True)
        if key not in self._train_splits:
            from mmalign.plugins import get_host
            from mmalign.runner.compose import make_task

            task = make_task(get_host().registry, task_name, task_sets, self.data_dir)
            if task.embedded and not task.is_present():
                task.prepare()
            self._train_splits[key] = (task, task.load().splits["train"])
        return self._train_splits[key]

    def task_data(self, req: Any) -> tuple[str, dict[str, Any], int | None]:
        """The cell's task as it resolves now: name, full config (presets and generator
        defaults filled in) and generator version (None for a real dataset)."""
        from mmalign.plugins import get_host
        from mmalign.runner.compose import make_task
        from mmalign.runner.run import resolve

        _, run_cfg, _ = resolve(req)
        sets = run_cfg.method_config["task"]
        key = json.dumps([run_cfg.task, sets], sort_keys=True)
        if key not in self._task_data:
            task = make_task(get_host().registry, run_cfg.task, sets, self.data_dir)
            version = getattr(task, "generator_version", None) if task.embedded else None
            self._task_data[key] = (task.name, task.config.model_dump(mode="json"), version)
        return self._task_data[key]

    def key(self, req: Any, with_seed: bool = True) -> str:
        from mmalign.runner.run import resolve

        _, run_cfg, _ = resolve(req)
        return resolved_key(run_cfg.model_dump(mode="json"), with_seed=with_seed)


def run_cell(req: Any, threads: int | None = None) -> dict[str, Any]:
    """One cell in the current process; any error becomes a ``failed`` outcome."""
    import torch

    from mmalign.runner import execute

    if threads:
        torch.set_num_threads(threads)
    started = time.time()
    try:
        result = execute(req)
    except Exception as exc:  # isolate the failure: the suite goes on  # noqa: BLE001
        kind = "" if isinstance(exc, MMAlignError) else f"{type(exc).__name__}: "
        return {"status": "failed", "error": f"{kind}{exc}", "wall": time.time() - started}
    return {"status": "completed", "run_id": result.run_id, "wall": result.wall_time}


def data_changes(run: dict[str, Any], task: tuple[str, dict[str, Any], int | None]) -> list[str]:
    """How the data ``run`` read for the cell's task differs from what that task resolves
    to now (``Planner.task_data``): task config keys both sides have whose values differ,
    and the generator version. Empty when they match or the run recorded no provenance."""
    name, config, version = task
    changes = []
    for record in stage_data(run).values():
        if record.get("task") != name or record.get("kind") == "stand-in":
            continue
        then = record.get("split_protocol") or {}
        changes += [f"task.{k}: {then[k]!r} then, {config[k]!r} now"
                    for k in sorted(then.keys() & config.keys()) if then[k] != config[k]]
        if version is not None and record.get("generator_version") not in (None, version):
            changes.append(f"generator v{record['generator_version']} then, v{version} now")
    return changes


def _completed(db: Path | None) -> dict[str, dict[str, Any]]:
    from mmalign.results import ResultsStore

    done = {}
    for run in ResultsStore(db).runs(status="completed"):
        if run.get("config"):
            done[resolved_key(run["config"], with_seed=True)] = run
    return done


def run_suite(
    suite: Suite, jobs: int = 1, launcher: str = "local", db: Path | None = None,
    data_dir: Path | None = None, echo: Callable[[str], None] = print,
    variants: list[str] | None = None,
) -> SuiteOutcome:
    """Run the suite's cells not completed yet; ``variants`` limits them to those named
    (a part of a suite, e.g. the premise half, on a short budget)."""
    if launcher not in LAUNCHERS:
        raise ConfigError(f"Unknown launcher '{launcher}'. Launchers: {', '.join(LAUNCHERS)}")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    unknown = [v for v in variants or [] if v not in suite.variants]
    if unknown:
        raise ConfigError(f"--variant {unknown[0]}: not a variant of {suite.path}; its "
                          f"variants: {', '.join(suite.variants)}")
    started = time.time()
    planner = Planner(suite, db, data_dir)
    cells = [c for c in expand(suite) if not variants or c.variant in variants]
    reqs = [planner.request(c) for c in cells]  # every bad key fails here, before any run
    keys = [planner.key(r) for r in reqs]
    done = _completed(db)
    outcome = SuiteOutcome()
    todo = []
    for cell, req, key in zip(cells, reqs, keys, strict=True):
        changes = data_changes(done[key], planner.task_data(req)) if key in done else []
        if changes:
            echo(f"rerun {cell.title}: {done[key]['run_id']} read other data "
                 f"({'; '.join(changes)})")
        if key in done and not changes:
            prev = done[key]
            outcome.cells.append(CellOutcome(cell, "skipped", prev["run_id"],
                                             saved=prev.get("wall_time") or 0.0))
            echo(f"skip  {cell.title}: completed before as {prev['run_id']}")
        else:
            todo.append((cell, req))
    state = state_dir(suite) / "cells.json"

    def record(cell: Cell, result: dict[str, Any]) -> None:
        item = CellOutcome(cell, result["status"], result.get("run_id"), result.get("error"),
                           result.get("wall", 0.0))
        outcome.cells.append(item)
        line = f"{item.status:<9} {cell.title} ({item.wall:.1f} s)"
        echo(line + (f": {item.error}" if item.error else f" run {item.run_id}"))
        atomic.write_text(state, json.dumps([{
            "cell": c.cell.title, "variant": c.cell.variant, "seed": c.cell.seed,
            "status": c.status, "run_id": c.run_id, "error": c.error, "wall": c.wall,
        } for c in outcome.cells], indent=2))

    if launcher == "submitit":
        _run_submitit(suite, todo, jobs, record)
    elif jobs == 1:
        for cell, req in todo:
            record(cell, run_cell(req))
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_cell, req, threads): cell for cell, req in todo}
            for future in as_completed(futures):
                record(futures[future], _result_of(future.result))
    outcome.wall = time.time() - started
    return outcome


def _result_of(get: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A worker that died (killed, out of memory) is a failed cell, not a failed suite."""
    try:
        return get()
    except Exception as exc:  # noqa: BLE001 - the worker's death is the cell's error
        return {"status": "failed", "error": f"worker died: {type(exc).__name__}: {exc}"}


def _run_submitit(suite: Suite, todo: list[tuple[Cell, Any]], jobs: int,
                  record: Callable[[Cell, dict[str, Any]], None]) -> None:
    """Submit cells as submitit jobs, at most ``jobs`` at a time; on SLURM the
    ``[launcher]`` table of the suite file is passed to ``update_parameters``."""
    import submitit

    params = dict(suite.launcher)
    cluster = params.pop("cluster", None)
    executor = submitit.AutoExecutor(folder=state_dir(suite) / "submitit", cluster=cluster)
    if params:
        executor.update_parameters(**params)
    for start in range(0, len(todo), jobs):
        wave = todo[start:start + jobs]
        submitted = [(cell, executor.submit(run_cell, req)) for cell, req in wave]
        for cell, job in submitted:
            record(cell, _result_of(job.result))
