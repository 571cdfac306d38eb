"""Optionally keep glibc from hoarding the freed batch buffers of a long epoch.

glibc serves a large allocation with its own memory map and, after such a block is
freed, raises its mmap threshold to that size, so later batch-sized blocks come from
the heap, whose fragments it keeps. Over an epoch of store reads the process then
grows by a share of the store, not by the batch (``benchmarks/core/store_read_modes.py``:
about 350 MB over a 760 MB store with batches of 25 MB, about 100 MB with the
threshold pinned). Pinning keeps every block of a few MB in its own map, returned on
free, but each batch is then faulted in afresh: the epoch's reads took about 2.7x as
long there. So it is opt-in (``MMALIGN_MALLOC_PIN=1``), for runs where memory, not
time, is what is short.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

#: mallopt's parameter number for the mmap threshold (malloc.h)
M_MMAP_THRESHOLD = -3
#: blocks of this size or more get their own map (a batch of features is tens of MB)
THRESHOLD_BYTES = 4 * 2**20


def pin_mmap_threshold() -> bool:
    """Pin glibc's mmap threshold when ``MMALIGN_MALLOC_PIN=1`` (a no-op elsewhere);
    returns whether it was pinned. Called by the runner, not on import: it changes
    the allocator of the whole process."""
    if os.environ.get("MMALIGN_MALLOC_PIN", "0") != "1":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to pin
        return False
