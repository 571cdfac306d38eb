"""Optimizers and per-epoch learning-rate schedules from a :class:`TrainConfig`."""

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
    """Stepped once per epoch."""
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
