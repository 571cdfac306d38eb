"""Will an extraction fit? Checked after one probe batch, before the rest is encoded.

The store needs ``inputs x bytes per input`` of disk; extraction holds one shard
buffer (written and then copied once by the shard writer) plus the encoder's
weights in memory. A run that cannot fit stops with the numbers and the ways out,
instead of filling the disk hours later.
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
class Estimate:
    inputs: int
    bytes_per_input: int
    store_bytes: int
    peak_memory_bytes: int
    free_disk_bytes: int
    free_memory_bytes: int


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


def estimate(
    where: Path, inputs: int, bytes_per_input: int, shard_bytes: int, weight_bytes: int
) -> Estimate:
    peak = 2 * (shard_bytes + 64 * bytes_per_input) + weight_bytes
    return Estimate(
        inputs=inputs,
        bytes_per_input=bytes_per_input,
        store_bytes=inputs * bytes_per_input,
        peak_memory_bytes=peak,
        free_disk_bytes=free_disk(where),
        free_memory_bytes=available_memory(),
    )


def check(est: Estimate, encoder: str, dtype: str, where: Path) -> str:
    """What the extraction needs, as one line; raises when it cannot fit."""
    line = (
        f"{encoder}: {est.inputs} inputs to encode, about {est.store_bytes / GB:.2f} GB of "
        f"{dtype} features ({est.free_disk_bytes / GB:.1f} GB free at {where}), peak memory "
        f"about {est.peak_memory_bytes / GB:.2f} GB ({est.free_memory_bytes / GB:.1f} GB "
        "available)"
    )
    short = []
    if est.store_bytes > est.free_disk_bytes:
        short.append(
            f"the store needs {est.store_bytes / GB:.2f} GB ({est.inputs} inputs x "
            f"{est.bytes_per_input / 1e6:.3f} MB) but {est.free_disk_bytes / GB:.2f} GB are "
            f"free at {where}"
        )
    if est.peak_memory_bytes > est.free_memory_bytes:
        short.append(
            f"extraction needs about {est.peak_memory_bytes / GB:.2f} GB of memory but "
            f"{est.free_memory_bytes / GB:.2f} GB are available"
        )
    if short:
        ways = ["--data-fraction 0.25 (or smaller)", "a smaller encoder"]
        if dtype == "fp32":
            ways.insert(0, "--store-dtype fp16 (half the size)")
        ways.append("MMALIGN_HOME on a larger disk")
        raise DoesNotFitError(
            f"{encoder}: features do not fit: {'; '.join(short)}. Options: {', '.join(ways)}"
        )
    return line
