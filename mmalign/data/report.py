"""What reading a dataset found: problems per file, repairs and rule-based drops."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mmalign.errors import DataError


class DataFileError(DataError):
    """A dataset file that makes the whole task unreadable (wrong keys, bad format)."""

    def __init__(self, file: str, error: str) -> None:
        super().__init__(f"{file}: {error}")
        self.file = file
        self.error = error


@dataclass
class Report:
    """Collects, while reading, everything ``TaskData`` and ``mmalign data check`` show.

    ``problems`` are bad inputs named by file (the sample is skipped unless the
    message says otherwise); ``repairs`` count fixes applied silently (a text
    decoded as cp1252, NaN features zeroed); ``drops`` count samples removed by a
    dataset's documented rules (MVSA conflicts), which are not problems.
    """

    problems: list[dict[str, str]] = field(default_factory=list)
    repairs: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)

    def problem(self, file: str, error: str) -> None:
        self.problems.append({"file": file, "error": error})

    def repaired(self, what: str, n: int = 1) -> None:
        if n:
            self.repairs[what] += n

    def dropped(self, rule: str, n: int = 1) -> None:
        self.drops[rule] += n
