"""The SQLite backend: one file in WAL mode, LRU-bounded, safe across threads and processes.

Each thread has its own connection; writes use BEGIN IMMEDIATE; rows are keyed by
:func:`mt.cache.base.cache_key`. Every failure (corrupt, foreign or read-only file, a lock held
past the timeout, a full disk) is one CacheWarning, then the cache steps aside; a file that
cannot be opened for writing (a read-only mount) is opened read-only and still serves hits.
Hits and misses are counted per file. Design notes: docs/CACHE.md, section "SQLite".
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from pathlib import Path

from .base import SCHEMA_VERSION, WarnOnce, cache_key, count_kinds, storable
from .sqlite_connections import INSTANCES, ConnectionsMixin
from .sqlite_support import (ADVICE, COUNTERS_SCHEMA, COUNTS_EVERY, DEFAULT_MAX_ENTRIES, READ_ONLY_NOTE,
                             ConnectionSlot, add_counts, chunks, close_quietly, error_kind, next_stamp,
                             placeholders, read_counts, resolve_max_entries,
                             write_transaction)

__all__ = ["SentenceCache", "DEFAULT_MAX_ENTRIES", "DEFAULT_TIMEOUT"]

log = logging.getLogger(__name__)

APPLICATION_ID = 0x4D545645  # "MTVE": tells our files apart from someone else's SQLite database
DEFAULT_TIMEOUT = 10.0  # seconds a writer waits for another writer
TOUCH_TIMEOUT = 1.0  # an LRU touch is optional: never hold a read up for long
RECOUNT_EVERY = 64  # puts between exact COUNT(*)s (other processes insert too)
EVICT_TO = 0.9  # evict down to this fraction of max_entries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS entries (
    key         BLOB PRIMARY KEY,      -- cache_key(namespace, source)
    ns          INTEGER NOT NULL REFERENCES namespaces(id),
    source      TEXT NOT NULL,
    translation TEXT NOT NULL,
    last_used   INTEGER NOT NULL       -- strictly increasing per write transaction (~µs since epoch)
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries(last_used);
CREATE INDEX IF NOT EXISTS entries_ns ON entries(ns);
""" + COUNTERS_SCHEMA

class SentenceCache(ConnectionsMixin):
    """SQLite-backed, LRU-bounded sentence cache; every public method is total (SQLite and
    file-system failures become one CacheWarning per kind and an empty/no-op result)."""

    def __init__(self, path: str | os.PathLike, *, max_entries: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path).expanduser()
        self.max_entries = resolve_max_entries(max_entries)
        self.timeout = float(timeout)
        self._lock = threading.Lock()  # guards the bookkeeping below, never held during SQL
        self._warn = WarnOnce()
        self._disabled: str | None = None  # reason, when the cache is off for good
        self._read_only: str | None = None  # reason, when lookups work but nothing is stored
        self._ready = self._closed = self._busy_at_fork = self._broken_by_fork = False
        self._open_mode: str | None = None  # "ro" / "immutable": opened through a read-only URI
        self._reset_process_state()
        INSTANCES.add(self)
        self._usable(write=False)  # open now, so a bad path is reported at startup

    def _reset_process_state(self) -> None:
        self._local = threading.local()
        self._holders: "weakref.WeakSet[ConnectionSlot]" = weakref.WeakSet()
        self._pid = os.getpid()
        self._hits = self._misses = 0  # this process's
        self._unsaved = [0, 0]  # hits, misses not yet added to the file's counters
        self._counts_saved_at = time.monotonic()
        self._approx_entries: int | None = None  # exact after each recount, estimated between
        self._puts_since_count = 0

    # ------------------------------------------------------------------ public API

    def get_many(self, namespace: str, sources: list[str]) -> dict[str, str]:
        """source -> translation for every source already cached; marks them recently used."""
        wanted = list(dict.fromkeys(sources))
        found: dict[str, str] = {}
        if wanted and self._usable(write=False):
            try:
                found = self._lookup(namespace, wanted)
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, "read")
        with self._lock:
            self._hits += len(found)
            self._misses += len(wanted) - len(found)
            self._unsaved[0] += len(found)
            self._unsaved[1] += len(wanted) - len(found)
            due = time.monotonic() - self._counts_saved_at > COUNTS_EVERY
        if due:
            self._save_counts()
        return found

    def put_many(self, namespace: str, pairs: list[tuple[str, str]]) -> None:
        """Store (source, translation) pairs; the last translation of a repeated source wins."""
        rows = dict(pairs)
        if not rows or not storable(namespace) or not self._usable(write=True):
            return
        data = [(cache_key(namespace, s), s, t) for s, t in rows.items() if storable(s) and storable(t)]
        if data:
            try:
                self._store(namespace, data)
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, "write")

    def stats(self) -> dict:
        """What `mt cache stats` prints: path, entries (and per kind: sentences, word links,
        quality scores), bytes on disk, hits and misses of every process that used this file
        (of this process only where the file is read-only), the bound, entries per namespace,
        and why the cache is off if it is."""
        usable = self._usable(write=False)
        if usable:
            self._save_counts()
        result = {
            "enabled": usable, "writable": usable and self._read_only is None,
            "path": str(self.path), "entries": 0, "bytes": self._bytes_on_disk(),
            "hits": self._hits, "misses": self._misses, "max_entries": self.max_entries,
            "namespaces": {}, "schema_version": SCHEMA_VERSION,
            "error": self._disabled or self._read_only or ("closed" if self._closed else None),
        }
        result["kinds"] = count_kinds({})
        if usable:
            try:
                with self._using() as conn:
                    result["entries"] = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                    result["namespaces"] = dict(conn.execute(
                        "SELECT n.name, c.count"
                        " FROM (SELECT ns, COUNT(*) AS count FROM entries GROUP BY ns) AS c"
                        " JOIN namespaces AS n ON n.id = c.ns ORDER BY n.name").fetchall())
                    saved = read_counts(conn)
                if saved is not None:
                    with self._lock:
                        result["hits"], result["misses"] = (saved[0] + self._unsaved[0],
                                                            saved[1] + self._unsaved[1])
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, "read")
                result.update(enabled=False, error=str(exc))
        result["kinds"] = count_kinds(result["namespaces"])
        return result

    def clear(self) -> int:
        """Remove every entry (all namespaces, word links and quality scores too) and reset the
        hit counters; returns how many SENTENCES (translations) there were."""
        if not self._usable(write=True):
            return 0
        try:
            with self._using() as conn:
                with write_transaction(conn):
                    removed = count_kinds(dict(conn.execute(
                        "SELECT n.name, COUNT(*) FROM entries AS e JOIN namespaces AS n ON n.id = e.ns"
                        " GROUP BY n.name").fetchall()))["sentences"]
                    conn.execute("DELETE FROM entries")
                    conn.execute("DELETE FROM counters")
                    with self._lock:
                        self._unsaved = [0, 0]
                with self._lock:
                    self._approx_entries, self._puts_since_count = 0, 0
                try:  # give the space back; optional, so a busy database keeps its free pages
                    conn.execute("VACUUM")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:
                    log.debug("cache %s: vacuum after clear skipped: %s", self.path, exc)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "write")
            return 0
        return removed

    def close(self) -> None:
        """Save the hit counts, close every thread's connection; later calls act like NullCache."""
        if not self._closed:
            self._save_counts()
        with self._lock:
            self._closed = True
            holders = list(self._holders)
        for holder in holders:
            with holder.lock:  # waits for a statement in flight in another thread
                close_quietly(holder)

    def __enter__(self) -> "SentenceCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._disabled or self._read_only or ("closed" if self._closed else "ok")
        return f"SentenceCache({str(self.path)!r}, max_entries={self.max_entries}, {state})"

    # ------------------------------------------------------------------ internals

    def _lookup(self, namespace: str, sources: list[str]) -> dict[str, str]:
        by_key = {cache_key(namespace, source): source for source in sources}
        rows = []
        with self._using() as conn:
            for chunk in chunks(list(by_key)):
                rows += conn.execute("SELECT key, translation, last_used FROM entries"
                                     f" WHERE key IN ({placeholders(len(chunk))})", chunk).fetchall()
            if rows and self._read_only is None:  # a hit only writes when its row is not the newest
                newest = conn.execute("SELECT MAX(last_used) FROM entries").fetchone()[0]
                if any(last_used < newest for _, _, last_used in rows):
                    self._touch(conn, [key for key, _, _ in rows])
        return {by_key[key]: translation for key, translation, _ in rows}

    def _touch(self, conn: sqlite3.Connection, keys: list[bytes]) -> None:
        """Mark hits most recently used. Best effort: a busy database skips the touch (at worst a
        slightly early eviction) rather than stalling the lookup."""
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(min(self.timeout, TOUCH_TIMEOUT) * 1000)}")
            try:
                with write_transaction(conn):
                    stamp = next_stamp(conn)
                    for chunk in chunks(keys):
                        conn.execute(f"UPDATE entries SET last_used = ? WHERE key IN "
                                     f"({placeholders(len(chunk))})", [stamp, *chunk])
                    self._add_unsaved_counts(conn)
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        except sqlite3.Error as exc:
            if error_kind(exc) == "busy":
                log.debug("cache %s: LRU touch skipped, database busy", self.path)
            else:
                self._failed(exc, "write")

    def _store(self, namespace: str, data: list[tuple[bytes, str, str]]) -> None:
        with self._using() as conn, write_transaction(conn):
            conn.execute("INSERT OR IGNORE INTO namespaces(name) VALUES (?)", (namespace,))
            ns_id = conn.execute("SELECT id FROM namespaces WHERE name = ?", (namespace,)).fetchone()[0]
            stamp = next_stamp(conn)
            conn.executemany(
                "INSERT INTO entries(key, ns, source, translation, last_used) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET translation = excluded.translation,"
                " last_used = excluded.last_used",
                ((key, ns_id, source, translation, stamp) for key, source, translation in data))
            self._evict_if_needed(conn, len(data))
            self._add_unsaved_counts(conn)

    def _add_unsaved_counts(self, conn: sqlite3.Connection) -> None:
        """Add this process's unsaved hits and misses to the file (in the caller's transaction)."""
        with self._lock:
            (hits, misses), self._unsaved = self._unsaved, [0, 0]
            self._counts_saved_at = time.monotonic()
        if hits or misses:
            add_counts(conn, hits, misses)

    def _save_counts(self) -> None:
        """Best effort, never waiting long: counts are statistics, a busy file skips them."""
        with self._lock:
            pending = self._unsaved != [0, 0]
        if not pending or self._read_only or not self._usable(write=True):
            return
        try:
            with self._using() as conn:
                conn.execute(f"PRAGMA busy_timeout = {int(min(self.timeout, TOUCH_TIMEOUT) * 1000)}")
                try:
                    with write_transaction(conn):
                        self._add_unsaved_counts(conn)
                finally:
                    conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        except (sqlite3.Error, OSError) as exc:
            if error_kind(exc) != "busy":
                self._failed(exc, "write")

    def _evict_if_needed(self, conn: sqlite3.Connection, added: int) -> None:
        """Amortised bound: COUNT(*) only when the running estimate crosses the bound or every
        RECOUNT_EVERY puts (other processes add rows too); then drop the least recently used
        rows down to EVICT_TO of the bound in one statement."""
        with self._lock:
            self._puts_since_count += 1
            if self._approx_entries is not None:
                self._approx_entries += added
            due = (self._approx_entries is None or self._approx_entries > self.max_entries
                   or self._puts_since_count >= RECOUNT_EVERY)
        if not due:
            return
        count = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
        if count > self.max_entries:
            keep = max(1, int(self.max_entries * EVICT_TO))
            conn.execute("DELETE FROM entries WHERE rowid IN"
                         " (SELECT rowid FROM entries ORDER BY last_used, rowid LIMIT ?)", (count - keep,))
            log.debug("cache %s: evicted %d least recently used entries", self.path, count - keep)
            count = keep
        with self._lock:
            self._approx_entries, self._puts_since_count = count, 0

    def _usable(self, *, write: bool) -> bool:
        if self._broken_by_fork and not self._disabled:
            self._disable("forked", "another thread was using it when this process forked; "
                                    "open the cache again in the child process")
        if self._closed or self._disabled:
            return False
        if not self._ready:
            try:
                self._initialise()
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, "open")
                return False
            if self._disabled:
                return False
        return not (write and self._read_only)

    def _initialise(self) -> None:
        """Create or check the schema; an existing file that cannot be opened for writing is
        opened read-only instead (:meth:`_open_read_only`)."""
        try:
            self._initialise_schema()
        except (sqlite3.Error, OSError) as exc:
            if not self._open_read_only(exc):
                raise

    def _open_read_only(self, exc: BaseException) -> bool:
        """An existing cache file we cannot open normally (a read-only mount: SQLite cannot
        create the WAL index beside it): open it through a read-only URI, ``mode=ro`` first,
        then ``immutable=1``, and serve hits. True when that worked (one warning)."""
        if error_kind(exc) not in ("cantopen", "readonly", "io") or not self.path.is_file():
            return False
        for mode in ("ro", "immutable"):
            self._close_all_connections()
            self._open_mode = mode
            try:
                with self._using() as conn:
                    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
                    version = conn.execute("PRAGMA user_version").fetchone()[0]
                    if application_id != APPLICATION_ID or version != SCHEMA_VERSION:
                        raise sqlite3.DatabaseError("not a translation cache of this version")
                    conn.execute("SELECT key FROM entries LIMIT 1").fetchall()
            except sqlite3.Error:
                continue
            self._set_read_only(exc, how=f"opened read-only ({'mode=ro' if mode == 'ro' else 'immutable=1'})")
            self._ready = True
            return True
        self._close_all_connections()
        self._open_mode = None
        return False

    def _initialise_schema(self) -> None:
        """A foreign or newer file is left untouched; an older schema of ours is rebuilt (it is
        only a cache)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._using() as conn:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables and application_id != APPLICATION_ID:
                return self._disable("foreign")
            if version > SCHEMA_VERSION:
                return self._disable("newer", f"schema version {version} > {SCHEMA_VERSION}")
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                if version != SCHEMA_VERSION:
                    with write_transaction(conn):
                        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                            conn.execute("DROP TABLE IF EXISTS entries")  # another process may
                            conn.execute("DROP TABLE IF EXISTS namespaces")  # have won the race
                            for statement in _SCHEMA.split(";"):
                                if statement.strip():
                                    conn.execute(statement)
                            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'counters'").fetchone():
                    conn.execute(COUNTERS_SCHEMA)  # a file from before the counters (same schema)
            except sqlite3.Error as exc:
                if error_kind(exc) != "readonly" or version != SCHEMA_VERSION:
                    raise
                # An existing cache we cannot write: still worth reading, if reading works.
                conn.execute("SELECT key FROM entries LIMIT 1").fetchall()
                self._set_read_only(exc)
        self._ready = True

    def _failed(self, exc: BaseException, operation: str) -> None:
        """Decide how long a failure lasts, and warn once per kind of failure."""
        if self._closed:
            return
        kind = error_kind(exc)
        if kind in ("corrupt", "cantopen") or (kind == "readonly" and operation != "write"):
            self._disable(kind, str(exc))
        elif kind == "readonly":
            self._set_read_only(exc)
        else:  # busy, full, io, other: may pass; skip this call only
            self._warn(kind, f"translation cache {self.path}: {ADVICE[kind]} ({exc}); "
                             f"this {operation} was skipped, translation goes on")

    def _set_read_only(self, exc: BaseException, how: str = "") -> None:
        self._read_only = f"read-only: {exc}" + (f"; {how}" if how else "")
        self._warn("readonly", f"translation cache {self.path}: {ADVICE['readonly']} ({exc})"
                               f"{'; ' + how if how else ''}; {READ_ONLY_NOTE}")

    def _disable(self, kind: str, detail: str = "") -> None:
        self._disabled = f"{kind}: {detail}" if detail else kind
        suffix = f" ({detail})" if detail else ""
        self._warn(kind, f"translation cache {self.path}: {ADVICE[kind]}{suffix}; "
                         "continuing without the cache")

    def _bytes_on_disk(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return total
