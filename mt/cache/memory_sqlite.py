"""The translation memory in an SQLite file beside the sentence cache (one machine's workers).

One connection per call (workers are processes; WAL lets them read while one writes). The file is
created by the first write: a translation that finds no memory file finds no entries.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator

from .memory_base import MemoryFull, TranslationMemory, full_of_bytes

SQLITE_TIMEOUT = 10.0
CHUNK = 500  # bound parameters per IN (...) query
COLUMNS = "id, source, target, origin, project, created"


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _key_bytes(conn: sqlite3.Connection) -> int:
    """The keys' total UTF-8 bytes, kept in ``meta`` (counted once for a file made before it was)."""
    row = conn.execute("SELECT value FROM meta WHERE name = 'bytes'").fetchone()
    if row is not None:
        return row[0]
    size = conn.execute("SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB))), 0) FROM entries").fetchone()[0]
    conn.execute("INSERT INTO meta VALUES ('bytes', ?)", (size,))
    return size


def _row(values) -> dict:
    return dict(zip(("id", "source", "target", "origin", "project", "created"), values))


class SQLiteMemory(TranslationMemory):
    backend = "sqlite"

    def __init__(self, path: str | Path, **limits):
        super().__init__(**limits)
        self.path = Path(path)
        self.location = str(self.path)
        self._ready = False

    def _store_errors(self):
        return (OSError, sqlite3.Error)

    def _connect(self, *, write: bool = False) -> sqlite3.Connection | None:
        """A connection, or None when there is no file yet and ``write`` is False."""
        if not self._ready:
            if not write and not self.path.exists():
                return None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(str(self.path), timeout=SQLITE_TIMEOUT,
                                                    isolation_level=None)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("CREATE TABLE IF NOT EXISTS entries (id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, "
                             "source TEXT NOT NULL, target TEXT NOT NULL, origin TEXT NOT NULL, project TEXT, "
                             "created REAL NOT NULL, seq INTEGER NOT NULL)")
                conn.execute("CREATE INDEX IF NOT EXISTS entries_seq ON entries (seq)")
                conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
                conn.execute("INSERT OR IGNORE INTO meta VALUES ('seq', 0), ('generation', 0)")
            self._ready = True
        return sqlite3.connect(str(self.path), timeout=SQLITE_TIMEOUT, isolation_level=None)

    def _read(self, sql: str, params=()) -> list:
        conn = self._connect()
        if conn is None:
            return []
        with contextlib.closing(conn):
            return conn.execute(sql, params).fetchall()

    def _read_in(self, sql: str, values: list) -> list:
        """``sql`` with one ``IN ({})`` over ``values``, a query per chunk."""
        rows = []
        for part in _chunks(values):
            rows += self._read(sql.format(",".join("?" * len(part))), part)
        return rows

    def _store_version(self) -> tuple[int, int]:
        found = dict(self._read("SELECT name, value FROM meta"))
        return found.get("generation", 0), found.get("seq", 0)

    def _all_keys(self):
        return self._read("SELECT key, id, seq FROM entries")

    def _keys_since(self, seq: int):
        return self._read("SELECT key, id, seq FROM entries WHERE seq > ?", (seq,))

    def _targets(self, keys: list[str]) -> dict[str, str]:
        return dict(self._read_in("SELECT key, target FROM entries WHERE key IN ({})", keys))

    def _rows(self, ids: list[str]) -> dict[str, dict]:
        return {values[0]: _row(values) for values in
                self._read_in(f"SELECT {COLUMNS} FROM entries WHERE id IN ({{}})", ids)}

    def _rows_by_keys(self, keys: list[str]) -> dict[str, dict]:
        return {values[0]: _row(values[1:]) for values in
                self._read_in(f"SELECT key, {COLUMNS} FROM entries WHERE key IN ({{}})", keys)}

    def _put(self, rows: list[dict]) -> None:
        with contextlib.closing(self._connect(write=True)) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                keys = [row["key"] for row in rows]
                known = {key for part in _chunks(keys) for (key,) in conn.execute(
                    f"SELECT key FROM entries WHERE key IN ({','.join('?' * len(part))})", part)}
                count = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                if count + len(keys) - len(known) > self.max_entries:
                    raise MemoryFull(f"the translation memory holds {count:,} entries of at most "
                                     f"{self.max_entries:,}; {len(keys) - len(known):,} more do not fit (delete some first)")
                added = sum(len(key.encode("utf-8")) for key in keys if key not in known)  # a replacement keeps its key
                size = _key_bytes(conn)
                if size + added > self.max_key_bytes:
                    raise full_of_bytes(size, self.max_key_bytes, added)
                conn.execute("UPDATE meta SET value = ? WHERE name = 'bytes'", (size + added,))
                seq = conn.execute("SELECT value FROM meta WHERE name = 'seq'").fetchone()[0]
                for row in rows:
                    seq += 1
                    conn.execute(
                        "INSERT INTO entries (id, key, source, target, origin, project, created, seq) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET id = excluded.id, "
                        "source = excluded.source, target = excluded.target, origin = excluded.origin, "
                        "project = excluded.project, created = excluded.created, seq = excluded.seq",
                        (row["id"], row["key"], row["source"], row["target"], row["origin"], row["project"],
                         row["created"], seq))
                conn.execute("UPDATE meta SET value = ? WHERE name = 'seq'", (seq,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _delete(self, entry_id: str) -> bool:
        conn = self._connect()
        if conn is None:
            return False
        with contextlib.closing(conn):
            conn.execute("BEGIN IMMEDIATE")
            key = conn.execute("SELECT key FROM entries WHERE id = ?", (entry_id,)).fetchone()
            if key is not None:  # its bytes given back (counted before the row goes, for an older file)
                size = _key_bytes(conn) - len(key[0].encode("utf-8"))
                conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))
                conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'generation'")
                conn.execute("UPDATE meta SET value = ? WHERE name = 'bytes'", (max(0, size),))
            conn.execute("COMMIT")
        return key is not None

    def _all_rows(self) -> Iterator[dict]:
        last = -1
        while True:  # pages by sequence number: no connection held between them
            page = self._read(f"SELECT {COLUMNS}, seq FROM entries WHERE seq > ? ORDER BY seq LIMIT 1000", (last,))
            if not page:
                return
            for values in page:
                yield _row(values[:-1])
            last = page[-1][-1]
