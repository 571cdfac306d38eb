import multiprocessing as mp
import sqlite3
import subprocess
import sys

from mmalign.results import MIGRATIONS, ResultsStore


def _row(i: int) -> dict:
    return dict(method="m", task="t", size="s", seed=i, config_hash=f"h{i}", config={"i": i})


def test_schema_version_and_wal(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    assert store.schema_version == len(MIGRATIONS)
    db = sqlite3.connect(tmp_path / "r.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ResultsStore(tmp_path / "r.sqlite")  # reopening does not re-run migrations
    assert store.schema_version == len(MIGRATIONS)


def test_lifecycle_round_trip(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.start("run1", **_row(0))
    assert store.get("run1")["status"] == "running"
    store.update("run1", status="completed", metrics={"test": {"acc": 0.5}}, skipped=3)
    row = store.get("run1")
    assert row["status"] == "completed" and row["metrics"] == {"test": {"acc": 0.5}}
    assert row["skipped"] == 3 and row["config"] == {"i": 0}


def _writer(path, worker):
    store = ResultsStore(path)
    for i in range(20):
        run_id = f"w{worker}-{i}"
        store.start(run_id, **_row(i))
        store.update(run_id, status="completed", metrics={"test": {"acc": i / 20}})


def test_concurrent_writers_lose_nothing(tmp_path):
    path = tmp_path / "r.sqlite"
    ResultsStore(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = ResultsStore(path).runs()
    assert len(rows) == 80 and all(r["status"] == "completed" for r in rows)


def test_dead_running_row_becomes_killed(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    store.start("gone", **_row(0))
    store.update("gone", pid=proc.pid)
    store.start("alive", **_row(1))  # this process: still running
    assert store.mark_stale() == 1
    assert store.get("gone")["status"] == "killed"
    assert store.get("alive")["status"] == "running"
