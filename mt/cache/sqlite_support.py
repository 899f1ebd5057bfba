"""SQLite plumbing under the cache: error classes, per-thread connection slots, write
transactions, LRU stamps and the max_entries setting."""

from __future__ import annotations

import errno
import os
import sqlite3
import urllib.parse
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Iterator

from ..settings import current
from .base import CacheWarning, stacklevel_outside_package

DEFAULT_MAX_ENTRIES = 1_000_000
CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit

# SQLite primary result codes -> what we do about them (Python < 3.11: matched by message).
SQLITE_KINDS = {3: "readonly", 5: "busy", 6: "busy", 8: "readonly", 10: "io", 11: "corrupt",
                13: "full", 14: "cantopen", 23: "readonly", 26: "corrupt"}
MESSAGE_KINDS = (("locked", "busy"), ("readonly", "readonly"), ("read-only", "readonly"),
                 ("malformed", "corrupt"), ("not a database", "corrupt"), ("disk is full", "full"),
                 ("unable to open", "cantopen"), ("disk i/o", "io"))


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "cantopen"
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in SQLITE_KINDS:
        return SQLITE_KINDS[code & 0xFF]
    message = str(exc).lower()
    return next((kind for needle, kind in MESSAGE_KINDS if needle in message), "other")


ADVICE = {
    "corrupt": "the file is damaged or is not a translation cache; delete it to start a fresh cache",
    "cantopen": "the file or its directory cannot be created or opened",
    "readonly": "the file or its directory is read-only",
    "busy": "another process held the database lock past the timeout",
    "full": "the disk (or the database's size limit) is full",
    "io": "a disk I/O error occurred",
    "other": "an unexpected SQLite error occurred",
    "foreign": "the file is an SQLite database that does not belong to this program; it is left untouched",
    "newer": "the file was written by a newer version of this program; it is left untouched",
    "forked": "SQLite connections cannot be shared with a forked process",
}
READ_ONLY_NOTE = "cached translations are used but new ones are not stored"


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def placeholders(count: int) -> str:
    return ",".join("?" * count)


class ConnectionSlot:
    """One thread's connection slot; its lock is held while the connection is in use, so a fork
    or close() elsewhere never yanks it out from under a running statement."""

    __slots__ = ("conn", "lock", "__weakref__")

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def __del__(self) -> None:  # the owning thread ended: close now rather than at GC's leisure
        close_quietly(self)


def close_quietly(holder: ConnectionSlot) -> None:
    conn, holder.conn = holder.conn, None
    if conn is not None:
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - nothing useful to do about a failing close
            pass


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout), avoiding the
    deadlock-prone read-then-upgrade path of a deferred transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        raise


def next_stamp(conn: sqlite3.Connection) -> int:
    """A last_used newer than every row, so stamps strictly increase across processes."""
    newest = conn.execute("SELECT MAX(last_used) FROM entries").fetchone()[0] or 0
    return max(time.time_ns() // 1000, newest + 1)


def resolve_max_entries(value: int | None) -> int:
    """An explicit bound, else the settings' (MT_CACHE_MAX_ENTRIES, validated there), else DEFAULT_MAX_ENTRIES."""
    if value is not None:
        if int(value) < 1:
            raise ValueError(f"max_entries must be at least 1, not {value}")
        return int(value)
    return current().cache_max_entries or DEFAULT_MAX_ENTRIES


# Hits and misses are counted per cache FILE (every process that used it), so `mt cache stats`
# in a new process shows them: each process adds its unsaved counts inside a write it makes
# anyway, and at most every COUNTS_EVERY seconds and on close (best effort, never waiting).
COUNTERS_SCHEMA = "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
COUNTS_EVERY = 5.0


def add_counts(conn: sqlite3.Connection, hits: int, misses: int) -> None:
    """Add to the file's counters (inside the caller's write transaction)."""
    conn.executemany("INSERT INTO counters(name, value) VALUES (?, ?)"
                     " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                     [("hits", hits), ("misses", misses)])


def read_counts(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """(hits, misses) saved in the file; None for a file without the table (read-only, older)."""
    try:
        saved = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    except sqlite3.OperationalError:
        return None
    return int(saved.get("hits", 0)), int(saved.get("misses", 0))


def read_only_uri(path: os.PathLike, mode: str) -> str:
    """SQLite URI that opens an existing file without writing: ``mode=ro`` (still needs the WAL
    index beside it) or ``immutable=1`` (no locks, no WAL: for a file on a read-only mount,
    which nobody can change while we read)."""
    query = "mode=ro" if mode == "ro" else "immutable=1"
    return f"file:{urllib.parse.quote(os.path.abspath(path))}?{query}"
