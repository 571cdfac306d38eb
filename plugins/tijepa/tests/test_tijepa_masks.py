"""Multiblock mask statistics over many draws: scales, aspect ratios, no overlap,
min_keep, rectangular blocks, positions over the whole grid."""

from __future__ import annotations

import pytest
import torch
from mmalign_tijepa.masks import MultiblockConfig, MultiblockMaskCollator, block_size, token_grid

from mmalign.errors import ConfigError


def _blocks(targets: torch.Tensor, cols: int) -> list[tuple[int, int, int]]:
    """(height, width, cells) of every target block in [B, M, K] indices."""
    out = []
    for block in targets.reshape(-1, targets.shape[-1]):
        rows, cs = block // cols, block % cols
        out.append((int(rows.max() - rows.min() + 1), int(cs.max() - cs.min() + 1), len(block)))
    return out


def test_block_sizes_follow_scale_and_aspect_ranges():
    g = torch.Generator().manual_seed(0)
    grid = (16, 16)
    scales, aspects = [], []
    for _ in range(2000):
        h, w = block_size((0.15, 0.2), (0.75, 1.5), grid, g)
        scales.append(h * w / 256)
        aspects.append(h / w)
    scales_t, aspects_t = torch.tensor(scales), torch.tensor(aspects)
    # rounding h and w to whole cells moves the area by at most ~(h + w) / 2 cells
    assert scales_t.min() >= 0.15 - 0.035 and scales_t.max() <= 0.2 + 0.035
    assert abs(float(scales_t.mean()) - 0.175) < 0.01
    assert aspects_t.min() >= 0.75 - 0.2 and aspects_t.max() <= 1.5 + 0.25
    assert float(aspects_t.mean()) > 1.0  # uniform on (0.75, 1.5) has mean 1.125
    # scale and aspect are drawn independently (I-JEPA reuses one draw for both)
    assert abs(float(torch.corrcoef(torch.stack([scales_t, aspects_t]))[0, 1])) < 0.1
    for _ in range(200):
        h, w = block_size((0.85, 1.0), (1.0, 1.0), grid, g)
        assert h == w and 0.85 - 0.07 <= h * w / 256 <= 1.0


@pytest.mark.parametrize("grid", [(16, 16), (14, 14), (7, 7), (6, 9)])
def test_masks_over_many_draws(grid):
    rows, cols = grid
    collator = MultiblockMaskCollator(MultiblockConfig())
    g = torch.Generator().manual_seed(1)
    n = rows * cols
    covered = torch.zeros(n, dtype=torch.bool)
    for _ in range(60):
        masks = collator.sample(16, grid, g)
        ctx, tgt = masks.context, masks.targets
        assert tgt.shape[:2] == (16, 4)
        blocks = _blocks(tgt, cols)
        # every target block is a full h x w rectangle, all of one size per batch
        assert all(h * w == k for h, w, k in blocks)
        assert len({(h, w) for h, w, _ in blocks}) == 1
        h, w, k = blocks[0]
        assert 0.1 <= k / n <= 0.3
        # context never overlaps a target, and keeps min_keep (lowered for small grids)
        need = collator.required_context(grid, (h, w))
        assert ctx.shape[1] >= need
        for b in range(16):
            assert not set(ctx[b].tolist()) & set(tgt[b].flatten().tolist())
            assert len(set(ctx[b].tolist())) == ctx.shape[1]
            assert ctx[b].tolist() == sorted(ctx[b].tolist())
        # positions are drawn per image
        assert len({tuple(t.flatten().tolist()) for t in tgt}) > 1
        covered[tgt.flatten()] = True
    # block positions reach every cell, the bottom row and right column included
    assert covered.all()


def test_min_keep_on_the_paper_grid():
    collator = MultiblockMaskCollator(MultiblockConfig(min_keep=10))
    g = torch.Generator().manual_seed(2)
    assert collator.required_context((16, 16), (6, 6)) == 10
    for _ in range(30):
        assert collator.sample(32, (16, 16), g).context.shape[1] >= 10
    # a 7x7 map with four 3x3 targets leaves at most 13 cells: min_keep stays 10
    assert collator.required_context((7, 7), (3, 3)) == 10
    # ... four 4x3 targets could cover 48 of 49 cells: min_keep is lowered to 1
    assert collator.required_context((7, 7), (4, 3)) == 1


def test_masks_are_reproducible_from_the_generator():
    collator = MultiblockMaskCollator()
    a = collator.sample(8, (16, 16), torch.Generator().manual_seed(5))
    b = collator.sample(8, (16, 16), torch.Generator().manual_seed(5))
    assert torch.equal(a.context, b.context) and torch.equal(a.targets, b.targets)


def test_impossible_layout_is_an_error():
    cfg = MultiblockConfig(target_scale=(0.9, 1.0), target_aspect=(1.0, 1.0))
    collator = MultiblockMaskCollator(cfg)
    with pytest.raises(ConfigError, match="could not place a context block"):
        collator.sample(2, (4, 4), torch.Generator().manual_seed(0))


def test_token_grid():
    assert token_grid(49) == (7, 7)
    assert token_grid(54, (6, 9)) == (6, 9)
    with pytest.raises(ConfigError, match="not a square"):
        token_grid(50)
    with pytest.raises(ConfigError, match="cells"):
        token_grid(49, (6, 9))


def test_loader_adds_masks_to_every_batch():
    class FakeSet:
        def __len__(self):
            return 10

        def batch(self, positions):
            return {"index": positions, "image": {"tokens": torch.zeros(len(positions), 49, 3)}}

        def batches(self, chunks):
            return (self.batch(c) for c in chunks)

    collator = MultiblockMaskCollator()
    batches = list(collator.loader(FakeSet(), 4, torch.Generator().manual_seed(0), 0, True))
    assert [len(b["index"]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b["index"] for b in batches]).tolist()) == list(range(10))
    for b in batches:
        assert b["masks"]["targets"].shape[:2] == (len(b["index"]), 4)
        assert b["masks"]["context"].shape[0] == len(b["index"])
    dropped = list(collator.loader(FakeSet(), 4, torch.Generator(), 0, True, drop_last=True))
    assert len(dropped) == 2
