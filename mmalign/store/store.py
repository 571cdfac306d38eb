"""A frozen encoder's feature store: content-keyed items in append-only shards.

One folder per (encoder fingerprint, storage dtype) under ``MMALIGN_HOME/cache/store``
holds a manifest (``store.json``: the format version, the encoder and the dtype) and
shards (:mod:`mmalign.store.shards`). Items are filed under the content key of the
raw input (:mod:`mmalign.store.keys`), so every split and task that shows the
encoder the same input shares one stored copy. Writers only add shards, so an
interrupted extraction resumes where it stopped, and torchrun ranks can write their
parts of the inputs side by side.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mmalign import atomic, paths
from mmalign.config import config_hash
from mmalign.errors import MMAlignError
from mmalign.store import shards
from mmalign.store.padding import pad_cat
from mmalign.store.shards import FORMAT, TOKEN_KEYS, Shard

log = logging.getLogger("mmalign.store")

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
#: a shard is written once this many bytes of features are buffered
SHARD_BYTES = 256 * 2**20


class StoreFormatError(MMAlignError):
    """A store folder was written in a format this version cannot read."""


def store_dir(encoder_name: str, fingerprint: str, dtype: str) -> Path:
    return paths.cache_dir() / "store" / f"{encoder_name}-{config_hash(fingerprint)[:16]}-{dtype}"


def item_length(features: dict[str, Tensor], i: int) -> int:
    """Item ``i``'s token count: up to its last unmasked token, else the token axis."""
    if "mask" in features:
        present = torch.nonzero(features["mask"][i].reshape(-1)).flatten()
        return int(present[-1]) + 1 if len(present) else 0
    for key, axis in TOKEN_KEYS.items():
        if key in features:
            return int(features[key].shape[axis])
    return 0


class FeatureStore:
    """The shards of one encoder's features, indexed by content key."""

    def __init__(self, root: Path, dtype: str = "fp16", encoder: str = "") -> None:
        if dtype not in DTYPES:
            raise MMAlignError(f"store dtype '{dtype}' is not one of {', '.join(DTYPES)}")
        self.root, self.dtype, self.encoder = root, dtype, encoder
        self.shards: list[Shard] = []
        self.where: dict[str, tuple[int, int]] = {}
        self.bad: dict[str, str] = {}
        self._check_manifest()
        self.refresh()

    @property
    def shard_dir(self) -> Path:
        return self.root / "shards"

    def _check_manifest(self) -> None:
        manifest = self.root / "store.json"
        if not manifest.exists():
            info = {"format": FORMAT, "encoder": self.encoder, "dtype": self.dtype}
            atomic.write_text(manifest, json.dumps(info, indent=2))
            return
        try:
            found = json.loads(manifest.read_text()).get("format")
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreFormatError(f"{manifest}: unreadable store manifest ({exc})") from exc
        if found != FORMAT:
            raise StoreFormatError(
                f"{manifest}: feature store format {found}, this mmalign reads format "
                f"{FORMAT}; delete {self.root} to rebuild it (or use the mmalign that wrote it)"
            )

    def refresh(self) -> None:
        """Re-read the shard list; delete what killed writers left (it is rebuilt)."""
        complete, broken = shards.scan(self.shard_dir)
        for path in broken:
            log.warning("feature store %s: incomplete shard file %s removed", self.root, path.name)
            path.unlink(missing_ok=True)
        self.shards = complete
        self.where, self.bad = {}, {}
        for s, shard in enumerate(complete):
            self.bad.update(shard.bad)
            for r, key in enumerate(shard.keys):
                self.where[key] = (s, r)

    def missing(self, keys: Iterable[str]) -> list[str]:
        """Keys neither stored nor known to fail preprocessing, in first-seen order."""
        out = dict.fromkeys(k for k in keys if k not in self.where and k not in self.bad)
        return list(out)

    def nbytes(self) -> int:
        return sum(s.path.stat().st_size for s in self.shards)

    def writer(self, shard_bytes: int | None = None) -> ShardWriter:
        return ShardWriter(self, shard_bytes or SHARD_BYTES)

    def columns(self, keys: list[str]) -> dict[str, StoredColumn]:
        """Read-only columns of the items ``keys`` (in that order), one per feature key."""
        located = [self.where[k] for k in keys]
        shard_of = np.array([s for s, _ in located], dtype=np.int64)
        row_of = np.array([r for _, r in located], dtype=np.int64)
        lengths = [self.shards[s].lengths[r] for s, r in located]
        names: list[str] = []
        for shard in self.shards:
            names.extend(k for k in shard.columns if k not in names)
        pad_to = max(lengths, default=0)
        return {
            name: StoredColumn(self.shards, shard_of, row_of, name, pad_to) for name in names
        }


class ShardWriter:
    """Buffers encoded items and writes a shard whenever the buffer is large enough."""

    def __init__(self, store: FeatureStore, shard_bytes: int) -> None:
        self.store, self.shard_bytes = store, shard_bytes
        self.keys: list[str] = []
        self.lengths: list[int] = []
        self.chunks: list[dict[str, Tensor]] = []
        self.bad: dict[str, str] = {}
        self.buffered = 0
        self.written = 0

    def add(self, keys: list[str], features: dict[str, Tensor]) -> None:
        target = DTYPES[self.store.dtype]
        cast = {}
        for name, value in features.items():
            value = value.detach().cpu()
            if value.is_floating_point():
                stored = value.to(target)
                if not torch.isfinite(stored).all() and torch.isfinite(value).all():
                    raise MMAlignError(
                        f"features '{name}' of {self.store.encoder} exceed the "
                        f"{self.store.dtype} range; store them as fp32 (--store-dtype fp32)"
                    )
                value = stored
            cast[name] = value
        self.keys.extend(keys)
        self.lengths.extend(item_length(cast, i) for i in range(len(keys)))
        self.chunks.append(cast)
        self.buffered += sum(v.numel() * v.element_size() for v in cast.values())
        if self.buffered >= self.shard_bytes:
            self.flush()

    def add_bad(self, key: str, reason: str) -> None:
        self.bad[key] = reason

    def flush(self) -> None:
        """Write what is buffered as one complete shard."""
        if not self.keys and not self.bad:
            return
        features = pad_cat(self.chunks) if self.chunks else {}
        shards.write(
            self.store.shard_dir,
            shards.new_name(self.written),
            self.keys,
            features,
            self.lengths,
            self.bad,
        )
        self.written += 1
        self.keys, self.lengths, self.chunks, self.bad, self.buffered = [], [], [], {}, 0

    def close(self) -> None:
        self.flush()
        self.store.refresh()


@dataclass
class StoredColumn:
    """One feature key of a split's items, gathered from the shards on indexing.

    ``column[rows]`` reads only those rows (float features come back as fp32,
    token axes padded or trimmed to the split's longest item), so a batch costs
    memory in proportion to the batch, never to the split.
    """

    shards: list[Shard]
    shard_of: np.ndarray
    row_of: np.ndarray
    name: str
    pad_to: int

    def __len__(self) -> int:
        return len(self.shard_of)

    def _row_shape(self) -> list[int]:
        first = self.shards[int(self.shard_of[0])] if len(self) else self.shards[0]
        shape = list(first.columns[self.name].shape[1:])
        axis = TOKEN_KEYS.get(self.name)
        if axis is not None:
            shape[axis - 1] = self.pad_to
        return shape

    @property
    def shape(self) -> torch.Size:
        return torch.Size([len(self), *self._row_shape()])

    def __getitem__(self, rows: Tensor | np.ndarray | list[int]) -> Tensor:
        index = np.asarray(torch.as_tensor(rows, dtype=torch.long).reshape(-1))
        if not len(index) or not self.shards:
            dtype = self.shards[0].columns[self.name].dtype if self.shards else "F32"
            return torch.zeros((0, *self._row_shape()), dtype=_torch_dtype(dtype))
        shard_ids = self.shard_of[index]
        groups = np.unique(shard_ids)
        parts, order = [], []
        for s in groups:
            where = np.nonzero(shard_ids == s)[0] if len(groups) > 1 else np.arange(len(index))
            part = self.shards[int(s)].read_rows(self.name, self.row_of[index[where]])
            parts.append(self._fit(part))
            order.append(where)
        out = parts[0] if len(parts) == 1 else torch.cat(parts)
        if len(parts) > 1:  # back to the order asked for
            inverse = np.empty(len(index), dtype=np.int64)
            inverse[np.concatenate(order)] = np.arange(len(index))
            out = out[torch.from_numpy(inverse)]
        return out.float() if out.is_floating_point() else out

    def _fit(self, part: Tensor) -> Tensor:
        axis = TOKEN_KEYS.get(self.name)
        if axis is None or part.shape[axis] == self.pad_to:
            return part
        if part.shape[axis] > self.pad_to:
            return part.narrow(axis, 0, self.pad_to)
        shape = list(part.shape)
        shape[axis] = self.pad_to - part.shape[axis]
        return torch.cat([part, torch.zeros(shape, dtype=part.dtype)], dim=axis)


def _torch_dtype(name: str) -> torch.dtype:
    return {"BOOL": torch.bool, "I64": torch.long, "I32": torch.int32}.get(name, torch.float32)
