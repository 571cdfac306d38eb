"""I-JEPA multiblock masks on an image encoder's token grid, and a loader that adds them.

Per batch, one target block size and one context block size are drawn (scale and
aspect ratio, as I-JEPA's collator does, so every target block of a batch has the
same number of patches and the masks stack without padding). Per image, ``targets``
target blocks and one context block are placed at random; the context loses every
patch a target block covers, and is redrawn (then the targets too) until it keeps
at least ``min_keep`` patches, so context and targets never overlap. Context index
lists are cut to the batch's shortest by a random subset of each (I-JEPA keeps the
first ones in raster order, which favours the top of the block).

The grid is the image encoder's token grid: 16x16 patches for I-JEPA's ViT-H/14 at
224 px, the 7x7 feature map for EfficientNet-Lite0 at 224 px (cells, not patches).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor

from mmalign.errors import ConfigError
from mmalign.interfaces import Batch, StrictModel

Range = tuple[float, float]


class MultiblockConfig(StrictModel):
    """Table 2 and I-JEPA's mask settings."""

    context_scale: Range = (0.85, 1.0)
    context_aspect: Range = (1.0, 1.0)
    target_scale: Range = (0.15, 0.2)
    target_aspect: Range = (0.75, 1.5)
    targets: int = Field(4, ge=1, description="target blocks per image (Table 2: 4)")
    min_keep: int = Field(10, ge=1, description="fewest context patches (I-JEPA: 10)")
    tries: int = Field(20, ge=1, description="context placements before redrawing targets")
    rounds: int = Field(50, ge=1, description="target redraws before giving up")
    grid: tuple[int, int] | None = Field(
        None, description="token grid (rows, cols); None: square grid from the token count"
    )
    modality: str | None = Field(
        None, description="whose tokens are masked; None: 'image' (ti-jepa: its image modality)"
    )

    @model_validator(mode="after")
    def _ranges(self) -> MultiblockConfig:
        for name in ("context_scale", "context_aspect", "target_scale", "target_aspect"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got ({lo}, {hi})")
        if self.context_scale[1] > 1 or self.target_scale[1] > 1:
            raise ValueError("mask scales are fractions of the grid, at most 1")
        return self


@dataclass
class Masks:
    """Patch indices (raster order on the grid): context [B, Kc], targets [B, M, Kt]."""

    context: Tensor
    targets: Tensor
    grid: tuple[int, int]

    def as_batch(self) -> dict[str, Tensor]:
        return {"context": self.context, "targets": self.targets}


def token_grid(n_tokens: int, grid: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (rows, cols) grid of ``n_tokens`` image tokens."""
    if grid is not None:
        if grid[0] * grid[1] != n_tokens:
            raise ConfigError(f"mask grid {grid} has {grid[0] * grid[1]} cells, not {n_tokens}")
        return grid
    side = math.isqrt(n_tokens)
    if side * side != n_tokens:
        raise ConfigError(
            f"{n_tokens} image tokens are not a square grid; set masks.grid=[rows, cols]"
        )
    return side, side


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + float(torch.rand(1, generator=generator)) * (high - low)


def block_size(
    scale: Range, aspect: Range, grid: tuple[int, int], generator: torch.Generator
) -> tuple[int, int]:
    """(h, w) of a block covering about ``scale`` of the grid with h/w about ``aspect``.

    Scale and aspect are drawn independently (I-JEPA reuses one uniform draw for both).
    """
    rows, cols = grid
    area = _uniform(*scale, generator) * rows * cols
    ratio = _uniform(*aspect, generator)
    h = min(max(round(math.sqrt(area * ratio)), 1), rows)
    w = min(max(round(math.sqrt(area / ratio)), 1), cols)
    return h, w


def place_blocks(
    n: int, k: int, size: tuple[int, int], grid: tuple[int, int], generator: torch.Generator
) -> Tensor:
    """``k`` blocks of ``size`` per image at uniform positions: bool [n, k, rows, cols]."""
    (h, w), (rows, cols) = size, grid
    top = torch.randint(0, rows - h + 1, (n, k, 1), generator=generator)
    left = torch.randint(0, cols - w + 1, (n, k, 1), generator=generator)
    r = torch.arange(rows)
    c = torch.arange(cols)
    in_rows = (r >= top) & (r < top + h)
    in_cols = (c >= left) & (c < left + w)
    return in_rows[..., :, None] & in_cols[..., None, :]


class MultiblockMaskCollator:
    """Draws I-JEPA multiblock masks for a batch and adds them to batches as ``"masks"``.

    Reusable by any method that predicts masked image tokens: ``sample`` gives the
    masks for ``B`` images on a grid, ``loader`` is a ``StageSpec.loader`` whose
    batches carry ``batch["masks"] = {"context": [B, Kc], "targets": [B, M, Kt]}``.
    """

    Config = MultiblockConfig

    def __init__(self, config: MultiblockConfig | None = None) -> None:
        self.config = config if config is not None else MultiblockConfig()

    def required_context(self, grid: tuple[int, int], target: tuple[int, int]) -> int:
        """``min_keep``, lowered to the cells that M target blocks can never all cover
        (small grids such as a 7x7 feature map cannot always leave 10 free)."""
        cfg = self.config
        free = grid[0] * grid[1] - cfg.targets * target[0] * target[1]
        return max(1, min(cfg.min_keep, free))

    def sample(self, batch_size: int, grid: tuple[int, int], generator: torch.Generator) -> Masks:
        cfg = self.config
        target = block_size(cfg.target_scale, cfg.target_aspect, grid, generator)
        context = block_size(cfg.context_scale, cfg.context_aspect, grid, generator)
        need = self.required_context(grid, target)
        targets = place_blocks(batch_size, cfg.targets, target, grid, generator)
        ctx = place_blocks(batch_size, 1, context, grid, generator)[:, 0] & ~targets.any(1)
        short = ctx.flatten(1).sum(1) < need
        for attempt in range(cfg.rounds * cfg.tries):
            if not short.any():
                break
            idx = short.nonzero().squeeze(1)
            if attempt % cfg.tries == cfg.tries - 1:  # this layout is hopeless: new targets
                targets[idx] = place_blocks(len(idx), cfg.targets, target, grid, generator)
            fresh = place_blocks(len(idx), 1, context, grid, generator)[:, 0]
            ctx[idx] = fresh & ~targets[idx].any(1)
            short = ctx.flatten(1).sum(1) < need
        if short.any():
            raise ConfigError(
                f"could not place a context block keeping {need} of the {grid[0]}x{grid[1]} "
                f"token grid clear of {cfg.targets} target blocks of {target[0]}x{target[1]}; "
                "lower masks.min_keep or the target scale"
            )
        return Masks(
            context=_subset_indices(ctx.flatten(1), generator),
            targets=_block_indices(targets.flatten(2), target[0] * target[1]),
            grid=grid,
        )

    def for_batch(self, batch: Batch, generator: torch.Generator) -> Masks:
        """Masks for a batch, on the grid of its image tokens."""
        features = batch[self.config.modality or "image"]
        n_tokens = int(features["tokens"].shape[1])
        grid = token_grid(n_tokens, self.config.grid)
        return self.sample(len(batch["index"]), grid, generator)

    def batches(
        self,
        fs: Any,
        order: Tensor,
        batch_size: int,
        generator: torch.Generator,
        train: bool,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Batches of ``fs`` at the positions ``order``, each with its masks.

        The batches are gathered by ``fs.batches`` (in DataLoader workers with
        ``train.num_workers``); the masks are drawn here, in order, from ``generator``.
        """

        def chunks() -> Iterator[Tensor]:
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                if drop_last and train and len(chunk) < batch_size:
                    break
                if world > 1:
                    if len(chunk) < world:
                        break
                    chunk = chunk[rank::world]
                yield chunk

        for batch in fs.batches(chunks()):
            batch["masks"] = self.for_batch(batch, generator).as_batch()
            yield batch

    def loader(
        self,
        fs: Any,
        batch_size: int,
        generator: torch.Generator,
        epoch: int,
        train: bool,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
    ) -> Iterator[Batch]:
        """Shuffled (train) or ordered batches of ``fs``, each with its masks."""
        n = len(fs)
        order = torch.randperm(n, generator=generator) if train else torch.arange(n)
        yield from self.batches(fs, order, batch_size, generator, train, rank, world, drop_last)


def _block_indices(blocks: Tensor, size: int) -> Tensor:
    """bool [B, M, N] with ``size`` cells set per block -> sorted indices [B, M, size]."""
    b, m, _ = blocks.shape
    return blocks.nonzero()[:, 2].view(b, m, size)


def _subset_indices(keep: Tensor, generator: torch.Generator) -> Tensor:
    """bool [B, N] -> [B, k] sorted indices, a random k-subset per row, k the fewest set."""
    k = int(keep.sum(1).min())
    scores = torch.rand(keep.shape, generator=generator)
    scores = scores.masked_fill(~keep, -1.0)
    chosen = scores.topk(k, dim=1).indices
    return chosen.sort(dim=1).values
