"""Paper vs code context path: seconds per TI-JEPA pretraining step, same batch.

Paper mode re-encodes each image's visible patches through the frozen ViT inside the
step; code mode gathers the cached full-image tokens. The difference is the ViT's
forward over the context patches, so it grows with the ViT: run it with the paper's
ViT-H on a GPU via ``throughput.py``; this script runs anywhere (CPU by default) with
a timm ViT of random weights (``--vit``) and the embedded text width (384).

    OMP_NUM_THREADS=1 python benchmarks/tijepa/context_path.py --out results/context_path.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from step import Bench

import mmalign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vit", default="vit_base_patch16_224")
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--text-dim", type=int, default=384)
    parser.add_argument("--text-length", type=int, default=16)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path("context_path.json"))
    args = parser.parse_args()
    device = torch.device(args.device)
    cls = mmalign.get_registry().get("encoder", "timm")
    vit = cls(cls.Config(model=args.vit, weights="random")).to(device)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch, 3, 224, 224, generator=g).to(device)
    text = torch.randn(args.batch, args.text_length, args.text_dim, generator=g).to(device)
    rows = []
    for paper in (False, True):
        torch.manual_seed(0)
        bench = Bench(args.size, vit, images, text, paper, device)
        row = {"context_path": "paper" if paper else "code", **bench.time(args.steps, args.warmup)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    ratio = rows[1]["seconds_per_step"] / rows[0]["seconds_per_step"]
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "vit": args.vit,
        "size": args.size,
        "batch": args.batch,
        "grid": list(bench.grid),
        "rows": rows,
        "paper_over_code": ratio,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"paper / code seconds per step: {ratio:.2f}")


if __name__ == "__main__":
    main()
