"""What every built-in encoder shares: freezing, device handling and the fingerprint.

The fingerprint keys the on-disk feature cache, so it must change whenever the
features could: it hashes the encoder's registered name, a hash of its weights
(the weight files' sha256 for pretrained weights, the state dict's for random or
trainable ones) and every setting that changes the features. Settings that only
say *where* weights come from (a path, ``"hf-cache"``) are left out because the
weights hash already covers what was found there: moving a checkpoint keeps the
cache, editing it does not.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmalign.encoders import hashing
from mmalign.interfaces import Encoder, FeatureKey, StrictModel

#: bump when a change to this package changes the features of an unchanged config
CODE_VERSION = 1


class EncoderBase(Encoder):
    """An :class:`~mmalign.interfaces.Encoder` with freezing and fingerprinting."""

    #: the name the encoder is registered under (part of the fingerprint)
    name: ClassVar[str] = ""
    #: every built-in encoder returns pooled features and tokens (with their mask)
    provides: ClassVar[tuple[FeatureKey, ...]] = ("pooled", "tokens")
    #: config fields that only locate weights; the weights hash stands in for them
    locator_fields: ClassVar[frozenset[str]] = frozenset({"path", "weights", "trainable"})

    def __init__(self, config: StrictModel | None = None) -> None:
        super().__init__(config)
        self._weights_digest: str | None = None

    # ------------------------------------------------------------------ freezing

    def set_trainable(self, trainable: bool) -> None:
        """Pretrained encoders are frozen (no grads, eval mode) unless asked otherwise."""
        for p in self.parameters():
            p.requires_grad_(trainable)
        self.train(trainable)

    def train(self, mode: bool = True) -> EncoderBase:
        """A frozen encoder stays in eval mode even when its parent is put in training.

        Otherwise a method's ``model.train()`` would switch a frozen CNN's batch norm
        to batch statistics and dropout on, changing the "frozen" features.
        """
        return super().train(mode and not self.frozen)

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        for tensor in self.buffers():
            return tensor.device
        return torch.device("cpu")

    def grad_context(self) -> contextlib.AbstractContextManager[Any]:
        """No autograd graph through a frozen encoder (saves memory in training loops)."""
        return torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen)

    def to_device(self, obj: Any) -> Any:
        """Move collated inputs to the encoder's device (a no-op when already there)."""
        device = self.device
        if isinstance(obj, Tensor):
            return obj.to(device)
        if isinstance(obj, dict):
            return {k: self.to_device(v) for k, v in obj.items()}
        return obj

    # --------------------------------------------------------------- fingerprint

    def weight_files(self) -> tuple[list[Path], Path | None]:
        """The files the weights were loaded from and their root folder.

        Empty when the weights were not loaded from files (random initialisation,
        a network trained from scratch): then the state dict is hashed instead.
        """
        return [], None

    def weights_hash(self) -> str:
        """sha256 of the weights, memoised while the encoder is frozen."""
        if not self.frozen:
            return "state:" + hashing.state_dict_sha256(self)
        if self._weights_digest is None:
            files, root = self.weight_files()
            if files:
                self._weights_digest = "files:" + hashing.files_sha256(files, root)
            else:
                self._weights_digest = "state:" + hashing.state_dict_sha256(self)
        return self._weights_digest

    def extra_settings(self) -> dict[str, Any]:
        """Settings that change the features but are not config fields."""
        return {}

    def settings(self) -> dict[str, Any]:
        """Every setting that changes the features: config fields and resolved values."""
        fields = self.config.model_dump(mode="json")
        out = {k: v for k, v in fields.items() if k not in self.locator_fields}
        out.update(self.extra_settings())
        return out

    def fingerprint_payload(self) -> dict[str, Any]:
        """What :meth:`fingerprint` hashes, readable for debugging a cache miss."""
        return {
            "encoder": self.name or type(self).__name__,
            "code_version": CODE_VERSION,
            "weights": self.weights_hash(),
            "settings": self.settings(),
        }

    def fingerprint(self) -> str:
        payload = json.dumps(self.fingerprint_payload(), sort_keys=True, default=str)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:32]
        return f"{self.name or type(self).__name__}-{digest}"


def seeded(seed: int) -> contextlib.AbstractContextManager[Any]:
    """Random initialisation from ``seed`` without disturbing the global RNG."""

    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    return scope()
