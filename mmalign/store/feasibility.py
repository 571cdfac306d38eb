"""Will an extraction fit? Checked after one probe batch, before the rest is encoded.

A store needs ``inputs x bytes per input`` of disk; extraction holds one shard
buffer (written and then copied once by the shard writer) plus the encoder's
weights in memory. A run's extractions are checked together (every split and
modality of a task: stores that each fit alone can fail together), so a run that
cannot fit stops with the numbers and the ways out, instead of filling the disk
hours later.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from mmalign.errors import MMAlignError

GB = 1e9


class DoesNotFitError(MMAlignError):
    """The features of a run would not fit the free disk or memory."""


@dataclass(frozen=True)
class Need:
    """What one encoder's extraction takes, measured from its probe batch."""

    encoder: str
    inputs: int
    bytes_per_input: int
    shard_bytes: int
    weight_bytes: int

    @property
    def store_bytes(self) -> int:
        return self.inputs * self.bytes_per_input

    @property
    def peak_memory_bytes(self) -> int:
        return 2 * (self.shard_bytes + 64 * self.bytes_per_input) + self.weight_bytes


def available_memory() -> int:
    """``MemAvailable`` from /proc/meminfo (what can be allocated without swapping)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 2**62
    return 2**62


def free_disk(path: Path) -> int:
    path.mkdir(parents=True, exist_ok=True)
    return shutil.disk_usage(path).free


def check(needs: list[Need], dtype: str, where: Path) -> str:
    """What the extractions need together, as one line; raises when they cannot fit.

    Stores add up on disk; encoders run one after another, so memory is the
    largest single peak."""
    disk, memory = free_disk(where), available_memory()
    store = sum(n.store_bytes for n in needs)
    peak = max(n.peak_memory_bytes for n in needs)
    name = " + ".join(n.encoder for n in needs)
    counts = ", ".join(f"{n.encoder}: {n.inputs} inputs" for n in needs)
    what = f"{needs[0].inputs} inputs to encode" if len(needs) == 1 else counts
    line = (
        f"{name}: {what}, about {store / GB:.2f} GB of {dtype} features "
        f"({disk / GB:.1f} GB free at {where}), peak memory about {peak / GB:.2f} GB "
        f"({memory / GB:.1f} GB available)"
    )
    short = []
    if store > disk:
        parts = " + ".join(f"{n.inputs} inputs x {n.bytes_per_input / 1e6:.3f} MB" for n in needs)
        short.append(
            f"the store{'s' if len(needs) > 1 else ''} need{'' if len(needs) > 1 else 's'} "
            f"{store / GB:.2f} GB ({parts}) but {disk / GB:.2f} GB are free at {where}"
        )
    if peak > memory:
        short.append(
            f"extraction needs about {peak / GB:.2f} GB of memory but "
            f"{memory / GB:.2f} GB are available"
        )
    if short:
        ways = ["--data-fraction 0.25 (or smaller)", "a smaller encoder"]
        if dtype == "fp32":
            ways.insert(0, "--store-dtype fp16 (half the size)")
        ways.append("MMALIGN_HOME on a larger disk")
        raise DoesNotFitError(
            f"{name}: features do not fit: {'; '.join(short)}. Options: {', '.join(ways)}"
        )
    return line
