"""Shard row reads: the bytes of a direct safetensors read, one read per run of rows."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mmalign.errors import MMAlignError
from mmalign.store import shards


def shard(tmp_path, dtype: torch.dtype, n: int = 30) -> tuple[shards.Shard, dict]:
    g = torch.Generator().manual_seed(0)
    feats = {
        "pooled": torch.randn(n, 5, generator=g).to(dtype),
        "tokens": torch.randn(n, 4, 3, generator=g).to(dtype),
        "mask": torch.rand(n, 4, generator=g) > 0.3,
    }
    path = shards.write(tmp_path, "s", [f"k{i}" for i in range(n)], feats, [4] * n, {})
    found = shards.load(path)
    assert found is not None
    return found, load_file(str(path))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_rows_in_any_order_with_repeats_equal_a_direct_read(tmp_path, dtype):
    found, direct = shard(tmp_path, dtype)
    rng = np.random.default_rng(1)
    for index in ([0], [29], [5, 6, 7, 8], [9, 3, 3, 28, 4, 3],
                  rng.integers(0, 30, size=50), rng.permutation(30)):
        index = np.asarray(index)
        for key, want in direct.items():
            got = found.read_rows(key, index)
            assert got.dtype == want.dtype
            assert torch.equal(got, want[torch.from_numpy(index)]), (key, index)


def test_no_rows_reads_nothing(tmp_path):
    found, direct = shard(tmp_path, torch.float16)
    got = found.read_rows("tokens", np.array([], dtype=np.int64))
    assert got.shape == (0, 4, 3) and got.dtype == direct["tokens"].dtype


def test_one_read_per_run_of_consecutive_rows_each_row_once(tmp_path, monkeypatch):
    found, direct = shard(tmp_path, torch.float16)
    reads: list[tuple[int, int]] = []
    original = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, bufs, off: reads.append(
        (off, sum(memoryview(b).nbytes for b in bufs))) or original(fd, bufs, off))
    index = np.array([12, 3, 4, 5, 13, 20, 4, 3])  # runs 3-5, 12-13, 20
    got = found.read_rows("tokens", index)
    col = found.columns["tokens"]
    assert reads == [(col.offset + 3 * col.row_bytes, 3 * col.row_bytes),
                     (col.offset + 12 * col.row_bytes, 2 * col.row_bytes),
                     (col.offset + 20 * col.row_bytes, col.row_bytes)]
    assert torch.equal(got, direct["tokens"][torch.from_numpy(index)])


def test_a_shard_cut_short_under_a_reader_is_an_error_naming_it(tmp_path):
    found, _ = shard(tmp_path, torch.float32)
    with open(found.path, "r+b") as fh:
        fh.truncate(found.columns["tokens"].offset + 2 * found.columns["tokens"].row_bytes)
    assert found.read_rows("tokens", np.array([0, 1])).shape == (2, 4, 3)
    with pytest.raises(MMAlignError, match=rf"{found.path.name}.*shorter.*'tokens', row 1"):
        found.read_rows("tokens", np.array([1, 2]))
