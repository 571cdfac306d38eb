"""PKU XMediaNet: 200 categories, items aligned by category, one modality per item.

Layout: a folder per modality (``text/``, ``image/``, ``audio/``, ``video/``) and
list files ``list/{modality}/{split}.txt`` (split ``train``, ``valid``, ``test``;
``valid`` is optional) with lines ``filename label``, ``filename`` relative to the
modality folder and ``label`` the category index. ``list/categories.txt``, when
present, names the categories (line ``k`` is category ``k``). Without a validation
list, a seeded 10% of each modality's training list is held out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmalign import metrics
from mmalign.data.base import DataTask
from mmalign.data.media import media_error
from mmalign.data.report import Report
from mmalign.data.textio import read_text
from mmalign.interfaces import Outputs, Sample, StrictModel

MODALITIES = ("text", "image", "audio", "video")
LIST_SPLITS = (("train", "train"), ("validation", "valid"), ("test", "test"))
RETRIEVAL_METRICS = ("mean_r@10", "mean_r@5", "mean_r@1")


class XMediaNetConfig(StrictModel):
    """``valid_fraction`` of each training list is held out when no valid list exists."""

    valid_fraction: float = 0.1
    split_seed: int = 0


def read_categories(root: Path, report: Report) -> list[str] | None:
    path = root / "list" / "categories.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    if not all(names):
        report.problem("list/categories.txt", "blank category name")
    return names


def read_list(
    root: Path, modality: str, split: str, n_categories: int | None, report: Report, deep: bool
) -> list[Sample] | None:
    """One list file's samples, or ``None`` when the list does not exist."""
    rel = f"list/{modality}/{split}.txt"
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
        if label < 0 or (n_categories is not None and label >= n_categories):
            report.problem(rel, f"line {lineno}: label {label} is not a category index")
            continue
        if name in seen:
            report.problem(rel, f"line {lineno}: {name} already listed on line {seen[name]}")
            continue
        seen[name] = lineno
        file = root / modality / name
        value: Any
        if modality == "text":
            value = read_text(file, report, f"{modality}/{name}")
            if value is None:
                continue
        else:
            error = media_error(modality, file, deep)
            if error is not None:
                report.problem(f"{modality}/{name}", error)
                continue
            value = file
        samples.append(
            Sample(
                id=f"{modality}/{name}",
                inputs={modality: value},
                label=label,
                meta={"modality": modality},
            )
        )
    return samples


def read_xmedianet(
    root: Path, cfg: XMediaNetConfig, report: Report, deep: bool
) -> tuple[dict[str, list[Sample]], list[str] | None]:
    """Samples per split over all modalities, and the category names if listed."""
    names = read_categories(root, report)
    n = len(names) if names is not None else None
    out: dict[str, list[Sample]] = {split: [] for split, _ in LIST_SPLITS}
    for modality in MODALITIES:
        lists = {s: read_list(root, modality, f, n, report, deep) for s, f in LIST_SPLITS}
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
