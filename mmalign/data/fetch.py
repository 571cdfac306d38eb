"""``mmalign data fetch``: download, verify (sha256), resume and unpack a dataset.

Downloads go to ``MMALIGN_HOME/downloads/<task>/<file>.part`` and are resumed with
an HTTP ``Range`` request when a partial file exists (a server that ignores the
range restarts the file). Only a file whose sha256 matches the one pinned in
``registry.toml`` (or given with ``--sha256``) is unpacked; a file with no pinned
digest needs ``--no-verify``. Archives (zip, tar, tar.gz/bz2/xz) are unpacked into
a temporary folder and then moved into the task's data folder; other files are
copied in as they are.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

from mmalign import atomic, paths
from mmalign.data.catalog import Download
from mmalign.errors import DataError

CHUNK = 1 << 16
#: the longest file-name component (bytes) of ext4, APFS, NTFS and most others
NAME_MAX = 255
Progress = Callable[[int, int | None], None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def download(item: Download, dest: Path, verify: bool, progress: Progress | None = None) -> Path:
    """``item`` fetched to ``dest`` (resuming ``dest.part``), its sha256 checked."""
    if verify and not item.sha256:
        raise DataError(
            f"registry.toml pins no sha256 for {item.url}: pass --sha256 HEX to verify it, "
            "or --no-verify to accept it unverified"
        )
    expected = item.sha256 if verify else None
    if dest.exists() and (expected is None or sha256_file(dest) == expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = urllib.request.urlopen(urllib.request.Request(item.url, headers=headers), timeout=60)
    except urllib.error.HTTPError as exc:
        if not (exc.code == 416 and offset):  # 416 with a partial file: it is already whole
            raise DataError(f"Download of {item.url} failed: HTTP {exc.code} {exc.reason}") from exc
        resp = None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataError(f"Cannot reach {item.url}: {reason}") from exc
    if resp is not None:
        with resp:
            resumed = offset > 0 and resp.status == 206 and _range_start(resp) == offset
            length = resp.headers.get("Content-Length")
            total = (offset if resumed else 0) + int(length) if length else None
            done = offset if resumed else 0
            try:
                with part.open("ab" if resumed else "wb") as fh:
                    while chunk := resp.read(CHUNK):
                        fh.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            except (OSError, http.client.HTTPException) as exc:
                raise DataError(
                    f"Download of {item.url} was interrupted after {done} bytes ({exc}); "
                    "run the same command again to resume it"
                ) from exc
            if total is not None and done < total:
                raise DataError(
                    f"Download of {item.url} stopped at {done} of {total} bytes; "
                    "run the same command again to resume it"
                )
    if expected is not None:
        got = sha256_file(part)
        if got != expected:
            part.unlink()
            raise DataError(
                f"{item.url}: sha256 {got} does not match the expected {expected}; "
                "the download was removed, so the next fetch starts afresh"
            )
    os.replace(part, dest)
    return dest


def _range_start(resp: http.client.HTTPResponse) -> int | None:
    """The first byte of a 206 answer, from ``Content-Range: bytes START-END/SIZE``."""
    value = resp.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _target(name: str, strip: int, archive: Path) -> PurePosixPath | None:
    """The member's path after stripping, or ``None`` when nothing is left of it.

    The checks hold on POSIX and Windows alike: backslashes count as separators, and
    absolute paths, ``..``, drive letters (``C:``) and UNC names are refused.
    """
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    windows = PureWindowsPath(name)
    if (
        path.is_absolute()
        or ".." in path.parts
        or windows.drive
        or windows.root
        or ":" in (path.parts[0] if path.parts else "")
        or "\x00" in name
    ):
        raise DataError(f"{archive.name}: refusing unsafe member path {name!r}")
    if any(len(part.encode()) > NAME_MAX for part in path.parts):
        raise DataError(
            f"{archive.name}: member {name[:60]!r}... has a path component longer than "
            f"{NAME_MAX} bytes, which no common file system stores"
        )
    parts = path.parts[strip:]
    return PurePosixPath(*parts) if parts else None


def _members(archive: Path) -> Iterator[tuple[str, int, Callable[[], IO[bytes]]]]:
    """Regular-file members of a zip or tar archive as ``(name, size, open)``.

    Links, devices and FIFOs are skipped (never followed); tar members also pass
    tarfile's ``data`` filter where this Python has it.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, info.file_size, partial(zf.open, info)
        return
    with tarfile.open(archive) as tf:
        for member in tf:
            if not member.isfile():
                continue  # folders are implied; links are not followed
            _target(member.name, 0, archive)  # our own checks first, for one message
            if hasattr(tarfile, "data_filter"):
                try:
                    tarfile.data_filter(member, str(archive.parent))
                except tarfile.FilterError as exc:
                    raise DataError(
                        f"{archive.name}: refusing member {member.name!r}: {exc}"
                    ) from None
            yield member.name, member.size, partial(_extracted, tf, member)


def _extracted(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    src = tf.extractfile(member)
    if src is None:
        raise DataError(f"{tf.name}: member {member.name!r} has no data")
    return src


def _check_space(archive: Path, into: Path) -> None:
    """Refuse before writing when the unpacked size is more than the free space."""
    if not (zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive)):
        return
    need = sum(size for _, size, _ in _members(archive))
    free = shutil.disk_usage(into).free
    if need > free:
        raise DataError(
            f"{archive.name}: unpacks to {need:,} bytes but {into} has only {free:,} free"
        )


def unpack(archive: Path, into: Path, strip: int = 0) -> None:
    """Unpack (or copy) ``archive`` into ``into``, merging with what is there."""
    into.mkdir(parents=True, exist_ok=True)
    tmp = into.parent / f".{into.name}.unpack-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    member = archive.name
    try:
        _check_space(archive, into)
        if zipfile.is_zipfile(archive) or tarfile.is_tarfile(archive):
            for member, _, open_member in _members(archive):
                target = _target(member, strip, archive)
                if target is None:
                    continue
                (tmp / target).parent.mkdir(parents=True, exist_ok=True)
                with open_member() as src, (tmp / target).open("wb") as dst:
                    shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(archive, tmp / archive.name)
        for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dest = into / file.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, dest)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise DataError(f"{archive}: cannot unpack: {exc}") from exc
    except OSError as exc:
        raise DataError(
            f"{archive}: cannot unpack member {member!r}: {exc.strerror or exc}"
        ) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(
    task: str,
    files: list[Download],
    data_dir: Path,
    verify: bool = True,
    progress: Callable[[str], Progress] | None = None,
) -> list[str]:
    """Download and unpack every file of ``task`` into ``data_dir``; what was done, per file.

    A file already fetched (its URL and digest recorded in ``data_dir/.fetched.json``)
    is skipped, so re-running after a failure only does what is left.
    """
    record_path = data_dir / ".fetched.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    done = []
    for item in files:
        if record.get(item.url) == (item.sha256 or "unverified"):
            done.append(f"{item.filename}: already fetched")
            continue
        dest = paths.home() / "downloads" / task / item.filename
        download(item, dest, verify, progress(item.filename) if progress else None)
        try:
            unpack(dest, data_dir, item.strip)
        finally:  # a refused archive is not kept around to be reused for another URL
            dest.unlink(missing_ok=True)
        record[item.url] = item.sha256 or "unverified"
        atomic.write_text(record_path, json.dumps(record, indent=1))
        checked = "sha256 verified" if verify else "NOT verified"
        done.append(f"{item.filename}: downloaded ({checked}) and unpacked into {data_dir}")
    return done
