"""Deterministic train/validation/test splits for datasets that publish none."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from mmalign.interfaces import Sample

T = TypeVar("T")
SPLITS = ("train", "validation", "test")


def seeded_split(
    items: Sequence[T], seed: int, fractions: tuple[float, float] = (0.1, 0.1)
) -> dict[str, list[T]]:
    """Shuffle with ``seed`` and cut validation and test fractions (8:1:1 by default).

    The input order must itself be deterministic (readers sort by id), so the same
    files and seed always give the same split.
    """
    order = np.random.default_rng(seed).permutation(len(items))
    n_val = round(len(items) * fractions[0])
    n_test = round(len(items) * fractions[1])
    picked = [items[i] for i in order]
    return {
        "train": picked[n_val + n_test :],
        "validation": picked[:n_val],
        "test": picked[n_val : n_val + n_test],
    }


def id_key(sample: Sample) -> tuple[int, str]:
    """Sort key putting numeric ids in numeric order (MVSA ids are integers)."""
    return (int(sample.id), "") if sample.id.isdigit() else (1 << 62, sample.id)
