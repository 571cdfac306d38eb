"""No file mmalign reads can run code: dataset pickles, checkpoints, archives."""

from __future__ import annotations

import io
import os
import pickle
import random
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mmalign import safe_pickle
from mmalign.cli import app
from mmalign.data.fetch import unpack
from mmalign.errors import DataError
from mmalign.runner import checkpoint
from tests.data.test_mmsa import mosi_pickle


class Evil:
    """Unpickling this runs ``touch <marker>``, the classic pickle payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_evil_payload_really_runs_under_plain_pickle(tmp_path):
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(Evil(marker)))  # the threat the restricted loader stops
    assert marker.exists()


@pytest.mark.parametrize("protocol", range(6))
def test_mmsa_content_round_trips_for_every_protocol(protocol):
    data = mosi_pickle()
    data["train"]["scalar"] = np.float64(1.5)
    data["extra"] = {"set": {1, 2}, "complex": 1 + 2j, "bytes": b"\x00\xff", "tuple": (1, "a"),
                     "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3))}
    got = safe_pickle.load(io.BytesIO(pickle.dumps(data, protocol=protocol)))
    for split in ("train", "valid", "test"):
        for key, value in data[split].items():
            np.testing.assert_array_equal(got[split][key], value)
            assert got[split][key].dtype == np.asarray(value).dtype
    assert got["extra"]["set"] == {1, 2} and got["extra"]["bytes"] == b"\x00\xff"
    np.testing.assert_array_equal(got["extra"]["fortran"], data["extra"]["fortran"])


def test_hostile_mmsa_pickle_is_refused_by_data_check_and_run(tmp_path, monkeypatch):
    monkeypatch.setenv("MMALIGN_HOME", str(tmp_path / "home"))
    marker = tmp_path / "pwned"
    data_dir = tmp_path / "mosi"
    data_dir.mkdir()
    payload = {"train": Evil(marker), "valid": {}, "test": {}}
    (data_dir / "unaligned_50.pkl").write_bytes(pickle.dumps(payload))
    runner = CliRunner()
    check = ["data", "check", "cmu-mosi", "--data-dir", str(data_dir), "--format", "json"]
    run = ["run", "tecafn", "--task", "cmu-mosi", "--data-dir", str(data_dir), "-q"]
    for args, code in ((check, 1), (run, 2)):  # data check exits 1 for "problems found"
        result = runner.invoke(app, args)
        assert not marker.exists(), args
        assert result.exit_code == code, (args, result.output)
        assert "unaligned_50.pkl" in result.output
        assert "refusing global 'posix.system'" in result.output
        assert "Traceback" not in result.output


def test_crafted_checkpoint_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "stage-train.ckpt"
    torch.save({"model": Evil(marker)}, ckpt)
    with pytest.raises(checkpoint.CheckpointError, match=r"stage-train\.ckpt: refusing to load"):
        checkpoint.load(ckpt)
    assert not marker.exists()


def test_damaged_checkpoint_is_named(tmp_path):
    ckpt = tmp_path / "stage-train.ckpt"
    checkpoint.save(ckpt, {"model": {"w": torch.ones(1000)}})
    ckpt.write_bytes(ckpt.read_bytes()[:700])
    with pytest.raises(checkpoint.CheckpointError, match=r"stage-train\.ckpt: damaged.*delete it"):
        checkpoint.load(ckpt)
    checkpoint.save(ckpt, {"model": {}})
    with pytest.raises(checkpoint.CheckpointError, match="missing objective, optimizer"):
        checkpoint.load_resume(ckpt)


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    checkpoint.seed_everything(11)
    torch.rand(3), np.random.rand(3), random.random()
    ckpt = tmp_path / "rng.ckpt"
    checkpoint.save(ckpt, {"rng": checkpoint.rng_state(), "history": [{"acc": np.float64(0.5)}]})
    expected = (torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)])
    np.random.seed(0), torch.manual_seed(0), random.seed(0)
    blob = torch.load(ckpt, weights_only=True)  # what checkpoint.load does
    checkpoint.set_rng_state(blob["rng"])
    assert torch.equal(torch.rand(4), expected[0])
    np.testing.assert_array_equal(np.random.rand(4), expected[1])
    assert [random.random() for _ in range(4)] == expected[2]
    assert blob["history"] == [{"acc": 0.5}] and type(blob["history"][0]["acc"]) is float


# ------------------------------------------------------------------------- archives


def _tar(path: Path, *members: tuple[tarfile.TarInfo, bytes | None]) -> Path:
    with tarfile.open(path, "w") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str, data: bytes = b"evil") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _zip(path: Path, *names: str) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in names:
            zf.writestr(name, b"evil")
    return path


def _written(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("name", ["../../evil", "/tmp/evil-abs", "sub/../../evil",
                                  "..\\..\\evil-backslash", "C:/evil-drive", "C:evil-rel",
                                  "\\\\server\\share\\evil"])
def test_archive_paths_outside_the_folder_are_refused(tmp_path, name):
    outside = tmp_path / "work"
    into = outside / "a" / "b" / "data"
    for archive in (_zip(tmp_path / "x.zip", name), _tar(tmp_path / "x.tar", _file(name))):
        with pytest.raises(DataError, match="refusing"):
            unpack(archive, into)
        assert _written(outside) == []  # nothing anywhere, not even inside


def test_links_are_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    into = tmp_path / "data"
    archive = _tar(tmp_path / "links.tar",
                   _link("lnk", str(outside), tarfile.SYMTYPE),
                   _file("lnk/evil-through-symlink"),
                   _link("up", "../../..", tarfile.SYMTYPE),
                   _file("up/evil-through-relsymlink"),
                   _link("passwd", "/etc/passwd", tarfile.LNKTYPE),
                   _file("ok.txt", b"fine"))
    unpack(archive, into)
    assert list(outside.iterdir()) == []
    assert _written(into) == ["lnk/evil-through-symlink", "ok.txt", "up/evil-through-relsymlink"]
    assert not any(p.is_symlink() for p in into.rglob("*"))


def test_unwritable_members_get_named_errors(tmp_path):
    long = _tar(tmp_path / "long.tar", _file("x" * 300))
    with pytest.raises(DataError, match="longer than 255 bytes"):
        unpack(long, tmp_path / "d1")
    clash = _tar(tmp_path / "clash.tar", _file("a"), _file("a/b"))
    with pytest.raises(DataError, match=r"clash\.tar: cannot unpack member 'a/b'"):
        unpack(clash, tmp_path / "d2")


def test_archive_larger_than_the_free_space_is_refused_before_writing(tmp_path, monkeypatch):
    import shutil

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros", b"\0" * 5_000_000)
    assert bomb.stat().st_size < 50_000
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: real(p)._replace(free=1_000_000))
    with pytest.raises(DataError, match=r"unpacks to 5,000,000 bytes but .* has only 1,000,000"):
        unpack(bomb, tmp_path / "data")
    assert _written(tmp_path / "data") == []


def test_duplicate_ids_in_an_mmsa_pickle_fail_data_check(tmp_path):
    from mmalign.data.check import check_task
    from mmalign.data.mmsa import CMUMOSI

    data = mosi_pickle()
    data["train"]["id"][2] = data["train"]["id"][0]
    (tmp_path / "unaligned_50.pkl").write_bytes(pickle.dumps(data))
    report = check_task(CMUMOSI(data_dir=tmp_path))
    dupes = [p for p in report["problems"] if "duplicate id" in p["error"]]
    assert dupes == [{"file": "unaligned_50.pkl",
                      "error": "train[2] id tr0$_$0: duplicate id (first at train[0])"}]


def test_an_id_longer_than_a_file_name_is_a_bad_sample_not_a_crash(tmp_path):
    from mmalign.data.media import media_error

    assert media_error("image", tmp_path / ("9" * 300 + ".jpg"), deep=False) == (
        "unusable image path: File name too long")
    assert media_error("image", tmp_path / "absent.jpg", deep=False) == "missing image file"
