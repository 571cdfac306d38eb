"""One run from request to result row: resolve, extract features, train each stage,
evaluate on validation and test, record everything atomically."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmalign import artefacts, atomic, live, paths, provenance
from mmalign.config import RunConfig, config_hash, load_file, validate
from mmalign.errors import DataError, ResumeError
from mmalign.features import (
    FeatureSet,
    build_feature_set,
    check_needs,
    derive_features,
    extraction_needs,
)
from mmalign.interfaces import (
    BuildContext,
    Encoder,
    Method,
    Objective,
    StageSpec,
    Task,
    TaskData,
)
from mmalign.plugins import get_host
from mmalign.results import ResultsStore
from mmalign.runner import checkpoint, distributed, guards, identity, preflight, ranges
from mmalign.runner.compose import (
    check_component_refs,
    check_method_task,
    feature_specs,
    make_task,
    method_config,
    split_overrides,
)
from mmalign.runner.device import autocast, describe, pick_device
from mmalign.runner.evaluation import evaluate_split, mean_loss
from mmalign.runner.loop import default_loader, train_stage
from mmalign.runner.progress import make_progress, shown
from mmalign.store import memory
from mmalign.store.deferred import make_encoders
from mmalign.store.feasibility import DoesNotFitError
from mmalign.store.options import DataOptions, data_options, split_data_sets, take_fraction

log = logging.getLogger("mmalign.runner")
SPLITS = ("train", "validation", "test")


@dataclass
class RunRequest:
    """What the user asked for on the command line."""

    method: str
    task: str | None = None
    size: str | None = None
    seed: int = 0
    sets: dict[str, Any] = field(default_factory=dict)
    config_file: Path | None = None
    data_dir: Path | None = None
    device: str | None = None
    use_cache: bool = True
    resume: str | None = None
    quiet: bool = False
    results_db: Path | None = None
    #: let a stage whose real data is missing train on its embedded stand-in
    allow_stand_in: bool = False
    #: logger plugins (``--logger tensorboard``)
    loggers: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, dict[str, float]]
    status: str
    extra: dict[str, Any]
    wall_time: float


def count_parameters(module: nn.Module) -> dict[str, int]:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return {"trainable": trainable, "frozen": total - trainable}


def component_parameters(
    model: nn.Module, encoders: dict[str, Encoder], objective: Objective
) -> dict[str, dict[str, int]]:
    """Trainable and frozen parameter counts per component."""
    out = {  # a deferred (unbuilt) encoder reports the counts remembered from its build
        f"encoder.{m}": getattr(e, "parameter_counts", None) or count_parameters(e)
        for m, e in encoders.items()
    }
    children = list(model.named_children())
    for name, child in children:
        out[f"model.{name}"] = count_parameters(child)
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own or not children:
        out["model"] = count_parameters(model) if not children else {"trainable": own, "frozen": 0}
    obj = count_parameters(objective)
    if obj["trainable"] or obj["frozen"]:
        out["objective"] = obj
    return out


def variant_label(overrides: dict[str, Any]) -> str:
    """The user's overrides as a short label, so leaderboards never merge variants."""
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items()))


def _resolve_run_dir(ref: str) -> Path:
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "run.json").exists():
        return path
    candidate = paths.runs_dir() / ref
    if (candidate / "run.json").exists():
        return candidate
    raise ResumeError(
        f"No run '{ref}' to resume: looked for {path}/run.json and {candidate}/run.json"
    )


def _check_same(saved: RunConfig, req: RunRequest) -> None:
    asked = {"method": req.method, "task": req.task, "size": req.size}
    diffs = [
        f"{k}: run has '{getattr(saved, k)}', you asked for '{v}'"
        for k, v in asked.items()
        if v is not None and v != getattr(saved, k)
    ]
    if req.seed and req.seed != saved.seed:
        diffs.append(f"seed: run has {saved.seed}, you asked for {req.seed}")
    if diffs:
        raise ResumeError("Cannot resume with a different run description — " + "; ".join(diffs))


def resolve(req: RunRequest) -> tuple[Method, RunConfig, Any]:
    """The method object, the full run description, and its validated method config."""
    registry = get_host().registry
    method: Method = registry.entry("method", req.method, "METHOD").obj()
    task_name = req.task or method.default_task
    size = req.size or method.default_size
    sets = dict(load_file(req.config_file)) if req.config_file else {}
    sets.update(req.sets)
    data_sets, rest = split_data_sets(sets)
    data_options(data_sets)
    method_sets, task_sets = split_overrides(rest)
    # a size's task presets (e.g. the paper's published split) come before the user's
    task_sets = {**method.task_presets.get(size, {}).get(task_name, {}), **task_sets}
    cfg = method_config(method, task_name, size, [method_sets])
    task = check_composition(
        registry, method, req.method, cfg, task_name, task_sets, req.data_dir
    )
    ranges.check_resolved(cfg, task)
    run_cfg = RunConfig(
        method=req.method,
        task=task_name,
        size=size,
        seed=req.seed,
        method_config={
            "method": cfg.model_dump(mode="json"),
            "task": task_sets,
            **({"data": data_sets} if data_sets else {}),
        },
        overrides=sets,
        data_dir=identity.data_dir_of(task_name, req.data_dir),
    )
    return method, run_cfg, cfg


def check_composition(
    registry: Any,
    method: Method,
    name: str,
    cfg: Any,
    task_name: str,
    task_sets: dict[str, Any],
    data_dir: Path | None,
) -> Task:
    """Every name and option in the resolved config, and the method against the task,
    checked in seconds before any data is loaded; returns the (unloaded) task."""
    check_component_refs(registry, cfg)
    task = make_task(registry, task_name, task_sets, data_dir)
    check_method_task(registry, method, name, cfg, task)
    return task


def stage_context(
    stage: StageSpec,
    task: Task,
    method_cfg: Any,
    previous: dict[str, nn.Module],
    device: torch.device,
    encoders: dict[str, Encoder] | None = None,
) -> tuple[BuildContext, dict[str, Encoder]]:
    registry = get_host().registry
    refs = stage.encoders or getattr(method_cfg, "encoders", {})
    if encoders is None:
        encoders = make_encoders(registry, refs, task.modalities)
    dims = {m: e.out_dim for m, e in encoders.items()}
    ctx = BuildContext(
        task=task,
        encoders=encoders,
        feature_dims=dims,
        config=method_cfg,
        previous=previous,
        device=device,
        inputs=feature_specs(encoders, refs),
    )
    return ctx, encoders


def _data_key(task: Task, data_splits: dict[str, list[Any]], source: str = "") -> str:
    """Keys cached features. ``source`` says what was read from where (an embedded
    task's versioned folder): a regenerated task with the same sample ids must not
    reuse the old features."""
    ids = {s: [x.id for x in samples] for s, samples in data_splits.items()}
    return config_hash(
        [
            task.name,
            task.config.model_dump(mode="json"),
            str(task.data_dir.resolve() if task.data_dir else ""),
            source,
            ids,
        ]
    )


def load_features(
    task: Task,
    encoders: dict[str, Encoder],
    cached: dict[str, bool],
    use_cache: bool,
    device: torch.device,
    quiet: bool,
    inputs: dict[str, bool] | None = None,
    options: DataOptions | None = None,
    dist: distributed.Dist | None = None,
    fit_checked: bool = False,
    data: TaskData | None = None,
) -> tuple[dict[str, FeatureSet], dict[str, Any]]:
    """Every split's features; under torchrun all ranks call this together (rank 0
    prepares an embedded task first; the ranks share the extraction). ``fit_checked``
    and ``data``: the run checked its extractions together (:func:`check_run_fits`)
    and kept the task's data it read for that."""
    options = options or DataOptions()
    dist = dist or distributed.Dist()
    if dist.main and data is None:
        _make_present(task)
    dist.barrier()
    data = data if data is not None else task.load()
    guards.check_splits(task.name, data.splits, task.label_type != "none")
    key = _data_key(task, data.splits, data.source)
    feature_sets = {
        split: build_feature_set(
            split,
            take_fraction(data.splits[split], options.fraction),
            encoders,
            cached,
            key,
            inputs=inputs,
            use_cache=use_cache,
            device=device,
            where=task.name,
            store_dtype=options.store_dtype,
            quiet=quiet,
            dist=dist,
            fit_checked=fit_checked,
        )
        for split in SPLITS
    }
    info = {"source": data.source, "repaired": data.repaired, "load_problems": len(data.problems),
            "data_key": key}
    return feature_sets, info


def _make_present(task: Task) -> None:
    """Generate an embedded task on first use; a real task's missing data is an error."""
    if task.is_present():
        return
    if not task.embedded:
        raise DataError(task.missing_message())
    task.prepare()


def check_run_fits(run: RunContext, stages: list[StageSpec], main_task: Task) -> None:
    """Every stage's extractions checked together before the first stage trains, so a
    later stage's store that cannot fit stops the run now, not after the earlier stage
    trained. Rank 0 counts and probes (:func:`~mmalign.features.extraction_needs`);
    the others wait for its verdict. Each stage's task, encoders and (on rank 0) the
    data read are kept in ``run.planned`` for :func:`prepare_stage`."""
    problem = None
    options = data_options(run.run_cfg.method_config.get("data", {}))
    for index, stage in enumerate(stages):
        task, notice = _stage_task(run.registry, stage, main_task, run.run_cfg.task)
        _, encoders = stage_context(stage, task, run.cfg, {}, run.device)
        run.planned[index] = PlannedStage(task, notice, encoders)
    if run.dist.main:
        counted: dict[Path, set[str]] = {}
        needs = []
        try:
            for stage, plan in zip(stages, run.planned.values(), strict=True):
                refs = stage.encoders or getattr(run.cfg, "encoders", {})
                _make_present(plan.task)
                plan.data = plan.task.load()
                splits = {s: take_fraction(plan.data.splits[s], options.fraction)
                          for s in SPLITS}
                guards.check_splits(plan.task.name, splits, plan.task.label_type != "none")
                needs += extraction_needs(splits, plan.encoders,
                                          {m: refs[m].cache for m in plan.encoders}, counted,
                                          device=run.device, store_dtype=options.store_dtype,
                                          where=plan.task.name)
            check_needs(needs, options.store_dtype, run.req.quiet)
        except (DoesNotFitError, DataError) as exc:  # every rank raises it, not only rank 0
            problem = (isinstance(exc, DataError), str(exc))
    problem = run.dist.broadcast_object(problem)
    if problem:
        is_data, message = problem
        raise (DataError if is_data else DoesNotFitError)(message)


def execute(req: RunRequest) -> RunResult:
    """Run (or resume) one method on one task; the result row is always closed."""
    started = time.time()
    memory.pin_mmap_threshold()
    device = pick_device(req.device)
    dist = distributed.init(device)
    if req.resume:
        run_dir = _resolve_run_dir(req.resume)
        saved = identity.load_run_config(run_dir)
        _check_same(saved, req)
        identity.refuse_changes(
            saved, {**(load_file(req.config_file) if req.config_file else {}), **req.sets}
        )
        method = get_host().registry.get("method", saved.method)()
        run_cfg, cfg = saved, validate(method.Config, saved.method_config["method"])
        req = RunRequest(
            **{
                **req.__dict__,
                "method": saved.method,
                "task": saved.task,
                "size": saved.size,
                "seed": saved.seed,
                "data_dir": identity.resume_data_dir(saved, req.data_dir),
            }
        )
        run_id = run_dir.name
    else:
        method, run_cfg, cfg = resolve(req)
        preflight.check_data(get_host().registry, method, cfg, run_cfg.task,
                             run_cfg.method_config["task"], req.data_dir, req.allow_stand_in)
        live.check_names(req.loggers)
        chash = config_hash(run_cfg.model_dump(mode="json"))
        claimed = identity.claim_run_dir(run_cfg, chash) if dist.main else None
        run_id = str(dist.broadcast_object(claimed.name if claimed else None))
        run_dir = paths.runs_dir() / run_id
        if dist.main:
            atomic.write_text(run_dir / "run.json", run_cfg.model_dump_json(indent=2))
    chash = config_hash(run_cfg.model_dump(mode="json"))
    store = ResultsStore(req.results_db) if dist.main else None
    if store:
        store.start(
            run_id,
            method=run_cfg.method,
            task=run_cfg.task,
            size=run_cfg.size,
            seed=run_cfg.seed,
            config_hash=chash,
            config=run_cfg.model_dump(mode="json"),
            device=describe(device),
            versions=provenance.package_versions(),
            run_dir=str(run_dir),
        )
    try:
        result = _train_all(req, method, run_cfg, cfg, run_dir, device, dist)
    except BaseException as exc:
        if store:
            status = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
            store.update(
                run_id,
                status=status,
                error=f"{type(exc).__name__}: {exc}",
                wall_time=time.time() - started,
            )
        raise
    finally:
        distributed.shutdown(dist)
    metrics, params, extra, skipped = result
    extra["variant"] = variant_label(run_cfg.overrides)
    extra["provenance"] = provenance.summarize(extra["stages"], device)
    wall = time.time() - started
    if store:
        atomic.write_text(run_dir / "provenance.json",
                          json.dumps(extra["provenance"], indent=2, default=str))
        atomic.write_text(
            run_dir / "metrics.json",
            json.dumps(
                {"metrics": metrics, "params": params, "extra": extra}, indent=2, default=str
            ),
        )
        store.update(
            run_id,
            status="completed",
            metrics=metrics,
            params=params,
            extra=extra,
            wall_time=wall,
            skipped=skipped,
        )
        for ckpt in run_dir.glob("stage-*.ckpt"):  # only a resume needs them; they can be GBs
            ckpt.unlink()
    return RunResult(run_id, run_dir, metrics, "completed", extra, wall)


def _stage_store_path(
    method: str, stage: StageSpec, task: Task, data_key: str = "", seed: int = 0
) -> Path:
    """A reusable stage's stored model: keyed by its config, the task it trained on and
    that data's identity (folder, source, sample ids), so changed data is retrained;
    and by the seed when the stage is reused per seed."""
    trained_on = [task.name, task.config.model_dump(mode="json"), data_key]
    parts: list[Any] = [method, stage.name, stage.reuse_config, trained_on]
    key = config_hash([*parts, {"seed": seed}] if stage.reuse_per_seed else parts)
    return paths.stages_dir() / f"{method}-{stage.name}-{key}.pt"


def _stage_task(
    registry: Any, stage: StageSpec, main_task: Task, run_task: str
) -> tuple[Task, str | None]:
    """The task a stage trains on; its ``fallback_task`` when that one's data is absent.
    An embedded task is never absent: it is generated on first use, like the main task.
    (``--data-dir`` is the main task's own folder; other stages' tasks use theirs.)"""
    if stage.task in (None, run_task):
        return main_task, None
    task = make_task(registry, stage.task, stage.task_configs.get(stage.task, {}), None)
    if stage.fallback_task is None or task.embedded or task.is_present():
        return task, None
    notice = (
        f"stage '{stage.name}': no data for '{task.name}' in {task.data_dir}; "
        f"training on the stand-in '{stage.fallback_task}' instead (recorded in the run)"
    )
    log.warning(notice)
    config = stage.task_configs.get(stage.fallback_task, {})
    return make_task(registry, stage.fallback_task, config, None), notice


@dataclass
class RunContext:
    """What every stage step of one run shares."""

    req: RunRequest
    run_cfg: RunConfig
    cfg: Any
    run_dir: Path
    device: torch.device
    dist: distributed.Dist
    registry: Any
    #: per stage index, what the fit check already resolved (taken by prepare_stage)
    planned: dict[int, PlannedStage] = field(default_factory=dict)


@dataclass
class PlannedStage:
    """A stage's task, stand-in notice, encoders and (rank 0) data, read once."""

    task: Task
    notice: str | None
    encoders: dict[str, Encoder]
    data: TaskData | None = None


@dataclass
class PreparedStage:
    """One stage ready to train: its task, encoders, features and built components."""

    spec: StageSpec
    index: int
    task: Task
    notice: str | None
    encoders: dict[str, Encoder]
    model: nn.Module
    objective: Objective
    #: per split; ``None`` when prepared without data (``mmalign info``)
    fsets: dict[str, FeatureSet] | None
    data_info: dict[str, Any]

    def info(self) -> dict[str, Any]:
        """The stage's record before training: task, data, skips, notice."""
        out: dict[str, Any] = {"task": self.task.name, **self.data_info}
        if self.fsets is not None:
            out["skipped"] = {s: fs.skipped for s, fs in self.fsets.items()}
        if self.notice:
            out["notice"] = self.notice
        return out


def prepare_stage(
    run: RunContext,
    index: int,
    stage: StageSpec,
    main_task: Task,
    previous: dict[str, nn.Module],
    load_data: bool = True,
) -> PreparedStage:
    """The stage's task (or its stand-in), encoders, features with ``keep`` applied,
    then its model and objective (seeded per stage) and any precomputed features."""
    planned = run.planned.pop(index, None)  # its data is then freed with the stage
    if planned is None:
        task, notice = _stage_task(run.registry, stage, main_task, run.run_cfg.task)
        ctx, encoders = stage_context(stage, task, run.cfg, previous, run.device)
    else:
        task, notice = planned.task, planned.notice
        ctx, encoders = stage_context(stage, task, run.cfg, previous, run.device,
                                      planned.encoders)
    fsets: dict[str, FeatureSet] | None = None
    data_info: dict[str, Any] = {}
    if load_data:
        refs = stage.encoders or getattr(run.cfg, "encoders", {})
        cached = {m: refs[m].cache for m in encoders}
        inputs = {m: refs[m].inputs for m in encoders}
        options = data_options(run.run_cfg.method_config.get("data", {}))
        fsets, data_info = load_features(
            task, encoders, cached, run.req.use_cache, run.device, run.req.quiet, inputs,
            options, run.dist, fit_checked=planned is not None and run.req.use_cache,
            data=planned.data if planned is not None else None,
        )
        for fs in fsets.values():
            fs.keep_only({m: refs[m].keep for m in encoders if refs[m].keep is not None})
            fs.workers = stage.train.num_workers
    torch.manual_seed(run.run_cfg.seed + index)
    model, objective = stage.build(ctx)
    if fsets is not None and stage.precompute is not None:
        with autocast(run.device):
            for fs in fsets.values():
                derive_features(fs, stage.precompute, stage.train.eval_batch_size, run.device)
    return PreparedStage(stage, index, task, notice, encoders, model, objective, fsets,
                         data_info)


def fit_or_reuse(
    run: RunContext, prepared: PreparedStage, progress: Any, loggers: list[Any]
) -> tuple[dict[str, Any], int | None]:
    """Train the stage, or load it from the stage store when it is reusable and stored;
    returns what to record about it and its optimizer step count."""
    stage, model, objective = prepared.spec, prepared.model, prepared.objective
    assert prepared.fsets is not None
    dist = run.dist
    stored = (
        _stage_store_path(run.run_cfg.method, stage, prepared.task,
                          prepared.data_info.get("data_key", ""), run.run_cfg.seed)
        if stage.reusable else None
    )
    if stored is not None and stored.exists():
        blob = checkpoint.load(stored)
        model.load_state_dict(blob["model"])
        objective.load_state_dict(blob["objective"])
        return {"reused": str(stored), "history": blob.get("history", [])}, blob.get("steps")
    state = train_stage(
        stage=stage,
        task=prepared.task,
        model=model,
        objective=objective,
        train_fs=prepared.fsets["train"],
        val_fs=prepared.fsets["validation"],
        ckpt_path=run.run_dir / f"stage-{stage.name}.ckpt",
        seed=run.run_cfg.seed,
        device=run.device,
        dist=dist,
        progress=progress,
        on_epoch=live.EpochLog(run.run_dir, stage.name, loggers, run.req.quiet,
                               stage.train.epochs) if dist.main else None,
    )
    if stored is not None and dist.main:
        checkpoint.save(
            stored,
            {
                "model": model.state_dict(),
                "objective": objective.state_dict(),
                "history": state.history,
                "steps": state.step,
                # what produced it, readable without recomputing the key
                "reuse_config": stage.reuse_config,
                "seed": run.run_cfg.seed if stage.reuse_per_seed else None,
            },
        )
    info = {
        "history": state.history,
        "best_epoch": state.best_epoch,
        "epochs_run": state.epoch,
        "stopped_early": state.stopped_early,
    }
    return info, state.step


def evaluate_stage(run: RunContext, prepared: PreparedStage, last: bool) -> dict[str, Any]:
    """Test metrics of a stage (and validation ones for the last stage): the task's own
    evaluation, or the objective's mean test loss for an unlabelled task."""
    stage, task, fsets = prepared.spec, prepared.task, prepared.fsets
    assert fsets is not None
    if task.label_type == "none":
        batches = partial(
            stage.loader or default_loader,
            fsets["test"],
            stage.train.eval_batch_size,
            torch.Generator().manual_seed(run.run_cfg.seed),
            0,
            False,
        )
        loss = mean_loss(prepared.model, prepared.objective, batches, run.device)
        return {f"{stage.name}/test": {"loss": loss}}
    if not stage.evaluate:
        return {}
    return {
        split if last else f"{stage.name}/{split}": evaluate_split(
            task, prepared.model, fsets[split], stage.train.eval_batch_size, run.device
        )
        for split in (("validation", "test") if last else ("test",))
    }


def _train_all(
    req: RunRequest,
    method: Method,
    run_cfg: RunConfig,
    cfg: Any,
    run_dir: Path,
    device: torch.device,
    dist: distributed.Dist,
) -> tuple[dict[str, dict[str, float]], dict[str, Any], dict[str, Any], int]:
    registry = get_host().registry
    run = RunContext(req, run_cfg, cfg, run_dir, device, dist, registry)
    main_task = make_task(registry, run_cfg.task, run_cfg.method_config["task"], req.data_dir)
    stages = method.stages(cfg, main_task)
    previous: dict[str, nn.Module] = {}
    metrics: dict[str, dict[str, float]] = {}
    params: dict[str, Any] = {}
    extra: dict[str, Any] = {"stages": {}}
    skipped = 0
    loggers = live.make_loggers(req.loggers, run_dir, run_dir.name,
                                run_cfg.model_dump(mode="json")) if dist.main else []
    checkpoint.seed_everything(run_cfg.seed)
    with shown(make_progress(req.quiet or not dist.main)) as progress:
        if req.use_cache:
            check_run_fits(run, stages, main_task)
        for index, stage in enumerate(stages):
            last = index == len(stages) - 1
            prepared = prepare_stage(run, index, stage, main_task, previous)
            assert prepared.fsets is not None
            fsets, task = prepared.fsets, prepared.task
            skipped += sum(fs.skipped for fs in fsets.values())
            params[stage.name] = component_parameters(
                prepared.model, prepared.encoders, prepared.objective
            )
            stage_info = prepared.info()
            if prepared.notice:
                extra.setdefault("notices", []).append(prepared.notice)
            fitted, steps = fit_or_reuse(run, prepared, progress, loggers)
            stage_info.update(fitted)
            stage_info["provenance"] = provenance.stage_record(
                task, prepared.encoders, {s: len(fs) for s, fs in fsets.items()},
                stage.task if prepared.notice else None, steps)
            if dist.main:
                report = prepared.objective.report(
                    model=prepared.model, features=fsets, task=task, run_dir=run_dir,
                    device=device
                )
                if report is not None:
                    stage_info["report"] = report
            extra["stages"][stage.name] = stage_info
            previous[stage.name] = prepared.model
            if not dist.main:
                continue
            metrics.update(evaluate_stage(run, prepared, last))
            artefacts.keep_stage(run_dir, stage, task, prepared.model, prepared.objective,
                                 fsets, stage_info, last, device, metrics.get("test", {}))
    for logger in loggers:
        logger.close()
    return metrics, params, extra, skipped
