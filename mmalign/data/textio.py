"""Robust text decoding: social-media dumps (MVSA, HFM) are not reliably UTF-8."""

from __future__ import annotations

from pathlib import Path

from mmalign.data.report import Report

#: repair keys counted in ``TaskData.repaired``
CP1252 = "text_decoded_cp1252"
REPLACED = "text_bytes_replaced"
UNDECODABLE = "text is neither UTF-8 nor cp1252; undecodable bytes replaced"


def decode(raw: bytes) -> tuple[str, str | None]:
    """Decode UTF-8 (BOM allowed), else cp1252, else UTF-8 with U+FFFD replacements.

    Returns the text and which repair was needed (``None``, :data:`CP1252` or
    :data:`REPLACED`). cp1252 is tried second because tweets saved on Windows are
    the common non-UTF-8 case; bytes it leaves undefined fall through to replacement.
    """
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), CP1252
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), REPLACED


def read_text(path: Path, report: Report, rel: str) -> str | None:
    """A stripped text file's content, or ``None`` (with a problem) when unusable.

    Repairs are counted in ``report``; text that needed byte replacement is still
    returned (the sample stays usable) but is also reported as a problem, since
    ``mmalign data check`` must name undecodable files.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        report.problem(rel, "missing text file")
        return None
    except OSError as exc:
        report.problem(rel, f"unreadable text file: {exc.strerror or exc}")
        return None
    text, repair = decode(raw)
    if repair is not None:
        report.repaired(repair)
    if repair == REPLACED:
        report.problem(rel, UNDECODABLE)
    text = text.strip()
    if not text:
        report.problem(rel, "empty text")
        return None
    return text
