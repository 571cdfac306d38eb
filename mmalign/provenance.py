"""What produced a number: the data, encoders, steps, code and machine behind a run.

Recorded in every run (``provenance.json`` in the run directory and ``extra.provenance``
in the results store) and shown by ``mmalign runs RUN_ID``, so a leaderboard row can
always say whether it came from real data and the paper's encoders, and from which code.
"""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from mmalign.interfaces import Encoder, Task

PACKAGES = ("mmalign", "torch", "transformers", "timm", "numpy", "scipy", "scikit-learn",
            "safetensors", "pydantic", "pluggy")


def package_versions() -> dict[str, str]:
    """Versions of the core's dependencies and of every loaded plugin distribution."""
    from mmalign.plugins import get_host

    out = {"python": platform.python_version()}
    for dist in PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    for info in get_host().plugins:
        if info.distribution:
            out[info.distribution] = info.version
    return out


@functools.cache
def git_commit(where: Path | None = None) -> dict[str, Any] | None:
    """The commit of the source tree mmalign runs from, and whether it has local edits;
    None for an installed wheel (no git checkout) or without git."""
    folder = where or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def precision(device: torch.device) -> str:
    """Mirrors :func:`mmalign.runner.device.autocast`: bf16 autocast on CUDA, else fp32."""
    return "bf16 autocast" if device.type == "cuda" else "fp32"


def environment(device: torch.device) -> dict[str, Any]:
    return {
        "versions": package_versions(),
        "git": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
        platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "precision": precision(device),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
    }


def data_record(task: Task, fallback_for: str | None = None) -> dict[str, Any]:
    """Which data a stage read: a real dataset folder, generated data, or a stand-in."""
    root = getattr(task, "root", task.data_dir)
    record: dict[str, Any] = {
        "task": task.name,
        "folder": str(root) if root is not None else None,
        "kind": "embedded" if task.embedded else "real",
        "split_protocol": task.config.model_dump(mode="json"),
    }
    if task.embedded:
        record["generator_version"] = getattr(task, "generator_version", None)
    if fallback_for is not None:
        record["kind"] = "stand-in"
        record["stand_in_for"] = fallback_for
    return record


def encoder_record(encoders: dict[str, Encoder]) -> dict[str, dict[str, Any]]:
    """The encoders actually loaded per modality, with their weight fingerprints."""
    out = {}
    for modality, enc in encoders.items():
        weights = getattr(enc, "weights_hash", None)
        out[modality] = {
            "name": getattr(enc, "name", "") or type(enc).__name__,
            "class": f"{type(enc).__module__}.{type(enc).__qualname__}",
            "fingerprint": enc.fingerprint(),
            "weights": weights() if callable(weights) else None,
            "frozen": enc.frozen,
        }
    return out


def stage_record(
    task: Task, encoders: dict[str, Encoder], sizes: dict[str, int],
    fallback_for: str | None, steps: int | None,
) -> dict[str, Any]:
    return {
        "data": {**data_record(task, fallback_for), "split_sizes": sizes},
        "encoders": encoder_record(encoders),
        "optimizer_steps": steps,
    }


def summarize(stages: dict[str, dict[str, Any]], device: torch.device) -> dict[str, Any]:
    """The run's provenance from its stages' records plus the environment."""
    per_stage = {name: info.get("provenance", {}) for name, info in stages.items()}
    stand_in = [f"{name}: {rec['data']['task']} instead of {rec['data']['stand_in_for']}"
                for name, rec in per_stage.items()
                if rec.get("data", {}).get("kind") == "stand-in"]
    return {"stages": per_stage, "stand_in": stand_in, **environment(device)}


def flat_fields(record: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, value) pairs for printing a record as a two-column table."""
    out: list[tuple[str, str]] = []
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out += flat_fields(value, path + ".")
        elif isinstance(value, list):
            out.append((path, ", ".join(map(str, value)) if value else "—"))
        else:
            out.append((path, "—" if value is None else str(value)))
    return out
