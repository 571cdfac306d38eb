"""The training loop of one stage: epochs, validation-only model selection, early
stopping and an atomic checkpoint after every epoch (enough to resume exactly)."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from mmalign.features import FeatureSet, move, shuffled_batches
from mmalign.interfaces import Batch, Objective, StageSpec, StepContext, Task
from mmalign.runner import checkpoint, guards
from mmalign.runner.device import autocast
from mmalign.runner.distributed import Dist
from mmalign.runner.evaluation import evaluate_split, mean_loss
from mmalign.runner.optim import (
    StepSchedule,
    make_optimizer,
    make_scheduler,
    parameter_groups,
    trainable_parameters,
)

log = logging.getLogger("mmalign.runner")

Loader = Callable[..., Iterator[Batch]]


def default_loader(
    fs: FeatureSet,
    batch_size: int,
    generator: torch.Generator,
    epoch: int,
    train: bool,
    rank: int = 0,
    world: int = 1,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Shuffled batches of paired samples (every modality per sample)."""
    yield from fs.batches(
        shuffled_batches(
            len(fs),
            batch_size,
            generator,
            shuffle=train,
            drop_last=drop_last and train,
            rank=rank,
            world=world,
        )
    )


@dataclass
class StageState:
    """What the loop carries across epochs, and what a checkpoint restores."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    best_epoch: int = -1
    best_state: dict[str, Any] | None = None
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    stopped_early: bool = False


def _monitor(stage: StageSpec, task: Task) -> tuple[str, bool]:
    """The validation quantity that selects the model, and whether higher is better.

    The direction is the monitored metric's own (``Task.direction``), so watching
    ``corr`` on a task whose primary metric is ``mae`` keeps the highest ``corr``.
    ``"last"`` keeps the final epoch: every epoch counts as an improvement.
    """
    name = stage.train.monitor
    if name is None:
        name = "val_loss" if task.label_type == "none" else task.primary_metric
    if name in ("last", "val_loss"):
        return name, False
    return name, task.direction(name) == "max"


def _improved(value: float, best: float | None, higher: bool, monitor: str = "") -> bool:
    if monitor == "last":
        return True
    if math.isnan(value):
        return False
    return best is None or (value > best if higher else value < best)


def _state_dicts(model: nn.Module, objective: Objective) -> dict[str, Any]:
    return {
        "model": copy.deepcopy(model.state_dict()),
        "objective": copy.deepcopy(objective.state_dict()),
    }


def train_stage(
    *,
    stage: StageSpec,
    task: Task,
    model: nn.Module,
    objective: Objective,
    train_fs: FeatureSet,
    val_fs: FeatureSet,
    ckpt_path: Path,
    seed: int,
    device: torch.device,
    dist: Dist,
    progress: Any,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> StageState:
    cfg = stage.train
    loader: Loader = stage.loader or default_loader
    model.to(device)
    objective.to(device)
    params = (
        parameter_groups(cfg, model, objective)
        if cfg.decay_exclude_1d
        else trainable_parameters(model, objective)
    )
    optimizer = make_optimizer(cfg, params)
    scheduler = make_scheduler(cfg, optimizer)
    state = StageState()

    if ckpt_path.exists():
        saved = checkpoint.load_resume(ckpt_path)
        model.load_state_dict(saved["model"])
        objective.load_state_dict(saved["objective"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None and saved["scheduler"] is not None:
            scheduler.load_state_dict(saved["scheduler"])
        state = StageState(**saved["state"])
        checkpoint.set_rng_state(saved["rng"])
        log.info("resumed stage %s after epoch %d", stage.name, state.epoch)

    net: nn.Module = model
    if dist.active:
        net = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=stage.find_unused_parameters,
        )

    def forward(batch: Batch) -> Any:
        with autocast(device):
            return net(batch)

    def optimize(loss: Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable_parameters(model, objective), cfg.grad_clip)
        optimizer.step()

    monitor, higher = _monitor(stage, task)
    # a loader that batches a subset per epoch (one caption per image) says how many
    count = getattr(loader, "batches_per_epoch", None)
    steps_per_epoch = guards.check_steps(
        stage.name, len(train_fs), cfg.batch_size, cfg.drop_last, dist.world,
        count(train_fs, cfg.batch_size, cfg.drop_last) if count is not None else None)
    total_steps = steps_per_epoch * cfg.epochs
    step_schedule = None
    if StepSchedule.wanted(cfg):
        step_schedule = StepSchedule(cfg, optimizer, steps_per_epoch)
    epoch_bar = progress.add_task(f"{stage.name}", total=cfg.epochs, completed=state.epoch, info="")

    def val_batches() -> Iterator[Batch]:
        return loader(val_fs, cfg.eval_batch_size, torch.Generator().manual_seed(seed), 0, False)

    while state.epoch < cfg.epochs and not state.stopped_early:
        epoch = state.epoch
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        model.train()
        objective.train()
        sums: dict[str, float] = {}
        n_batches = 0
        batch_bar = progress.add_task("  batches", total=steps_per_epoch, info="")
        for batch in loader(
            train_fs, cfg.batch_size, generator, epoch, True, dist.rank, dist.world, cfg.drop_last
        ):
            if step_schedule is not None:
                step_schedule.update(state.step)
            ctx = StepContext(
                model=net,
                batch=move(batch, device),
                optimize=optimize,
                forward=forward,
                step=state.step,
                epoch=epoch,
                total_steps=total_steps,
                device=device,
                generator=generator,
            )
            losses = objective.training_step(ctx)
            state.step += 1
            n_batches += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            progress.update(batch_bar, advance=1, info=f"loss {losses.get('loss', 0):.4f}")
        progress.remove_task(batch_bar)
        row = {f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}
        row["epoch"] = epoch
        if step_schedule is not None:  # the values of the epoch's last step
            row["train_lr"] = float(optimizer.param_groups[0]["lr"])
            row["train_weight_decay"] = max(g["weight_decay"] for g in optimizer.param_groups)

        value = float("nan")
        if dist.main:
            if monitor == "val_loss" or task.label_type == "none":
                row["val_loss"] = mean_loss(model, objective, val_batches, device)
            if task.label_type != "none" and stage.evaluate:
                row.update(
                    {
                        f"val_{k}": v
                        for k, v in evaluate_split(
                            task, model, val_fs, cfg.eval_batch_size, device
                        ).items()
                    }
                )
            if monitor == "last":
                value = float(epoch)
            elif monitor == "val_loss":
                value = row["val_loss"]
            else:
                value = row.get(f"val_{monitor}", value)
        value = float(dist.broadcast_object(value))  # every rank takes the same decision
        if _improved(value, state.best, higher, monitor):
            state.best, state.best_epoch, state.bad_epochs = value, epoch, 0
            state.best_state = _state_dicts(model, objective)
        else:
            state.bad_epochs += 1
        if scheduler is not None:
            scheduler.step()
        state.history.append(row)
        state.epoch += 1
        if cfg.patience is not None and state.bad_epochs >= cfg.patience:
            state.stopped_early = True
        if on_epoch is not None:
            on_epoch(row)
        progress.update(epoch_bar, advance=1, info=f"{monitor} {value:.4f}")
        if dist.main:
            checkpoint.save(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "objective": objective.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "state": state.__dict__,
                    "rng": checkpoint.rng_state(),
                },
            )
        dist.barrier()

    progress.remove_task(epoch_bar)
    guards.check_stepped(stage.name, state.step, state.epoch, len(train_fs), cfg.batch_size)
    if state.best_state is not None:
        model.load_state_dict(state.best_state["model"])
        objective.load_state_dict(state.best_state["objective"])
    return state
