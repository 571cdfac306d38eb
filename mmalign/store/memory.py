"""Keep glibc from hoarding the freed batch buffers of a long epoch.

glibc serves a large allocation with its own memory map and, after such a block is
freed, raises its mmap threshold to that size, so later batch-sized blocks come from
the heap, whose fragments are not handed back to the system. Over an epoch of
store reads the process then grows by a fraction of the store, not by the batch
(measured in ``benchmarks/core/store_read_modes.py``: about 400 MB over a 760 MB
store with batches of 25 MB, about 100 MB with the threshold pinned). Pinning the
threshold keeps every block of a few MB or more in its own map, returned on free.
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
    """Pin glibc's mmap threshold (no-op elsewhere, or with ``MMALIGN_MALLOC_PIN=0``);
    returns whether it was pinned. Called by the runner, not on import: it changes
    the allocator of the whole process."""
    if os.environ.get("MMALIGN_MALLOC_PIN", "1") == "0":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to pin
        return False
