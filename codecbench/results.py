"""The results store: an embedded SQLite database with one row per
(dataset, image, codec, codec version, point, codec configuration).

Every row is written in its own transaction, so an interrupted run (Ctrl-C, ``kill -9``) keeps
everything committed before it, and a rerun skips what is there. Bitstreams are stored with the
rows so that reconstructions can be regenerated (for new metrics or reports) without re-encoding.

A row's ``probe`` flag marks a rate search's probe (``codecbench compare`` bisecting a continuous
knob between the points of a codec's sweep): it is stored and reused like any row, but the
leaderboard leaves it out. Stores written before the flag existed are migrated on opening (their
rows are not probes).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    command TEXT NOT NULL,
    environment TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    id INTEGER PRIMARY KEY,
    dataset TEXT NOT NULL,
    image TEXT NOT NULL,
    codec TEXT NOT NULL,
    codec_version TEXT NOT NULL,
    point REAL NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'failed')),
    error TEXT,
    height INTEGER,
    width INTEGER,
    nbytes INTEGER,
    bpp REAL,
    encode_s REAL,
    decode_s REAL,
    stream BLOB,
    attempts INTEGER NOT NULL DEFAULT 1,
    run_id TEXT,
    created TEXT NOT NULL,
    probe INTEGER NOT NULL DEFAULT 0,
    UNIQUE (dataset, image, codec, codec_version, point, config)
);
CREATE TABLE IF NOT EXISTS metric_values (
    result_id INTEGER NOT NULL REFERENCES results(id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (result_id, metric)
);
CREATE TABLE IF NOT EXISTS set_metric_values (
    dataset TEXT NOT NULL,
    codec TEXT NOT NULL,
    codec_version TEXT NOT NULL,
    point REAL NOT NULL,
    config TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    n_images INTEGER NOT NULL,
    PRIMARY KEY (dataset, codec, codec_version, point, config, metric)
);
"""


def default_db_path() -> Path:
    """``CODECBENCH_DB`` if set, else ``codecbench.sqlite`` in the working directory."""
    return Path(os.environ.get("CODECBENCH_DB", "codecbench.sqlite")).expanduser()


def config_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a codec configuration (part of every row's identity)."""
    return json.dumps(dict(config), sort_keys=True, default=str)


@dataclass(frozen=True)
class RowKey:
    """The identity of one result row."""

    dataset: str
    image: str
    codec: str
    codec_version: str
    point: float
    config: str


@dataclass
class StoredRow:
    """A row as read back from the store."""

    id: int
    status: str
    error: str | None
    stream: bytes | None
    attempts: int
    metrics: dict[str, float]
    bpp: float | None = None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stored_float(value: float | None) -> float | None:
    # SQLite stores NaN as NULL; keep that explicit.
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


class ResultStore:
    """Read and write benchmark results in one SQLite file."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys=ON")
        for statement in ("PRAGMA journal_mode=WAL", SCHEMA):
            try:
                self.conn.executescript(statement)
            except sqlite3.OperationalError as exc:  # a read-only store stays readable
                if "readonly" not in str(exc):
                    raise
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by an older codecbench up to :data:`SCHEMA` (columns added since)."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(results)")}
        self._probe_column = "r.probe" if "probe" in columns else "0 AS probe"
        if "probe" not in columns:
            try:
                self.conn.execute("ALTER TABLE results ADD COLUMN probe INTEGER NOT NULL DEFAULT 0")
            except sqlite3.OperationalError as exc:
                if "duplicate column" in str(exc):  # another process migrated it first
                    self._probe_column = "r.probe"
                elif "readonly" not in str(exc):  # a read-only old store stays readable
                    raise
            else:
                self._probe_column = "r.probe"

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> "_Transaction":
        return _Transaction(self.conn)

    def record_run(self, run_id: str, command: str, environment: Mapping[str, Any]) -> None:
        """Remember a run's command line and environment (versions, plugins, git SHA, device)."""
        with self._transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)",
                (run_id, _now(), command, json.dumps(environment, sort_keys=True)),
            )

    def get(self, key: RowKey) -> StoredRow | None:
        """The stored row for ``key`` with its metric values, or ``None``."""
        row = self.conn.execute(
            "SELECT id, status, error, stream, attempts, bpp FROM results WHERE dataset=? AND image=? "
            "AND codec=? AND codec_version=? AND point=? AND config=?",
            (key.dataset, key.image, key.codec, key.codec_version, key.point, key.config),
        ).fetchone()
        if row is None:
            return None
        metrics = dict(
            self.conn.execute(
                "SELECT metric, value FROM metric_values WHERE result_id=?", (row[0],)
            ).fetchall()
        )
        metrics = {k: (math.nan if v is None else v) for k, v in metrics.items()}
        return StoredRow(row[0], row[1], row[2], row[3], row[4], metrics, row[5])

    def put(
        self,
        key: RowKey,
        *,
        run_id: str,
        status: str,
        error: str | None = None,
        height: int | None = None,
        width: int | None = None,
        stream: bytes | None = None,
        bpp: float | None = None,
        encode_s: float | None = None,
        decode_s: float | None = None,
        metrics: Mapping[str, float] | None = None,
        probe: bool = False,
    ) -> int:
        """Insert or replace a row and its metric values in one transaction; return its id.

        ``probe`` marks a rate search's probe, which the leaderboard leaves out.
        """
        with self._transaction():
            previous = self.conn.execute(
                "SELECT attempts FROM results WHERE dataset=? AND image=? AND codec=? "
                "AND codec_version=? AND point=? AND config=?",
                (key.dataset, key.image, key.codec, key.codec_version, key.point, key.config),
            ).fetchone()
            attempts = previous[0] + 1 if previous else 1
            self.conn.execute(
                "DELETE FROM results WHERE dataset=? AND image=? AND codec=? "
                "AND codec_version=? AND point=? AND config=?",
                (key.dataset, key.image, key.codec, key.codec_version, key.point, key.config),
            )
            cur = self.conn.execute(
                "INSERT INTO results (dataset, image, codec, codec_version, point, config, status,"
                " error, height, width, nbytes, bpp, encode_s, decode_s, stream, attempts, run_id,"
                " created, probe) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.dataset, key.image, key.codec, key.codec_version, key.point, key.config,
                    status, error, height, width, None if stream is None else len(stream), bpp,
                    encode_s, decode_s, stream, attempts, run_id, _now(), int(probe),
                ),
            )
            result_id = int(cur.lastrowid)
            self._insert_metrics(result_id, metrics or {})
        return result_id

    def mark_probes(self, keys: Iterable[RowKey], probe: bool = True) -> None:
        """Set (or clear) the ``probe`` flag of the rows of ``keys`` (missing rows are ignored)."""
        with self._transaction():
            self.conn.executemany(
                "UPDATE results SET probe=? WHERE dataset=? AND image=? AND codec=? "
                "AND codec_version=? AND point=? AND config=?",
                [(int(probe), k.dataset, k.image, k.codec, k.codec_version, k.point, k.config)
                 for k in keys],
            )

    def add_metrics(self, result_id: int, metrics: Mapping[str, float]) -> None:
        """Add metric values to an existing row."""
        with self._transaction():
            self._insert_metrics(result_id, metrics)

    def _insert_metrics(self, result_id: int, metrics: Mapping[str, float]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO metric_values VALUES (?, ?, ?)",
            [(result_id, m, _stored_float(v)) for m, v in metrics.items()],
        )

    def get_set_metrics(self, key: RowKey) -> dict[str, float]:
        """Dataset-level metric values for the (dataset, codec, version, point, config) of ``key``."""
        rows = self.conn.execute(
            "SELECT metric, value FROM set_metric_values WHERE dataset=? AND codec=? AND "
            "codec_version=? AND point=? AND config=?",
            (key.dataset, key.codec, key.codec_version, key.point, key.config),
        ).fetchall()
        return {m: (math.nan if v is None else v) for m, v in rows}

    def put_set_metrics(self, key: RowKey, metrics: Mapping[str, float], n_images: int) -> None:
        """Store dataset-level metric values (the ``image`` field of ``key`` is ignored)."""
        with self._transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO set_metric_values VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (key.dataset, key.codec, key.codec_version, key.point, key.config, m,
                     _stored_float(v), n_images)
                    for m, v in metrics.items()
                ],
            )

    def streams(self, dataset: str, codec: str, point: float) -> Iterator[tuple[str, bytes]]:
        """(image, bitstream) of every successful row of one codec point, newest version first."""
        yield from self.conn.execute(
            "SELECT image, stream FROM results WHERE dataset=? AND codec=? AND point=? AND "
            "status='ok' ORDER BY created DESC, image",
            (dataset, codec, point),
        )

    def codec_names(self, dataset: str | None = None) -> list[str]:
        """The codecs with at least one successful row (on ``dataset``), sorted."""
        where, params = ("AND dataset=?", (dataset,)) if dataset else ("", ())
        return [r[0] for r in self.conn.execute(
            f"SELECT DISTINCT codec FROM results WHERE status='ok' {where} ORDER BY codec", params)]

    def frame(self, dataset: str | None = None, codecs: list[str] | None = None) -> pd.DataFrame:
        """Tidy table of rows: one per result, one column per metric value (no bitstreams)."""
        where, params = [], []
        if dataset:
            where.append("r.dataset = ?")
            params.append(dataset)
        if codecs:
            where.append(f"r.codec IN ({','.join('?' * len(codecs))})")
            params.extend(codecs)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = pd.read_sql_query(
            "SELECT r.id, r.dataset, r.image, r.codec, r.codec_version, r.point, r.config, "
            "r.status, r.error, r.height, r.width, r.nbytes, r.bpp, r.encode_s, r.decode_s, "
            f"r.attempts, r.run_id, {self._probe_column} FROM results r {clause} ORDER BY r.codec, r.point, r.image",
            self.conn,
            params=params,
        )
        rows["probe"] = rows["probe"].astype(bool)
        values = pd.read_sql_query(
            "SELECT m.result_id, m.metric, m.value FROM metric_values m "
            f"JOIN results r ON r.id = m.result_id {clause}", self.conn, params=params)
        if not values.empty and not rows.empty:
            wide = values.pivot(index="result_id", columns="metric", values="value")
            rows = rows.merge(wide, left_on="id", right_index=True, how="left")
        return rows

    def set_frame(self, dataset: str | None = None, *, with_counts: bool = False) -> pd.DataFrame:
        """Dataset-level metric values, one row per (dataset, codec, version, point, config).

        ``with_counts`` adds ``n_images``, the number of images each value was computed over.
        """
        df = pd.read_sql_query("SELECT * FROM set_metric_values", self.conn)
        if dataset:
            df = df[df["dataset"] == dataset]
        if df.empty:
            return df
        keys = ["dataset", "codec", "codec_version", "point", "config"]
        if with_counts:
            keys.append("n_images")
        return df.pivot_table(index=keys, columns="metric", values="value").reset_index()

    def runs(self) -> pd.DataFrame:
        """Every recorded run with its command and environment."""
        return pd.read_sql_query("SELECT * FROM runs ORDER BY started", self.conn)


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")
