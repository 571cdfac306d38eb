"""Real photographs that ship inside installed packages (no download needed)."""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path

from PIL import Image


def _package_dir(name: str) -> Path:
    """Where an installed package lives, found without importing it (importing
    matplotlib or scikit-image would cost every ``mmalign list`` a second)."""
    spec = find_spec(name)
    origin = spec.origin if spec is not None else None
    return Path(origin).parent if origin else Path("/nonexistent") / name


_SKIMAGE = _package_dir("skimage") / "data"
_MPL = _package_dir("matplotlib") / "mpl-data" / "sample_data"

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
