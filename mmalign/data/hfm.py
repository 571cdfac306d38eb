"""HFM, the Twitter multimodal sarcasm set of Cai et al. (2019), as distributed.

``text/train.txt`` holds one Python list literal per line, ``[id, text, label]``;
``text/valid2.txt`` and ``text/test2.txt`` hold ``[id, text, hashtag_label,
human_label]`` and the human label (the last field) is the one used. Images are
``dataset_image/{id}.jpg``. Like the authors' loader (``codes/loadData.py``), lines
whose text contains sarcasm-revealing words are dropped, which gives the
19,816 / 2,410 / 2,409 split sizes the papers report.
"""

from __future__ import annotations

import ast
from pathlib import Path

from mmalign.data.base import DataTask
from mmalign.data.media import media_error
from mmalign.data.report import DataFileError, Report
from mmalign.data.textio import REPLACED, UNDECODABLE, decode
from mmalign.interfaces import Sample, StrictModel

LABELS = ("not-sarcastic", "sarcastic")
FILES = (("train", "train.txt", 3), ("validation", "valid2.txt", 4), ("test", "test2.txt", 4))
#: tokens whose presence makes the authors' loader skip a line
FILTER_WORDS = frozenset(
    ("sarcasm", "sarcastic", "reposting", "<url>", "joke", "humour", "humor", "jokes", "irony")
    + ("ironic", "exgag")
)
KEYWORD_FILTER = "sarcasm keyword filter"


class HFMConfig(StrictModel):
    """Folders relative to the data folder; ``keyword_filter`` as in the authors' loader."""

    text_dir: str = "text"
    image_dir: str = "dataset_image"
    keyword_filter: bool = True


def parse_line(line: str, fields: int) -> tuple[str, str, int, int] | str:
    """``(id, text, label, hashtag_label)`` of one line, or the reason it is malformed."""
    try:
        value = ast.literal_eval(line.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return "not a Python list literal"
    if not isinstance(value, list | tuple) or len(value) != fields:
        shape = "[id, text, label]" if fields == 3 else "[id, text, hashtag_label, human_label]"
        return f"expected {shape}"
    sid, text, label = value[0], value[1], value[-1]
    if not isinstance(sid, str | int) or not str(sid).strip().isdigit():
        return f"id {sid!r} is not a tweet id"
    if not isinstance(text, str):
        return "text is not a string"
    if label not in (0, 1) or isinstance(label, bool):
        return f"label {label!r} is not 0 or 1"
    return str(sid).strip(), text.strip(), int(label), int(value[2]) if fields == 4 else int(label)


def read_hfm(root: Path, cfg: HFMConfig, report: Report, deep: bool) -> dict[str, list[Sample]]:
    """All three splits; bad lines and missing images are reported and skipped."""
    seen: dict[str, str] = {}
    out: dict[str, list[Sample]] = {}
    for split, filename, fields in FILES:
        path = root / cfg.text_dir / filename
        rel = f"{cfg.text_dir}/{filename}"
        if not path.is_file():
            raise DataFileError(rel, "missing HFM text file")
        out[split] = []
        for lineno, raw in enumerate(path.read_bytes().splitlines(), 1):
            if not raw.strip():
                continue
            line, repair = decode(raw)
            if repair is not None:
                report.repaired(repair)
            if repair == REPLACED:
                report.problem(rel, f"line {lineno}: {UNDECODABLE}")
            parsed = parse_line(line, fields)
            if isinstance(parsed, str):
                report.problem(rel, f"line {lineno}: {parsed}")
                continue
            sid, text, label, hashtag = parsed
            if cfg.keyword_filter and FILTER_WORDS & set(text.split()):
                report.dropped(KEYWORD_FILTER)
                continue
            if not text:
                report.problem(rel, f"line {lineno}: empty text")
                continue
            if sid in seen:
                report.problem(rel, f"line {lineno}: duplicate id {sid} (first in {seen[sid]})")
                continue
            seen[sid] = f"{rel} line {lineno}"
            image = root / cfg.image_dir / f"{sid}.jpg"
            error = media_error("image", image, deep)
            if error is not None:
                report.problem(f"{cfg.image_dir}/{sid}.jpg", error)
                continue
            meta = {"hashtag_label": hashtag} if fields == 4 else {}
            out[split].append(
                Sample(id=sid, inputs={"text": text, "image": image}, label=label, meta=meta)
            )
    return out


class HFMTask(DataTask):
    """Image-text sarcasm detection (HFM text files + images)."""

    Config = HFMConfig
    name = "hfm"
    modalities = ("text", "image")
    label_type = "classification"
    label_names = LABELS
    metrics = ("acc", "f1_macro")
    stand_in = "synth-sarcasm"

    def required_paths(self) -> tuple[str, ...]:
        cfg = self.config
        assert isinstance(cfg, HFMConfig)
        return (f"{cfg.text_dir}/train.txt", cfg.image_dir)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        cfg = self.config
        assert isinstance(cfg, HFMConfig)
        return read_hfm(self.root, cfg, report, deep)
