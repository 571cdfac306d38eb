"""Where each dataset comes from: the ``[datasets.<task>]`` tables of ``registry.toml``.

A table may give downloadable files (``url``, ``sha256``, optional ``strip`` leading
path components and ``name`` to save as) either inline or as a ``files`` array,
and always says in ``request`` where a person gets the data when there is no
public download. ``MMALIGN_REGISTRY`` points at another registry file (tests use it
to serve fixtures from a local HTTP server).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mmalign import paths
from mmalign.errors import DataError

REGISTRY_ENV = "MMALIGN_REGISTRY"


@dataclass(frozen=True)
class Download:
    """One file to fetch and unpack into the task's data folder."""

    url: str
    sha256: str | None = None
    strip: int = 0
    name: str = ""

    @property
    def filename(self) -> str:
        return self.name or Path(urlparse(self.url).path).name or "download"


@dataclass(frozen=True)
class Source:
    """A dataset's catalog entry."""

    task: str
    request: str = ""
    homepage: str = ""
    files: tuple[Download, ...] = field(default_factory=tuple)


def registry_file() -> Path:
    """``MMALIGN_REGISTRY``, else the packaged or source-tree ``registry.toml``."""
    env = os.environ.get(REGISTRY_ENV)
    return Path(env) if env else paths.registry_file()


def _download(task: str, raw: dict[str, Any]) -> Download:
    try:
        return Download(
            url=str(raw["url"]),
            sha256=str(raw["sha256"]).lower() if raw.get("sha256") else None,
            strip=int(raw.get("strip", 0)),
            name=str(raw.get("name", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"{registry_file()}: [datasets.{task}] has a bad file entry: {exc}"
        ) from exc


def sources() -> dict[str, Source]:
    """Every ``[datasets.*]`` table; an absent registry file means no entries."""
    path = registry_file()
    if not path.exists():
        return {}
    try:
        tables = tomllib.loads(path.read_text(encoding="utf-8")).get("datasets", {})
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: invalid TOML: {exc}") from exc
    out = {}
    for task, raw in tables.items():
        files = [_download(task, f) for f in raw.get("files", [])]
        if "url" in raw:
            files.insert(0, _download(task, raw))
        out[task] = Source(
            task=task,
            request=str(raw.get("request", "")),
            homepage=str(raw.get("homepage", "")),
            files=tuple(files),
        )
    return out


def source(task: str) -> Source | None:
    return sources().get(task)
