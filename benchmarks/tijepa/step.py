"""One TI-JEPA pretraining step outside the runner, for timing.

The step is what the runner does per batch: masks from the multiblock collator, the
model forward (target module on the cached full-image tokens, context path, predictor),
the loss, backward, AdamW, and the EMA update — under bf16 autocast on CUDA. The
frozen encoders' full-image features are "cached": computed once before timing.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import torch
from mmalign_tijepa.fusion import T2IConfig
from mmalign_tijepa.masks import MultiblockMaskCollator, token_grid
from mmalign_tijepa.method import TIJEPA
from mmalign_tijepa.model import TIJEPAModel
from mmalign_tijepa.objective import JEPAObjective, ema_update
from mmalign_tijepa.predictor import PredictorConfig


def size_config(size: str) -> T2IConfig:
    """The cross-attention module of a size preset (its other keys are not the module's)."""
    prefix = "cross_attention."
    return T2IConfig(**{k.removeprefix(prefix): v for k, v in TIJEPA.sizes[size].items()
                        if k.startswith(prefix)})


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Bench:
    """A model and its optimizer on one fixed batch; ``step()`` redraws the masks."""

    def __init__(
        self,
        size: str,
        image_encoder: Any,
        images: torch.Tensor,
        text_tokens: torch.Tensor,
        paper: bool,
        device: torch.device,
        fusion: T2IConfig | None = None,
        predictor: PredictorConfig | None = None,
    ) -> None:
        with torch.no_grad(), autocast(device):
            full = image_encoder(images)["tokens"]  # the cached full-image features
        self.device = device
        self.batch_size = len(images)
        self.grid = token_grid(full.shape[1])
        self.model = TIJEPAModel(
            fusion or size_config(size),
            predictor or PredictorConfig(),
            image_dim=full.shape[-1],
            text_dim=text_tokens.shape[-1],
            image_encoder=image_encoder if paper else None,
        ).to(device)
        self.objective = JEPAObjective()
        self.optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.04
        )
        self.collator = MultiblockMaskCollator()
        self.generator = torch.Generator().manual_seed(0)
        text_mask = torch.ones(text_tokens.shape[:2], dtype=torch.bool, device=device)
        self.base = {
            "index": torch.arange(self.batch_size),
            "image": {"tokens": full, "inputs": images},
            "text": {"tokens": text_tokens, "mask": text_mask},
        }
        self.mask_seconds = 0.0

    def step(self) -> None:
        start = time.perf_counter()
        masks = self.collator.sample(self.batch_size, self.grid, self.generator).as_batch()
        self.mask_seconds += time.perf_counter() - start
        masks = {k: v.to(self.device, non_blocking=True) for k, v in masks.items()}
        batch = {**self.base, "masks": masks}
        with autocast(self.device):
            out = self.model(batch)
            loss = self.objective(out, batch)["loss"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        ema_update(self.model.target, self.model.context, 0.996)

    def time(self, steps: int, warmup: int) -> dict[str, float]:
        """Seconds per step (after warm-up) and samples per second."""
        for _ in range(warmup):
            self.step()
        sync(self.device)
        self.mask_seconds = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.device)
        elapsed = time.perf_counter() - start
        return {
            "seconds_per_step": elapsed / steps,
            "samples_per_s": self.batch_size * steps / elapsed,
            "mask_seconds_per_step": self.mask_seconds / steps,
        }

    def flops(self) -> float:
        """FLOPs of one training step (forward + backward), by torch's flop counter."""
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            self.step()
        return float(counter.get_total_flops())
