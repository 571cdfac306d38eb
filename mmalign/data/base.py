"""Shared behaviour of file-backed tasks: presence, the missing-data message, loading.

A task's reader fills a :class:`~mmalign.data.report.Report` while it reads; the
same reader serves ``load()`` (cheap: files must exist) and ``mmalign data check``
(``deep=True``: every image, audio and video file is decoded).
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from mmalign.data import catalog, resolve_data_dir
from mmalign.data.report import Report
from mmalign.errors import DataError
from mmalign.interfaces import Sample, StrictModel, Task, TaskData


class DataTask(Task):
    """A task read from one folder; subclasses implement :meth:`read`."""

    #: paths, relative to :attr:`root`, whose presence means the data is there
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: StrictModel | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir if data_dir is not None else resolve_data_dir(self.name))

    @property
    def root(self) -> Path:
        """The folder holding the dataset files (embedded tasks use a sub-folder)."""
        assert self.data_dir is not None
        return self.data_dir

    def required_paths(self) -> tuple[str, ...]:
        """What must exist under :attr:`root` (a method, as it may depend on the config)."""
        return self.required

    def is_present(self) -> bool:
        return self.root.is_dir() and all((self.root / r).exists() for r in self.required_paths())

    def missing_message(self) -> str:
        missing = [r for r in self.required_paths() if not (self.root / r).exists()]
        where = f"Data for task '{self.name}' not found in {self.root}"
        if self.root.is_dir() and missing:
            where += f" (missing {', '.join(missing)})"
        src = catalog.source(self.name)
        if src is not None and src.files:
            how = f"Get it with `mmalign data fetch {self.name}` (or pass --data-dir)."
        else:
            request = src.request if src is not None and src.request else "see docs/datasets.md."
            how = (
                f"`mmalign data fetch {self.name}` cannot download it (no public URL): "
                f"{request} Then put it there or pass --data-dir."
            )
        alt = f" Try the embedded stand-in: --task {self.stand_in}." if self.stand_in else ""
        return f"{where}. {how}{alt}"

    def load(self) -> TaskData:
        self.prepare()
        if not self.is_present():
            raise DataError(self.missing_message())
        report = Report()
        splits = self.read(report, deep=False)
        if not splits.get("train"):
            detail = "; ".join(f"{p['file']}: {p['error']}" for p in report.problems[:5])
            raise DataError(
                f"Task '{self.name}' found no usable training samples in {self.root}. {detail}"
            )
        return TaskData(
            splits=splits,
            label_names=self.data_label_names(),
            problems=report.problems,
            repaired=dict(report.repairs),
            source=self.describe(splits, report),
        )

    def data_label_names(self) -> list[str] | None:
        """Label names for ``TaskData`` (tasks whose names live in a file override this)."""
        return list(self.label_names) or None

    def describe(self, splits: dict[str, list[Sample]], report: Report) -> str:
        """One line saying what was read from where, for the run record."""
        sizes = ", ".join(f"{k} {len(v)}" for k, v in splits.items())
        drops = "".join(f", dropped {n} ({rule})" for rule, n in sorted(report.drops.items()))
        return f"{self.name} from {self.root}: {sizes}{drops}"

    @abstractmethod
    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        """Samples per split (``train``, ``validation``, ``test``).

        Skip bad samples with a ``report.problem``; raise
        :class:`~mmalign.data.report.DataFileError` when the data cannot be read at
        all. With ``deep`` also decode every media file.
        """


class EmbeddedTask(DataTask):
    """A task whose data the toolkit generates, in its counterpart's real format.

    Each configuration (seed, size) is generated once into its own sub-folder of
    the data folder, so changing the seed never reads data made with another.
    """

    embedded = True
    #: bump when the generator changes, so stale generated data is not reused
    generator_version: ClassVar[int] = 1

    @property
    def root(self) -> Path:
        assert self.data_dir is not None
        params = "-".join(f"{k}{v}" for k, v in self.config.model_dump().items())
        return self.data_dir / f"v{self.generator_version}-{params}"

    def is_present(self) -> bool:
        return (self.root / ".complete").exists()

    def prepare(self) -> None:
        """Generate into a temporary folder, then rename it into place (atomic)."""
        if self.is_present():
            return
        target = self.root
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            tmp.mkdir()
            self.generate(tmp)
            (tmp / ".complete").write_text("")
            if target.exists():  # an interrupted older attempt without .complete
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(tmp, target)
            except OSError:
                if not self.is_present():  # not a concurrent generator winning the race
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @abstractmethod
    def generate(self, out: Path) -> None:
        """Write the dataset into ``out`` in the real format (deterministic for the config)."""
