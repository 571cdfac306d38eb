"""Weight hashes for encoder fingerprints.

The feature cache is keyed by an encoder's fingerprint, which includes a hash of
its weights. Hashing a 2.5 GB checkpoint takes seconds, so a file's sha256 is
memoised by (absolute path, size, mtime): in memory for this process and in a small
JSON file under ``MMALIGN_HOME/cache`` for later ones. A changed file has a new size
or mtime and is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from mmalign import atomic, paths

_CHUNK = 1 << 22
_MEMO_FILE = "weights-sha256.json"
_lock = threading.Lock()
_memory: dict[str, str] = {}


def _memo_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def _read_memo(memo_path: Path) -> dict[str, str]:
    try:
        data = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        return {}  # a missing or damaged memo only costs a re-hash
    return data if isinstance(data, dict) else {}


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, computed once per (path, size, mtime)."""
    path = Path(path)
    key = _memo_key(path)
    with _lock:
        if key in _memory:
            return _memory[key]
    memo_path = paths.cache_dir() / _MEMO_FILE
    stored = _read_memo(memo_path).get(key)
    if stored is not None:
        with _lock:
            _memory[key] = stored
        return stored
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with _lock:
        _memory[key] = value
        memo = _read_memo(memo_path)
        memo[key] = value
        atomic.write_text(memo_path, json.dumps(memo, indent=0, sort_keys=True))
    return value


def files_sha256(files: Iterable[Path], root: Path | None = None) -> str:
    """One hash over several files (a model folder: weights, config, tokenizer).

    Names are taken relative to ``root`` so that moving the folder keeps the hash.
    """
    digest = hashlib.sha256()
    for file in sorted(Path(f) for f in files):
        name = str(file.relative_to(root)) if root is not None else file.name
        digest.update(name.encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def state_dict_sha256(module: nn.Module) -> str:
    """sha256 over a module's parameters and buffers (names, dtypes, shapes, values).

    Used for weights that have no file: random initialisations and trainable
    networks whose values change while training.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        if tensor.device.type == "meta":
            continue
        data = tensor.detach().to("cpu").contiguous()
        if data.dtype == torch.bfloat16:
            data = data.view(torch.int16)
        digest.update(data.numpy().tobytes() if data.numel() else b"")
    return digest.hexdigest()
