"""Turning a split's samples into tensors once: frozen-encoder features, cached on disk.

A :class:`FeatureSet` holds, per modality, either encoder features (frozen encoders,
computed once per distinct input and kept in the on-disk feature store of
:mod:`mmalign.store`, read per batch) or preprocessed inputs (for encoders kept in
the training loop). Samples whose preprocessing fails are skipped and counted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from mmalign import paths
from mmalign.config import config_hash
from mmalign.errors import MMAlignError
from mmalign.interfaces import INSTANCE, Batch, Encoder, Sample
from mmalign.skips import SkipCounter
from mmalign.store import FeatureStore, StoredColumn, content_key, feasibility, store_dir
from mmalign.store.padding import pad_cat
from mmalign.store.store import SHARD_BYTES

if TYPE_CHECKING:
    from mmalign.runner.distributed import Dist

log = logging.getLogger("mmalign.features")
#: the version of the one-blob-per-split cache that the store replaced
LEGACY_CACHE_VERSION = 1

Column = Tensor | StoredColumn


@dataclass
class ModalityData:
    """One modality of a split: ``rows[i]`` is the sample position of row ``i``.

    ``features`` are in-memory tensors or :class:`~mmalign.store.StoredColumn`
    objects read from the store per batch; ``items`` are preprocessed inputs, or raw inputs
    preprocessed per batch when ``raw`` is set.
    """

    rows: Tensor
    features: dict[str, Column] | None = None
    items: list[Any] | None = None
    raw: bool = False

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
    #: per sample, its cross-modal instance id (``Sample.meta[INSTANCE]``); None when the
    #: task has none
    instances: list[str | None] | None = None
    #: processes that gather batches (``train.num_workers``; 0: the calling one)
    workers: int = 0
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
            enc = self.encoders[modality]
            chosen = [data.items[int(r)] for r in rows]
            out["inputs"] = enc.collate([enc.preprocess(x) for x in chosen] if data.raw else chosen)
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

    def batches(
        self, chunks: Iterable[Tensor], modalities: Sequence[str] | None = None
    ) -> Iterator[Batch]:
        """:meth:`batch` of each chunk of positions, in order, gathered (and raw
        inputs preprocessed) in :attr:`workers` DataLoader processes."""
        from mmalign.batch_workers import gather

        return gather(self, chunks, self.workers, modalities)


def _to_label_tensor(labels: list[Any]) -> Tensor | None:
    if all(label is None for label in labels):
        return None
    if all(isinstance(label, int) for label in labels):
        return torch.tensor(labels, dtype=torch.long)
    return torch.tensor([float(label) for label in labels], dtype=torch.float32)


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
    return pad_cat(chunks)


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
    """Where format 1 (one ``torch.save`` blob per split) kept a split's features;
    such a blob is migrated into the store on first use (:func:`_migrate`)."""
    key = config_hash([LEGACY_CACHE_VERSION, encoder.fingerprint(), data_key, split])
    return paths.cache_dir() / f"{type(encoder).__name__.lower()}-{key}.pt"


def open_store(encoder: Encoder, dtype: str = "fp16") -> FeatureStore:
    fingerprint = encoder.fingerprint()
    name = getattr(encoder, "class_name", type(encoder).__name__).lower()
    return FeatureStore(store_dir(name, fingerprint, dtype), dtype, fingerprint)


def _migrate(store: FeatureStore, legacy: Path, key_of: dict[str, str]) -> None:
    """Move a format-1 blob's rows into the store (no re-encoding), then delete it."""
    blob = torch.load(legacy, map_location="cpu", weights_only=True)
    writer = store.writer()
    need = set(store.missing(key_of[i] for i in blob["ids"] if i in key_of))
    take = [j for j, sid in enumerate(blob["ids"]) if key_of.get(sid) in need]
    first: dict[str, int] = {}
    for j in take:
        first.setdefault(key_of[blob["ids"][j]], j)
    if first:
        index = torch.tensor(list(first.values()), dtype=torch.long)
        writer.add(list(first), {k: v[index] for k, v in blob["features"].items()})
    for sid in blob["bad"]:
        if sid in key_of and key_of[sid] not in store.where:
            writer.add_bad(key_of[sid], "skipped when the format-1 cache was built")
    writer.close()
    legacy.unlink()
    log.warning(
        "feature cache %s (format 1, one blob per split) migrated into the store %s",
        legacy.name,
        store.root,
    )


def encode_into(
    store: FeatureStore,
    encoder: Encoder,
    raw: dict[str, tuple[str, Any]],
    batch_size: int,
    device: torch.device,
    counter: SkipCounter,
    quiet: bool = True,
    check: bool = True,
) -> int:
    """Preprocess and encode the inputs ``raw`` (content key -> (a sample id, input))
    into ``store``, a shard at a time: a crash loses at most the shard being filled.
    After the first batch the whole extraction is checked to fit (disk and memory),
    unless ``check`` is off (the run checked all its extractions together). Returns
    the stored bytes per input of the first batch (0 when nothing was encoded)."""
    from mmalign.runner.progress import bar

    writer = store.writer()
    encoder.to(device).eval()
    pending = list(raw.items())
    # a deferred encoder names its class without being built
    name = getattr(encoder, "class_name", type(encoder).__name__).rsplit(".", 1)[-1]
    per_input = 0
    with torch.inference_mode(), bar(f"encode {name}", len(pending)) as advance:
        for start in range(0, len(pending), batch_size):
            if start == batch_size and writer.keys:
                per_input = writer.buffered // len(writer.keys)
                if check:
                    need = _need(encoder, len(pending), per_input, writer.shard_bytes)
                    _report(feasibility.check([need], store.dtype, store.root.parent), quiet)
            keys, prepared = [], []
            for key, (sample_id, value) in pending[start : start + batch_size]:
                try:
                    prepared.append(encoder.preprocess(value))
                except Exception as exc:  # a bad sample is skipped, never fatal on its own
                    counter.skip(sample_id, exc)
                    writer.add_bad(key, f"{type(exc).__name__}: {exc}")
                    continue
                counter.ok()
                keys.append(key)
            if keys:
                feats = encoder(move(encoder.collate(prepared), device))
                writer.add(keys, {k: v.detach().cpu() for k, v in feats.items()})
            advance(len(pending[start : start + batch_size]))
    if not per_input and writer.keys:
        per_input = writer.buffered // len(writer.keys)
    writer.close()
    return per_input


def _need(encoder: Encoder, inputs: int, per_input: int, shard_bytes: int) -> feasibility.Need:
    real = getattr(encoder, "real", lambda: encoder)()  # a deferred encoder is built by now
    weights = sum(t.numel() * t.element_size() for t in real.state_dict().values())
    return feasibility.Need(type(real).__name__, inputs, per_input, shard_bytes, weights)


def _report(line: str, quiet: bool) -> None:
    if not quiet:
        print(line, file=sys.stderr)


def extraction_needs(
    splits: dict[str, list[Sample]],
    encoders: dict[str, Encoder],
    cached: dict[str, bool],
    counted: dict[Path, set[str]],
    *,
    device: torch.device | None = None,
    batch_size: int = 64,
    store_dtype: str = "fp16",
    where: str = "",
) -> list[feasibility.Need]:
    """What each frozen encoder still has to encode for these splits.

    Counts every input not yet in its store across all the splits, each distinct input
    once (``counted`` holds, per store, the keys earlier calls of the same run counted,
    so a later stage that shows an encoder the same inputs adds nothing), and encodes
    one probe batch per encoder into its store (not wasted: it is what the extraction
    would write first) to measure the bytes per input.
    """
    device = device or torch.device("cpu")
    needs = []
    for m, enc in encoders.items():
        if not cached[m]:
            continue
        store = open_store(enc, store_dtype)
        seen = counted.setdefault(store.root, set())
        raw: dict[str, tuple[str, Any]] = {}
        for samples in splits.values():
            for s in samples:
                if m in s.inputs:
                    raw.setdefault(content_key(s.inputs[m]), (s.id, s.inputs[m]))
        missing = set(store.missing(raw)) - seen
        raw = {k: v for k, v in raw.items() if k in missing}
        seen.update(raw)
        if not raw:
            continue
        counter = SkipCounter(f"{where} [probe/{m}]")
        probe = dict(list(raw.items())[:batch_size])
        per_input = encode_into(store, enc, probe, batch_size, device, counter, check=False)
        counter.finish()
        if per_input:
            needs.append(_need(enc, len(raw), per_input, SHARD_BYTES))
    return needs


def check_needs(needs: list[feasibility.Need], store_dtype: str, quiet: bool = True) -> None:
    """One fit check of a run's extractions (all stores live under one cache folder)."""
    if needs:
        _report(feasibility.check(needs, store_dtype, paths.cache_dir() / "store"), quiet)


def _preprocess_all(
    encoder: Encoder, samples: list[Sample], m: str, counter: SkipCounter
) -> tuple[dict[int, Any], list[str]]:
    items, bad = {}, []
    for pos, sample in enumerate(samples):
        if m not in sample.inputs:
            continue
        try:
            items[pos] = encoder.preprocess(sample.inputs[m])
        except Exception as exc:  # a bad sample is skipped, never fatal on its own
            counter.skip(sample.id, exc)
            bad.append(sample.id)
            continue
        counter.ok()
    return items, bad


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
    store_dtype: str = "fp16",
    quiet: bool = True,
    dist: Dist | None = None,
    fit_checked: bool = False,
) -> FeatureSet:
    """Encode (or find in the store) every distinct input once, per modality.

    Frozen encoders' features live in the on-disk store (``use_cache=False``
    encodes them into memory instead); ``inputs[m]`` also puts modality ``m``'s
    preprocessed inputs in each batch, preprocessed per batch from the raw inputs.
    Under torchrun (``dist``) every rank calls this; each encodes its share of the
    missing inputs, and all read the shared store once every share is written.
    ``fit_checked`` says the caller already checked every extraction together
    (:func:`extraction_needs`, :func:`check_needs`), so each is not checked again
    on its own.
    """
    from mmalign.runner.distributed import Dist

    dist = dist or Dist()
    device = device or torch.device("cpu")
    keep_inputs = inputs or {}
    bad: set[str] = set()
    items: dict[str, dict[int, Any]] = {}
    keys: dict[str, dict[int, str]] = {}
    stores: dict[str, FeatureStore] = {}
    for m, enc in encoders.items():
        counter = SkipCounter(f"{where} [{split}/{m}]")
        if cached[m] and use_cache:
            keys[m] = {p: content_key(s.inputs[m]) for p, s in enumerate(samples) if m in s.inputs}
            stores[m] = store = open_store(enc, store_dtype)
            legacy = cache_path(enc, data_key, split)
            if legacy.exists():
                _migrate(store, legacy, {samples[p].id: k for p, k in keys[m].items()})
            need = set(store.missing(keys[m].values()))
            raw = {}
            for p, k in keys[m].items():
                if k in need and k not in raw:
                    raw[k] = (samples[p].id, samples[p].inputs[m])
            if dist.active:
                dist.barrier()  # every rank has listed the same missing inputs before any write
                share = dict(list(raw.items())[dist.rank :: dist.world])
                encode_into(store, enc, share, batch_size, device, counter, quiet or not dist.main,
                            check=not fit_checked)
                dist.barrier()
                store.refresh()
            elif raw:
                encode_into(store, enc, raw, batch_size, device, counter, quiet,
                            check=not fit_checked)
            counter.finish()
            bad.update(samples[p].id for p, k in keys[m].items() if k in store.bad)
        else:
            items[m], modality_bad = _preprocess_all(enc, samples, m, counter)
            counter.finish()
            bad.update(modality_bad)

    kept = [pos for pos, s in enumerate(samples) if s.id not in bad]
    new_row = {pos: i for i, pos in enumerate(kept)}
    modalities: dict[str, ModalityData] = {}
    for m, enc in encoders.items():
        present = keys[m] if m in keys else items[m]
        positions = [p for p in present if p in new_row]
        rows = torch.tensor([new_row[p] for p in positions], dtype=torch.long)
        if m in stores:
            item_keys = [keys[m][p] for p in positions]
            data = ModalityData(rows=rows, features=dict(stores[m].columns(item_keys)))
        elif cached[m]:
            prepared = [items[m][p] for p in positions]
            feats = _encode(enc, prepared, batch_size, device) if prepared else {}
            data = ModalityData(rows=rows, features=feats)
        else:
            data = ModalityData(rows=rows, items=[items[m][p] for p in positions])
        if keep_inputs.get(m) and data.items is None:
            data.items = [samples[p].inputs[m] for p in positions]
            data.raw = True
        modalities[m] = data
    return FeatureSet(
        split=split,
        sample_ids=[samples[p].id for p in kept],
        labels=_to_label_tensor([samples[p].label for p in kept]),
        modalities=modalities,
        encoders=encoders,
        skipped=len(samples) - len(kept),
        instances=_instances([samples[p] for p in kept]),
    )


def index_set(split: str, samples: list[Sample], modalities: Iterable[str]) -> FeatureSet:
    """A split's rows, labels and instances without any feature: what a stage loader
    needs to count its epoch (the suite planner's step budget), at no encoding cost."""
    modality_data = {
        m: ModalityData(rows=torch.tensor([i for i, s in enumerate(samples) if m in s.inputs],
                                          dtype=torch.long))
        for m in modalities
    }
    return FeatureSet(split=split, sample_ids=[s.id for s in samples],
                      labels=_to_label_tensor([s.label for s in samples]),
                      modalities=modality_data, encoders={}, instances=_instances(samples))


def _instances(samples: list[Sample]) -> list[str | None] | None:
    ids = [s.meta.get(INSTANCE) for s in samples]
    return None if all(i is None for i in ids) else ids


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
    for batch in fs.batches(shuffled_batches(len(fs), batch_size, torch.Generator(), False)):
        for name, feats in fn(move(batch, device)).items():
            chunks.setdefault(name, []).append({k: v.detach().cpu() for k, v in feats.items()})
    for name, parts in chunks.items():
        fs.add_features(name, pad_cat(parts))
