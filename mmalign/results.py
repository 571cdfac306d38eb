"""The results store: one SQLite row per run, safe for concurrent writers.

WAL mode plus a busy timeout lets several runs write to one database at once;
every write is one short transaction. ``schema_version`` and :data:`MIGRATIONS`
let later versions extend the schema without losing rows.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mmalign import liveness, paths
from mmalign.errors import MMAlignError

STATUSES = ("running", "completed", "failed", "killed")

MIGRATIONS: list[str] = [
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        method TEXT NOT NULL,
        task TEXT NOT NULL,
        size TEXT NOT NULL,
        seed INTEGER NOT NULL,
        config_hash TEXT NOT NULL,
        config TEXT NOT NULL,
        status TEXT NOT NULL,
        metrics TEXT NOT NULL DEFAULT '{}',
        params TEXT NOT NULL DEFAULT '{}',
        extra TEXT NOT NULL DEFAULT '{}',
        wall_time REAL,
        device TEXT,
        versions TEXT NOT NULL DEFAULT '{}',
        skipped INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        run_dir TEXT,
        host TEXT,
        pid INTEGER,
        started_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX runs_task ON runs(task, method, size);
    """,
    # liveness: a pid is judged only in its own boot and PID namespace (see liveness.py)
    """
    ALTER TABLE runs ADD COLUMN boot_id TEXT;
    ALTER TABLE runs ADD COLUMN pid_ns TEXT;
    ALTER TABLE runs ADD COLUMN proc_start INTEGER;
    """,
]
JSON_COLUMNS = ("config", "metrics", "params", "extra", "versions")


class StoreError(MMAlignError):
    """The results store is damaged, from a newer mmalign, or cannot be opened."""


class ResultsStore:
    """Runs recorded in an SQLite database (default ``MMALIGN_HOME/results.sqlite``).

    ``read_only`` opens an existing store without writing anything (no WAL switch, no
    migration, no reaping of dead runs), so an archived or read-only store can be read.
    A damaged database is reported, never overwritten: :func:`move_aside` (``mmalign
    runs --repair``) renames it so that a new one can start.
    """

    def __init__(self, path: Path | None = None, read_only: bool = False) -> None:
        self.path = Path(path) if path is not None else paths.results_db()
        self.read_only = read_only
        try:
            if read_only:
                with self._connect() as db:
                    self._check_version(db)
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                self._migrate(db)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise
            raise StoreError(_damaged(self.path, exc)) from None

    @classmethod
    def for_reading(cls, path: Path | None = None) -> ResultsStore:
        """Read-write where possible (dead runs get reaped), else read-only."""
        where = Path(path) if path is not None else paths.results_db()
        writable = os.access(where.parent, os.W_OK) and (
            not where.exists() or os.access(where, os.W_OK)
        )
        if not writable and not where.exists():
            raise StoreError(f"{where}: no results store here (and the folder is read-only)")
        return cls(where, read_only=not writable)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            try:
                db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
                db.execute("SELECT 1 FROM sqlite_master").fetchone()
            except sqlite3.OperationalError:  # WAL needs a writable folder for -shm
                uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
                db = sqlite3.connect(uri, uri=True)
        else:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA busy_timeout=60000")
        try:
            yield db
        finally:
            db.close()

    def _check_version(self, db: sqlite3.Connection) -> int:
        try:
            row = db.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError:  # a read-only store never initialised
            return 0
        current = row[0] if row else 0
        if current > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: written by a newer mmalign (schema {current}, this one knows "
                f"{len(MIGRATIONS)}); upgrade mmalign, or use another MMALIGN_HOME"
            )
        return current

    def _migrate(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM schema_version").fetchone()
            current = self._check_version(db)
            for version, sql in enumerate(MIGRATIONS[current:], start=current + 1):
                for statement in filter(None, (s.strip() for s in sql.split(";"))):
                    db.execute(statement)
                if row:
                    db.execute("UPDATE schema_version SET version = ?", (version,))
                else:
                    db.execute("INSERT INTO schema_version VALUES (?)", (version,))
                    row = (version,)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT version FROM schema_version").fetchone()[0]

    def start(self, run_id: str, **fields: Any) -> None:
        """Insert (or, on resume, reset to running) the row for ``run_id``."""
        now = time.time()
        row = {
            "run_id": run_id,
            "status": "running",
            **liveness.me(),
            "started_at": now,
            "updated_at": now,
            **fields,
        }
        row = {k: json.dumps(v, sort_keys=True) if k in JSON_COLUMNS else v for k, v in row.items()}
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        updates = ", ".join(f"{c}=excluded.{c}" for c in row if c not in ("run_id", "started_at"))
        with self._connect() as db:
            db.execute(
                f"INSERT INTO runs ({cols}) VALUES ({marks}) "
                f"ON CONFLICT(run_id) DO UPDATE SET {updates}",
                tuple(row.values()),
            )

    def update(self, run_id: str, **fields: Any) -> None:
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        fields["updated_at"] = time.time()
        values = [
            json.dumps(v, sort_keys=True) if k in JSON_COLUMNS else v for k, v in fields.items()
        ]
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", (*values, run_id))

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return _decode(row) if row else None

    def runs(self, task: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        if not self.read_only:
            self.mark_stale()
        query, args = "SELECT * FROM runs WHERE 1=1", []
        if task:
            query += " AND task = ?"
            args.append(task)
        if status:
            query += " AND status = ?"
            args.append(status)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY started_at", args).fetchall()
        return [_decode(r) for r in rows]

    def mark_stale(self) -> int:
        """Mark runs whose process provably ended as killed (:func:`liveness.is_dead`)."""
        host = socket.gethostname()
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM runs WHERE status = 'running' AND host = ?", (host,)
            ).fetchall()
        dead = [r["run_id"] for r in rows if liveness.is_dead(dict(r))]
        for run_id in dead:
            self.update(run_id, status="killed", error="process ended without recording a result")
        return len(dead)


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    for key in JSON_COLUMNS:
        out[key] = json.loads(out[key]) if out[key] else {}
    return out


def _damaged(path: Path, exc: sqlite3.DatabaseError) -> str:
    return (
        f"{path}: the results store is damaged or not a database ({exc}); nothing was "
        f"changed. `mmalign runs --repair` moves it aside (to {path.name}.corrupt-TIME) "
        f"so that a new store can start; the old rows stay in the moved file"
    )


def move_aside(path: Path) -> Path:
    """Rename a damaged store (and its -wal/-shm) so that the next run starts a new one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            os.replace(src, Path(f"{target}{suffix}"))
    return target
