"""Shared settings of the papers' named encoders (weights from a path, the caches, or
random at full size).

``weights="pretrained"`` (the default) looks at ``path`` when given, else at the
known cache locations, and stops with :class:`~mmalign.encoders.locate.
WeightsNotFoundError` naming every file it looked for and how to provide one.
``weights="random"`` builds the full-size architecture with seeded random weights,
for throughput work and tests; its features mean nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from mmalign.encoders import locate
from mmalign.interfaces import StrictModel

Weights = Literal["pretrained", "random"]


class PretrainedFields(StrictModel):
    """Where the weights come from (mixed into each named encoder's config)."""

    path: str | None = Field(None, description="a local checkpoint file or model folder")
    weights: Weights = Field("pretrained", description='"pretrained" or "random" (full size)')
    seed: int = Field(0, description="seed of weights='random'")
    trainable: bool = False


def not_found(
    encoder: str, modality: str, looked: Sequence[str], how: Sequence[str]
) -> locate.WeightsNotFoundError:
    """The error for absent pretrained weights, with the --set line for ``path``."""
    how = [
        *how,
        f"or pass a local copy: --set encoders.{modality}.config.path=/path/to/it",
    ]
    return locate.WeightsNotFoundError(
        locate.missing_message(encoder, looked, how, modality=modality)
    )
