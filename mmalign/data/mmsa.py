"""CMU-MOSI, CMU-MOSEI and UR-FUNNY as MMSA-style feature pickles.

``unaligned_50.pkl`` is a dict ``train`` / ``valid`` / ``test``, each holding
``raw_text`` [N], ``audio`` [N, T, Da], ``vision`` [N, T, Dv], ``text_bert``
[N, 3, L] (BERT ids, mask, segments; checked when present, not used: raw text goes
to the text encoder), ``audio_lengths`` and ``vision_lengths`` [N],
``regression_labels`` [N] and ``id`` [N]. Sequences are padded at the end (MMSA
packs the first ``length`` steps), so samples get ``audio[:length]``. Non-finite
feature values (MOSEI's COVAREP has -inf) are zeroed as MMSA does, and counted.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mmalign.data.base import DataTask
from mmalign.data.report import DataFileError, Report
from mmalign.interfaces import Sample, StrictModel

SPLITS = (("train", "train"), ("validation", "valid"), ("test", "test"))
KEYS = ("raw_text", "audio", "vision", "audio_lengths", "vision_lengths", "regression_labels", "id")
NONFINITE = "features_nonfinite_zeroed"
REGRESSION_METRICS = ("mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")


class MMSAConfig(StrictModel):
    """The pickle's file name inside the data folder."""

    file: str = "unaligned_50.pkl"


def load_pickle(path: Path, rel: str) -> dict[str, Any]:
    """The unpickled dict, with every split present; anything else is a DataFileError."""
    try:
        with path.open("rb") as fh:
            obj = pickle.load(fh)
    except Exception as exc:  # truncated or foreign files raise many types
        raise DataFileError(rel, f"cannot unpickle: {type(exc).__name__}: {exc}") from exc
    if not isinstance(obj, dict):
        raise DataFileError(rel, f"expected a dict of splits, got {type(obj).__name__}")
    missing = [name for _, name in SPLITS if name not in obj]
    if missing:
        raise DataFileError(rel, f"missing split(s) {', '.join(missing)}")
    return obj


def _array(split: dict[str, Any], key: str, rel: str, where: str) -> np.ndarray:
    try:
        return np.asarray(split[key])
    except Exception as exc:  # ragged lists and odd objects
        raise DataFileError(rel, f"{where}/{key}: not an array: {exc}") from exc


def validated(split: dict[str, Any], rel: str, where: str) -> dict[str, np.ndarray]:
    """The split's arrays after checking every key's presence and shape against N."""
    if not isinstance(split, dict):
        raise DataFileError(rel, f"{where}: expected a dict of arrays")
    missing = [k for k in KEYS if k not in split]
    if missing:
        raise DataFileError(rel, f"{where}: missing key(s) {', '.join(missing)}")
    arrays = {k: _array(split, k, rel, where) for k in KEYS}
    n = len(arrays["id"])
    expected = {"audio": "[N, T, Da]", "vision": "[N, T, Dv]"}
    for key, shape in expected.items():
        a = arrays[key]
        if a.ndim != 3 or a.shape[0] != n or not np.issubdtype(a.dtype, np.number):
            raise DataFileError(
                rel,
                f"{where}/{key}: expected numeric {shape} with N={n}, "
                f"got {a.dtype} {list(a.shape)}",
            )
    labels = arrays["regression_labels"]
    if labels.ndim == 2 and labels.shape[1] == 1:
        arrays["regression_labels"] = labels = labels[:, 0]
    for key in ("raw_text", "audio_lengths", "vision_lengths", "regression_labels"):
        if arrays[key].shape != (n,):
            raise DataFileError(
                rel, f"{where}/{key}: expected shape [N={n}], got {list(arrays[key].shape)}"
            )
    if "text_bert" in split:
        tb = _array(split, "text_bert", rel, where)
        if tb.ndim != 3 or tb.shape[:2] != (n, 3):
            raise DataFileError(
                rel, f"{where}/text_bert: expected [N={n}, 3, L], got {list(tb.shape)}"
            )
    return arrays


def features(seq: np.ndarray, length: int, report: Report) -> np.ndarray:
    """The first ``length`` steps as float32, non-finite values zeroed (and counted)."""
    out = np.asarray(seq[:length], dtype=np.float32)
    if not np.isfinite(out).all():
        report.repaired(NONFINITE)
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def read_mmsa(root: Path, file: str, report: Report) -> dict[str, list[Sample]]:
    """Samples per split with raw inputs; bad lengths or labels are reported and skipped."""
    obj = load_pickle(root / file, file)
    checked = {key: validated(obj[key], file, key) for _, key in SPLITS}  # all before any sample
    out: dict[str, list[Sample]] = {}
    for split, key in SPLITS:
        arr = checked[key]
        out[split] = []
        for i in range(len(arr["id"])):
            sid, where = str(arr["id"][i]), f"{key}[{i}] id {arr['id'][i]}"
            text = str(arr["raw_text"][i]).strip()
            label = float(arr["regression_labels"][i])
            lengths = {
                "audio": int(arr["audio_lengths"][i]),
                "vision": int(arr["vision_lengths"][i]),
            }
            bad = [
                f"{m}_lengths {n} outside 1..{arr[m].shape[1]}"
                for m, n in lengths.items()
                if not 1 <= n <= arr[m].shape[1]
            ]
            if not text:
                bad.append("empty raw_text")
            if not np.isfinite(label):
                bad.append(f"regression_label {label}")
            if bad:
                report.problem(file, f"{where}: {'; '.join(bad)}")
                continue
            inputs = {
                "text": text,
                "audio": features(arr["audio"][i], lengths["audio"], report),
                "video": features(arr["vision"][i], lengths["vision"], report),
            }
            out[split].append(Sample(id=sid, inputs=inputs, label=label))
    return out


class MMSATask(DataTask):
    """Text-audio-video sentiment regression from an MMSA pickle (scores in [-3, 3])."""

    Config = MMSAConfig
    modalities = ("text", "audio", "video")
    label_type = "regression"
    metrics = REGRESSION_METRICS
    stand_in = "synth-mosi"

    def required_paths(self) -> tuple[str, ...]:
        cfg = self.config
        assert isinstance(cfg, MMSAConfig)
        return (cfg.file,)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, MMSAConfig)
        return read_mmsa(self.root, cfg.file, report)


class CMUMOSI(MMSATask):
    """CMU-MOSI: 2,199 opinion clips (1,284 / 229 / 686), sentiment in [-3, 3]."""

    name = "cmu-mosi"


class CMUMOSEI(MMSATask):
    """CMU-MOSEI: 22,856 sentences (16,326 / 1,871 / 4,659), sentiment in [-3, 3]."""

    name = "cmu-mosei"


class URFunny(MMSATask):
    """UR-FUNNY humour detection from an MMSA-style pickle; label = regression_labels > 0."""

    name = "ur-funny"
    label_type = "classification"
    label_names = ("not-humorous", "humorous")
    metrics = ("acc2", "f1")

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        splits = super().read(report, deep)
        for samples in splits.values():
            for s in samples:
                s.label = int(s.label > 0)
        return splits
