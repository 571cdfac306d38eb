"""How to read rows from a safetensors shard: positional reads or a memory map.

    python benchmarks/core/store_read_modes.py [--items 8000] [--tokens 64] [--dim 384]
        [--record benchmarks/core/results/store_read_modes.jsonl]

Writes one store shard of ``items`` fp16 rows, then, each way in a fresh process,
reads every row once in shuffled batches of 256 and reports the seconds and the
growth of the process's resident set (``ru_maxrss``). A memory map's touched pages
count in the reader's RSS until the kernel reclaims them, so an epoch over a large
store looks like (and under memory pressure competes like) holding it; positional
reads leave the pages in the shared page cache. The store reads with ``os.preadv``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmalign.store import shards


def write(directory: Path, items: int, tokens: int, dim: int) -> None:
    for start in range(0, items, 2048):  # the writer holds one chunk at a time
        n = min(2048, items - start)
        feats = {"tokens": torch.randn(n, tokens, dim).half()}
        keys = [f"k{start + i}" for i in range(n)]
        shards.write(directory, f"{start:08d}", keys, feats, [tokens] * n, {})


def read(directory: Path, mode: str) -> dict[str, float]:
    found, _ = shards.scan(directory)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    for shard in found:
        col = shard.columns["tokens"]
        order = rng.permutation(col.shape[0])
        if mode == "mmap":
            mapped = np.memmap(shard.path, dtype=np.float16, mode="r", offset=col.offset,
                               shape=col.shape)
        for start in range(0, len(order), 256):
            index = np.sort(order[start : start + 256])
            if mode == "mmap":
                batch = torch.from_numpy(np.asarray(mapped[index])).float()
            else:
                batch = shard.read_rows("tokens", index).float()
            assert batch.shape[0] == len(index)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"mode": mode, "seconds": round(time.perf_counter() - started, 2),
            "rss_growth_bytes": after - before}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=8000)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--read", choices=["pread", "mmap"])
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read(args.dir, args.read)))
        return
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp), args.items, args.tokens, args.dim)
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
        for mode in ("pread", "mmap"):
            out = subprocess.run([sys.executable, __file__, "--read", mode, "--dir", tmp],
                                 capture_output=True, text=True, check=True, env=os.environ)
            line = {"items": args.items, "store_bytes": size, **json.loads(out.stdout)}
            lines.append(line)
            print(json.dumps(line), flush=True)
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.write_text("".join(json.dumps(x) + "\n" for x in lines))


if __name__ == "__main__":
    main()
