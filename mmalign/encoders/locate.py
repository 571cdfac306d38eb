"""Finding pretrained weights on this machine, never on the network.

Weights come from a path the user gives, from the Hugging Face hub cache, or from
the torch hub checkpoint folder (where torchvision and timm put URL downloads).
The cache layouts are read directly (``models--org--name/refs/main`` ->
``snapshots/<commit>/``) so that lookup works offline, honours the cache
environment variables at call time, and never starts a download. When nothing is
found, :class:`WeightsNotFoundError` lists every place that was looked at and how
to put the weights there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mmalign.errors import ConfigError


class WeightsNotFoundError(ConfigError):
    """Pretrained weights that an encoder needs are not on this machine."""


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (not at import)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return Path(hf_home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def torch_hub_dir() -> Path:
    """``$TORCH_HOME/hub`` (default ``~/.cache/torch/hub``), resolved now."""
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        return Path(torch_home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "torch" / "hub"


def hf_repo_dir(repo_id: str) -> Path:
    """Where the hub cache keeps ``repo_id`` (it may not exist)."""
    return hf_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def hf_snapshot(repo_id: str, required: Sequence[str] = ()) -> Path | None:
    """The cached snapshot folder of ``repo_id`` holding every ``required`` file.

    ``refs/main`` names the snapshot a plain download made; any other snapshot with
    the required files is accepted too (newest first), since a pinned revision is as
    good as ``main`` for loading.
    """
    repo = hf_repo_dir(repo_id)
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates: list[Path] = []
    ref = repo / "refs" / "main"
    if ref.is_file():
        candidates.append(snapshots / ref.read_text().strip())
    others = sorted(
        (p for p in snapshots.iterdir() if p.is_dir()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    candidates += [p for p in others if p not in candidates]
    for snap in candidates:
        if snap.is_dir() and all((snap / name).exists() for name in required):
            return snap
    return None


def torch_hub_checkpoint(filename: str) -> Path | None:
    """``$TORCH_HOME/hub/checkpoints/<filename>`` when present."""
    path = torch_hub_dir() / "checkpoints" / filename
    return path if path.is_file() else None


def missing_message(
    encoder: str,
    looked: Sequence[str],
    how: Sequence[str],
    random_ok: bool = True,
    modality: str = "<modality>",
) -> str:
    """The message of :class:`WeightsNotFoundError`: what was tried, how to fix it."""
    lines = [f"Encoder '{encoder}': pretrained weights not found on this machine. Looked for:"]
    lines += [f"  - {item}" for item in looked]
    lines.append("Provide them in one of these ways (no download is attempted):")
    lines += [f"  - {item}" for item in how]
    if random_ok:
        lines.append(
            f"  - or build '{encoder}' with random weights (throughput work only): "
            f"--set encoders.{modality}.config.weights=random"
        )
    return "\n".join(lines)


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def hf_weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face model folder (single file or shards)."""
    for name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    for index in _SHARD_INDEXES:
        if (folder / index).is_file():
            import json

            shards = sorted(set(json.loads((folder / index).read_text())["weight_map"].values()))
            return [folder / index] + [folder / s for s in shards]
    return []


def check_hf_folder(folder: Path, needs_tokenizer: bool) -> list[str]:
    """What a Hugging Face model folder lacks, as readable lines (empty when complete)."""
    problems = []
    if not folder.is_dir():
        return [f"{folder} (folder does not exist)"]
    if not (folder / "config.json").is_file():
        problems.append(f"{folder / 'config.json'} (missing)")
    files = hf_weight_files(folder)
    if not files:
        problems.append(
            f"{folder}/model.safetensors or pytorch_model.bin (missing: no weight file)"
        )
    problems += [f"{f} (missing shard)" for f in files if not f.is_file()]
    if needs_tokenizer and not any(
        (folder / name).is_file() for name in ("tokenizer.json", "vocab.txt", "tokenizer.model")
    ):
        problems.append(f"{folder}/tokenizer.json or vocab.txt (missing: no tokenizer)")
    return problems


def copy_hint(repo_id: str) -> str:
    """How to bring a hub repo onto a machine without internet."""
    return (
        f"on a machine with internet run `huggingface-cli download {repo_id}`, then copy its "
        f"cache folder {hf_repo_dir(repo_id).name} into {hf_cache_dir()} on this machine"
    )
