"""Turning a split's samples into tensors once: frozen-encoder features, cached on disk.

A :class:`FeatureSet` holds, per modality, either encoder features (frozen encoders,
computed once per sample and cached under ``MMALIGN_HOME/cache`` keyed by the
encoder fingerprint, the task, its data and the split) or preprocessed inputs (for
encoders kept in the training loop). Samples whose preprocessing fails are skipped
and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmalign import atomic, paths
from mmalign.config import config_hash
from mmalign.errors import MMAlignError
from mmalign.interfaces import Batch, Encoder, Sample
from mmalign.skips import SkipCounter

log = logging.getLogger("mmalign.features")
CACHE_VERSION = 1


@dataclass
class ModalityData:
    """One modality of a split: ``rows[i]`` is the sample position of row ``i``."""

    rows: Tensor
    features: dict[str, Tensor] | None = None
    items: list[Any] | None = None

    def lookup(self, n_samples: int) -> Tensor:
        table = torch.full((n_samples,), -1, dtype=torch.long)
        table[self.rows] = torch.arange(len(self.rows))
        return table


@dataclass
class FeatureSet:
    """A split ready for training: labels plus per-modality data."""

    split: str
    sample_ids: list[str]
    labels: Tensor | None
    modalities: dict[str, ModalityData]
    encoders: dict[str, Encoder]
    skipped: int = 0
    _lookups: dict[str, Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def paired(self) -> bool:
        """True when every sample has every modality (one-to-one data)."""
        return all(len(m.rows) == len(self) for m in self.modalities.values())

    def rows_for(self, modality: str, positions: Tensor) -> Tensor:
        if modality not in self._lookups:
            self._lookups[modality] = self.modalities[modality].lookup(len(self))
        return self._lookups[modality][positions]

    def modality_batch(self, modality: str, rows: Tensor) -> dict[str, Any]:
        data = self.modalities[modality]
        out: dict[str, Any] = {}
        if data.features is not None:
            out = {k: v[rows] for k, v in data.features.items()}
        if data.items is not None:
            out["inputs"] = self.encoders[modality].collate([data.items[int(r)] for r in rows])
        return out

    def keep_only(self, keys: dict[str, list[str]]) -> None:
        """Drop the feature keys a method does not use, per modality."""
        for m, wanted in keys.items():
            data = self.modalities.get(m)
            if data is not None and data.features is not None:
                data.features = {k: v for k, v in data.features.items() if k in wanted}

    def add_features(self, name: str, features: dict[str, Tensor]) -> None:
        """Add per-sample features (rows in sample order) as a new modality ``name``."""
        self.modalities[name] = ModalityData(rows=torch.arange(len(self)), features=features)
        self._lookups.pop(name, None)

    def batch(self, positions: Tensor, modalities: Sequence[str] | None = None) -> Batch:
        """A batch of the samples at ``positions`` with the given modalities."""
        out: Batch = {"index": positions}
        if self.labels is not None:
            out["label"] = self.labels[positions]
        for m in modalities or list(self.modalities):
            rows = self.rows_for(m, positions)
            if (rows < 0).any():
                raise MMAlignError(f"modality '{m}' is missing for some samples of this batch")
            out[m] = self.modality_batch(m, rows)
        return out


def _to_label_tensor(labels: list[Any]) -> Tensor | None:
    if all(label is None for label in labels):
        return None
    if all(isinstance(label, int) for label in labels):
        return torch.tensor(labels, dtype=torch.long)
    return torch.tensor([float(label) for label in labels], dtype=torch.float32)


def _pad_cat(chunks: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Concatenate per-batch feature dicts, padding the token axis to the longest."""
    out: dict[str, Tensor] = {}
    for key in chunks[0]:
        parts = [c[key] for c in chunks]
        if key in ("tokens", "mask", "layers"):
            axis = 2 if key == "layers" else 1
            longest = max(p.shape[axis] for p in parts)
            padded = []
            for p in parts:
                pad = longest - p.shape[axis]
                if pad:
                    shape = list(p.shape)
                    shape[axis] = pad
                    p = torch.cat([p, torch.zeros(shape, dtype=p.dtype)], dim=axis)
                padded.append(p)
            parts = padded
        out[key] = torch.cat(parts)
    return out


def _encode(
    encoder: Encoder, items: list[Any], batch_size: int, device: torch.device
) -> dict[str, Tensor]:
    chunks = []
    encoder.to(device).eval()
    with torch.inference_mode():
        for start in range(0, len(items), batch_size):
            inputs = encoder.collate(items[start : start + batch_size])
            inputs = move(inputs, device)
            feats = encoder(inputs)
            chunks.append({k: v.detach().cpu() for k, v in feats.items()})
    return _pad_cat(chunks)


def move(obj: Any, device: torch.device) -> Any:
    """Move tensors inside nested dicts/lists to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: move(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move(v, device) for v in obj)
    return obj


def cache_path(encoder: Encoder, data_key: str, split: str) -> Path:
    key = config_hash([CACHE_VERSION, encoder.fingerprint(), data_key, split])
    return paths.cache_dir() / f"{type(encoder).__name__.lower()}-{key}.pt"


def build_feature_set(
    split: str,
    samples: list[Sample],
    encoders: dict[str, Encoder],
    cached: dict[str, bool],
    data_key: str,
    *,
    inputs: dict[str, bool] | None = None,
    use_cache: bool = True,
    device: torch.device | None = None,
    batch_size: int = 64,
    where: str = "",
) -> FeatureSet:
    """Preprocess every sample once; encode (or load cached features) per modality.

    ``inputs[m]`` keeps modality ``m``'s preprocessed inputs next to its features.
    """
    device = device or torch.device("cpu")
    keep_inputs = inputs or {}
    bad: set[str] = set()
    items: dict[str, dict[int, Any]] = {}
    blobs: dict[str, dict[str, Any]] = {}
    for m, enc in encoders.items():
        path = cache_path(enc, data_key, split)
        if use_cache and cached[m] and path.exists():
            blobs[m] = torch.load(path, map_location="cpu", weights_only=True)
            bad.update(blobs[m]["bad"])
            if not keep_inputs.get(m):
                continue
        counter = SkipCounter(f"{where} [{split}/{m}]")
        items[m] = {}
        modality_bad = []
        for pos, sample in enumerate(samples):
            if m not in sample.inputs:
                continue
            try:
                items[m][pos] = enc.preprocess(sample.inputs[m])
            except Exception as exc:  # a bad sample is skipped, never fatal on its own
                counter.skip(sample.id, exc)
                modality_bad.append(sample.id)
                continue
            counter.ok()
        counter.finish()
        bad.update(modality_bad)
        blobs.setdefault(m, {"bad": modality_bad})

    kept = [pos for pos, s in enumerate(samples) if s.id not in bad]
    new_row = {pos: i for i, pos in enumerate(kept)}
    kept_ids = [samples[p].id for p in kept]
    modalities: dict[str, ModalityData] = {}
    for m, enc in encoders.items():
        if "features" in blobs[m]:
            modalities[m] = _from_cache(blobs[m], kept_ids)
        else:
            positions = [p for p in items[m] if p in new_row]
            rows = torch.tensor([new_row[p] for p in positions], dtype=torch.long)
            prepared = [items[m][p] for p in positions]
            if not cached[m]:
                modalities[m] = ModalityData(rows=rows, items=prepared)
                continue
            feats = _encode(enc, prepared, batch_size, device) if prepared else {}
            if use_cache:
                blob = {
                    "ids": [samples[p].id for p in positions],
                    "features": feats,
                    "bad": blobs[m]["bad"],
                }
                atomic.torch_save(blob, cache_path(enc, data_key, split))
            modalities[m] = ModalityData(rows=rows, features=feats)
        if keep_inputs.get(m):
            modalities[m].items = [items[m][kept[int(r)]] for r in modalities[m].rows]
    return FeatureSet(
        split=split,
        sample_ids=kept_ids,
        labels=_to_label_tensor([samples[p].label for p in kept]),
        modalities=modalities,
        encoders=encoders,
        skipped=len(samples) - len(kept),
    )


def _from_cache(blob: dict[str, Any], kept_ids: list[str]) -> ModalityData:
    """Align cached feature rows with the kept samples."""
    position = {sid: i for i, sid in enumerate(kept_ids)}
    rows, take = [], []
    for j, sid in enumerate(blob["ids"]):
        if sid in position:
            rows.append(position[sid])
            take.append(j)
    index = torch.tensor(take, dtype=torch.long)
    feats = {k: v[index] for k, v in blob["features"].items()}
    return ModalityData(rows=torch.tensor(rows, dtype=torch.long), features=feats)


def shuffled_batches(
    n: int,
    batch_size: int,
    generator: torch.Generator,
    shuffle: bool = True,
    drop_last: bool = False,
    rank: int = 0,
    world: int = 1,
) -> Iterator[Tensor]:
    """Positions of each batch; under DDP each rank takes its slice of a global batch."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        chunk = order[start : start + batch_size]
        if drop_last and len(chunk) < batch_size:
            break
        if world > 1:
            if len(chunk) < world:  # every rank must take the same number of steps
                break
            chunk = chunk[rank::world]
        yield chunk


@torch.no_grad()
def derive_features(
    fs: FeatureSet,
    fn: Callable[[Batch], dict[str, dict[str, Tensor]]],
    batch_size: int,
    device: torch.device,
) -> None:
    """Run ``fn`` over ``fs`` in order and add what it returns as new modalities."""
    chunks: dict[str, list[dict[str, Tensor]]] = {}
    for positions in shuffled_batches(len(fs), batch_size, torch.Generator(), shuffle=False):
        for name, feats in fn(move(fs.batch(positions), device)).items():
            chunks.setdefault(name, []).append({k: v.detach().cpu() for k, v in feats.items()})
    for name, parts in chunks.items():
        fs.add_features(name, _pad_cat(parts))
