"""Optimizers, parameter groups, and per-epoch or per-step schedules from a
:class:`TrainConfig`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from mmalign.interfaces import TrainConfig


def trainable_parameters(*modules: nn.Module) -> list[nn.Parameter]:
    seen: set[int] = set()
    params = []
    for module in modules:
        for p in module.parameters():
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                params.append(p)
    return params


def parameter_groups(cfg: TrainConfig, *modules: nn.Module) -> list[dict[str, Any]]:
    """Trainable parameters with or without weight decay (timm's groups): biases and 1-d
    parameters never decay, nor the names a module lists in ``no_weight_decay()``."""
    from timm.optim import param_groups_weight_decay

    holder = nn.ModuleList(modules)  # shared parameters appear once
    skip = [
        f"{i}.{name}"
        for i, module in enumerate(modules)
        for name in (module.no_weight_decay() if hasattr(module, "no_weight_decay") else ())
    ]
    groups = param_groups_weight_decay(holder, cfg.weight_decay, no_weight_decay_list=skip)
    return [g for g in groups if g["params"]]


#: a parameter carrying this attribute is optimised at that learning rate instead of
#: ``TrainConfig.lr`` (a pretrained encoder fine-tuned inside a faster-trained model)
LR_ATTRIBUTE = "mmalign_lr"


def split_by_lr(params: list[Any]) -> list[Any]:
    """Parameters (or parameter groups) split so that each ``LR_ATTRIBUTE`` value gets
    its own group; unchanged when no parameter carries one."""
    groups = params if params and isinstance(params[0], dict) else [{"params": params}]
    if not any(hasattr(p, LR_ATTRIBUTE) for g in groups for p in g["params"]):
        return params
    out: list[dict[str, Any]] = []
    for group in groups:
        by_lr: dict[float | None, list[nn.Parameter]] = {}
        for p in group["params"]:
            by_lr.setdefault(getattr(p, LR_ATTRIBUTE, None), []).append(p)
        for lr, members in by_lr.items():
            out.append({**group, "params": members, **({} if lr is None else {"lr": lr})})
    return out


def make_optimizer(cfg: TrainConfig, params: Iterable[Any]) -> torch.optim.Optimizer:
    params = split_by_lr(list(params))
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)


def make_scheduler(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Stepped once per epoch (``warmup-cosine`` is per step: :class:`StepSchedule`)."""
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
    if cfg.scheduler == "cosine":
        warm, total = cfg.warmup_epochs, max(cfg.epochs, 1)

        def factor(epoch: int) -> float:
            if epoch < warm:
                return (epoch + 1) / (warm + 1)
            progress = (epoch - warm) / max(total - warm, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return None


class StepSchedule:
    """Learning rate and weight decay set before every optimizer step.

    ``warmup-cosine``: timm's ``CosineLRScheduler`` per update, a linear warm-up from
    ``warmup_lr`` over ``warmup_epochs`` epochs of steps, then a cosine to ``final_lr``
    over the rest; with the step counted from 1 this is I-JEPA's ``WarmupCosineSchedule``.
    ``final_weight_decay``: a cosine from ``weight_decay`` to it over all steps on the
    groups that decay (I-JEPA's ``CosineWDSchedule``; timm and transformers have none).
    Both depend on the step alone, so a resumed stage needs no saved state.
    """

    def __init__(self, cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int):
        from timm.scheduler import CosineLRScheduler

        self.total = max(cfg.epochs * steps_per_epoch, 1)
        warm = min(cfg.warmup_epochs * steps_per_epoch, self.total)
        self.lr = (
            CosineLRScheduler(
                optimizer,
                t_initial=max(self.total - warm, 1),
                lr_min=cfg.final_lr,
                warmup_t=warm,
                warmup_lr_init=cfg.warmup_lr,
                warmup_prefix=True,
                t_in_epochs=False,
            )
            if cfg.scheduler == "warmup-cosine"
            else None
        )
        self.ref_wd, self.final_wd = cfg.weight_decay, cfg.final_weight_decay
        self.decaying = [g for g in optimizer.param_groups if g["weight_decay"] > 0]

    @staticmethod
    def wanted(cfg: TrainConfig) -> bool:
        return cfg.scheduler == "warmup-cosine" or cfg.final_weight_decay is not None

    def weight_decay_at(self, step: int) -> float:
        assert self.final_wd is not None
        progress = min((step + 1) / self.total, 1.0)
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.final_wd + (self.ref_wd - self.final_wd) * cosine

    def update(self, step: int) -> None:
        """Set the values of optimizer step ``step`` (0-based)."""
        if self.lr is not None:
            self.lr.step_update(step + 1)
        if self.final_wd is not None:
            wd = self.weight_decay_at(step)
            for group in self.decaying:
                group["weight_decay"] = wd
