"""TI-JEPA pretraining throughput on a GPU with the paper's encoders (random weights).

For each size (Table 1) and context path: the largest batch up to 1024 that fits,
samples/s of a full pretraining step (bf16 autocast, AdamW, EMA), peak GPU memory,
and the fraction of the GPU's dense bf16 peak that the step's FLOPs reach. The image
encoder is I-JEPA's ViT-H/14 (``ijepa-vit-h14``, weights="random"); the text tokens
come from gte-base (``gte-base``, weights="random") run once, as the feature cache
would serve them. Paper mode re-encodes the visible patches through ViT-H inside
the step; code mode gathers the cached tokens.

    python benchmarks/tijepa/throughput.py --out benchmarks/tijepa/results/throughput.json

Each row also gives the epoch time of the paper's pretraining (COCO train2017, one
caption per image: 118,287 samples). ``--budget-s`` (default 470) stops starting new
rows once spent, so the whole script fits an 8-minute device slot. Checked on the CPU
with a tiny setting (``--device cpu --sizes small --paths code --max-batch 2
--steps 1 --warmup 0``). ``benchmarks/gpu_figures.py`` runs its TI-JEPA-L rows
together with every method's paper-size epoch time, in one 8-minute script.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from step import Bench, autocast

import mmalign

#: samples per pretraining epoch: COCO train2017 images, one random caption each
COCO_EPOCH = 118_287
#: dense bf16 tensor-core peaks (no sparsity), from NVIDIA's data sheets
PEAK_BF16 = {"H100 PCIe": 756e12, "H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def peak_flops(name: str) -> float | None:
    for key, value in PEAK_BF16.items():  # "H100 PCIe" is checked before "H100"
        if key in name:
            return value
    return None


def encoders(device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    registry = mmalign.get_registry()
    image_cls = registry.get("encoder", "ijepa-vit-h14")
    text_cls = registry.get("encoder", "gte-base")
    image = image_cls(image_cls.Config(weights="random")).to(device)
    text = text_cls(text_cls.Config(weights="random")).to(device)
    return image, text


def text_tokens(text_encoder: torch.nn.Module, batch: int, length: int,
                device: torch.device) -> torch.Tensor:
    """gte-base tokens of random caption-length id sequences (the cached text features)."""
    vocab = int(text_encoder.model.config.vocab_size)
    ids = torch.randint(1000, vocab, (batch, length), device=device)
    mask = torch.ones_like(ids)
    with torch.no_grad(), autocast(device):
        return text_encoder({"input_ids": ids, "attention_mask": mask})["tokens"].float()


def measure(size: str, paper: bool, batch: int, image_enc, text_enc, args,
            device: torch.device) -> dict:
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    images = torch.randn(batch, 3, 224, 224, device=device)
    text = text_tokens(text_enc, batch, args.text_length, device)
    bench = Bench(size, image_enc, images, text, paper, device)
    timing = bench.time(args.steps, args.warmup)
    flops = bench.flops()
    peak_mem = torch.cuda.max_memory_allocated(device) if cuda else 0
    achieved = flops / timing["seconds_per_step"]
    peak = peak_flops(torch.cuda.get_device_name(device)) if cuda else None
    trainable = sum(p.numel() for p in bench.model.context.parameters())
    return {
        "size": size,
        "context_path": "paper" if paper else "code",
        "batch": batch,
        "grid": list(bench.grid),
        **timing,
        "peak_memory_gib": peak_mem / 2**30,
        "tflop_per_step": flops / 1e12,
        "achieved_tflops": achieved / 1e12,
        "fraction_of_bf16_peak": achieved / peak if peak else None,
        "coco_epoch_s": COCO_EPOCH / timing["samples_per_s"],
        "cross_attention_params": trainable,
    }


def largest_batch(size, paper, image_enc, text_enc, args, device) -> dict:
    batch = args.max_batch
    while batch >= 1:
        try:
            return measure(size, paper, batch, image_enc, text_enc, args, device)
        except torch.cuda.OutOfMemoryError:
            batch //= 2
            torch.cuda.empty_cache()
    raise RuntimeError(f"{size}/{'paper' if paper else 'code'}: not even batch 1 fits")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["small", "medium", "large"])
    parser.add_argument("--paths", nargs="+", default=["paper", "code"],
                        choices=["paper", "code"])
    parser.add_argument("--max-batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--text-length", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("throughput.json"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=470.0)
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (or --device cpu for a check)")
    started = time.monotonic()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    image_enc, text_enc = encoders(device)
    rows = []
    for size in args.sizes:
        for path in args.paths:
            if time.monotonic() - started > args.budget_s:
                print(json.dumps({"size": size, "context_path": path, "skipped": "budget"}))
                continue
            row = largest_batch(size, path == "paper", image_enc, text_enc, args, device)
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "seconds": time.monotonic() - started,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "encoders": {"image": "ijepa-vit-h14 (random)", "text": "gte-base (random)"},
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = [
        "| size | context | batch | samples/s | s/step | peak GiB | TFLOP/step | "
        "TFLOP/s | of bf16 peak | COCO epoch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        frac = f"{100 * r['fraction_of_bf16_peak']:.1f}%" if r["fraction_of_bf16_peak"] else "?"
        lines.append(
            f"| {r['size']} | {r['context_path']} | {r['batch']} | {r['samples_per_s']:.1f} | "
            f"{r['seconds_per_step']:.3f} | {r['peak_memory_gib']:.1f} | "
            f"{r['tflop_per_step']:.2f} | {r['achieved_tflops']:.1f} | {frac} | "
            f"{r['coco_epoch_s'] / 60:.1f} min |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
