"""PKU XMediaNet: 200 categories, items aligned by category, one modality per item.

Two list layouts (``task.lists``):

* ``mmalign`` (default; what ``synth-xmedianet`` writes): a folder per modality
  (``text/``, ``image/``, ``audio/``, ``video/``) and list files
  ``list/{modality}/{split}.txt`` (``train``, ``valid``, ``test``; ``valid``
  optional), lines ``filename label`` with ``filename`` relative to the modality
  folder and 0-based labels.
* ``release``: the flat list files of the PKU release and its authors' code,
  ``list/{prefix}_{split}_list.txt`` with prefixes ``txt``, ``img``, ``audio``,
  ``video`` (``task.prefixes``), lines ``path label`` with **1-based** labels and
  ``path`` relative to the data folder (or to the modality folder).

``label_base`` overrides the layout's label convention. ``list/categories.txt``
(``task.categories_file``), when present, names the categories (line ``k`` is
category ``k`` counted from ``label_base``); a label outside them is reported with
a hint when it looks like the other convention. Without a validation list, a
seeded 10% of each modality's training list is held out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from mmalign.data.base import DataTask
from mmalign.data.media import media_error
from mmalign.data.report import Report
from mmalign.data.textio import read_text
from mmalign.interfaces import Outputs, Sample, StrictModel

MODALITIES = ("text", "image", "audio", "video")
LIST_SPLITS = (("train", "train"), ("validation", "valid"), ("test", "test"))
RETRIEVAL_METRICS = ("mean_r@10", "mean_r@5", "mean_r@1")


RELEASE_PREFIXES = {"text": "txt", "image": "img", "audio": "audio", "video": "video"}


class XMediaNetConfig(StrictModel):
    """List layout and label convention; ``valid_fraction`` of each training list is
    held out when no valid list exists."""

    lists: Literal["mmalign", "release"] = "mmalign"
    label_base: Literal[0, 1] | None = None
    prefixes: dict[str, str] = Field(default_factory=lambda: dict(RELEASE_PREFIXES))
    categories_file: str = "list/categories.txt"
    valid_fraction: float = 0.1
    split_seed: int = 0

    @property
    def base(self) -> int:
        """The label of the first category (the layout's convention unless declared)."""
        if self.label_base is not None:
            return self.label_base
        return 1 if self.lists == "release" else 0

    def list_path(self, modality: str, split: str) -> str:
        if self.lists == "release":
            return f"list/{self.prefixes[modality]}_{split}_list.txt"
        return f"list/{modality}/{split}.txt"


def read_categories(root: Path, cfg: XMediaNetConfig, report: Report) -> list[str] | None:
    path = root / cfg.categories_file
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = names[: max((i + 1 for i, n in enumerate(names) if n), default=0)]  # trailing blanks
    if not all(names):
        report.problem(cfg.categories_file, "blank category name")
    return names


def label_error(label: int, base: int, n_categories: int | None) -> str | None:
    """Why ``label`` is not a category, with a hint when the other base would fit."""
    top = None if n_categories is None else base + n_categories - 1
    if label >= base and (top is None or label <= top):
        return None
    where = f"{base}..{top}" if top is not None else f">= {base}"
    other = 1 - base
    fits = label >= other and (n_categories is None or label <= other + n_categories - 1)
    hint = f" (labels look {other}-based: set task.label_base={other})" if fits else ""
    return f"label {label} is not a category index ({where}){hint}"


def media_file(root: Path, modality: str, name: str, release: bool) -> tuple[Path, str]:
    """The file a list line names and its path relative to the data folder."""
    if release and (root / name).exists():
        return root / name, name
    return root / modality / name, f"{modality}/{name}"


def read_list(
    root: Path,
    modality: str,
    split: str,
    n_categories: int | None,
    report: Report,
    deep: bool,
    cfg: XMediaNetConfig | None = None,
) -> list[Sample] | None:
    """One list file's samples (labels made 0-based), or ``None`` when it does not exist."""
    cfg = cfg if cfg is not None else XMediaNetConfig()
    rel = cfg.list_path(modality, split)
    path = root / rel
    if not path.is_file():
        return None
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            report.problem(rel, f"line {lineno}: expected 'filename label'")
            continue
        name, label = parts[0], int(parts[1])
        error = label_error(label, cfg.base, n_categories)
        if error is not None:
            report.problem(rel, f"line {lineno}: {error}")
            continue
        if name in seen:
            report.problem(rel, f"line {lineno}: {name} already listed on line {seen[name]}")
            continue
        seen[name] = lineno
        file, shown = media_file(root, modality, name, cfg.lists == "release")
        value: Any
        if modality == "text":
            value = read_text(file, report, shown)
            if value is None:
                continue
        else:
            error = media_error(modality, file, deep)
            if error is not None:
                report.problem(shown, error)
                continue
            value = file
        samples.append(
            Sample(
                id=shown,
                inputs={modality: value},
                label=label - cfg.base,
                meta={"modality": modality},
            )
        )
    return samples


def read_xmedianet(
    root: Path, cfg: XMediaNetConfig, report: Report, deep: bool
) -> tuple[dict[str, list[Sample]], list[str] | None]:
    """Samples per split over all modalities, and the category names if listed."""
    names = read_categories(root, cfg, report)
    n = len(names) if names is not None else None
    out: dict[str, list[Sample]] = {split: [] for split, _ in LIST_SPLITS}
    for modality in MODALITIES:
        lists = {s: read_list(root, modality, f, n, report, deep, cfg) for s, f in LIST_SPLITS}
        if lists["validation"] is None and lists["train"]:
            train = lists["train"]
            order = np.random.default_rng([cfg.split_seed, MODALITIES.index(modality)])
            held = set(order.permutation(len(train))[: round(len(train) * cfg.valid_fraction)])
            lists["train"] = [s for i, s in enumerate(train) if i not in held]
            lists["validation"] = [s for i, s in enumerate(train) if i in held]
        for split, samples in lists.items():
            out[split].extend(samples or [])
    return out, names


def retrieval_evaluate(outputs: Outputs, labels: Any) -> dict[str, float]:
    """Recall@k for every ordered modality pair and against "any" (category hits)."""
    from mmalign import metrics

    embeddings = outputs["embeddings"]
    if not isinstance(labels, dict):
        labels = dict.fromkeys(embeddings, torch.as_tensor(labels))
    return metrics.retrieval_tables(embeddings, labels)


class XMediaNetTask(DataTask):
    """Four-modality category-aligned retrieval (XMediaNet folders + list files)."""

    Config = XMediaNetConfig
    name = "xmedianet"
    modalities = MODALITIES
    label_type = "retrieval"
    metrics = RETRIEVAL_METRICS
    stand_in = "synth-xmedianet"
    required = ("list",)

    def __init__(self, config: StrictModel | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        self._names: list[str] | None = None

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, XMediaNetConfig)
        splits, self._names = read_xmedianet(self.root, cfg, report, deep)
        return splits

    def data_label_names(self) -> list[str] | None:
        return self._names

    def evaluate(self, outputs: Outputs, labels: Any) -> dict[str, float]:
        return retrieval_evaluate(outputs, labels)
