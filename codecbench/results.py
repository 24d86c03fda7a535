"""The results store: an embedded SQLite database with one row per
(dataset, image, codec, codec version, point, codec configuration).

Every row is written in its own transaction, so an interrupted run (Ctrl-C, ``kill -9``) keeps
everything committed before it, and a rerun skips what is there. Bitstreams are stored with the
rows so that reconstructions can be regenerated (for new metrics or reports) without re-encoding.

A row's ``probe`` flag marks a rate search's probe (``codecbench compare`` bisecting a continuous
knob between the points of a codec's sweep): it is stored and reused like any row, but the
leaderboard leaves it out. Stores written before the flag existed are migrated on opening (their
rows are not probes). Compare writes inside :meth:`ResultStore.probing`; a runner that asks for a
probe's unit outside it (``codecbench run -p`` at that point) makes it a benchmark row: the flag
is cleared as the row is read for it.

**Checkpoints.** A row of a codec configured with ``weights`` (a learned codec given the user's
checkpoint files, ``--weights PATH[,PATH...]``) stores each file's absolute path and sha256
(``weights_files``, JSON), read back by :meth:`ResultStore.weights_files`, so a report can find
the exact files that coded it, or name them.

**Identity by content.** A row stores the sha256 of the image file it was computed from
(``image_sha256``). The runner passes the file's current hash to :meth:`ResultStore.get`, which
reads a row computed from other content (an image replaced in place, another folder typed with the
same name) back as ``stale``, so the runner recomputes it, and logs one line per changed image.
Rows of older stores carry no hash: they are trusted once and stamped with the current file's hash.
Recomputing them all would cost hours of learned-codec time for nothing on named datasets, whose
files are checked against their manifest's sha256 before every run; only ``folder:`` rows could
have been computed from other content.

**Stream checksums.** Every bitstream is stored with its sha256 (``stream_sha256``; streams of an
older store get theirs, trusted, when it is first opened for writing). A row whose stream no longer
matches reads back as ``damaged``: the runner recomputes it, reading its
:attr:`StoredRow.stream` raises :class:`~codecbench.errors.StreamChecksumError` naming dataset,
image, codec and point, and :meth:`ResultStore.check` (``codecbench db check``) lists it.

**Concurrent runs.** The runner claims a unit (table ``claims``: owner, pid, host, time) before it
computes it; writing the row releases the claim. A second run on the same store leaves claimed
units to their owner and waits for their rows instead of computing them again. A claim whose
process is gone (same host, pid no longer running) or older than :data:`CLAIM_TTL_S` is taken over.

**Failures.** SQLite errors become one-line :class:`~codecbench.errors.StoreError` messages naming
the file and the fix (read-only, disk full, damaged, locked). A store whose file or folder is not
writable is opened read-only (``mode=ro``; ``immutable=1`` where a read-only folder leaves SQLite no
room for its WAL index), so ``results``, ``compare --no-probe`` and ``report`` work on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import socket
import sqlite3
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from codecbench.errors import StoreError, StreamChecksumError

if TYPE_CHECKING:  # pandas is imported by the methods that return frames (the CLI starts without it)
    import pandas as pd

log = logging.getLogger(__name__)

CLAIM_TTL_S = 6 * 3600.0  # a claim older than this is taken over, whatever its process
CLAIM_POLL_S = 1.0  # how often a run waiting for another run's units looks again
HOST = socket.gethostname()

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
    image_sha256 TEXT,
    stream_sha256 TEXT,
    weights_files TEXT,
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
CREATE TABLE IF NOT EXISTS matched_set_metric_values (
    dataset TEXT NOT NULL,
    codec TEXT NOT NULL,
    codec_version TEXT NOT NULL,
    config TEXT NOT NULL,
    selection TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (dataset, codec, codec_version, config, selection, metric)
);
CREATE TABLE IF NOT EXISTS claims (
    dataset TEXT NOT NULL,
    image TEXT NOT NULL,
    codec TEXT NOT NULL,
    codec_version TEXT NOT NULL,
    point REAL NOT NULL,
    config TEXT NOT NULL,
    owner TEXT NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    claimed REAL NOT NULL,
    PRIMARY KEY (dataset, image, codec, codec_version, point, config)
);
"""

# Columns of ``results`` added since the first schema, with their declarations (migrated on opening).
ADDED_COLUMNS = {
    "probe": "INTEGER NOT NULL DEFAULT 0",
    "image_sha256": "TEXT",
    "stream_sha256": "TEXT",
    "weights_files": "TEXT",
}

KEY_WHERE = "dataset=? AND image=? AND codec=? AND codec_version=? AND point=? AND config=?"


def default_db_path() -> Path:
    """``CODECBENCH_DB`` if set, else ``codecbench.sqlite`` in the working directory."""
    return Path(os.environ.get("CODECBENCH_DB", "codecbench.sqlite")).expanduser()


def config_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a codec configuration (part of every row's identity)."""
    return json.dumps(dict(config), sort_keys=True, default=str)


def stream_checksum(stream: bytes) -> str:
    """The checksum stored with a bitstream: its hex sha256."""
    return hashlib.sha256(stream).hexdigest()


def weights_files(config: str) -> str | None:
    """JSON list of ``{"path", "sha256"}`` for the files of a configuration's ``weights`` option
    (absolute paths; ``sha256`` ``None`` for a file that cannot be read), or ``None`` without it."""
    from codecbench.files import cached_sha256

    try:
        given = json.loads(config).get("weights") if config else None
    except (ValueError, AttributeError):
        return None
    files = []
    for name in str(given or "").split(","):
        if name.strip():
            path = Path(name.strip()).expanduser().absolute()
            try:
                digest: str | None = cached_sha256(path)
            except OSError:
                digest = None
            files.append({"path": str(path), "sha256": digest})
    return json.dumps(files) if files else None


@dataclass(frozen=True)
class RowKey:
    """The identity of one result row."""

    dataset: str
    image: str
    codec: str
    codec_version: str
    point: float
    config: str

    def params(self) -> tuple[str, str, str, str, float, str]:
        return (self.dataset, self.image, self.codec, self.codec_version, self.point, self.config)

    def describe(self) -> str:
        from codecbench.codec import format_point

        return f"{self.codec} @ {format_point(self.point)} on {self.image} ({self.dataset})"


@dataclass
class StoredRow:
    """A row as read back from the store.

    ``status`` is ``ok`` or ``failed`` as stored, or, for a row that must be recomputed,
    ``damaged`` (its stream no longer matches its checksum) or ``stale`` (computed from other
    image content than the file's now); ``error`` then says why. Reading the ``stream`` of a
    damaged row raises :class:`~codecbench.errors.StreamChecksumError`.
    """

    id: int
    status: str
    error: str | None
    _stream: bytes | None
    attempts: int
    metrics: dict[str, float]
    bpp: float | None = None
    damage: StreamChecksumError | None = field(default=None, repr=False)

    @property
    def stream(self) -> bytes | None:
        if self.damage is not None:
            raise self.damage.with_traceback(None)
        return self._stream


@dataclass(frozen=True)
class Claim:
    """A run's claim on a unit: who holds it and since when (``claimed``: Unix time)."""

    owner: str
    pid: int
    host: str
    claimed: float

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.claimed).strftime("%H:%M:%S")
        return f"pid {self.pid} on {self.host}, since {since}"

    def is_live(self, now: float | None = None) -> bool:
        """Whether its process may still be working on it: not expired and, on this host, running."""
        if (now or time.time()) - self.claimed > CLAIM_TTL_S:
            return False
        if self.host != HOST:
            return True
        return self.pid != os.getpid() and process_running(self.pid)


def process_running(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


@dataclass
class StoreCheck:
    """What :meth:`ResultStore.check` found (``codecbench db check``)."""

    path: Path
    integrity: list[str]
    counts: dict[str, int] = field(default_factory=dict)
    orphan_metrics: int = 0
    damaged: list[RowKey] = field(default_factory=list)
    unhashed_images: int = 0
    claims: list[tuple[RowKey, Claim, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.integrity == ["ok"] and not (self.orphan_metrics or self.damaged or self.errors)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stored_float(value: float | None) -> float | None:
    # SQLite stores NaN as NULL; keep that explicit.
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` and create SQLite's side files beside it."""
    folder = path.parent if str(path.parent) else Path(".")
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(folder, os.W_OK)


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """The SQLite error behind ``exc`` (pandas wraps them in its own ``DatabaseError``)."""
    while exc is not None:
        if isinstance(exc, sqlite3.Error):
            return exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def store_error(exc: BaseException, path: Path) -> StoreError:
    """A one-line :class:`StoreError` for a SQLite error on the store at ``path``, with the fix."""
    error = _sqlite_error(exc) or exc
    name = getattr(error, "sqlite_errorname", "") or ""
    text = str(error)
    if name == "SQLITE_FULL" or "database or disk is full" in text:
        return StoreError(
            f"Cannot write to the results database {path}: the disk is full ({text}). Free space "
            "on its file system or pass --db with a file on another disk; the rows written so far "
            "are kept, and rerunning the command resumes.")
    if name.startswith("SQLITE_READONLY") or "readonly database" in text:
        return StoreError(
            f"The results database {path} is read-only (the file or its folder is not writable): "
            "`results`, `compare --no-probe` and `report` read it, but this command writes. Make "
            f"both writable, or copy it with `codecbench db backup --db {path} COPY.sqlite` and "
            "pass --db COPY.sqlite.")
    if name in ("SQLITE_NOTADB",) or name.startswith("SQLITE_CORRUPT") or "malformed" in text \
            or "not a database" in text:
        return StoreError(
            f"The results database {path} is damaged or not a SQLite file ({text}). Restore a "
            f"backup (`codecbench db backup` makes consistent ones), recover what is readable with "
            f"`sqlite3 {path} .recover | sqlite3 recovered.sqlite`, or move it away to start a new "
            "store.")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            f"The results database {path} stayed locked by another process for 60 s ({text}); "
            "wait for that process to finish, or pass --db with another file.")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(
            f"Cannot open the results database {path} ({text}): check that its folder exists and "
            "is readable, or pass --db with another path.")
    if name.startswith("SQLITE_IOERR") or "I/O error" in text:
        return StoreError(
            f"I/O error on the results database {path} ({text}): check the disk and its file "
            "system (a network file system without locking cannot hold a SQLite store).")
    if "no such table" in text:
        return StoreError(
            f"{path} is not a codecbench results database ({text}); pass --db with the right file.")
    return StoreError(f"Results database {path}: {type(error).__name__}: {text}")


def _database_errors() -> tuple[type[Exception], ...]:
    """SQLite's errors, and pandas' ``DatabaseError`` (its wrapper of them) once pandas is imported
    (before, nothing can have raised it)."""
    pandas = sys.modules.get("pandas")
    return (sqlite3.Error,) if pandas is None else (sqlite3.Error, pandas.errors.DatabaseError)


F = TypeVar("F", bound=Callable[..., Any])


def _guarded(method: F) -> F:
    """Turn SQLite errors raised by a :class:`ResultStore` method into :class:`StoreError`."""

    @wraps(method)
    def wrapper(self: "ResultStore", *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StoreError:
            raise
        except _database_errors() as exc:
            raise store_error(exc, self.path) from exc

    return wrapper  # type: ignore[return-value]


class ResultStore:
    """Read and write benchmark results in one SQLite file.

    ``read_only`` (default: whether the file or its folder is not writable) opens it read-only;
    writing then raises a :class:`~codecbench.errors.StoreError` that says so.
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.owner = uuid.uuid4().hex  # this store's claims
        self._claimed = False  # whether it ever claimed (only then has it claims to release)
        self._said: set[tuple[str, ...]] = set()  # one log line per changed image or damaged row
        self._seen: dict[int, tuple[Any, ...]] = {}  # row id -> (key, attempts) as get() read it
        self._probing = False  # inside probing(): compare's rate search is writing
        self.read_only = (not _writable(self.path)) if read_only is None else read_only
        self.conn: sqlite3.Connection | None = None
        try:
            if self.read_only:
                self.conn = self._connect_read_only()
            else:
                self._open_for_writing()
            self._columns = self._read_columns()
        except (sqlite3.Error, OSError) as exc:
            if self.conn is not None:
                self.conn.close()
            if isinstance(exc, OSError):
                raise StoreError(f"Cannot create the results database {self.path}: {exc}") from exc
            raise store_error(exc, self.path) from exc

    def _open_for_writing(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self.conn.execute("PRAGMA foreign_keys=ON")
        try:
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)
            self._migrate()
        except sqlite3.OperationalError as exc:
            if not (getattr(exc, "sqlite_errorname", "").startswith("SQLITE_READONLY")
                    or "readonly" in str(exc)):
                raise
            # Writable by its permissions, yet not here (a read-only mount): read it.
            self.conn.close()
            self.conn = self._connect_read_only()
            self.read_only = True

    def _connect_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"No results database at {self.path}, and its folder is not "
                             "writable to create one; pass --db with a writable path.")
        uri = "file:" + urllib.parse.quote(str(self.path.absolute()))
        for flag in ("mode=ro", "immutable=1"):
            conn = sqlite3.connect(f"{uri}?{flag}", uri=True, timeout=60, isolation_level=None)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return conn
            except sqlite3.OperationalError as exc:
                conn.close()
                # mode=ro still needs to create the WAL index beside the file; a read-only folder
                # forbids it, and immutable=1 reads the file as it is.
                if flag == "immutable=1" or not ("readonly" in str(exc) or "unable to open" in str(exc)):
                    raise
                log.debug("%s: read-only folder, opening it immutable (%s)", self.path, exc)
        raise AssertionError("unreachable")

    def _read_columns(self) -> set[str]:
        return {row[1] for row in self.conn.execute("PRAGMA table_info(results)")}

    def _migrate(self) -> None:
        """Bring a store written by an older codecbench up to :data:`SCHEMA` (columns added since,
        checksums of the streams it holds)."""
        if set(ADDED_COLUMNS) <= self._read_columns():
            return
        with self._transaction():
            columns = self._read_columns()  # another process may have migrated it meanwhile
            for name, declaration in ADDED_COLUMNS.items():
                if name not in columns:
                    self.conn.execute(f"ALTER TABLE results ADD COLUMN {name} {declaration}")
            if "stream_sha256" not in columns:
                ids = [r[0] for r in self.conn.execute(
                    "SELECT id FROM results WHERE stream IS NOT NULL").fetchall()]
                for result_id in ids:
                    (stream,) = self.conn.execute(
                        "SELECT stream FROM results WHERE id=?", (result_id,)).fetchone()
                    self.conn.execute("UPDATE results SET stream_sha256=? WHERE id=?",
                                      (stream_checksum(stream), result_id))
                if ids:
                    log.info("%s: checksums added to the %d stored bitstream(s) of an older store",
                             self.path, len(ids))

    def _col(self, name: str, default: str = "NULL") -> str:
        """``r.name`` in a query on ``results r``, or ``default`` where an old read-only store
        lacks the column."""
        return f"r.{name}" if name in self._columns else f"{default} AS {name}"

    def close(self) -> None:
        if self.conn is not None:
            if not self.read_only:
                self.release_claims()
            self.conn.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> "_Transaction":
        return _Transaction(self.conn)

    @contextmanager
    def probing(self) -> Iterator[None]:
        """Within the block, runs on this store are a rate search's (``compare``): reading a probe
        row for a unit leaves it a probe. Outside, a runner's read clears the flag (see
        :meth:`get`)."""
        previous, self._probing = self._probing, True
        try:
            yield
        finally:
            self._probing = previous

    @_guarded
    def record_run(self, run_id: str, command: str, environment: Mapping[str, Any]) -> None:
        """Remember a run's command line and environment (versions, plugins, git SHA, device)."""
        with self._transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?)",
                (run_id, _now(), command, json.dumps(environment, sort_keys=True)),
            )

    @_guarded
    def get(self, key: RowKey, image_sha256: str | None = None) -> StoredRow | None:
        """The stored row for ``key`` with its metric values, or ``None``.

        With ``image_sha256`` (the image file's hash now), a row computed from other content
        reads back as ``stale``; a row without a hash (an older store) is stamped with it. Such a
        read is a runner asking for the unit: outside :meth:`probing`, a probe row becomes a
        benchmark row (its flag is cleared), since a run requested its point.
        """
        row = self.conn.execute(
            "SELECT r.id, r.status, r.error, r.stream, r.attempts, r.bpp, "
            f"{self._col('image_sha256')}, {self._col('stream_sha256')}, {self._col('probe', '0')} "
            f"FROM results r WHERE {KEY_WHERE}", key.params(),
        ).fetchone()
        if row is None:
            return None
        result_id, status, error, stream, attempts, bpp, stored_image, checksum, probe = row
        if probe and image_sha256 and not self._probing and not self.read_only:
            self.mark_probes([key], probe=False)
            log.info("%s: a probe of codecbench compare, now a benchmark row (requested by a run)",
                     key.describe())
        self._seen[result_id] = (*key.params(), attempts)
        metrics = {m: (math.nan if v is None else v) for m, v in self.conn.execute(
            "SELECT metric, value FROM metric_values WHERE result_id=?", (result_id,))}
        stored = StoredRow(result_id, status, error, stream, attempts, metrics, bpp)
        if stream is not None and checksum and stream_checksum(stream) != checksum:
            stored.damage = self._damage(key, checksum, stream)
            stored.status, stored.error = "damaged", str(stored.damage)
        elif image_sha256 and stored_image and stored_image != image_sha256:
            stored.status = "stale"
            stored.error = (f"computed from other content of {key.image} (sha256 "
                            f"{stored_image[:12]}..., the file's is now {image_sha256[:12]}...)")
            if ("stale", key.dataset, key.image, stored_image) not in self._said:
                self._said.add(("stale", key.dataset, key.image, stored_image))
                log.warning("%s: %s changed since its rows were stored (sha256 %s... now %s...); "
                            "recomputing them", key.dataset, key.image, stored_image[:12],
                            image_sha256[:12])
        elif image_sha256 and not stored_image and not self.read_only:
            # Trusted once: rows of an older store take the current file's hash.
            with self._transaction():
                self.conn.execute(
                    "UPDATE results SET image_sha256=? WHERE dataset=? AND image=? AND "
                    "image_sha256 IS NULL", (image_sha256, key.dataset, key.image))
        return stored

    def _damage(self, key: RowKey, expected: str, stream: bytes) -> StreamChecksumError:
        message = (f"Stored bitstream of {key.describe()} does not match its checksum "
                   f"(sha256 {expected[:12]}..., read {stream_checksum(stream)[:12]}...): the store "
                   f"{self.path} is damaged there. `codecbench run` recomputes the row; "
                   "`codecbench db check` lists every damaged stream.")
        if ("damaged", *map(str, key.params())) not in self._said:
            self._said.add(("damaged", *map(str, key.params())))
            log.warning("%s", message)
        return StreamChecksumError(message, dataset=key.dataset, image=key.image, codec=key.codec,
                                   point=key.point)

    @_guarded
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
        image_sha256: str | None = None,
    ) -> int:
        """Insert or replace a row and its metric values in one transaction; return its id.

        ``probe`` marks a rate search's probe, which the leaderboard leaves out. ``image_sha256``
        is the hash of the image file the row was computed from. The files of a ``weights``
        option in the key's configuration are recorded with their sha256 (:func:`weights_files`).
        Writing the row releases this store's claim on it.
        """
        with self._transaction():
            previous = self.conn.execute(
                f"SELECT attempts FROM results WHERE {KEY_WHERE}", key.params()).fetchone()
            attempts = previous[0] + 1 if previous else 1
            self.conn.execute(f"DELETE FROM results WHERE {KEY_WHERE}", key.params())
            cur = self.conn.execute(
                "INSERT INTO results (dataset, image, codec, codec_version, point, config, status,"
                " error, height, width, nbytes, bpp, encode_s, decode_s, stream, attempts, run_id,"
                " created, probe, image_sha256, stream_sha256, weights_files)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    *key.params(), status, error, height, width,
                    None if stream is None else len(stream), bpp, encode_s, decode_s, stream,
                    attempts, run_id, _now(), int(probe), image_sha256,
                    None if stream is None else stream_checksum(stream), weights_files(key.config),
                ),
            )
            result_id = int(cur.lastrowid)
            self._seen[result_id] = (*key.params(), attempts)
            self._insert_metrics(result_id, metrics or {})
            self.conn.execute(f"DELETE FROM claims WHERE {KEY_WHERE} AND owner=?",
                              (*key.params(), self.owner))
        return result_id

    @_guarded
    def mark_probes(self, keys: Iterable[RowKey], probe: bool = True) -> None:
        """Set (or clear) the ``probe`` flag of the rows of ``keys`` (missing rows are ignored)."""
        with self._transaction():
            self.conn.executemany(f"UPDATE results SET probe=? WHERE {KEY_WHERE}",
                                  [(int(probe), *k.params()) for k in keys])

    @_guarded
    def add_metrics(self, result_id: int, metrics: Mapping[str, float]) -> bool:
        """Add metric values to an existing row and release this store's claim on it. ``False``
        (nothing written, a warning logged) when the row is gone or is no longer the one
        :meth:`get` read: replaced by another run (SQLite may give the new row the same id)."""
        with self._transaction():
            row = self.conn.execute(
                "SELECT dataset, image, codec, codec_version, point, config, attempts FROM results "
                "WHERE id=?", (result_id,)).fetchone()
            key = None if row is None else row[:6]
            if row is None or self._seen.get(result_id, row) != row:
                log.warning("row %d was replaced by another run while its metrics were computed; "
                            "those values are dropped", result_id)
                return False
            self._insert_metrics(result_id, metrics)
            self.conn.execute(f"DELETE FROM claims WHERE {KEY_WHERE} AND owner=?", (*key, self.owner))
        return True

    def _insert_metrics(self, result_id: int, metrics: Mapping[str, float]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO metric_values VALUES (?, ?, ?)",
            [(result_id, m, _stored_float(v)) for m, v in metrics.items()],
        )

    @_guarded
    def get_set_metrics(self, key: RowKey) -> dict[str, float]:
        """Dataset-level metric values for the (dataset, codec, version, point, config) of ``key``."""
        rows = self.conn.execute(
            "SELECT metric, value FROM set_metric_values WHERE dataset=? AND codec=? AND "
            "codec_version=? AND point=? AND config=?",
            (key.dataset, key.codec, key.codec_version, key.point, key.config),
        ).fetchall()
        return {m: (math.nan if v is None else v) for m, v in rows}

    @_guarded
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

    def get_matched_set_metrics(self, key: RowKey, selection: str) -> dict[str, float]:
        """Dataset-level values over a per-image choice of points (``selection``: a digest of the
        chosen image/point pairs, as ``compare`` matches them) of the curve of ``key``."""
        rows = self.conn.execute(
            "SELECT metric, value FROM matched_set_metric_values WHERE dataset=? AND codec=? AND "
            "codec_version=? AND config=? AND selection=?",
            (key.dataset, key.codec, key.codec_version, key.config, selection),
        ).fetchall()
        return {m: (math.nan if v is None else v) for m, v in rows}

    @_guarded
    def put_matched_set_metrics(self, key: RowKey, selection: str, metrics: Mapping[str, float]) -> None:
        """Store what :meth:`get_matched_set_metrics` reads."""
        with self._transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO matched_set_metric_values VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(key.dataset, key.codec, key.codec_version, key.config, selection, m, _stored_float(v))
                 for m, v in metrics.items()],
            )

    # -- claims -----------------------------------------------------------------------------------

    @_guarded
    def claim(self, key: RowKey) -> Claim | None:
        """Claim the unit of ``key`` for this store: ``None`` when it is this store's now, else the
        live claim of another run that holds it. A dead or expired claim is taken over."""
        now = time.time()
        with self._transaction():
            row = self.conn.execute(f"SELECT owner, pid, host, claimed FROM claims WHERE {KEY_WHERE}",
                                    key.params()).fetchone()
            if row is not None and row[0] != self.owner:
                held = Claim(*row)
                if held.is_live(now):
                    return held
                log.info("taking over the claim on %s of a run that is gone (%s)", key.describe(),
                         held.describe())
            self.conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                              (*key.params(), self.owner, os.getpid(), HOST, now))
            self._claimed = True
        return None

    def release(self, key: RowKey) -> None:
        """Drop this store's claim on ``key`` (best effort: a claim left behind by a failing disk
        is taken over once this process is gone)."""
        self._release(f"{KEY_WHERE} AND owner=?", (*key.params(), self.owner))

    def release_claims(self) -> None:
        """Drop every claim of this store."""
        self._release("owner=?", (self.owner,))

    def _release(self, where: str, params: tuple[Any, ...]) -> None:
        if self.read_only or not self._claimed:
            return
        try:
            self.conn.execute(f"DELETE FROM claims WHERE {where}", params)
        except sqlite3.Error as exc:
            log.debug("%s: claims not released: %s", self.path, exc)

    def _tables(self) -> set[str]:
        try:
            return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error:
            return set()

    @_guarded
    def holder(self, key: RowKey) -> Claim | None:
        """The live claim another run holds on ``key``, if any."""
        row = self.conn.execute(f"SELECT owner, pid, host, claimed FROM claims WHERE {KEY_WHERE}",
                                key.params()).fetchone()
        if row is None or row[0] == self.owner:
            return None
        held = Claim(*row)
        return held if held.is_live() else None

    def wait_for_others(self, keys: Iterable[RowKey], poll: float | None = None) -> None:
        """Sleep until one of ``keys`` is no longer held by another live run."""
        keys = list(keys)
        while keys and all(self.holder(k) is not None for k in keys):
            time.sleep(CLAIM_POLL_S if poll is None else poll)

    @contextmanager
    def claimed(self, key: RowKey) -> Iterator[None]:
        """Hold the claim on ``key`` for the block, first waiting while another run holds it."""
        said = False
        while (held := self.claim(key)) is not None:
            if not said:
                log.warning("waiting for %s, which another run is computing (%s)",
                            key.describe(), held.describe())
                said = True
            time.sleep(CLAIM_POLL_S)
        try:
            yield
        finally:
            self.release(key)

    # -- reading ----------------------------------------------------------------------------------

    def streams(self, dataset: str, codec: str, point: float) -> Iterator[tuple[str, bytes]]:
        """(image, bitstream) of every successful row of one codec point, newest version first.
        A stream that does not match its checksum raises :class:`StreamChecksumError`."""
        try:
            rows = self.conn.execute(
                "SELECT r.image, r.stream, r.codec_version, r.config, "
                f"{self._col('stream_sha256')} FROM results r WHERE dataset=? AND codec=? AND "
                "point=? AND status='ok' ORDER BY created DESC, image", (dataset, codec, point))
            for image, stream, version, config, checksum in rows:
                if stream is not None and checksum and stream_checksum(stream) != checksum:
                    raise self._damage(RowKey(dataset, image, codec, version, point, config),
                                       checksum, stream)
                yield image, stream
        except sqlite3.Error as exc:
            raise store_error(exc, self.path) from exc

    @_guarded
    def codec_names(self, dataset: str | None = None) -> list[str]:
        """The codecs with at least one successful row (on ``dataset``), sorted."""
        where, params = ("AND dataset=?", (dataset,)) if dataset else ("", ())
        return [r[0] for r in self.conn.execute(
            f"SELECT DISTINCT codec FROM results WHERE status='ok' {where} ORDER BY codec", params)]

    @_guarded
    def frame(self, dataset: str | None = None, codecs: list[str] | None = None) -> pd.DataFrame:
        """Tidy table of rows: one per result, one column per metric value (no bitstreams)."""
        import pandas as pd

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
            f"r.attempts, r.run_id, {self._col('probe', '0')} FROM results r {clause} "
            "ORDER BY r.codec, r.point, r.image",
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

    @_guarded
    def set_frame(self, dataset: str | None = None, *, with_counts: bool = False) -> pd.DataFrame:
        """Dataset-level metric values, one row per (dataset, codec, version, point, config).

        ``with_counts`` adds ``n_images``, the number of images each value was computed over.
        """
        import pandas as pd

        df = pd.read_sql_query("SELECT * FROM set_metric_values", self.conn)
        if dataset:
            df = df[df["dataset"] == dataset]
        if df.empty:
            return df
        keys = ["dataset", "codec", "codec_version", "point", "config"]
        if with_counts:
            keys.append("n_images")
        return df.pivot_table(index=keys, columns="metric", values="value").reset_index()

    @_guarded
    def weights_files(self, dataset: str | None = None) -> pd.DataFrame:
        """The checkpoint files recorded per (dataset, codec, codec_version, config): one row per
        file (``path``, ``sha256``, ``position`` in the ``weights`` option), for rows whose
        configuration named ``weights``."""
        import pandas as pd

        where, params = ("AND dataset=?", (dataset,)) if dataset else ("", ())
        records = []
        if "weights_files" in self._columns:
            for ds, codec, version, config, files in self.conn.execute(
                    "SELECT DISTINCT dataset, codec, codec_version, config, weights_files FROM results "
                    f"WHERE weights_files IS NOT NULL {where}", params):
                for position, entry in enumerate(json.loads(files)):
                    records.append({"dataset": ds, "codec": codec, "codec_version": version,
                                    "config": config, "position": position, **entry})
        return pd.DataFrame(records, columns=["dataset", "codec", "codec_version", "config",
                                              "position", "path", "sha256"]).drop_duplicates()

    @_guarded
    def runs(self) -> pd.DataFrame:
        """Every recorded run with its command and environment."""
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM runs ORDER BY started", self.conn)

    # -- maintenance ------------------------------------------------------------------------------

    def check(self) -> StoreCheck:
        """SQLite's integrity check, row counts, metric values of missing rows, streams that do not
        match their checksum, rows without an image hash, and the claims held (live or not)."""
        try:
            integrity = [line for r in self.conn.execute("PRAGMA integrity_check")
                         for line in r[0].splitlines()]
        except sqlite3.Error as exc:  # too damaged to check: say so, and count what can be read
            integrity = [f"integrity check failed: {exc}"]
        report = StoreCheck(self.path, integrity)
        queries = {
            "runs": "SELECT count(*) FROM runs",
            "rows": "SELECT count(*) FROM results",
            "ok rows": "SELECT count(*) FROM results WHERE status='ok'",
            "failed rows": "SELECT count(*) FROM results WHERE status='failed'",
            "metric values": "SELECT count(*) FROM metric_values",
            "set metric values": "SELECT count(*) FROM set_metric_values",
        }
        if "probe" in self._columns:
            queries["probe rows"] = "SELECT count(*) FROM results WHERE probe=1"
        for name, query in queries.items():
            try:
                report.counts[name] = self.conn.execute(query).fetchone()[0]
            except sqlite3.Error as exc:
                report.errors.append(f"{name}: {exc}")
        try:
            report.orphan_metrics = self.conn.execute(
                "SELECT count(*) FROM metric_values WHERE result_id NOT IN (SELECT id FROM results)"
            ).fetchone()[0]
            if "image_sha256" in self._columns:
                report.unhashed_images = self.conn.execute(
                    "SELECT count(*) FROM results WHERE image_sha256 IS NULL").fetchone()[0]
            if "stream_sha256" in self._columns:
                for *key, stream, checksum in self.conn.execute(
                        "SELECT dataset, image, codec, codec_version, point, config, stream, "
                        "stream_sha256 FROM results WHERE stream IS NOT NULL "
                        "AND stream_sha256 IS NOT NULL ORDER BY dataset, codec, point, image"):
                    if stream_checksum(stream) != checksum:
                        report.damaged.append(RowKey(*key))
            if "claims" in self._tables():
                now = time.time()
                for *key, owner, pid, host, claimed in self.conn.execute("SELECT * FROM claims"):
                    held = Claim(owner, pid, host, claimed)
                    report.claims.append((RowKey(*key), held, held.is_live(now)))
        except sqlite3.Error as exc:
            report.errors.append(str(exc))
        return report

    @_guarded
    def prune(self, codec: str, *, versions: Iterable[str] = (), keep_version: str | None = None,
              dataset: str | None = None, dry_run: bool = False) -> dict[tuple[str, str], int]:
        """Delete the rows of ``codec`` (with their metric values, dataset-level values and claims):
        all of them, only those of ``versions``, or all but those of ``keep_version``; on every
        dataset or only on ``dataset``. Returns the rows removed (or, with ``dry_run``, that would
        be) per (dataset, codec version). One transaction: an interrupted prune removes nothing."""
        where, params = ["codec=?"], [codec]
        versions = list(versions)
        if versions:
            where.append(f"codec_version IN ({','.join('?' * len(versions))})")
            params.extend(versions)
        if keep_version is not None:
            where.append("codec_version<>?")
            params.append(keep_version)
        if dataset is not None:
            where.append("dataset=?")
            params.append(dataset)
        clause = " AND ".join(where)
        counts = {(ds, version): n for ds, version, n in self.conn.execute(
            f"SELECT dataset, codec_version, count(*) FROM results WHERE {clause} "
            "GROUP BY dataset, codec_version ORDER BY dataset, codec_version", params)}
        if dry_run:
            return counts
        with self._transaction():
            self.conn.execute("DELETE FROM metric_values WHERE result_id IN "
                              f"(SELECT id FROM results WHERE {clause})", params)
            present = self._tables()
            for table in ("results", "set_metric_values", "matched_set_metric_values", "claims"):
                if table in present:
                    self.conn.execute(f"DELETE FROM {table} WHERE {clause}", params)
        return counts

    def backup(self, dest: str | Path) -> Path:
        """Copy the store, with what its write-ahead log holds, to the new file ``dest`` through
        SQLite's backup API (a copy of the ``.sqlite`` file alone can miss committed rows or be
        malformed). The copy is one self-contained file (rollback journal), checked before it is
        moved into place."""
        dest = Path(dest)
        if dest.exists():
            raise StoreError(f"{dest} already exists; a backup never overwrites: choose a new name")
        partial = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            target = sqlite3.connect(partial, isolation_level=None)
            try:
                self.conn.backup(target)
                target.execute("PRAGMA journal_mode=DELETE")
                verdict = target.execute("PRAGMA quick_check").fetchone()[0]
            finally:
                target.close()
            if verdict != "ok":
                raise StoreError(f"The backup of {self.path} fails SQLite's check ({verdict}): the "
                                 "store itself is damaged; see `codecbench db check`")
            os.replace(partial, dest)
        except sqlite3.Error as exc:
            error = store_error(exc, self.path)
            raise StoreError(f"Backup to {dest} failed: {error}") from exc
        except OSError as exc:
            raise StoreError(f"Cannot write the backup {dest}: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)
        return dest


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        # SQLite may already have rolled back (disk full, I/O error): nothing left to undo.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
