"""Deep checks of media files: decode them the way the encoders will.

Loading a task only checks that files exist (cheap on 20k images); the encoders'
``preprocess`` raises on a corrupt file and the runner skips it. ``mmalign data
check`` calls these to name every such file up front.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def image_error(path: Path) -> str | None:
    """Why an image cannot be decoded, or ``None`` when it decodes completely."""
    try:
        with Image.open(path) as img:
            img.verify()  # structure and checksums
        with Image.open(path) as img:
            img.load()  # the pixel data: catches truncated files
    except FileNotFoundError:
        return "missing image file"
    except Exception as exc:  # PIL raises many types for bad files
        return f"corrupt or truncated image: {exc}"
    return None


def audio_error(path: Path) -> str | None:
    """Why an audio file cannot be read by soundfile, or ``None``."""
    import soundfile

    if not path.exists():
        return "missing audio file"
    try:
        data, _ = soundfile.read(path, dtype="float32")
    except Exception as exc:  # libsndfile errors
        return f"corrupt audio file: {exc}"
    if len(data) == 0:
        return "audio file has no samples"
    return None


def video_error(path: Path) -> str | None:
    """Why a video cannot be decoded by PyAV (its first frame), or ``None``."""
    import av

    if not path.exists():
        return "missing video file"
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            next(container.decode(video=0))
    except StopIteration:
        return "video has no frames"
    except Exception as exc:  # FFmpeg errors surface as several types
        return f"corrupt video file: {exc}"
    return None


def media_error(modality: str, path: Path, deep: bool) -> str | None:
    """Why a media file is unusable: decoded when ``deep``, else only its presence."""
    if not deep:
        try:  # a 300-byte id makes is_file() raise ENAMETOOLONG: a bad sample, not a crash
            return None if path.is_file() else f"missing {modality} file"
        except OSError as exc:
            return f"unusable {modality} path: {exc.strerror or exc}"
    check = {"image": image_error, "audio": audio_error, "video": video_error}[modality]
    return check(path)
