"""Rendered images whose sentiment a frozen ImageNet encoder can see.

Positive scenes are bright and warm (sunny skies, smiling faces, balloons),
negative ones dark and cold (storms, rain, frowning faces, jagged shards), neutral
ones grey and plain. Shapes, positions, sizes and colours vary per image, and a
share of images are real bundled photographs re-graded to the sentiment's look.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from mmalign.data.synth import photos

RGB = tuple[int, int, int]
SCALE = 2  # draw at twice the size, then downsample: cheap anti-aliasing


def hsv(h: float, s: float, v: float) -> RGB:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return int(r * 255), int(g * 255), int(b * 255)


def palette(rng: np.random.Generator, sentiment: str) -> RGB:
    """A background colour typical of the sentiment."""
    if sentiment == "positive":
        h = rng.choice([0.12, 0.15, 0.08, 0.55, 0.9, 0.3]) + rng.uniform(-0.03, 0.03)
        return hsv(h, rng.uniform(0.45, 0.85), rng.uniform(0.88, 1.0))
    if sentiment == "negative":
        return hsv(rng.uniform(0.55, 0.8), rng.uniform(0.2, 0.6), rng.uniform(0.08, 0.3))
    return hsv(rng.uniform(0.05, 0.15), rng.uniform(0.0, 0.1), rng.uniform(0.55, 0.8))


def _gradient(size: int, top: RGB, bottom: RGB) -> Image.Image:
    t = np.linspace(0, 1, size)[:, None, None]
    arr = (1 - t) * np.array(top) + t * np.array(bottom)
    return Image.fromarray(np.repeat(arr, size, axis=1).astype(np.uint8))


def face(rng: np.random.Generator, sentiment: str, size: int) -> Image.Image:
    """A drawn face: smiling, frowning or straight-mouthed."""
    img = Image.new("RGB", (size, size), palette(rng, sentiment))
    d = ImageDraw.Draw(img)
    r = size * rng.uniform(0.28, 0.4)
    cx, cy = size / 2 + rng.uniform(-0.1, 0.1) * size, size / 2 + rng.uniform(-0.1, 0.1) * size
    skin = {
        "positive": hsv(rng.uniform(0.11, 0.15), 0.85, 1.0),
        "negative": hsv(rng.uniform(0.5, 0.6), 0.15, rng.uniform(0.45, 0.6)),
        "neutral": hsv(0.1, rng.uniform(0.1, 0.25), rng.uniform(0.8, 0.9)),
    }[sentiment]
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=skin, outline=(30, 30, 30), width=size // 60)
    ink, w = (25, 25, 25), max(size // 40, 2)
    for sx in (-1, 1):
        ex, ey = cx + sx * r * 0.38, cy - r * 0.25
        d.ellipse([ex - r * 0.09, ey - r * 0.12, ex + r * 0.09, ey + r * 0.12], fill=ink)
        if sentiment == "negative":  # slanted brows and a tear
            d.line([ex - sx * r * 0.2, ey - r * 0.22, ex + sx * r * 0.15, ey - r * 0.35], ink, w)
            d.ellipse(
                [ex - r * 0.05, ey + r * 0.2, ex + r * 0.05, ey + r * 0.38], fill=(90, 140, 255)
            )
    mouth = [cx - r * 0.5, cy - r * 0.1, cx + r * 0.5, cy + r * 0.65]
    if sentiment == "positive":
        d.chord(mouth, 15, 165, fill=(150, 20, 30), outline=ink, width=w)
    elif sentiment == "negative":
        d.arc([cx - r * 0.45, cy + r * 0.3, cx + r * 0.45, cy + r * 0.95], 200, 340, ink, w * 2)
    else:
        d.line([cx - r * 0.4, cy + r * 0.4, cx + r * 0.4, cy + r * 0.4], ink, w * 2)
    return img


def landscape(rng: np.random.Generator, sentiment: str, size: int) -> Image.Image:
    """Sunny hills, a thunderstorm, or an overcast street."""
    horizon = int(size * rng.uniform(0.55, 0.75))
    if sentiment == "positive":
        img = _gradient(size, hsv(0.58, 0.7, 1.0), hsv(0.55, 0.3, 1.0))
        d = ImageDraw.Draw(img)
        sx, sy, sr = size * rng.uniform(0.15, 0.85), size * rng.uniform(0.12, 0.3), size * 0.1
        for k in range(12):
            a = k * math.pi / 6
            d.line([sx, sy, sx + 2 * sr * math.cos(a), sy + 2 * sr * math.sin(a)], (255, 200, 0), 4)
        d.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=(255, 220, 40))
        d.ellipse([-size * 0.3, horizon - 40, size * 0.8, size * 1.5], fill=hsv(0.28, 0.75, 0.85))
        d.ellipse([size * 0.3, horizon - 20, size * 1.4, size * 1.5], fill=hsv(0.3, 0.8, 0.75))
        for _ in range(int(rng.integers(5, 15))):
            fx, fy, fr = rng.uniform(0, size), rng.uniform(horizon + 10, size), size * 0.015
            d.ellipse([fx - fr, fy - fr, fx + fr, fy + fr], fill=hsv(rng.uniform(0.9, 1.1), 0.7, 1))
    elif sentiment == "negative":
        img = _gradient(size, hsv(0.65, 0.3, 0.12), hsv(0.6, 0.2, 0.3))
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(3, 7))):
            x, y, r = (
                rng.uniform(0, size),
                rng.uniform(0, size * 0.35),
                size * rng.uniform(0.1, 0.2),
            )
            d.ellipse([x - r * 1.6, y - r, x + r * 1.6, y + r], fill=hsv(0.65, 0.15, 0.22))
        if rng.random() < 0.6:
            x = rng.uniform(0.2, 0.8) * size
            pts = [
                (x, size * 0.2),
                (x - 15, size * 0.4),
                (x + 10, size * 0.4),
                (x - 10, size * 0.6),
            ]
            d.line(pts, (255, 240, 120), 5)
        d.rectangle([0, horizon, size, size], fill=hsv(0.1, 0.3, 0.15))
        for _ in range(int(rng.integers(40, 90))):
            x, y = rng.uniform(0, size), rng.uniform(0, size)
            d.line([x, y, x - 6, y + 25], (150, 160, 190), 2)
    else:
        img = _gradient(size, hsv(0.6, 0.05, 0.78), hsv(0.6, 0.03, 0.68))
        d = ImageDraw.Draw(img)
        d.rectangle([0, horizon, size, size], fill=hsv(0.1, 0.05, 0.55))
        x = 0.0
        while x < size:
            w, h = size * rng.uniform(0.1, 0.25), size * rng.uniform(0.15, 0.45)
            d.rectangle(
                [x, horizon - h, x + w, horizon], fill=hsv(0.08, 0.08, rng.uniform(0.5, 0.7))
            )
            x += w + size * rng.uniform(0.02, 0.08)
    return img


def objects(rng: np.random.Generator, sentiment: str, size: int) -> Image.Image:
    """Balloons and hearts, dark jagged shards, or a plain grid of boxes."""
    img = Image.new("RGB", (size, size), palette(rng, sentiment))
    d = ImageDraw.Draw(img)
    if sentiment == "positive":
        for _ in range(int(rng.integers(4, 9))):
            x, y, r = rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.7) * size, size * 0.07
            colour = hsv(rng.uniform(0, 1), 0.8, 1.0)
            d.line([x, y + r * 1.3, x + rng.uniform(-10, 10), y + r * 4], (80, 80, 80), 2)
            d.ellipse([x - r, y - r * 1.3, x + r, y + r * 1.3], fill=colour)
        for _ in range(int(rng.integers(2, 5))):  # hearts
            x, y, r = rng.uniform(0.1, 0.9) * size, rng.uniform(0.5, 0.9) * size, size * 0.05
            red = hsv(rng.uniform(0.95, 1.0), 0.8, 1.0)
            d.ellipse([x - 2 * r, y - r, x, y + r], fill=red)
            d.ellipse([x, y - r, x + 2 * r, y + r], fill=red)
            d.polygon([(x - 2 * r, y + r * 0.2), (x + 2 * r, y + r * 0.2), (x, y + 2.5 * r)], red)
    elif sentiment == "negative":
        for _ in range(int(rng.integers(5, 12))):
            pts = [(rng.uniform(0, size), rng.uniform(0, size)) for _ in range(3)]
            d.polygon(pts, fill=hsv(rng.choice([0.0, 0.7]), 0.6, rng.uniform(0.15, 0.45)))
        for _ in range(int(rng.integers(2, 5))):  # cracks
            x, y = rng.uniform(0, size), 0.0
            pts = [(x, y)]
            while y < size:
                x, y = x + rng.uniform(-25, 25), y + rng.uniform(10, 30)
                pts.append((x, y))
            d.line(pts, (0, 0, 0), 3)
    else:
        n = int(rng.integers(3, 6))
        step = size / n
        for i in range(n):
            for j in range(n):
                if rng.random() < 0.7:
                    m = step * 0.15
                    grey = hsv(0.08, 0.05, rng.uniform(0.45, 0.75))
                    d.rectangle(
                        [i * step + m, j * step + m, (i + 1) * step - m, (j + 1) * step - m], grey
                    )
    return img


def photo(rng: np.random.Generator, sentiment: str, size: int) -> Image.Image:
    """A bundled photo, randomly cropped, graded bright/warm, dark/cold or grey."""
    choices = photos.available()
    src = photos.load(choices[int(rng.integers(len(choices)))])
    w, h = src.size
    side = int(min(w, h) * rng.uniform(0.6, 1.0))
    x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
    img = src.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.Resampling.BILINEAR)
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if sentiment == "positive":
        img = ImageEnhance.Color(img).enhance(rng.uniform(1.5, 2.0))
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(1.2, 1.4))
        tint = np.array([1.1, 1.05, 0.8])
    elif sentiment == "negative":
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.1, 0.4))
        img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.3, 0.5))
        tint = np.array([0.8, 0.9, 1.2])
    else:
        img = ImageEnhance.Color(img).enhance(rng.uniform(0.0, 0.2))
        img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.6, 0.8))
        tint = np.array([1.0, 1.0, 1.0])
    arr = np.clip(np.asarray(img, dtype=np.float32) * tint, 0, 255).astype(np.uint8)
    img = Image.fromarray(arr)
    if sentiment == "negative":
        d = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(20, 60))):
            x, y = rng.uniform(0, size), rng.uniform(0, size)
            d.line([x, y, x - 4, y + 18], (140, 150, 180), 1)
    return img


SCENES = {"face": face, "landscape": landscape, "objects": objects, "photo": photo}
SCENE_WEIGHTS = {"face": 0.3, "landscape": 0.3, "objects": 0.2, "photo": 0.2}


def render(
    rng: np.random.Generator, sentiment: str, size: int, scene: str | None = None
) -> Image.Image:
    """An image of ``sentiment`` (a random scene kind unless ``scene`` is given)."""
    if scene is None:
        names = list(SCENE_WEIGHTS)
        scene = names[int(rng.choice(len(names), p=list(SCENE_WEIGHTS.values())))]
    if scene == "photo":
        img = photo(rng, sentiment, size)
    else:
        img = SCENES[scene](rng, sentiment, size * SCALE).reduce(SCALE)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    amp = int(rng.integers(3, 12))
    noise = rng.integers(-amp, amp + 1, (size, size, 3), dtype=np.int16)
    return Image.fromarray(
        np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    )
