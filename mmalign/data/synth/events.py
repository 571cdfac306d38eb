"""``synth-events``: four-modality retrieval over instance-level events, XMediaNet layout.

100 categories (ten shapes x ten colours). Each *event* has a category and an
instance latent: position, size, background, motion direction, loudness. With
``coupling`` 1 an event's caption, image, sound and clip all render the same latent
(one latent per event, four views): the caption says "a large red star at the top
left on a dark background, moving right"; the image draws it there; the sound's
pitch is the colour (and an octave lower when large), its timbre the shape, its
onset the horizontal and its length the vertical place; the clip moves the drawn
shape from its place in its direction. Files of one event share a name
(``{category}_{event}.{ext}``) across the four modality folders, so a joint loader
can take true 4-tuples; the reader puts that name in every sample's
``meta["instance"]`` (the task's ``instances`` is "event"), and category-aligned
readers see ordinary XMediaNet lists.
With ``coupling`` 0 each modality draws its own latent, so the views of an
"event" share only the category (what XMediaNet itself guarantees): a joint tuple
then carries no more than category-matched pairs.

``premise``: coupling 1; ``control``: coupling 0. Both have ``train_events`` /
``valid_events`` / ``test_events`` events per category in every modality (8 / 2 / 5),
and nuisance (position, size, background, pitch and loudness jitter) that keeps
frozen features far from saturating R@1.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
from PIL import Image, ImageDraw
from pydantic import Field

from mmalign.data.base import EmbeddedTask
from mmalign.data.report import Report
from mmalign.data.synth.structure import TRUTH_FILE, StructuredConfig, write_truth
from mmalign.data.xmedianet import (
    MODALITIES,
    RETRIEVAL_METRICS,
    XMediaNetConfig,
    read_xmedianet,
    retrieval_evaluate,
)
from mmalign.interfaces import INSTANCE, Outputs, Sample

SHAPES = (
    "circle", "ring", "square", "frame", "triangle", "diamond", "star", "cross",
    "hexagon", "bar",
)  # fmt: skip
COLOURS = {
    "red": (220, 35, 35), "orange": (245, 140, 20), "yellow": (240, 220, 40),
    "green": (40, 170, 60), "teal": (20, 160, 160), "blue": (40, 70, 225),
    "purple": (140, 55, 180), "pink": (245, 120, 190), "brown": (130, 80, 40),
    "white": (245, 245, 245),
}  # fmt: skip
BACKGROUNDS = {"dark": (25, 25, 35), "grey": (120, 120, 120), "light": (215, 215, 205)}
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
ROWS, COLS = ("top", "middle", "bottom"), ("left", "centre", "right")
SAMPLE_RATE = 16000
IMAGE_SIZE, VIDEO_SIZE, FRAMES = 96, 64, 8
EXT = {"text": "txt", "image": "jpg", "audio": "wav", "video": "mp4"}
TEMPLATES = (
    "a {size} {colour} {shape} at the {place} on a {bg} background, moving {dir}",
    "{bg} background: {size} {colour} {shape}, {place}, heading {dir}",
    "the {colour} {shape} is {size}, sits at the {place} and moves {dir} over {bg}",
    "{place}: a {colour} {shape} ({size}) drifting {dir}, {bg} backdrop",
)


def categories() -> list[str]:
    return [f"{c} {s}" for c in COLOURS for s in SHAPES]


def latent(rng: np.random.Generator) -> dict[str, Any]:
    """An event's instance latent (everything but its category)."""
    return {
        "x": float(rng.uniform(0.2, 0.8)),
        "y": float(rng.uniform(0.2, 0.8)),
        "large": bool(rng.random() < 0.5),
        "bg": list(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))],
        "dir": list(DIRECTIONS)[int(rng.integers(len(DIRECTIONS)))],
        "loud": float(rng.uniform(0.3, 0.8)),
    }


def place(z: dict[str, Any]) -> str:
    row, col = ROWS[min(int(z["y"] * 3), 2)], COLS[min(int(z["x"] * 3), 2)]
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}"


def shape_points(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon of a filled shape (circles and rings are drawn as 32-gons)."""
    if shape in ("square", "frame"):
        k, offset = 4, np.pi / 4
    elif shape == "triangle":
        k, offset = 3, -np.pi / 2
    elif shape == "diamond":
        k, offset = 4, 0.0
    elif shape == "hexagon":
        k, offset = 6, 0.0
    elif shape == "star":
        a = np.arange(10) * np.pi / 5 - np.pi / 2
        rr = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return list(zip(cx + rr * np.cos(a), cy + rr * np.sin(a), strict=True))
    elif shape == "cross":
        w = r * 0.35
        pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w),
               (-r, w), (-r, -w), (-w, -w)]  # fmt: skip
        return [(cx + px, cy + py) for px, py in pts]
    elif shape == "bar":
        return [(cx - r, cy - r * 0.3), (cx + r, cy - r * 0.3), (cx + r, cy + r * 0.3),
                (cx - r, cy + r * 0.3)]  # fmt: skip
    else:
        k, offset = 32, 0.0
    a = np.arange(k) * 2 * np.pi / k + offset
    radius = r * (1.3 if k == 4 and shape != "diamond" else 1.0)
    return list(zip(cx + radius * np.cos(a), cy + radius * np.sin(a), strict=True))


def draw_event(size: int, cat: int, z: dict[str, Any], shift: float, rng: np.random.Generator):
    """The event's shape on its background, displaced by ``shift`` along its direction."""
    colour, shape = list(COLOURS)[cat // 10], SHAPES[cat % 10]
    bg = np.array(BACKGROUNDS[z["bg"]]) + rng.normal(0, 12, 3)
    img = Image.new("RGB", (size, size), tuple(int(v) for v in np.clip(bg, 0, 255)))
    d = ImageDraw.Draw(img)
    r = size * (0.2 if z["large"] else 0.11) * rng.uniform(0.9, 1.1)
    dx, dy = DIRECTIONS[z["dir"]]
    cx, cy = (z["x"] + dx * shift) * size, (z["y"] + dy * shift) * size
    fill = tuple(int(v) for v in np.clip(np.array(COLOURS[colour]) + rng.normal(0, 18, 3), 0, 255))
    d.polygon(shape_points(shape, cx, cy, r), fill=fill)
    if shape in ("ring", "frame"):  # hollow: cut the inside out
        d.polygon(shape_points(shape, cx, cy, r * 0.55), fill=img.getpixel((0, 0)))
    noise = rng.integers(-10, 11, (size, size, 3), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(img, np.int16) + noise, 0, 255).astype(np.uint8))


def write_text(path: Path, rng: np.random.Generator, cat: int, z: dict[str, Any]) -> None:
    template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
    text = template.format(
        size="large" if z["large"] else "small", colour=list(COLOURS)[cat // 10],
        shape=SHAPES[cat % 10], place=place(z), bg=z["bg"], dir=z["dir"],
    )  # fmt: skip
    path.write_text(text + "\n", encoding="utf-8")


def write_audio(path: Path, rng: np.random.Generator, cat: int, z: dict[str, Any]) -> None:
    """1 s: pitch from the colour (octave down when large), timbre from the shape,
    onset from x, length from y, loudness from the event."""
    import soundfile

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    freq = 330 * 2 ** ((cat // 10) / 10) * (0.5 if z["large"] else 1.0) * rng.uniform(0.98, 1.02)
    profile = np.random.default_rng([7, cat % 10]).uniform(0, 1, 6)  # fixed per shape
    wave = sum(p * np.sin(2 * np.pi * freq * (h + 1) * t) for h, p in enumerate(profile))
    wave = wave / np.abs(wave).max()
    start = int((0.05 + 0.3 * z["x"]) * SAMPLE_RATE)
    length = int((0.2 + 0.5 * z["y"]) * SAMPLE_RATE)
    envelope = np.zeros_like(t)
    envelope[start : start + length] = z["loud"]
    signal = wave * envelope + rng.normal(0, 0.03, len(t))
    soundfile.write(path, signal.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")


def write_video(path: Path, rng: np.random.Generator, cat: int, z: dict[str, Any]) -> None:
    """Eight 64x64 frames of the shape moving from its place (MPEG-4 in MP4)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = VIDEO_SIZE, VIDEO_SIZE, "yuv420p"
        frame_rng = np.random.default_rng(rng.integers(1 << 31))
        for k in range(FRAMES):
            state = np.random.default_rng(frame_rng.integers(1 << 31))
            img = draw_event(VIDEO_SIZE, cat, z, 0.25 * k / (FRAMES - 1), state)
            frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_event(
    out: Path, cfg: SynthEventsConfig, cat: int, event: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Write the four views of one event; ``(modality, file name, truth row)`` each."""
    shared = latent(np.random.default_rng([cfg.seed, cat, event]))
    written = []
    for m_index, m in enumerate(MODALITIES):
        rng = np.random.default_rng([cfg.seed, cat, event, m_index + 1])
        coupled = bool(rng.random() < cfg.coupling)
        z = shared if coupled else latent(rng)
        name = f"{cat:03d}_{event:03d}.{EXT[m]}"
        if m == "image":
            draw_event(IMAGE_SIZE, cat, z, 0.0, rng).save(out / m / name, quality=90)
        else:
            {"text": write_text, "audio": write_audio, "video": write_video}[m](
                out / m / name, rng, cat, z
            )
        row = {
            "modality": m, "file": name, "category": cat, "event": f"{cat:03d}_{event:03d}",
            "coupled": int(coupled), "place": place(z), "large": int(z["large"]),
            "bg": z["bg"], "dir": z["dir"],
        }  # fmt: skip
        written.append((m, name, row))
    return written


class SynthEventsConfig(StructuredConfig):
    """Knob values of ``premise`` and ``control`` (fixed before any method was run)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "premise": {"coupling": 1.0},
        "control": {"coupling": 0.0},
    }

    coupling: float = Field(
        1.0, ge=0, le=1, description="per event and modality: render the event's own latent"
    )
    train_events: int = Field(8, ge=1, description="events per category in train")
    valid_events: int = Field(2, ge=0)
    test_events: int = Field(5, ge=1)


class SynthEvents(EmbeddedTask):
    """Four-modality event retrieval (100 categories) in the XMediaNet layout."""

    Config = SynthEventsConfig
    name = "synth-events"
    modalities = MODALITIES
    label_type = "retrieval"
    metrics = RETRIEVAL_METRICS
    generator_version = 1
    instances = "event"

    def __init__(self, config: StructuredConfig | None = None, data_dir: Path | None = None):
        super().__init__(config, data_dir)
        self._names: list[str] | None = None

    def generate(self, out: Path) -> None:
        cfg = self.config
        assert isinstance(cfg, SynthEventsConfig)
        counts = (("train", cfg.train_events), ("valid", cfg.valid_events))
        counts += (("test", cfg.test_events),)
        names = categories()
        (out / "list").mkdir()
        (out / "list" / "categories.txt").write_text("\n".join(names) + "\n")
        lists: dict[str, dict[str, list[str]]] = {m: {s: [] for s, _ in counts} for m in MODALITIES}
        truth = []
        for m in MODALITIES:
            (out / m).mkdir()
            (out / "list" / m).mkdir()
        for cat in range(len(names)):
            event = 0
            for split, n in counts:
                for _ in range(n):
                    for m, name, row in write_event(out, cfg, cat, event):
                        lists[m][split].append(f"{name} {cat}")
                        truth.append({**row, "split": split})
                    event += 1
        for m in MODALITIES:
            for split, lines in lists[m].items():
                if lines:
                    (out / "list" / m / f"{split}.txt").write_text("\n".join(lines) + "\n")
        write_truth(out / TRUTH_FILE, truth)

    def read(self, report: Report, deep: bool) -> dict[str, list[Sample]]:
        """XMediaNet lists; each sample's event is its file name without the extension,
        the name its event's four views share."""
        splits, self._names = read_xmedianet(self.root, XMediaNetConfig(), report, deep)
        for samples in splits.values():
            for sample in samples:
                sample.meta[INSTANCE] = PurePosixPath(sample.id).stem
        return splits

    def data_label_names(self) -> list[str] | None:
        return self._names

    def evaluate(self, outputs: Outputs, labels: object) -> dict[str, float]:
        return retrieval_evaluate(outputs, labels)
