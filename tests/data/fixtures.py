"""Writers for small datasets in each true on-disk format, with known defects."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image


def jpeg_bytes(colour: tuple[int, int, int] = (200, 120, 40), size: int = 16) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, format="JPEG")
    return buf.getvalue()


def write_jpeg(path: Path, colour: tuple[int, int, int] = (200, 120, 40)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg_bytes(colour))


def write_truncated_jpeg(path: Path) -> None:
    """A JPEG cut in half: it opens, but its pixel data cannot be decoded."""
    data = jpeg_bytes((10, 200, 30), size=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])


#: MVSA-Single label lines: (id, annotation) and what each exercises
MVSA_SINGLE_LINES = [
    "1\tpositive,positive",  # equal labels stay
    "2\tnegative,negative",
    "3\tneutral,neutral",
    "4\tpositive,neutral",  # neutral image takes the text's label
    "5\tneutral,negative",  # neutral text takes the image's label
    "6\tpositive,negative",  # conflict: dropped
    "7\tnegative,positive",  # conflict: dropped
    "8\tpositive",  # malformed: no image label
    "9\thappy,positive",  # malformed: unknown label
    "10\tpositive,positive",  # text file missing
    "11\tneutral,positive",  # image missing
    "12\tpositive,positive",  # cp1252 text: repaired
    "13\tnegative,neutral",  # empty text
    "14\tpositive,positive",  # truncated image: found only by a deep check
    "15\tneutral,neutral",  # undecodable bytes: replaced, reported
    "2\tpositive,positive",  # duplicate id
]


def write_mvsa_single(root: Path) -> None:
    data = root / "data"
    data.mkdir(parents=True)
    (root / "labelResultAll.txt").write_text(
        "ID\ttext,image\n" + "\n".join(MVSA_SINGLE_LINES) + "\n"
    )
    for sid in range(1, 16):
        if sid != 10:
            text = f"tweet number {sid}"
            (data / f"{sid}.txt").write_bytes(text.encode())
        if sid not in (11, 14):
            write_jpeg(data / f"{sid}.jpg")
    (data / "12.txt").write_bytes("caf\xe9 au lait \u201cgood\u201d".encode("cp1252"))
    (data / "13.txt").write_bytes(b"  \n")
    write_truncated_jpeg(data / "14.jpg")
    (data / "15.txt").write_bytes(b"broken \x81\xff bytes")


#: MVSA-Multi: three annotators per line
MVSA_MULTI_LINES = [
    "1\tpositive,positive\tpositive,neutral\tpositive,positive",  # positive
    "2\tnegative,neutral\tnegative,negative\tneutral,negative",  # negative
    "3\tpositive,neutral\tneutral,neutral\tnegative,neutral",  # text vote split: dropped
    "4\tneutral,positive\tneutral,negative\tneutral,neutral",  # image vote split: dropped
    "5\tneutral,positive\tneutral,positive\tpositive,neutral",  # neutral text -> positive
    "6\tpositive,negative\tpositive,negative\tneutral,neutral",  # conflict: dropped
    "7\tneutral,neutral\tneutral,neutral\tneutral,positive",  # neutral
    "8\tpositive,positive\tpositive,positive",  # malformed: two annotators
]


def write_mvsa_multi(root: Path) -> None:
    data = root / "data"
    data.mkdir(parents=True)
    header = "ID\ttext,image\ttext,image\ttext,image\n"
    (root / "labelResultAll.txt").write_text(header + "\n".join(MVSA_MULTI_LINES) + "\n")
    for sid in range(1, 9):
        (data / f"{sid}.txt").write_text(f"multi tweet {sid}")
        write_jpeg(data / f"{sid}.jpg")
