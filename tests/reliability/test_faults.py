"""Faults of the environment: plain error text, SIGTERM, liveness, a damaged or read-only
store, hanging plugins. Each ends in one line naming the path, and loses no row."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from mmalign import liveness
from mmalign.cli import app
from mmalign.cli_errors import print_error, report
from mmalign.results import MIGRATIONS, ResultsStore, StoreError

TOY_CLI = str(Path(__file__).parents[1] / "toy_cli.py")
LONG_RUN = ["run", "late-fusion", "--task", "toy-pairs", "--quiet",
            "--set", "task.samples=1200", "--set", "train.epochs=400",
            "--set", "train.patience=1000", "--set", "train.batch_size=8",
            "--set", 'encoders.a={name="toy-vector", config={seed=0}}',
            "--set", 'encoders.b={name="toy-vector", config={seed=1}}']


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_messages_print_literally_even_with_markup_like_text():
    console = Console(record=True, width=200)
    print_error(console, "every one of 4 samples failed [train/image]; see data/no[/x]dir")
    assert console.export_text() == (
        "error: every one of 4 samples failed [train/image]; see data/no[/x]dir\n")


def test_cli_error_keeps_brackets(tmp_path, monkeypatch):
    monkeypatch.setenv("MMALIGN_HOME", str(tmp_path))
    result = CliRunner().invoke(app, ["run", "late-fusion", "--set", "[/x]=1", "-q"])
    assert result.exit_code == 2
    assert "Unknown config key '[/x]'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(("exc", "expected"), [
    (OSError(errno.EROFS, "Read-only file system", "/ro/home/runs"),
     "error: /ro/home/runs: Read-only file system (MMALIGN_HOME must be writable"),
    (OSError(errno.ENOSPC, "No space left on device", "/small/cache/x.pt"),
     "error: /small/cache/x.pt: No space left on device (free some space"),
    (FileExistsError(errno.EEXIST, "File exists", "/home/file"),
     "error: /home/file: File exists (a file stands where mmalign needs a folder"),
    (sqlite3.OperationalError("disk I/O error"), "error: the results store failed: disk I/O"),
])
def test_environment_faults_are_one_line(exc, expected):
    console = Console(record=True, width=300)
    assert report(console, exc) == 1
    text = console.export_text()
    assert text.startswith(expected) and text.count("\n") == 1


def test_a_bug_still_raises(monkeypatch):
    with pytest.raises(ZeroDivisionError):
        report(Console(), ZeroDivisionError("a bug, not a fault"))


def test_damaged_store_is_reported_untouched_then_moved_aside_on_request(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    db = home / "results.sqlite"
    db.write_bytes(os.urandom(20_000))
    before = _sha(db)
    monkeypatch.setenv("MMALIGN_HOME", str(home))
    runner = CliRunner()
    for args in (["runs"], ["compare"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"{db}: the results store is damaged" in result.output
        assert "mmalign runs --repair" in result.output
    assert _sha(db) == before  # never overwritten silently
    result = runner.invoke(app, ["runs", "--repair"])
    assert result.exit_code == 0 and "moved the damaged store to" in result.output
    (moved,) = home.glob("results.sqlite.corrupt-*")
    assert _sha(moved) == before and not db.exists()
    assert runner.invoke(app, ["runs"]).exit_code == 0  # a new, empty store
    assert runner.invoke(app, ["runs", "--repair"]).output.strip() == "the store is fine"


def test_store_from_a_newer_schema_is_refused(tmp_path):
    db = tmp_path / "results.sqlite"
    ResultsStore(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(StoreError, match=f"newer mmalign \\(schema 99, this one knows "
                                         f"{len(MIGRATIONS)}\\)"):
        ResultsStore(db)


def test_read_only_opening_writes_nothing(tmp_path):
    db = tmp_path / "results.sqlite"
    store = ResultsStore(db)
    store.start("r1", method="m", task="t", size="s", seed=0, config_hash="h", config={})
    with sqlite3.connect(db) as con:  # a row whose process is gone: a writer would reap it
        con.execute("UPDATE runs SET pid = 999999999")
    before = _sha(db)
    rows = ResultsStore(db, read_only=True).runs()
    assert [r["status"] for r in rows] == ["running"]  # not reaped: nothing is written
    assert _sha(db) == before


def _row(**changes):
    return {**liveness.me(), **changes}


def test_liveness_marks_killed_only_what_provably_ended():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not liveness.is_dead(_row())  # this very process
    assert liveness.is_dead(_row(pid=dead.pid))
    assert not liveness.is_dead(_row(pid=dead.pid, pid_ns="pid:[4026530000]"))  # a container
    assert not liveness.is_dead(_row(pid=dead.pid, host=socket.gethostname() + "-other"))
    assert not liveness.is_dead(_row(pid=dead.pid, boot_id="another-boot"))
    assert liveness.is_dead(_row(proc_start=liveness.me()["proc_start"] - 1))  # pid reused


def test_sigterm_closes_the_row_as_killed_and_keeps_the_checkpoint(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "MMALIGN_HOME": str(home), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, TOY_CLI, *LONG_RUN], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(home.glob("runs/*/stage-train.ckpt")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    (row,) = ResultsStore(home / "results.sqlite", read_only=True).runs()
    assert row["status"] == "killed" and "SIGTERM" in row["error"]
    assert list(home.glob("runs/*/stage-train.ckpt"))


@pytest.mark.parametrize(("body", "message"), [
    ("import time\n    time.sleep(3600)", "plugin 'hang_plugin' (mmalign_register) did not "
                                           "return within 2 s (MMALIGN_PLUGIN_TIMEOUT)"),
    ("import sys\n    sys.exit(0)", "Plugin 'hang_plugin' failed while registering: SystemExit"),
])
def test_faulty_plugins_are_named(tmp_path, body, message):
    (tmp_path / "hang_plugin.py").write_text(
        "from mmalign.hookspecs import hookimpl\n\n\n@hookimpl\n"
        f"def mmalign_register(registry):\n    {body}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MMALIGN_PLUGINS": "hang_plugin",
           "MMALIGN_PLUGIN_TIMEOUT": "2", "MMALIGN_HOME": str(tmp_path / "home")}
    warm = ("import sys; from mmalign import plugins; from mmalign.cli import entry; "
            "[ep.load() for ep in plugins._entry_points()]; "  # slow imports first, unlimited
            "sys.argv = ['mmalign', 'list', 'method']; entry()")
    result = subprocess.run([sys.executable, "-c", warm], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert message in result.stderr and "MMALIGN_BLOCK_PLUGINS=hang_plugin" in result.stderr
