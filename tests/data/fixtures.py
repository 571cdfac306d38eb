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


HFM_TRAIN = [
    b"['100', 'what a great day', 0]",
    b"['101', 'i love mondays # sarcasm', 1]",  # keyword filter: dropped
    b"['102', 'the bus is late again', 1]",
    b"['103', 'broken line'",  # not a list literal
    b"['104', 'two fields']",  # wrong shape
    b"['105', 'bad label', 2]",  # label not 0/1
    b"['106', 'image is missing', 0]",
    b"['107', '', 0]",  # empty text
    b"['108', 'caf\xe9 time', 0]",  # cp1252: repaired
    b"['109', 'truncated image', 1]",  # found only by a deep check
]
HFM_VALID = [
    b"['200', 'nice weather', 1, 1]",
    b"['201', 'hashtag says yes', 1, 0]",  # the human label (last) is used
    b"['100', 'duplicate id', 0, 0]",
    b"['202', 'three fields', 1]",
]
HFM_TEST = [
    b"['300', 'look <url>', 0, 0]",  # keyword filter: dropped
    b"['301', 'fine', 0, 0]",
    b"[303, 'integer id', 1, 1]",
]


def write_hfm(root: Path) -> None:
    (root / "text").mkdir(parents=True)
    for name, lines in (
        ("train.txt", HFM_TRAIN),
        ("valid2.txt", HFM_VALID),
        ("test2.txt", HFM_TEST),
    ):
        (root / "text" / name).write_bytes(b"\n".join(lines) + b"\n")
    for sid in (100, 101, 102, 104, 105, 107, 108, 200, 201, 202, 300, 301, 303):
        write_jpeg(root / "dataset_image" / f"{sid}.jpg")
    write_truncated_jpeg(root / "dataset_image" / "109.jpg")


def write_wav(path: Path, freq: float = 440.0) -> None:
    import numpy as np
    import soundfile

    t = np.arange(8000) / 8000
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000)


def write_mp4(path: Path, frames: int = 3) -> None:
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for k in range(frames):
            image = np.full((32, 32, 3), 40 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


XMEDIANET_LISTS = {
    "text/train": [
        "t1.txt 0",
        "t2.txt 1",
        "t3.txt 5",
        "bad-line",
        "t1.txt 0",
        "t4.txt 2",
        "t5.txt 1",
    ],
    "text/test": ["t6.txt 2"],
    "image/train": ["i1.jpg 0", "i2.jpg 1", "i3.jpg 2", "sub dir/i 4.jpg 1"],
    "image/valid": ["i5.jpg 0"],
    "image/test": ["missing.jpg 1"],
    "audio/train": ["a1.wav 0", "a2.wav 1"],
    "audio/test": ["a3.wav 2"],
    "video/train": ["v1.mp4 0"],
    "video/test": ["v2.mp4 1"],
}


def write_xmedianet(root: Path) -> None:
    (root / "list").mkdir(parents=True)
    (root / "list" / "categories.txt").write_text("cat\ndog\nbird\n")
    for name, lines in XMEDIANET_LISTS.items():
        path = root / "list" / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    (root / "text").mkdir()
    for i, text in ((1, "a cat"), (2, "a dog"), (3, "out of range"), (5, " "), (6, "a bird")):
        (root / "text" / f"t{i}.txt").write_text(text)
    for name in ("i1.jpg", "i2.jpg", "sub dir/i 4.jpg", "i5.jpg"):
        write_jpeg(root / "image" / name)
    write_truncated_jpeg(root / "image" / "i3.jpg")
    write_wav(root / "audio" / "a1.wav")
    (root / "audio" / "a2.wav").write_bytes(b"RIFF\x00\x00not really a wav")
    write_wav(root / "audio" / "a3.wav", 660.0)
    write_mp4(root / "video" / "v1.mp4")
    (root / "video" / "v2.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")


def write_coco(root: Path) -> None:
    import json

    images = [
        {"id": 1, "file_name": "a.jpg"},
        {"id": 2, "file_name": "b.jpg"},
        {"id": 3, "file_name": "gone.jpg"},
        {"id": 4, "file_name": "trunc.jpg"},
        {"id": 5},
    ]
    annotations = [
        {"id": 10, "image_id": 1, "caption": "a cat on a mat"},
        {"id": 11, "image_id": 1, "caption": "a small cat"},
        {"id": 12, "image_id": 2, "caption": "a dog"},
        {"id": 13, "image_id": 3, "caption": "its image is gone"},
        {"id": 14, "image_id": 9, "caption": "unknown image"},
        {"id": 15, "image_id": 2, "caption": "  "},
        {"id": 16, "caption": "no image id"},
        {"id": 17, "image_id": 4, "caption": "a truncated picture"},
    ]
    (root / "annotations").mkdir(parents=True)
    doc = {"images": images, "annotations": annotations}
    (root / "annotations" / "captions_train2017.json").write_text(json.dumps(doc))
    write_jpeg(root / "train2017" / "a.jpg")
    write_jpeg(root / "train2017" / "b.jpg")
    write_truncated_jpeg(root / "train2017" / "trunc.jpg")
