"""Not building a frozen encoder whose features are already stored.

Building an encoder (loading and hashing its weights) is most of a warm run's
start-up, yet a frozen encoder whose features are all in the store is only asked
for its fingerprint and output width. After the first build, those (and the
parameter counts a run records) are remembered under ``cache/encoders``, with the
size and modification time of every weight file. Later runs get a
:class:`DeferredEncoder` carrying them, which builds the real encoder only if an
input turns out to be missing from the store. Editing or replacing a weight file
invalidates the record; so does another mmalign or torch version.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mmalign import atomic, paths
from mmalign.config import config_hash
from mmalign.interfaces import Encoder, EncoderRef
from mmalign.registry import Registry


def _stamp(path: Path) -> list[Any]:
    st = path.stat()
    return [str(path), st.st_size, st.st_mtime_ns]


def _record_path(ref: EncoderRef, cls: type) -> Path:
    try:
        version = metadata.version("mmalign")
    except metadata.PackageNotFoundError:
        version = "unknown"
    key = config_hash([ref.name, ref.config, cls.__qualname__, version, torch.__version__])
    return paths.cache_dir() / "encoders" / f"{ref.name}-{key[:16]}.json"


def _valid(record: dict[str, Any]) -> bool:
    for path, size, mtime in record["files"]:
        p = Path(path)
        if not p.exists() or _stamp(p) != [path, size, mtime]:
            return False
    return True


def _remember(encoder: Encoder, where: Path) -> None:
    files: list[Path] = []
    weight_files = getattr(encoder, "weight_files", None)
    if callable(weight_files):
        files = list(weight_files()[0])
    provides = list(getattr(encoder, "provides", ("pooled",)))
    record = {
        "class": type(encoder).__name__,
        "fingerprint": encoder.fingerprint(),
        "out_dim": encoder.out_dim,
        "provides": provides,
        "token_dim": encoder.token_dim if "tokens" in provides else None,
        "parameters": {
            "trainable": sum(p.numel() for p in encoder.parameters() if p.requires_grad),
            "frozen": sum(p.numel() for p in encoder.parameters() if not p.requires_grad),
        },
        "files": [_stamp(Path(f)) for f in files],
    }
    atomic.write_text(where, json.dumps(record, indent=2))


class DeferredEncoder(Encoder):
    """A frozen encoder known by its remembered fingerprint, built on first real use."""

    def __init__(self, record: dict[str, Any], build: Any) -> None:
        super().__init__()
        self.record = record
        self.provides = tuple(record["provides"])
        self._build = build
        self._real: list[Encoder] = []  # a list, so the module is not registered (or counted)

    @property
    def class_name(self) -> str:
        return str(self.record["class"])

    @property
    def out_dim(self) -> int:
        return int(self.record["out_dim"])

    @property
    def token_dim(self) -> int:
        return int(self.record["token_dim"])

    @property
    def frozen(self) -> bool:
        return True

    @property
    def parameter_counts(self) -> dict[str, int]:
        return dict(self.record["parameters"])

    @property
    def built(self) -> bool:
        return bool(self._real)

    def fingerprint(self) -> str:
        return str(self.record["fingerprint"])

    def real(self) -> Encoder:
        if not self._real:
            self._real.append(self._build())
        return self._real[0]

    def preprocess(self, raw: Any) -> Any:
        return self.real().preprocess(raw)

    def collate(self, items: Any) -> Any:
        return self.real().collate(items)

    def forward(self, inputs: Any) -> dict[str, Tensor]:
        real = self.real()
        device = _device_of(inputs)
        return real.to(device).eval()(inputs) if device is not None else real(inputs)


def _device_of(obj: Any) -> torch.device | None:
    if isinstance(obj, Tensor):
        return obj.device
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for item in obj:
            found = _device_of(item)
            if found is not None:
                return found
    return None


def make_encoders(
    registry: Registry, refs: dict[str, EncoderRef], modalities: tuple[str, ...]
) -> dict[str, Encoder]:
    """The encoders for the modalities the task offers; a frozen, feature-only
    encoder built before (same config and weight files) comes deferred."""
    out: dict[str, Encoder] = {}
    for modality, ref in refs.items():
        if modality not in modalities:
            continue
        cls = registry.get("encoder", ref.name)

        def build(ref: EncoderRef = ref, where: str = f"encoders.{modality}") -> Encoder:
            return registry.create("encoder", ref, where=where)

        where = _record_path(ref, cls)
        if ref.cache and not ref.inputs and where.exists():
            record = json.loads(where.read_text())
            if "provides" in record and _valid(record):
                out[modality] = DeferredEncoder(record, build)
                continue
        encoder = build()
        if ref.cache and not ref.inputs and encoder.frozen:
            _remember(encoder, where)
        out[modality] = encoder
    return out
