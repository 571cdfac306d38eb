"""Checkpoints with everything needed for an exact resume, RNG states included.

Checkpoints and stored stages are read with ``torch.load(weights_only=True)``: a
``.ckpt`` in a shared or downloaded run folder must not be able to run code on
``--resume``. Everything saved is therefore kept to what that loader admits (tensors,
numbers, strings, lists, tuples, dicts): numpy's RNG state and numpy scalars are
converted on the way in and back on the way out.
"""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmalign import atomic
from mmalign.errors import MMAlignError


class CheckpointError(MMAlignError):
    """A checkpoint or stored stage is damaged, foreign or would run code."""


def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def plain(obj: Any) -> Any:
    """``obj`` with numpy values turned into what ``weights_only`` loading admits."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def save(path: Path, state: dict[str, Any]) -> None:
    atomic.torch_save(plain(state), path)


def load(path: Path) -> dict[str, Any]:
    """A checkpoint's contents; tensors and plain data only, never code."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"{path}: refusing to load: it holds objects other than tensors and plain data, "
            f"so loading it could run code ({first})"
        ) from None
    except (RuntimeError, OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"{path}: damaged or not a checkpoint ({type(exc).__name__}: {first}); "
            f"delete it to start this stage over"
        ) from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: not an mmalign checkpoint (a {type(blob).__name__})")
    return blob


RESUME_KEYS = ("model", "objective", "optimizer", "scheduler", "state", "rng")


def load_resume(path: Path) -> dict[str, Any]:
    """A stage's resume checkpoint, with every part a resume needs."""
    blob = load(path)
    missing = [k for k in RESUME_KEYS if k not in blob]
    if missing:
        raise CheckpointError(
            f"{path}: not a resume checkpoint (missing {', '.join(missing)}); "
            f"delete it to start this stage over"
        )
    return blob
