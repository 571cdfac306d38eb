"""Feature-store size and peak RSS against the number of rows, old cache alongside.

    python benchmarks/core/feature_store_scale.py --rows N [--tokens 64] [--dim 384]
        [--share 5] [--old]
    python benchmarks/core/feature_store_scale.py --sweep 10000 50000 200000 \\
        [--record benchmarks/core/results/feature_store_scale.jsonl]

One ``--rows`` call is one process: a synthetic task of N rows where every ``share``
rows show the encoder the same input (COCO's five captions per image), a synthetic
frozen encoder of ``tokens x dim`` tokens, and one epoch of late fusion through the
real runner (``execute``) reading every feature key per batch. It prints one JSON
line: rows, unique_inputs, store_bytes, peak_rss_bytes (``ru_maxrss`` of this
process), the extraction and epoch seconds. ``--old`` instead keeps the features
in memory in fp32 per row, as the format-1 cache did after loading its blob
(``store_bytes`` is then the tensor bytes that blob held). ``--sweep`` runs each
size in a fresh process, both ways, one at a time; the old way is skipped where it
would need more than 40% of the available memory (the reason is recorded).
``--workers N`` gathers the batches in N DataLoader workers (``train.num_workers``);
``--sweep ... --with-workers 2`` adds that way, and ``--baseline SRC`` adds the store
read by the source tree SRC (put first on ``PYTHONPATH``, e.g. the code before a
change), so each size's ways run side by side under the same load. ``--record``
appends, each line with ``label`` (``--label``) and the load average.
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
from typing import Any, ClassVar

import torch
from torch import Tensor

import mmalign
from mmalign import paths, plugins
from mmalign.hookspecs import hookimpl
from mmalign.interfaces import Encoder, Sample, StrictModel, Task, TaskData
from mmalign.runner import RunRequest, execute
from mmalign.store.feasibility import available_memory


class TokensConfig(StrictModel):
    tokens: int = 64
    dim: int = 384


class SyntheticTokens(Encoder):
    """A deterministic ``tokens x dim`` feature map of an integer input (no weights)."""

    Config = TokensConfig
    modality = ""  # any modality: the synthetic task calls its one "a"

    def __init__(self, config: TokensConfig | None = None) -> None:
        super().__init__(config)
        g = torch.Generator().manual_seed(0)
        self.register_buffer("base", torch.randn(self.config.tokens, self.config.dim, generator=g))

    @property
    def out_dim(self) -> int:
        return self.config.dim

    def preprocess(self, raw: Any) -> Tensor:
        return torch.tensor(float(int(raw.removeprefix("input-"))))

    def forward(self, inputs: Tensor) -> dict[str, Tensor]:
        tokens = torch.sin(self.base[None] * (1.0 + inputs[:, None, None] * 1e-3))
        return {"pooled": tokens.mean(1), "tokens": tokens}

    def fingerprint(self) -> str:
        return f"synthetic-tokens:{self.config.model_dump_json()}"


class RowsConfig(StrictModel):
    rows: int = 1000
    share: int = 5


class SyntheticRows(Task):
    """``rows`` labelled rows, ``share`` rows per distinct input; 80/10/10 splits."""

    Config = RowsConfig
    name = "synthetic-rows"
    modalities = ("a",)
    label_type = "classification"
    label_names = ("zero", "one")
    metrics: ClassVar[tuple[str, ...]] = ("acc",)
    embedded = True

    def is_present(self) -> bool:
        return True

    @property
    def num_classes(self) -> int:
        return 2

    def load(self) -> TaskData:
        n, share = self.config.rows, self.config.share
        samples = [
            Sample(id=f"row{i}", inputs={"a": f"input-{i // share}"}, label=(i // share) % 2)
            for i in range(n)
        ]
        a, b = int(n * 0.8), int(n * 0.9)
        return TaskData(
            splits={"train": samples[:a], "validation": samples[a:b], "test": samples[b:]},
            label_names=list(self.label_names),
            source=f"synthetic rows={n} share={share}",
        )


class _Plugin:
    @staticmethod
    @hookimpl
    def mmalign_register(registry: Any) -> None:
        registry.add("encoder", "synthetic-tokens", SyntheticTokens)
        registry.add("task", "synthetic-rows", SyntheticRows)


def one(rows: int, tokens: int, dim: int, share: int, old: bool,
        workers: int = 0) -> dict[str, Any]:
    plugins.get_host().add_module(_Plugin(), "feature-store-bench", "mmalign-benchmarks")
    sets = {
        "encoders": {"a": {"name": "synthetic-tokens",
                           "config": {"tokens": tokens, "dim": dim}}},
        "task.rows": rows,
        "task.share": share,
        "train.epochs": 1,
        "train.batch_size": 256,
        "train.eval_batch_size": 256,
        **({"train.num_workers": workers} if workers else {}),
    }
    timings = timed_phases()
    started = time.perf_counter()
    result = execute(RunRequest(method="late-fusion", task="synthetic-rows", sets=sets,
                                quiet=True, use_cache=not old))
    wall = time.perf_counter() - started
    stores = list((paths.cache_dir() / "store").glob("*/shards/*.safetensors"))
    row_bytes = (tokens * dim + dim) * 4
    return {
        "rows": rows,
        "unique_inputs": -(-rows // share),
        "tokens": tokens,
        "dim": dim,
        "layout": "old: fp32 per row in memory" if old else "store: fp16 per unique input",
        "workers": workers,
        "mmalign": mmalign.__file__,
        "store_bytes": rows * row_bytes if old else sum(p.stat().st_size for p in stores),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "wall_s": round(wall, 2),
        "features_s": round(timings["load_features"], 2),
        "epoch_s": round(timings["train_stage"], 2),
        "status": result.status,
    }


def timed_phases() -> dict[str, float]:
    """Seconds spent in the runner's feature loading and (one-epoch) training."""
    from mmalign.runner import run

    spent = {"load_features": 0.0, "train_stage": 0.0}
    for name in spent:
        original = getattr(run, name)

        def wrapper(*a: Any, _f: Any = original, _n: str = name, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return _f(*a, **kw)
            finally:
                spent[_n] += time.perf_counter() - t

        setattr(run, name, wrapper)
    return spent


def sweep(sizes: list[int], tokens: int, dim: int, share: int, record: Path | None,
          label: str, workers: int = 0, baseline: Path | None = None) -> None:
    ways: list[tuple[str, list[str], Path | None]] = [("store", [], None)]
    if workers:
        ways.append((f"store, {workers} workers", ["--workers", str(workers)], None))
    if baseline:
        ways.append(("store (baseline)", [], baseline))
    ways.append(("old", ["--old"], None))
    lines = []
    for rows in sizes:
        for way, flags, source in ways:
            need = rows * (tokens * dim + dim) * 4 * 2.2  # rows, plus one concatenating copy
            if way == "old" and need > 0.4 * available_memory():
                lines.append({"label": label, "rows": rows, "layout": "old: fp32 per row in memory",
                              "skipped": f"needs about {need / 1e9:.1f} GB of memory"})
                print(json.dumps(lines[-1]), flush=True)
                continue
            with tempfile.TemporaryDirectory() as home:
                cmd = [sys.executable, __file__, "--rows", str(rows), "--tokens", str(tokens),
                       "--dim", str(dim), "--share", str(share), *flags]
                env = {**os.environ, "MMALIGN_HOME": home}
                if source is not None:
                    env["PYTHONPATH"] = str(source.resolve())
                out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=home)
                if out.returncode:
                    raise SystemExit(f"{way}: {out.stderr[-2000:]}")
                line = {"label": label, "way": way, "load_avg": round(os.getloadavg()[0], 1),
                        **json.loads(out.stdout.strip().splitlines()[-1])}
                lines.append(line)
                print(json.dumps(line), flush=True)
    if record:
        record.parent.mkdir(parents=True, exist_ok=True)
        with record.open("a") as fh:
            fh.write("".join(json.dumps(x) + "\n" for x in lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int)
    parser.add_argument("--sweep", type=int, nargs="+")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--share", type=int, default=5)
    parser.add_argument("--old", action="store_true")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--with-workers", type=int, default=0)
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--label", default="")
    parser.add_argument("--record", type=Path)
    args = parser.parse_args()
    if args.sweep:
        sweep(args.sweep, args.tokens, args.dim, args.share, args.record, args.label,
              args.with_workers, args.baseline)
    elif args.rows:
        if "MMALIGN_HOME" not in os.environ:
            os.environ["MMALIGN_HOME"] = tempfile.mkdtemp(prefix="feature-store-scale-")
        print(json.dumps(one(args.rows, args.tokens, args.dim, args.share, args.old,
                             args.workers)))
    else:
        parser.error("give --rows N or --sweep N [N ...]")


if __name__ == "__main__":
    main()
