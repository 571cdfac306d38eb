"""One shard of a feature store: a safetensors file plus a JSON sidecar.

The data file is written under a temporary name and renamed when complete; the
sidecar (item keys, per-item token lengths, the data file's byte size) is written
atomically after it. A shard is *complete* only when both exist and the file has
the recorded size, so a process killed while writing leaves something that
:func:`scan` recognises as incomplete and deletes instead of reading.

Rows are read with positional reads (``os.preadv``) at the offsets the
safetensors header gives, not through a memory map: the pages then live in the
kernel's page cache instead of the reading process's resident set, so a long
epoch over a large store does not grow the process (measured in
``benchmarks/core/feature_store_scale.py``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from torch import Tensor

from mmalign import atomic
from mmalign.errors import MMAlignError

#: the on-disk format of a store; another value is refused (see :mod:`mmalign.store.store`)
FORMAT = 2
#: feature keys whose axis 1 (axis 2 for ``layers``) is a token axis of varying length
TOKEN_KEYS = {"tokens": 1, "mask": 1, "layers": 2}

_NUMPY = {
    "F16": np.float16,
    "BF16": np.uint16,  # numpy has no bfloat16: read the bits, view them in torch
    "F32": np.float32,
    "F64": np.float64,
    "BOOL": np.bool_,
    "I64": np.int64,
    "I32": np.int32,
    "U8": np.uint8,
}


@dataclass(frozen=True)
class Column:
    """Where one feature key of a shard lies in its file."""

    dtype: str
    shape: tuple[int, ...]
    offset: int

    def __post_init__(self) -> None:  # computed once: it was a numpy reduction per row read
        row = int(np.prod(self.shape[1:], dtype=np.int64)) * np.dtype(_NUMPY[self.dtype]).itemsize
        object.__setattr__(self, "row_bytes", row)

    row_bytes: int = field(init=False, repr=False, compare=False)


@dataclass
class Shard:
    """A complete shard: its items' keys and the layout of its columns."""

    path: Path
    keys: list[str]
    lengths: list[int]
    columns: dict[str, Column]
    #: content keys whose preprocessing failed, with the reason (never encoded)
    bad: dict[str, str]

    def read_rows(self, key: str, index: np.ndarray) -> Tensor:
        """Rows ``index`` of column ``key`` (any order, repeats allowed).

        Each distinct row is read once, and a run of consecutive rows with one
        positional read; the rows then come back in the order asked for.
        """
        col = self.columns[key]
        index = np.asarray(index, dtype=np.int64).reshape(-1)
        wanted, back = np.unique(index, return_inverse=True)
        out = np.empty((len(wanted), *col.shape[1:]), dtype=_NUMPY[col.dtype])
        flat = out.reshape(len(wanted), col.row_bytes // out.itemsize).view(np.uint8)
        cuts = (np.flatnonzero(np.diff(wanted) != 1) + 1).tolist()
        starts, ends = ([0, *cuts], [*cuts, len(wanted)]) if len(wanted) else ([], [])
        with open(self.path, "rb", buffering=0) as fh:
            fd = fh.fileno()
            for a, b in zip(starts, ends, strict=True):
                got = os.preadv(fd, [flat[a:b]], col.offset + int(wanted[a]) * col.row_bytes)
                if got != (b - a) * col.row_bytes:
                    raise MMAlignError(f"{self.path}: shard shorter than its header says "
                                       f"(column '{key}', row {int(wanted[a])}); delete it "
                                       "to rebuild it")
        if len(wanted) != len(index) or len(index) and not np.array_equal(wanted, index):
            out = out[back]
        tensor = torch.from_numpy(out)
        return tensor.view(torch.bfloat16) if col.dtype == "BF16" else tensor


def sidecar_of(data: Path) -> Path:
    return data.with_suffix(".json")


#: a shard left by a writer on another host counts as in progress for this long
FOREIGN_GRACE_S = 600.0


def new_name(counter: int) -> str:
    """A shard name unique across processes and hosts, sorting by creation time."""
    host = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())
    return f"{time.time_ns():020d}-{host}-{os.getpid()}-{counter:05d}"


def _in_progress(path: Path) -> bool:
    """True while the process that is writing ``path`` (named by :func:`new_name`) lives."""
    parts = path.name.split(".")[0].split("-")
    if len(parts) != 4 or not parts[2].isdigit():
        return False
    if parts[1] != re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname()):
        return time.time() - path.stat().st_mtime < FOREIGN_GRACE_S
    if int(parts[2]) == os.getpid():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write(
    directory: Path,
    name: str,
    keys: list[str],
    features: dict[str, Tensor],
    lengths: list[int],
    bad: dict[str, str],
) -> Path:
    """Write a complete shard named ``name``; returns the data file's path."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / f"{name}.safetensors"
    tmp = directory / f"{name}.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in features.items()}, str(tmp))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, data)
    meta = {
        "format": FORMAT,
        "keys": keys,
        "lengths": lengths,
        "bad": bad,
        "bytes": data.stat().st_size,
    }
    atomic.write_text(sidecar_of(data), json.dumps(meta))
    return data


def _columns(path: Path) -> dict[str, Column]:
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
    base = 8 + n
    return {
        k: Column(v["dtype"], tuple(v["shape"]), base + v["data_offsets"][0])
        for k, v in header.items()
        if k != "__metadata__"
    }


def load(data: Path) -> Shard | None:
    """The shard at ``data`` if it is complete, else None."""
    side = sidecar_of(data)
    if not data.exists() or not side.exists():
        return None
    try:
        meta: dict[str, Any] = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("format") != FORMAT or data.stat().st_size != meta.get("bytes"):
        return None
    return Shard(
        data, list(meta["keys"]), list(meta["lengths"]), _columns(data), dict(meta["bad"])
    )


def scan(directory: Path) -> tuple[list[Shard], list[Path]]:
    """The complete shards under ``directory`` and the leftovers of incomplete ones
    (a killed writer's files; those of a writer still running are left alone)."""
    if not directory.exists():
        return [], []
    complete: list[Shard] = []
    broken: list[Path] = []
    for data in sorted(directory.glob("*.safetensors")):
        shard = load(data)
        if shard is not None:
            complete.append(shard)
    done = {s.path.stem for s in complete}
    for path in sorted(directory.iterdir()):
        stem = path.name.split(".")[0]
        if stem not in done and not path.name.startswith(".") and not _in_progress(path):
            broken.append(path)
    return complete, broken
