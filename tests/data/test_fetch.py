"""`mmalign data fetch` against a loopback HTTP server: resume, sha256, unpack."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mmalign.cli_data import data_app
from mmalign.data.fetch import unpack
from mmalign.data.mvsa import MVSASingle
from mmalign.errors import DataError
from tests.data.fixtures import write_mvsa_single


class FixtureServer:
    """Serves in-memory files on 127.0.0.1 with HTTP Range support and fault injection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.cut_next: set[str] = set()  # send half the body, then hang up
        self.ignore_range = False
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                name, wanted = self.path.lstrip("/"), self.headers.get("Range")
                server.requests.append((name, wanted))
                if name not in server.files:
                    self.send_error(404)
                    return
                data, start, status = server.files[name], 0, 200
                if wanted and not server.ignore_range:
                    start, status = int(wanted.split("=")[1].split("-")[0]), 206
                body = data[start:]
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if name in server.cut_next:
                    server.cut_next.discard(name)
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    srv = FixtureServer()
    yield srv
    srv.close()


def mvsa_zip(tmp_path: Path) -> bytes:
    """The MVSA fixture zipped under a top folder, as the real archive is."""
    write_mvsa_single(tmp_path / "src")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted((tmp_path / "src").rglob("*")):
            if path.is_file():
                zf.write(path, "MVSA_Single/" + path.relative_to(tmp_path / "src").as_posix())
    return buf.getvalue()


def use_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str) -> None:
    path = tmp_path / "registry.toml"
    path.write_text(table)
    monkeypatch.setenv("MMALIGN_REGISTRY", str(path))


def fetch(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(data_app, ["fetch", *args])
    return result.exit_code, " ".join(result.output.split())


def test_resume_verify_unpack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FixtureServer, isolated_home: Path
) -> None:
    archive = mvsa_zip(tmp_path)
    server.files["mvsa.zip"] = archive
    digest = hashlib.sha256(archive).hexdigest()
    table = f'[datasets.mvsa-single]\nurl = "{server.url("mvsa.zip")}"\nsha256 = "{digest}"\n'
    use_registry(tmp_path, monkeypatch, table + "strip = 1\n")
    server.cut_next.add("mvsa.zip")
    code, out = fetch("mvsa-single")
    assert code == 2 and "run the same command again to resume it" in out
    part = isolated_home / "home" / "downloads" / "mvsa-single" / "mvsa.zip.part"
    assert part.stat().st_size == len(archive) // 2

    code, out = fetch("mvsa-single")
    assert code == 0, out
    assert server.requests[-1] == ("mvsa.zip", f"bytes={len(archive) // 2}-")
    assert "sha256 verified" in out and "mvsa-single is ready" in out
    assert not part.exists() and not part.with_suffix("").exists()
    data = MVSASingle().load()  # the default folder: MMALIGN_DATA/mvsa-single
    assert sum(len(v) for v in data.splits.values()) == 8

    before = len(server.requests)
    code, out = fetch("mvsa-single")
    assert code == 0 and "already fetched" in out and len(server.requests) == before


def test_wrong_digest_discards_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FixtureServer, isolated_home: Path
) -> None:
    server.files["mvsa.zip"] = mvsa_zip(tmp_path)
    table = f'[datasets.mvsa-single]\nurl = "{server.url("mvsa.zip")}"\nsha256 = "{"0" * 64}"\n'
    use_registry(tmp_path, monkeypatch, table)
    code, out = fetch("mvsa-single")
    assert code == 2 and f"does not match the expected {'0' * 64}" in out
    assert not list((isolated_home / "home" / "downloads" / "mvsa-single").iterdir())
    assert not (isolated_home / "datasets" / "mvsa-single" / "labelResultAll.txt").exists()


def test_server_ignoring_range_restarts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FixtureServer, isolated_home: Path
) -> None:
    archive = mvsa_zip(tmp_path)
    server.files["mvsa.zip"] = archive
    server.ignore_range = True
    digest = hashlib.sha256(archive).hexdigest()
    table = f'[datasets.mvsa-single]\nurl = "{server.url("mvsa.zip")}"\nsha256 = "{digest}"\n'
    use_registry(tmp_path, monkeypatch, table + "strip = 1\n")
    part = isolated_home / "home" / "downloads" / "mvsa-single" / "mvsa.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes from another file")
    code, out = fetch("mvsa-single")
    assert code == 0, out
    assert server.requests == [("mvsa.zip", "bytes=29-")]
    assert MVSASingle().is_present()


def test_unpinned_digest_needs_no_verify(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FixtureServer
) -> None:
    server.files["captions.json"] = b"{}"
    use_registry(
        tmp_path, monkeypatch, f'[datasets.coco-captions]\nurl = "{server.url("captions.json")}"\n'
    )
    code, out = fetch("coco-captions")
    assert code == 2 and "--no-verify" in out and server.requests == []
    code, out = fetch("coco-captions", "--no-verify")
    assert "NOT verified" in out
    assert code == 2 and "missing annotations/captions_train2017.json" in out  # not COCO yet


def test_no_public_download_says_where_to_ask(isolated_home: Path) -> None:
    code, out = fetch("cmu-mosi")
    assert code == 2
    assert "https://github.com/thuiar/MMSA" in out
    assert str(isolated_home / "datasets" / "cmu-mosi") in out


def test_http_error_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FixtureServer
) -> None:
    use_registry(tmp_path, monkeypatch, "")
    code, out = fetch("hfm", "--url", server.url("nothing.zip"), "--no-verify")
    assert code == 2 and "HTTP 404" in out


def test_unpack_tar_with_strip(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("top/a/b.txt", b"b"), ("top/c.txt", b"c")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    (tmp_path / "x.tar.gz").write_bytes(buf.getvalue())
    unpack(tmp_path / "x.tar.gz", tmp_path / "out", strip=1)
    assert (tmp_path / "out" / "a" / "b.txt").read_bytes() == b"b"
    assert (tmp_path / "out" / "c.txt").read_bytes() == b"c"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.tar.gz"]


@pytest.mark.parametrize("member", ["../evil.txt", "/etc/evil.txt"])
def test_unpack_refuses_unsafe_paths(tmp_path: Path, member: str) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(member, "x")
    (tmp_path / "bad.zip").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match="refusing unsafe member path"):
        unpack(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_plain_file_is_copied(tmp_path: Path) -> None:
    (tmp_path / "unaligned_50.pkl").write_bytes(b"data")
    unpack(tmp_path / "unaligned_50.pkl", tmp_path / "out")
    assert (
        json.dumps(sorted(p.name for p in (tmp_path / "out").iterdir())) == '["unaligned_50.pkl"]'
    )
