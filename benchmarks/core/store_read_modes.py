"""One epoch of batch gathers from the feature store, read several ways side by side.

    python benchmarks/core/store_read_modes.py [--items 2000] [--share 5] [--tokens 64]
        [--dim 384] [--repeats 3] [--baseline SRC]
        [--record benchmarks/core/results/store_read_modes]

Writes one store (``FeatureStore``'s writer, fp16) of ``items`` inputs with a
``pooled`` [dim] and a ``tokens`` [tokens, dim] feature each, seen by ``items x
share`` rows (COCO's five captions per image), then times, each way in a fresh
process, one epoch of shuffled batches of 256 rows reading both keys as fp32:

* ``store``: :class:`mmalign.store.StoredColumn` gathers (positional reads);
* ``store, MMALIGN_MALLOC_PIN=1``: the same with glibc's mmap threshold pinned, as
  ``mmalign run`` does when asked (``mmalign.store.memory``), so freed batch buffers
  go back to the system instead of fragmenting the heap;
* ``store, 2 workers``: the same through ``FeatureSet.batches`` in 2 DataLoader
  worker processes (``train.num_workers=2``);
* ``store, one read per row``: the reader before reads were coalesced (2ab6e9c),
  copied into this script;
* ``store (baseline)``: the ``StoredColumn`` of the source tree ``SRC`` (e.g.
  ``git archive 2ab6e9c | tar -x -C /tmp/ws-main-2ab6e9c``), put first on
  ``PYTHONPATH`` (each process reports the ``mmalign`` it imported);
* ``mmap``: a ``numpy.memmap`` of each shard, fancy-indexed;
* ``in RAM fp32``: every row's features as fp32 tensors in memory (the format-1
  cache after loading), indexed.

The ways take turns (ABC..., then reversed) so the shared machine's load falls on
all alike: read the ratios to ``in RAM fp32``, not the seconds. Also reported: the
growth of the process's peak resident set over the epoch (``VmHWM``, reset before it), which a
memory map inflates and positional reads do not (not per way with ``--one-process``,
which times every way in one process). ``--record P`` writes ``P.json`` and ``P.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BATCH = 256


def write_store(root: Path, items: int, tokens: int, dim: int) -> None:
    from mmalign.store import FeatureStore

    store = FeatureStore(root, "fp16", "read-modes")
    writer = store.writer()
    g = torch.Generator().manual_seed(0)
    for start in range(0, items, 512):  # the writer holds at most one shard
        n = min(512, items - start)
        writer.add([f"k{start + i}" for i in range(n)],
                   {"pooled": torch.randn(n, dim, generator=g),
                    "tokens": torch.randn(n, tokens, dim, generator=g)})
    writer.close()


def peak_rss() -> int:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` would carry the
    parent's peak across ``exec``), in bytes."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak_rss() -> int:
    """Reset the peak to the current resident set (Linux ``clear_refs`` 5) and return it,
    so the epoch's growth is measured from here."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return peak_rss()


def epoch_chunks(rows: int) -> list[torch.Tensor]:
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(1))
    return [order[s : s + BATCH] for s in range(0, rows, BATCH)]


def read(root: Path, mode: str, items: int, share: int) -> dict[str, object]:
    import mmalign
    from mmalign.store import FeatureStore

    rows = items * share
    store = FeatureStore(root, "fp16", "read-modes")
    keys = [f"k{i // share}" for i in range(rows)]
    columns = store.columns(keys)
    chunks = epoch_chunks(rows)
    if mode == "in RAM fp32":
        everything = torch.arange(rows)
        source = {k: torch.cat([c[everything[s : s + 2048]] for s in range(0, rows, 2048)])
                  for k, c in columns.items()}
    elif mode == "store, MMALIGN_MALLOC_PIN=1":
        from mmalign.store.memory import pin_mmap_threshold

        os.environ["MMALIGN_MALLOC_PIN"] = "1"
        assert pin_mmap_threshold()
        source = columns
    elif mode == "mmap":
        source = {k: _Mapped(store, k, keys) for k in columns}
    elif mode == "store, one read per row":
        source = {k: _PerRow(c) for k, c in columns.items()}
    else:
        source = columns
    before = reset_peak_rss()
    started = time.perf_counter()
    if mode == "store, 2 workers":
        from mmalign.features import FeatureSet, ModalityData

        fs = FeatureSet("train", [str(i) for i in range(rows)], None,
                        {"a": ModalityData(rows=torch.arange(rows), features=dict(columns))},
                        {}, workers=2)
        got = sum(len(b["index"]) for b in fs.batches(chunks))
    else:
        got = 0
        for chunk in chunks:
            batch = {k: v[chunk] for k, v in source.items()}
            assert batch["tokens"].dtype == torch.float32
            got += len(batch["tokens"])
    seconds = time.perf_counter() - started
    assert got == rows
    after = peak_rss()
    return {"mode": mode, "seconds": seconds, "rss_growth_bytes": after - before,
            "peak_rss_bytes": after, "mmalign": mmalign.__file__}


class _Mapped:
    """A column read through a memory map of each shard."""

    def __init__(self, store, key: str, keys: list[str]) -> None:
        from mmalign.store.shards import _NUMPY

        self.maps = [np.memmap(s.path, dtype=_NUMPY[s.columns[key].dtype], mode="r",
                               offset=s.columns[key].offset, shape=s.columns[key].shape)
                     for s in store.shards]
        located = np.array([store.where[k] for k in keys], dtype=np.int64)
        self.shard_of, self.row_of = located[:, 0], located[:, 1]

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        index = rows.numpy()
        shard_of, row_of = self.shard_of[index], self.row_of[index]
        out = np.empty((len(index), *self.maps[0].shape[1:]), dtype=self.maps[0].dtype)
        for s in np.unique(shard_of).tolist():
            where = np.flatnonzero(shard_of == s)
            out[where] = self.maps[s][row_of[where]]
        return torch.from_numpy(out).float()


class _PerRow:
    """The shard reader before the reads were coalesced (commit 2ab6e9c), kept here to
    time it in the same process: one positional read per row, the row size a numpy
    reduction each time."""

    def __init__(self, column) -> None:
        self.column = column

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        from mmalign.store.shards import _NUMPY

        c = self.column
        index = rows.numpy()
        shard_of, row_of = c.shard_of[index], c.row_of[index]
        parts, order = [], []
        for s in np.unique(shard_of).tolist():
            where = np.flatnonzero(shard_of == s)
            shard = c.shards[s]
            col = shard.columns[c.name]
            out = np.empty((len(where), *col.shape[1:]), dtype=_NUMPY[col.dtype])
            flat = out.reshape(len(where), -1).view(np.uint8)
            with open(shard.path, "rb", buffering=0) as fh:
                for i, row in enumerate(row_of[where].tolist()):
                    row_bytes = int(np.prod(col.shape[1:], dtype=np.int64)) * out.itemsize
                    os.preadv(fh.fileno(), [flat[i]], col.offset + row * row_bytes)
            parts.append(torch.from_numpy(out))
            order.append(where)
        got = torch.cat(parts)
        inverse = np.empty(len(index), dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(len(index))
        return got[torch.from_numpy(inverse)].float()


def render(result: dict) -> str:
    how = "runs in one process" if result["one_process"] else "fresh processes"
    lines = [
        "# Feature-store batch gathers, read several ways (generated by "
        "`benchmarks/core/store_read_modes.py`)",
        "",
        f"Command: `{result['command']}`",
        "",
        f"{result['items']} stored inputs seen by {result['rows']} rows, pooled [{result['dim']}]"
        f" + tokens [{result['tokens']}, {result['dim']}] fp16 ({result['store_bytes'] / 1e6:.0f} "
        f"MB); one epoch of shuffled batches of {BATCH} read as fp32; median of "
        f"{result['repeats']} {how} per way, taking turns; load average "
        f"{result['load_before']} before, {result['load_after']} after (2 CPUs shared with other "
        "benchmarks): read the ratios.",
        "",
        "| way | epoch s | × in RAM fp32 | RSS growth MB | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    ram = result["modes"]["in RAM fp32"]["seconds"]
    for mode, m in result["modes"].items():
        rss = ("– | –" if result["one_process"] else
               f"{m['rss_growth_bytes'] / 2**20:.0f} | {m['peak_rss_bytes'] / 2**20:.0f}")
        lines.append(f"| {mode} | {m['seconds']:.2f} | {m['seconds'] / ram:.2f} | {rss} |")
    if result.get("baseline"):
        lines += ["", f"`store (baseline)` imported `{result['baseline_mmalign']}`."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--share", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a source tree for 'store (baseline)'")
    parser.add_argument("--read")
    parser.add_argument("--dir", type=Path)
    parser.add_argument("--record", type=Path)
    parser.add_argument("--one-process", action="store_true",
                        help="time every way in this process, taking turns (one import "
                        "for all, so cheaper on a loaded machine); RSS is then not per way")
    args = parser.parse_args()
    if args.read:
        print(json.dumps(read(args.dir, args.read, args.items, args.share)))
        return
    modes = ["in RAM fp32", "store", "store, MMALIGN_MALLOC_PIN=1", "store, one read per row",
             "store, 2 workers", "mmap"]
    if args.baseline:
        modes.insert(2, "store (baseline)")
    load_before = round(os.getloadavg()[0], 1)
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "store"
        write_store(root, args.items, args.tokens, args.dim)
        size = sum(p.stat().st_size for p in (root / "shards").glob("*.safetensors"))
        for i in range(args.repeats):
            for mode in modes if i % 2 == 0 else list(reversed(modes)):
                if args.one_process:
                    runs[mode].append(read(root, mode, args.items, args.share))
                    print(json.dumps(runs[mode][-1]), flush=True)
                    continue
                env = dict(os.environ)
                if mode == "store (baseline)":
                    env["PYTHONPATH"] = str(args.baseline.resolve())
                cmd = [sys.executable, __file__, "--read", mode, "--dir", str(root),
                       "--items", str(args.items), "--share", str(args.share)]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
                if out.returncode:
                    raise SystemExit(f"{mode}: {out.stderr[-2000:]}")
                runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(json.dumps(runs[mode][-1]), flush=True)
    result = {
        "command": "python benchmarks/core/store_read_modes.py " + shlex.join(sys.argv[1:]),
        "items": args.items, "rows": args.items * args.share, "tokens": args.tokens,
        "dim": args.dim, "store_bytes": size, "repeats": args.repeats,
        "load_before": load_before, "load_after": round(os.getloadavg()[0], 1),
        "baseline": str(args.baseline) if args.baseline else None,
        "one_process": args.one_process,
        "baseline_mmalign": runs["store (baseline)"][0]["mmalign"] if args.baseline else None,
        "modes": {
            m: {"seconds": round(statistics.median(r["seconds"] for r in rs), 3),
                "rss_growth_bytes": int(statistics.median(r["rss_growth_bytes"] for r in rs)),
                "peak_rss_bytes": int(statistics.median(r["peak_rss_bytes"] for r in rs)),
                "runs_s": [round(r["seconds"], 3) for r in rs]}
            for m, rs in runs.items()
        },
    }
    print(json.dumps(result))
    if args.record:
        args.record.parent.mkdir(parents=True, exist_ok=True)
        args.record.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        args.record.with_suffix(".md").write_text(render(result))


if __name__ == "__main__":
    main()
