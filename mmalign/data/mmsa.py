"""CMU-MOSI, CMU-MOSEI and UR-FUNNY from the feature pickles the MSA literature uses.

Two layouts, told apart by their keys (or declared with ``task.layout``):

* **MMSA** (``unaligned_50.pkl``, ``aligned_50.pkl``): a dict ``train`` / ``valid`` /
  ``test``, each holding ``raw_text`` [N], ``audio`` [N, T, Da], ``vision``
  [N, T, Dv], ``text_bert`` [N, 3, L] (BERT ids, mask, segments; checked when
  present), ``regression_labels`` [N] (or [N, 1]) and ``id`` [N]. Unaligned files
  record ``audio_lengths`` / ``vision_lengths``; aligned files do not — their
  sequences follow the BERT tokens, so, as MMSA does, the length is the sum of the
  ``text_bert`` mask (without ``text_bert``: the non-padding rows).
* **CMU-SDK / MulT** (``mosi_data_noalign.pkl``, ``mosei_senti_data_noalign.pkl``,
  which the TeCaFN and MMIM code read): ``audio``, ``vision``, ``text`` (GloVe
  vectors), ``labels`` [N, 1, 1] and ``id`` [N, k] (bytes, ``id[:, 0]`` =
  ``video_clip``), no lengths and no words. The words come from an MMSA-style
  ``label.csv`` (columns ``video_id``, ``clip_id``, ``text``), set by
  ``task.text_file``; the length of a sequence is its count of non-padding rows.
  A file whose ids mostly miss that text file (MulT's MOSEI file names only the
  video) is refused rather than read with most clips dropped; ``task.text_match =
  "order"`` pairs such a file's clips with the text file's rows by order instead.

**Padding.** MMSA pads at the back (the first ``length`` steps are real); the
CMU-SDK files pad at the front (the authors' loaders take the *last* ``length``
steps). ``task.padding = "auto"`` finds out from the all-zero rows: with recorded
lengths, which end of every short sequence is all zeros; without, at which end the
zero rows sit. A file where neither end wins clearly is refused with the counts, so
it is never misread silently; ``padding = "back" | "front"`` declares it.

**Lengths** longer than the stored sequence (MMSA records them before truncating)
are clamped to it and counted; a clip without any frame, without text or with a
non-finite label is dropped, reported per clip (``mmalign data check``) and
summarised on the console. Non-finite feature values (COVAREP's -inf) are zeroed
as MMSA does, and counted.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mmalign import safe_pickle
from mmalign.data.base import DataTask
from mmalign.data.report import DataFileError, Report
from mmalign.interfaces import Sample, StrictModel

SPLITS = (("train", "train"), ("validation", "valid"), ("test", "test"))
MMSA_KEYS = ("raw_text", "audio", "vision", "regression_labels", "id")
LENGTH_KEYS = ("audio_lengths", "vision_lengths")
SDK_KEYS = ("audio", "vision", "labels", "id")
NONFINITE = "features_nonfinite_zeroed"
CLAMPED = "lengths_clamped_to_sequence"
REGRESSION_METRICS = ("mae", "corr", "acc7", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0")
#: share of the padded clips the winning padding position must explain
PADDING_AGREEMENT = 0.9
SEQUENCES = {"audio": "audio", "vision": "video"}

Layout = Literal["auto", "mmsa", "cmu-sdk"]
Padding = Literal["auto", "back", "front"]

log = logging.getLogger("mmalign.data")


class MMSAConfig(StrictModel):
    """Which pickle, its layout and padding, and (CMU-SDK files) where the words are."""

    file: str = "unaligned_50.pkl"
    layout: Layout = "auto"
    padding: Padding = "auto"
    text_file: str = "label.csv"
    #: how CMU-SDK clips find their words: ``id`` by ``video_clip`` (MOSI's ids);
    #: ``order`` pairs each split's clips one to one with the text file's rows of that
    #: ``mode`` in file order (what public MOSEI loaders do: MulT's MOSEI ids name the
    #: video and the clip's start and end, which label.csv does not hold)
    text_match: Literal["id", "order"] = "id"


def load_pickle(path: Path, rel: str) -> dict[str, Any]:
    """The unpickled dict, with every split present; anything else is a DataFileError."""
    try:
        with path.open("rb") as fh:
            obj = safe_pickle.load(fh)
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


def detect_layout(obj: dict[str, Any], rel: str) -> Literal["mmsa", "cmu-sdk"]:
    """``mmsa`` when the train split has ``raw_text``, ``cmu-sdk`` when it has
    ``labels`` but no words; anything else names the keys it found."""
    train = obj["train"]
    keys = sorted(train) if isinstance(train, dict) else []
    if "raw_text" in keys:
        return "mmsa"
    if "labels" in keys and "regression_labels" not in keys:
        return "cmu-sdk"
    raise DataFileError(
        rel,
        f"train: neither the MMSA layout (raw_text, regression_labels, ...) nor the "
        f"CMU-SDK one (labels, no words); keys: {', '.join(map(str, keys)) or 'none'}",
    )


@dataclass
class Split:
    """One split's arrays after validation; ``lengths`` is None where not recorded."""

    ids: list[str]
    texts: list[str] | None
    labels: np.ndarray
    seqs: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray | None]


def _check_sequences(arrays: dict[str, np.ndarray], n: int, rel: str, where: str) -> None:
    expected = {"audio": "[N, T, Da]", "vision": "[N, T, Dv]"}
    for key, shape in expected.items():
        a = arrays[key]
        if a.ndim != 3 or a.shape[0] != n or not np.issubdtype(a.dtype, np.number):
            raise DataFileError(
                rel,
                f"{where}/{key}: expected numeric {shape} with N={n}, "
                f"got {a.dtype} {list(a.shape)}",
            )


def _vector(a: np.ndarray, n: int, key: str, rel: str, where: str) -> np.ndarray:
    """``a`` as shape [N]; [N, 1] and [N, 1, 1] (label columns) are flattened."""
    if a.ndim > 1 and a.shape[0] == n and int(np.prod(a.shape[1:])) == 1:
        a = a.reshape(n)
    if a.shape != (n,):
        raise DataFileError(rel, f"{where}/{key}: expected shape [N={n}], got {list(a.shape)}")
    return a


def validated_mmsa(split: Any, rel: str, where: str) -> Split:
    """An MMSA split after checking every key's presence and shape against N."""
    if not isinstance(split, dict):
        raise DataFileError(rel, f"{where}: expected a dict of arrays")
    has_lengths = [k for k in LENGTH_KEYS if k in split]
    if len(has_lengths) == 1:
        other = next(k for k in LENGTH_KEYS if k not in split)
        raise DataFileError(rel, f"{where}: missing key(s) {other}")
    missing = [k for k in MMSA_KEYS if k not in split]
    if missing:
        raise DataFileError(rel, f"{where}: missing key(s) {', '.join(missing)}")
    arrays = {k: _array(split, k, rel, where) for k in (*MMSA_KEYS, *has_lengths)}
    n = len(arrays["id"])
    _check_sequences(arrays, n, rel, where)
    labels = _vector(arrays["regression_labels"], n, "regression_labels", rel, where)
    texts = _vector(arrays["raw_text"], n, "raw_text", rel, where)
    lengths: dict[str, np.ndarray | None] = {"audio": None, "vision": None}
    for key in has_lengths:
        lengths[key.removesuffix("_lengths")] = _vector(arrays[key], n, key, rel, where)
    if "text_bert" in split:
        tb = _array(split, "text_bert", rel, where)
        if tb.ndim != 3 or tb.shape[:2] != (n, 3):
            raise DataFileError(
                rel, f"{where}/text_bert: expected [N={n}, 3, L], got {list(tb.shape)}"
            )
        if not has_lengths:  # aligned_50.pkl: sequences follow the BERT tokens (MMSA)
            mask_len = tb[:, 1, :].astype(np.int64).sum(axis=1)
            lengths = {"audio": mask_len, "vision": mask_len}
    return Split(
        ids=[str(i) for i in arrays["id"]],
        texts=[str(t) for t in texts],
        labels=labels,
        seqs={"audio": arrays["audio"], "vision": arrays["vision"]},
        lengths=lengths,
    )


def _sdk_id(raw: Any) -> str:
    first = raw[0] if isinstance(raw, np.ndarray) and raw.ndim >= 1 else raw
    return first.decode("utf-8") if isinstance(first, bytes) else str(first)


def validated_sdk(split: Any, rel: str, where: str) -> Split:
    """A CMU-SDK / MulT split: no words (they come from the text file), no lengths."""
    if not isinstance(split, dict):
        raise DataFileError(rel, f"{where}: expected a dict of arrays")
    missing = [k for k in SDK_KEYS if k not in split]
    if missing:
        raise DataFileError(rel, f"{where}: missing key(s) {', '.join(missing)}")
    arrays = {k: _array(split, k, rel, where) for k in SDK_KEYS}
    n = len(arrays["id"])
    _check_sequences(arrays, n, rel, where)
    return Split(
        ids=[_sdk_id(i) for i in arrays["id"]],
        texts=None,
        labels=_vector(arrays["labels"], n, "labels", rel, where),
        seqs={"audio": arrays["audio"], "vision": arrays["vision"]},
        lengths={"audio": None, "vision": None},
    )


def read_words(path: Path, rel: str) -> dict[str, str]:
    """``video_clip`` → transcript from an MMSA-style label.csv (also keyed ``video$_$clip``)."""
    if not path.is_file():
        raise DataFileError(
            rel,
            "CMU-SDK pickles hold GloVe vectors, not words: put the MMSA label.csv "
            "(video_id, clip_id, text) there or set task.text_file",
        )
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"video_id", "clip_id", "text"}
    if not rows or not need <= set(rows[0]):
        raise DataFileError(rel, f"expected columns {', '.join(sorted(need))}")
    words: dict[str, str] = {}
    for row in rows:
        for key in (f"{row['video_id']}_{row['clip_id']}", f"{row['video_id']}$_${row['clip_id']}"):
            words[key] = row["text"]
    return words


def check_words_match(splits: dict[str, Split], words: dict[str, str], file: str,
                      text_file: str) -> None:
    """Refuse a file whose ids mostly miss the text file, instead of dropping most clips.

    MulT's MOSEI file names a clip by ``(video, start, end)``, and its ``id[:, 0]`` is
    only the video, while label.csv keys clips by ``video_clip``: there is no
    documented way to pair them, so that file is refused with what to use instead.
    """
    ids = [sid for sp in splits.values() for sid in sp.ids]
    missing = [sid for sid in ids if sid not in words]
    if ids and len(missing) * 2 > len(ids):
        raise DataFileError(
            file,
            f"{len(missing)} of {len(ids)} clip ids have no row in {text_file} (e.g. "
            f"'{missing[0]}'); its words are matched by video_clip, and ids that name only "
            "the video (MulT's MOSEI file: video, start, end) cannot be paired with its "
            "clips by id; --set task.text_match=order pairs them by row order, or use "
            "MMSA's unaligned_50.pkl, which holds raw_text",
        )


def words_in_order(obj: dict[str, Any], splits: dict[str, Split], path: Path,
                   rel: str) -> dict[str, str]:
    """``text_match = "order"``: each split's clips take the text file's rows of that
    ``mode`` one to one, in file order; the clips are renamed by their whole id row
    (``video_start_end``), unique where the video alone is not. Counts that differ are
    refused, never paired partly."""
    if not path.is_file():
        raise DataFileError(rel, "text_match=order needs the MMSA label.csv here")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"text", "mode"} <= set(rows[0]):
        raise DataFileError(rel, "text_match=order needs the columns text and mode")
    by_mode: dict[str, list[str]] = {}
    for row in rows:
        by_mode.setdefault(row["mode"], []).append(row["text"])
    words: dict[str, str] = {}
    for key, sp in splits.items():
        texts = by_mode.get(key, [])
        if len(texts) != len(sp.ids):
            raise DataFileError(
                rel, f"{len(texts)} rows of mode '{key}', but the pickle's {key} split has "
                f"{len(sp.ids)} clips; text_match=order pairs them one to one")
        sp.ids = [_whole_id(raw) for raw in np.asarray(obj[key]["id"])]
        words.update(zip(sp.ids, texts, strict=True))
    return words


def _whole_id(raw: Any) -> str:
    fields = raw if isinstance(raw, np.ndarray) and raw.ndim >= 1 else [raw]
    return "_".join(f.decode("utf-8") if isinstance(f, bytes) else str(f) for f in fields)


def zero_runs(seq: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence, the number of all-zero rows at its start and at its end."""
    n, t = seq.shape[:2]
    lead, trail = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    for start in range(0, n, chunk):
        real = (seq[start : start + chunk] != 0).any(axis=-1)  # NaN and -inf count as real
        some = real.any(axis=1)
        lead[start : start + chunk] = np.where(some, real.argmax(axis=1), t)
        trail[start : start + chunk] = np.where(some, real[:, ::-1].argmax(axis=1), t)
    return lead, trail


def padding_votes(splits: list[Split]) -> dict[str, int]:
    """How many padded sequences look back-padded, front-padded, or neither."""
    votes = {"back": 0, "front": 0, "neither": 0}
    for sp in splits:
        for key, seq in sp.seqs.items():
            t = seq.shape[1]
            lead, trail = zero_runs(seq)
            recorded = sp.lengths[key]
            if recorded is not None:
                pad = t - np.clip(recorded.astype(np.int64), 0, t)
                padded = (pad > 0) & (pad < t)
                back, front = trail >= pad, lead >= pad
            else:
                padded = ((lead > 0) | (trail > 0)) & (lead < t)
                back, front = trail > 0, lead > 0
            votes["back"] += int((padded & back & ~front).sum())
            votes["front"] += int((padded & front & ~back).sum())
            votes["neither"] += int((padded & ~front & ~back).sum())
            if recorded is None:  # zeros at both ends: the position is not evident
                votes["neither"] += int((padded & front & back).sum())
    return votes


def decide_padding(declared: Padding, splits: list[Split], rel: str) -> Literal["back", "front"]:
    """The declared padding, or the one the zero rows show; refuse when unclear."""
    if declared != "auto":
        return declared
    votes = padding_votes(splits)
    padded = sum(votes.values())
    if padded == 0:
        return "back"  # no sequence is padded: both readings give the same frames
    winner: Literal["back", "front"] = "back" if votes["back"] >= votes["front"] else "front"
    if votes[winner] < PADDING_AGREEMENT * padded:
        raise DataFileError(
            rel,
            f"cannot tell where the padding is: of {padded} padded sequences "
            f"{votes['back']} look back-padded, {votes['front']} front-padded and "
            f"{votes['neither']} neither; declare it with --set task.padding=back "
            "(MMSA) or front (CMU-SDK / MulT)",
        )
    return winner


def features(seq: np.ndarray, length: int, front: bool, report: Report) -> np.ndarray:
    """The ``length`` real steps (the last ones when front-padded) as float32,
    non-finite values zeroed (and counted)."""
    part = seq[len(seq) - length :] if front else seq[:length]
    out = np.asarray(part, dtype=np.float32)
    if not np.isfinite(out).all():
        report.repaired(NONFINITE)
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return out


def sequence_lengths(sp: Split, key: str, padding: str) -> np.ndarray:
    """Recorded lengths, or the rows left once the padding end's zero rows are cut."""
    recorded = sp.lengths[key]
    if recorded is not None:
        return recorded.astype(np.int64)
    t = sp.seqs[key].shape[1]
    lead, trail = zero_runs(sp.seqs[key])
    return t - (lead if padding == "front" else trail)


def split_samples(
    sp: Split, key: str, padding: str, words: dict[str, str] | None, file: str, report: Report
) -> tuple[list[Sample], int, int]:
    """The split's samples, how many clips were dropped and how many lengths clamped."""
    lengths = {m: sequence_lengths(sp, m, padding) for m in SEQUENCES}
    samples: list[Sample] = []
    dropped = clamped = 0
    first: dict[str, int] = {}  # the feature cache keys samples by id: one id, one sample
    for i, sid in enumerate(sp.ids):
        where = f"{key}[{i}] id {sid}"
        if first.setdefault(sid, i) != i:
            report.problem(file, f"{where}: duplicate id (first at {key}[{first[sid]}])")
            dropped += 1
            continue
        text = (sp.texts[i] if sp.texts is not None else (words or {}).get(sid, "")).strip()
        label = float(sp.labels[i])
        bad = []
        use: dict[str, int] = {}
        for m, seq in sp.seqs.items():
            n, t = int(lengths[m][i]), seq.shape[1]
            if n < 1:
                bad.append(f"{m}_lengths {n}: no frame")
            elif n > t:
                clamped += 1
                report.repaired(CLAMPED)
            use[m] = min(n, t)
        if not text:
            bad.append("empty raw_text" if sp.texts is not None else "no text row in the text file")
        if not np.isfinite(label):
            bad.append(f"regression_label {label}")
        if bad:
            report.problem(file, f"{where}: {'; '.join(bad)}")
            dropped += 1
            continue
        front = padding == "front"
        inputs = {SEQUENCES[m]: features(sp.seqs[m][i], use[m], front, report) for m in SEQUENCES}
        samples.append(Sample(id=sid, inputs={"text": text, **inputs}, label=label))
    return samples, dropped, clamped


def read_mmsa(
    root: Path, file: str, report: Report, cfg: MMSAConfig | None = None
) -> dict[str, list[Sample]]:
    """Samples per split with raw inputs; every dropped clip is reported and summarised.

    ``cfg`` supplies the layout, padding and text file (default: detect, label.csv).
    """
    cfg = cfg if cfg is not None else MMSAConfig(file=file)
    obj = load_pickle(root / file, file)
    layout = detect_layout(obj, file) if cfg.layout == "auto" else cfg.layout
    validate = validated_mmsa if layout == "mmsa" else validated_sdk
    checked = {key: validate(obj[key], file, key) for _, key in SPLITS}  # all before any sample
    words = None
    if layout == "cmu-sdk" and cfg.text_match == "order":
        words = words_in_order(obj, checked, root / cfg.text_file, cfg.text_file)
    elif layout == "cmu-sdk":
        words = read_words(root / cfg.text_file, cfg.text_file)
        check_words_match(checked, words, file, cfg.text_file)
    padding = decide_padding(cfg.padding, list(checked.values()), file)
    out: dict[str, list[Sample]] = {}
    for split, key in SPLITS:
        sp = checked[key]
        out[split], dropped, clamped = split_samples(sp, key, padding, words, file, report)
        if dropped:
            log.warning(
                "%s: %s: dropped %d of %d clips (`mmalign data check` lists each)",
                file,
                key,
                dropped,
                len(sp.ids),
            )
        if clamped:
            log.warning(
                "%s: %s: %d recorded lengths exceed the stored sequence; clamped",
                file,
                key,
                clamped,
            )
    return out


class MMSATask(DataTask):
    """Text-audio-video sentiment regression from an MMSA or CMU-SDK pickle ([-3, 3])."""

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
        return read_mmsa(self.root, cfg.file, report, cfg)


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
