"""The GPU figures of the paper-scale issue, from one script in under 8 minutes.

    python benchmarks/gpu_figures.py [--out benchmarks/core/results/gpu_figures.json]
        [--budget-s 450] [--methods ti-jepa spp-scl tecafn infonce late-fusion]

Two parts, under one time cap (``--budget-s``; a part or method that would start
after it is recorded as skipped):

1. TI-JEPA-L pretraining throughput (``benchmarks/tijepa/throughput.py``: size
   large, paper and code context paths, the largest batch that fits up to 1024,
   bf16): samples/s, achieved TFLOP/s and the share of the chip's dense bf16 peak.
2. Each method's training steps on its paper-size configuration: the method's own
   stages, models, objectives and loaders (built as the runner builds them), every
   encoder at full size with ``weights=random``, frozen encoders' features of the
   shapes those encoders produce (one real forward of synthetic inputs of the
   paper's shapes gives the shapes; the rows are random features of them), encoders
   in the training loop fed preprocessed synthetic inputs. Per stage: the paper's
   batch size (halved until it fits), batches/s and samples/s over ``--steps``
   timed steps after ``--warmup``, and the projected epoch time for the paper's
   training-set size (:data:`PAPER_ROWS`). Input decoding is not timed (the runner
   overlaps it with ``train.num_workers``).

Writes one JSON (default ``benchmarks/core/results/gpu_figures.json``) and prints
a markdown table. No GPU was lent when this was written: it is ready for one, and
checked on the CPU with tiny settings (``--device cpu --tiny``: the throughput part
at Table 1's small module, code path, batch 2; each method's default or tiny size,
batch 2; one step each).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "tijepa"))

#: method -> (size, task whose config and label space it trains on)
PAPER_SETTINGS = {
    "ti-jepa": ("paper", "mvsa-multi"),
    "spp-scl": ("paper", "mvsa-single"),
    "tecafn": ("paper", "cmu-mosi"),
    "infonce": ("default", "xmedianet"),
    "late-fusion": ("default", "mvsa-single"),
}
#: training rows per epoch of the paper's data, per (method, stage task); None: not
#: stated here, so only batches/s and samples/s are given
PAPER_ROWS: dict[tuple[str, str], int | None] = {
    ("ti-jepa", "coco-captions"): 118_287,  # COCO train2017 images, one caption each
    ("ti-jepa", "mvsa-multi"): 13_624,  # CLMLF's MVSA-Multiple train split
    ("spp-scl", "mvsa-single"): 3_611,  # CLMLF's MVSA-Single train split
    ("tecafn", "cmu-mosi"): 1_284,  # CMU-MOSI's standard train split
    ("late-fusion", "mvsa-single"): 3_611,
    ("infonce", "xmedianet"): None,
}
TEXT = "a photo of a small dog running on the beach near the sea at sunset today"


def random_weights(cfg_sets: dict[str, Any], registry: Any, encoders: dict[str, Any]) -> None:
    """Set ``weights=random`` on every encoder whose config has that option."""
    for modality, ref in encoders.items():
        cls = registry.get("encoder", ref.name)
        if "weights" in cls.Config.model_fields:
            cfg_sets[f"encoders.{modality}.config.weights"] = "random"


def synthetic_raw(modality: str, encoder: Any, tmp: Path, i: int) -> Any:
    """A raw input of the paper's shape for ``encoder``: an image file, a caption, a
    waveform, video frames, or a feature sequence of the encoder's width."""
    if encoder.modality == "image" or modality == "image":
        path = tmp / f"{modality}{i}.png"
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(path)
        return str(path)
    if encoder.modality == "text" or modality == "text":
        return TEXT
    rng = np.random.default_rng(i)
    if type(encoder).__module__.endswith("encoders.sequences"):  # precomputed features
        dim = int(getattr(encoder.config, "dim", encoder.out_dim))
        return rng.normal(size=(50, dim)).astype(np.float32)
    if encoder.modality == "audio":  # a 2-second 16 kHz waveform
        return rng.normal(size=32_000).astype(np.float32) * 0.1
    if encoder.modality == "video":  # frames
        frames = int(getattr(encoder.config, "num_frames", 8))
        return rng.integers(0, 256, (frames, 128, 128, 3), dtype=np.uint8)
    raise SystemExit(f"no synthetic input for a '{encoder.modality}' encoder "
                     f"({type(encoder).__name__}) of modality '{modality}'")


def synthetic_set(split: str, task: Any, encoders: dict[str, Any], refs: dict[str, Any],
                  rows: int, device: torch.device, tmp: Path) -> Any:
    """A FeatureSet of ``rows`` rows shaped like the real one for these encoders."""
    from mmalign.features import FeatureSet, ModalityData, move

    modalities = {}
    for m, enc in encoders.items():
        prepared = [enc.preprocess(synthetic_raw(m, enc, tmp, i)) for i in range(4)]
        data = ModalityData(rows=torch.arange(rows))
        ref = refs[m]
        if ref.cache:
            with torch.no_grad():
                probe = enc.to(device).eval()(move(enc.collate(prepared), device))
            data.features = {
                k: (torch.ones(rows, *v.shape[1:], dtype=v.dtype) if not v.is_floating_point()
                    else torch.randn(rows, *v.shape[1:]))
                for k, v in probe.items()
                if ref.keep is None or k in ref.keep or k == "mask"
            }
        if not ref.cache or ref.inputs:
            data.items = [prepared[i % len(prepared)] for i in range(rows)]
        modalities[m] = data
    if task.label_type == "regression":
        labels = torch.randn(rows)
    elif task.label_type == "retrieval":
        labels = torch.randint(0, 200, (rows,))
    else:
        labels = torch.randint(0, max(task.num_classes, 2), (rows,))
    ids = [f"{i // 5}-{i}" for i in range(rows)]  # COCO ids: five captions per image
    return FeatureSet(split, ids, labels, modalities, encoders)


def time_stage(stage: Any, model: Any, objective: Any, fs: Any, batch: int, steps: int,
               warmup: int, device: torch.device) -> dict[str, float]:
    from mmalign.features import move
    from mmalign.interfaces import StepContext
    from mmalign.runner.device import autocast
    from mmalign.runner.loop import default_loader
    from mmalign.runner.optim import make_optimizer, trainable_parameters

    model.to(device).train()
    objective.to(device).train()
    params = trainable_parameters(model, objective)
    optimizer = make_optimizer(stage.train, params)

    def optimize(loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def forward(b: Any) -> Any:
        with autocast(device):
            return model(b)

    loader = stage.loader or default_loader
    generator = torch.Generator().manual_seed(0)
    done, started = 0, 0.0
    for step, b in enumerate(loader(fs, batch, generator, 0, True)):
        if step == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            started = time.perf_counter()
        ctx = StepContext(model=model, batch=move(b, device), optimize=optimize,
                          forward=forward, step=step, epoch=0, total_steps=warmup + steps,
                          device=device, generator=generator)
        objective.training_step(ctx)
        if step >= warmup:
            done += 1
        if done == steps:
            break
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {"steps": done, "seconds": seconds, "batches_per_s": done / seconds,
            "trainable_params": sum(p.numel() for p in params)}


def method_figures(name: str, args: argparse.Namespace, device: torch.device,
                   tmp: Path) -> list[dict[str, Any]]:
    import mmalign
    from mmalign.features import derive_features
    from mmalign.interfaces import BuildContext
    from mmalign.runner.compose import feature_specs, make_encoders, make_task, method_config

    registry = mmalign.get_registry()
    method = registry.entry("method", name, "METHOD").obj()
    size, task_name = PAPER_SETTINGS[name]
    if args.tiny:
        size = "tiny" if "tiny" in method.sizes else method.default_size
    sets: dict[str, Any] = {}
    random_weights(sets, registry, method_config(method, task_name, size, [{}]).encoders)
    cfg = method_config(method, task_name, size, [sets])
    task = make_task(registry, task_name, method.task_presets.get(size, {}).get(task_name, {}),
                     None)
    check = getattr(method, "check", None)
    if check is not None:
        check(cfg, task)
    out = []
    previous: dict[str, Any] = {}
    for index, stage in enumerate(method.stages(cfg, task)):
        stage_task = make_task(registry, stage.task, stage.task_configs.get(stage.task, {}),
                               None) if stage.task else task
        refs = stage.encoders or cfg.encoders
        if stage.encoders is not None:
            stage_sets: dict[str, Any] = {}
            random_weights(stage_sets, registry, refs)
            refs = {m: r.model_copy(update={"config": {**r.config, "weights": "random"}})
                    if f"encoders.{m}.config.weights" in stage_sets else r
                    for m, r in refs.items()}
        encoders = make_encoders(registry, refs, stage_task.modalities)
        batch = 2 if args.tiny else stage.train.batch_size
        rows_key = (name, stage_task.name)
        row: dict[str, Any] = {"method": name, "size": size, "stage": stage.name,
                               "task": stage_task.name}
        while True:
            try:
                fs = synthetic_set("train", stage_task, encoders, refs,
                                   batch * (args.steps + args.warmup) + batch, device, tmp)
                ctx = BuildContext(task=stage_task, encoders=encoders,
                                   feature_dims={m: e.out_dim for m, e in encoders.items()},
                                   config=cfg, previous=previous, device=device,
                                   inputs=feature_specs(encoders, refs))
                torch.manual_seed(index)
                model, objective = stage.build(ctx)
                if stage.precompute is not None:
                    derive_features(fs, stage.precompute, stage.train.eval_batch_size, device)
                timing = time_stage(stage, model, objective, fs, batch, args.steps,
                                    args.warmup, device)
                break
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                if batch == 1:
                    raise
                batch //= 2
        previous[stage.name] = model
        paper_rows = PAPER_ROWS.get(rows_key)
        row.update(batch=batch, paper_batch=stage.train.batch_size, **timing,
                   samples_per_s=timing["batches_per_s"] * batch, paper_rows=paper_rows,
                   epoch_s=(math.ceil(paper_rows / batch) / timing["batches_per_s"]
                            if paper_rows else None))
        out.append(row)
        print(json.dumps(row), flush=True)
    return out


def markdown(result: dict[str, Any]) -> str:
    from throughput import markdown as throughput_table

    timed = [r for r in result["throughput"] if "skipped" not in r]
    lines = [f"Device: {result['device']}; {result['seconds']:.0f} s in all.", "",
             throughput_table(timed) if timed else "", "",
             "| method | size | stage | task | batch | batches/s | samples/s | paper rows | "
             "epoch |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for r in result["methods"]:
        if "skipped" in r:
            lines.append(f"| {r['method']} | – | – | – | – | skipped: {r['skipped']} | | | |")
            continue
        epoch = f"{r['epoch_s'] / 60:.1f} min" if r["epoch_s"] else "–"
        lines.append(f"| {r['method']} | {r['size']} | {r['stage']} | {r['task']} | "
                     f"{r['batch']} | {r['batches_per_s']:.2f} | {r['samples_per_s']:.1f} | "
                     f"{r['paper_rows'] or '–'} | {epoch} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path("benchmarks/core/results/gpu_figures.json"))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--budget-s", type=float, default=450.0)
    parser.add_argument("--methods", nargs="+", default=list(PAPER_SETTINGS),
                        choices=list(PAPER_SETTINGS))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="a CPU check: small or tiny "
                        "sizes, batch 2, one step")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU (or --device cpu --tiny for a check)")
    if args.tiny:
        args.steps, args.warmup = 1, 0
    started = time.monotonic()
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    import throughput

    t_args = argparse.Namespace(max_batch=2 if args.tiny else 1024, steps=args.steps,
                                warmup=args.warmup, text_length=32)
    rows: list[dict[str, Any]] = []
    image_enc, text_enc = throughput.encoders(device)
    for path in ("code",) if args.tiny else ("paper", "code"):
        if time.monotonic() - started > args.budget_s:
            rows.append({"size": "large", "context_path": path, "skipped": "time cap reached"})
            continue
        rows.append(throughput.largest_batch("small" if args.tiny else "large",
                                             path == "paper", image_enc, text_enc, t_args,
                                             device))
        print(json.dumps(rows[-1]), flush=True)
    del image_enc, text_enc
    if device.type == "cuda":
        torch.cuda.empty_cache()
    methods: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.methods:
            if time.monotonic() - started > args.budget_s:
                methods.append({"method": name, "skipped": "time cap reached"})
                continue
            methods.extend(method_figures(name, args, device, Path(tmp)))
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "seconds": time.monotonic() - started,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join(sys.argv),
        "throughput": rows,
        "methods": methods,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
