"""Counting bad samples: skip with a rate-limited warning, stop when nothing works."""

from __future__ import annotations

import logging
import time

from mmalign.errors import DataError

log = logging.getLogger("mmalign.data")


class SkipCounter:
    """Counts skipped samples; raises once ``max_consecutive`` fail in a row.

    Warnings are rate-limited to one every ``interval`` seconds (plus the first),
    so a dataset with thousands of bad files does not flood the terminal.
    """

    def __init__(self, where: str, max_consecutive: int = 50, interval: float = 5.0) -> None:
        self.where = where
        self.max_consecutive = max_consecutive
        self.interval = interval
        self.skipped = 0
        self.consecutive = 0
        self.seen = 0
        self._last_warning = -float("inf")
        self._suppressed = 0

    def ok(self) -> None:
        self.seen += 1
        self.consecutive = 0

    def skip(self, sample_id: str, error: Exception) -> None:
        self.seen += 1
        self.skipped += 1
        self.consecutive += 1
        now = time.monotonic()
        if now - self._last_warning >= self.interval:
            more = (
                f" ({self._suppressed} more skipped since last warning)" if self._suppressed else ""
            )
            log.warning("%s: skipping sample %s: %s%s", self.where, sample_id, error, more)
            self._last_warning = now
            self._suppressed = 0
        else:
            self._suppressed += 1
        if self.consecutive >= self.max_consecutive:
            raise DataError(
                f"{self.where}: {self.consecutive} samples in a row failed; last was "
                f"{sample_id}: {error}. Check the data with `mmalign data check`."
            )

    def finish(self) -> None:
        if self.seen and self.skipped == self.seen:
            raise DataError(
                f"{self.where}: every one of {self.seen} samples failed. Check the data "
                f"with `mmalign data check`."
            )
