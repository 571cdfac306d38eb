"""Run-level data options (``--set data.KEY=...``): how much of a task to use and
how its frozen-encoder features are stored. They are recorded with the run's
overrides, so a run on a fraction of the data is never mixed with a full one."""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import Field

from mmalign.config import validate
from mmalign.interfaces import Sample, StrictModel


class DataOptions(StrictModel):
    #: the share of each split to use, chosen by a hash of the sample id (stable
    #: across runs and machines); for trying a paper-size task on a smaller disk
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    #: the storage dtype of new feature stores; batches are always read as fp32
    store_dtype: Literal["fp16", "bf16", "fp32"] = "fp16"


def split_data_sets(sets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``data.*`` keys (the data options) apart from the rest."""
    data = {k.removeprefix("data."): v for k, v in sets.items() if k.startswith("data.")}
    rest = {k: v for k, v in sets.items() if not k.startswith("data.")}
    return data, rest


def data_options(tree: dict[str, Any]) -> DataOptions:
    return validate(DataOptions, tree)  # type: ignore[return-value]


def take_fraction(samples: list[Sample], fraction: float) -> list[Sample]:
    """The samples whose id hashes below ``fraction`` (all of them at 1.0)."""
    if fraction >= 1.0:
        return samples
    limit = int(fraction * 2**32)
    return [
        s
        for s in samples
        if int.from_bytes(hashlib.blake2b(s.id.encode(), digest_size=4).digest()) < limit
    ]
