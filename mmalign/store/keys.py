"""Content keys: what a stored feature is filed under.

The key hashes the raw input a sample gives an encoder, not the sample's id, so an
image shared by five captions is encoded and stored once, and a regenerated file
under an old name is not mistaken for the old one. A file is keyed by its resolved
path, size and modification time (the make(1) convention: re-reading 18 GB of
images to hash them would cost as much as decoding them); in-memory values (text,
arrays, tensors, nested lists and dicts of them) are keyed by their bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _feed(h: Any, raw: Any) -> None:
    if isinstance(raw, Path):
        st = raw.stat() if raw.exists() else None
        stamp = f"{st.st_size}:{st.st_mtime_ns}" if st else "missing"
        h.update(f"path:{raw.resolve()}:{stamp}".encode())
    elif isinstance(raw, str):
        h.update(b"str:" + raw.encode())
    elif isinstance(raw, bytes):
        h.update(b"bytes:" + raw)
    elif isinstance(raw, torch.Tensor):
        _feed(h, raw.detach().cpu().numpy())
    elif isinstance(raw, np.ndarray):
        h.update(f"array:{raw.dtype}:{raw.shape}:".encode())
        h.update(np.ascontiguousarray(raw).tobytes())
    elif isinstance(raw, dict):
        h.update(b"dict:")
        for k in sorted(raw, key=str):
            h.update(f"{k}=".encode())
            _feed(h, raw[k])
    elif isinstance(raw, (list, tuple)):
        h.update(f"seq:{len(raw)}:".encode())
        for item in raw:
            _feed(h, item)
    else:
        h.update(f"{type(raw).__name__}:{raw!r}".encode())


def content_key(raw: Any) -> str:
    """A 32-hex-digit key of ``raw``'s content (see the module docstring)."""
    h = hashlib.blake2b(digest_size=16)
    _feed(h, raw)
    return h.hexdigest()
