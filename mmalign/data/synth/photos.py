"""Real photographs that ship inside installed packages (no download needed)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import matplotlib
import skimage
from PIL import Image

_SKIMAGE = Path(skimage.__file__).parent / "data"
_MPL = Path(matplotlib.get_data_path()) / "sample_data"

#: file -> short caption of what the photo shows
PHOTOS: dict[Path, str] = {
    _SKIMAGE / "astronaut.png": "an astronaut in a white spacesuit in front of a flag",
    _SKIMAGE / "coffee.png": "a cup of coffee on a saucer with a spoon",
    _SKIMAGE / "chelsea.png": "a tabby cat looking to the side",
    _SKIMAGE / "rocket.jpg": "a rocket standing on a launch pad",
    _SKIMAGE / "motorcycle_left.png": "a red motorcycle parked in a garage",
    _SKIMAGE / "hubble_deep_field.jpg": "many distant galaxies in a dark sky",
    _SKIMAGE / "ihc.png": "a stained tissue sample under a microscope",
    _SKIMAGE / "retina.jpg": "the back of an eye with its blood vessels",
    _SKIMAGE / "camera.png": "a man with a camera on a tripod in a field",
    _SKIMAGE / "coins.png": "old coins lying on a table",
    _SKIMAGE / "moon.png": "the surface of the moon with craters",
    _SKIMAGE / "page.png": "a page of printed text",
    _SKIMAGE / "horse.png": "the silhouette of a horse",
    _SKIMAGE / "clock_motion.png": "a clock on a wall",
    _MPL / "grace_hopper.jpg": "a woman in a navy uniform smiling at the camera",
}


def available() -> list[Path]:
    """The photos present in this installation, in a fixed order."""
    return [p for p in PHOTOS if p.exists()]


@cache
def load(path: Path) -> Image.Image:
    """A photo as RGB, decoded once per process."""
    with Image.open(path) as img:
        return img.convert("RGB")
