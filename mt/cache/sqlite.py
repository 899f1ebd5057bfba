"""Per-sentence translation cache in one SQLite file.

Why: documents repeat themselves (boilerplate, re-submitted drafts, a batch run resumed
after a crash), and a cached sentence costs a B-tree lookup instead of a model call.

Design, and the reasons for it:

* One SQLite file in WAL mode with a busy timeout, so the Flask server's threads and several
  batch processes can read and write it at the same time.  Each thread gets its own
  connection; write transactions use ``BEGIN IMMEDIATE`` so they wait politely instead of
  failing on a lock upgrade.
* Rows are keyed by ``sha256(namespace, source)``: the namespace (model id, revision, engine,
  decoding settings — built by the caller) keeps different models and settings apart, and a
  fixed-size hash keeps the index small whatever the sentence length.  Namespace (via a small
  side table) and source text are stored too, so the file can be inspected.
* Size is bounded (``max_entries``): least-recently-used rows are evicted in bulk down to
  ~90 % of the bound.  ``last_used`` is a stamp that strictly increases with every write
  transaction, across processes, so eviction order is exact; a hit only writes when its row
  is not already the newest.
* The cache must never break translation: a corrupt or foreign file, a read-only file or
  directory, a lock held past the timeout or a full disk produce one ``CacheWarning`` and the
  cache then behaves like :class:`NullCache` (for good, or just for that call when the
  problem may pass).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import sqlite3
import sys
import tempfile
import threading
import time
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = [
    "CacheWarning",
    "NullCache",
    "SentenceCache",
    "default_cache_path",
    "open_cache",
    "DEFAULT_MAX_ENTRIES",
    "SCHEMA_VERSION",
]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
APPLICATION_ID = 0x4D545645  # "MTVE": tells our files apart from someone else's SQLite database
DEFAULT_MAX_ENTRIES = 1_000_000
DEFAULT_TIMEOUT = 10.0  # seconds a writer waits for another writer
TOUCH_TIMEOUT = 1.0  # an LRU touch is optional: never hold a read up for long
CHUNK = 500  # keys per IN (...) query, well under SQLite's variable limit
RECOUNT_EVERY = 64  # puts between exact COUNT(*)s (other processes insert too)
EVICT_TO = 0.9  # evict down to this fraction of max_entries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS namespaces (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS entries (
    key         BLOB PRIMARY KEY,      -- sha256 of (namespace, source)
    ns          INTEGER NOT NULL REFERENCES namespaces(id),
    source      TEXT NOT NULL,
    translation TEXT NOT NULL,
    last_used   INTEGER NOT NULL       -- strictly increasing per write transaction (~µs since epoch)
);
CREATE INDEX IF NOT EXISTS entries_last_used ON entries(last_used);
CREATE INDEX IF NOT EXISTS entries_ns ON entries(ns);
"""


class CacheWarning(RuntimeWarning):
    """The cache could not be used as asked; translation goes on without it."""


# ---------------------------------------------------------------------------- helpers


def default_cache_path() -> Path:
    """$MT_CACHE, else $XDG_CACHE_HOME/mt-vi-en/translations.sqlite, else ~/.cache/mt-vi-en/..."""
    explicit = os.environ.get("MT_CACHE", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and os.path.isabs(xdg):  # the XDG spec says relative values are to be ignored
        base = Path(xdg)
    else:
        try:
            base = Path.home() / ".cache"
        except (RuntimeError, KeyError):  # no HOME and no passwd entry
            base = Path(tempfile.gettempdir())
    return base / "mt-vi-en" / "translations.sqlite"


def _key(namespace: str, source: str) -> bytes:
    """Hash key; the namespace is length-prefixed so no (namespace, source) split is ambiguous."""
    ns = namespace.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(len(ns).to_bytes(8, "little"))
    digest.update(ns)
    digest.update(source.encode("utf-8", "surrogatepass"))
    return digest.digest()


def _storable(text: object) -> bool:
    """SQLite wants valid UTF-8: strings with lone surrogates are simply not cached."""
    if not isinstance(text, str):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


# SQLite primary result codes -> what we do about them.
_SQLITE_KINDS = {
    3: "readonly",  # SQLITE_PERM
    5: "busy",  # SQLITE_BUSY
    6: "busy",  # SQLITE_LOCKED
    8: "readonly",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "full",  # SQLITE_FULL
    14: "cantopen",  # SQLITE_CANTOPEN
    23: "readonly",  # SQLITE_AUTH
    26: "corrupt",  # SQLITE_NOTADB
}
_MESSAGE_KINDS = (  # Python < 3.11 has no sqlite_errorcode: fall back to the message
    ("locked", "busy"),
    ("readonly", "readonly"),
    ("read-only", "readonly"),
    ("malformed", "corrupt"),
    ("not a database", "corrupt"),
    ("disk is full", "full"),
    ("unable to open", "cantopen"),
    ("disk i/o", "io"),
)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "cantopen"
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _SQLITE_KINDS:
        return _SQLITE_KINDS[code & 0xFF]
    message = str(exc).lower()
    for needle, kind in _MESSAGE_KINDS:
        if needle in message:
            return kind
    return "other"


_ADVICE = {
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

# SQLite connections must not cross fork(): SQLite's per-process lock bookkeeping would be
# copied into the child without the locks themselves. So, before a fork, every cache closes
# its idle connections (they reopen on next use); a connection busy in another thread at
# that moment is left to the parent, and the child's copy of that cache turns itself off.
_FORK_ORPHANS: list = []  # busy connections a child inherited: never used there, kept alive
_INSTANCES: "weakref.WeakSet[SentenceCache]" = weakref.WeakSet()


def _before_fork() -> None:
    for cache in list(_INSTANCES):
        cache._close_idle_connections_for_fork()


def _after_fork_in_parent() -> None:
    for cache in list(_INSTANCES):
        cache._busy_at_fork = False


def _after_fork_in_child() -> None:
    for cache in list(_INSTANCES):
        cache._forget_parent_connections()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


class _Holder:
    """One thread's connection slot (weak-referenceable, unlike sqlite3.Connection). The lock
    is held while the connection is in use, so a fork or close() elsewhere never yanks it
    out from under a running statement."""

    __slots__ = ("conn", "lock", "__weakref__")

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.lock = threading.Lock()

    def __del__(self) -> None:  # the owning thread ended: close now rather than at GC's leisure
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - nothing useful to do during teardown
                pass


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout), which avoids
    the deadlock-prone read-then-upgrade path of a deferred transaction."""
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


def _next_stamp(conn: sqlite3.Connection) -> int:
    """A last_used value newer than every row: wall-clock µs, bumped past the newest row so
    stamps strictly increase across threads and processes (writes are serialised)."""
    newest = conn.execute("SELECT MAX(last_used) FROM entries").fetchone()[0] or 0
    return max(time.time_ns() // 1000, newest + 1)


# ---------------------------------------------------------------------------- caches


class NullCache:
    """The cache API with nothing behind it: --no-cache, or where no cache is wanted."""

    path = None

    def __init__(self, reason: str = "disabled"):
        self.reason = reason
        self._misses = 0

    def get_many(self, namespace: str, sources: list[str]) -> dict[str, str]:
        self._misses += len(set(sources))
        return {}

    def put_many(self, namespace: str, pairs: list[tuple[str, str]]) -> None:
        return None

    def stats(self) -> dict:
        return {
            "enabled": False,
            "writable": False,
            "path": None,
            "entries": 0,
            "bytes": 0,
            "hits": 0,
            "misses": self._misses,
            "max_entries": 0,
            "namespaces": {},
            "schema_version": SCHEMA_VERSION,
            "error": self.reason,
        }

    def clear(self) -> int:
        return 0

    def close(self) -> None:
        return None

    def __enter__(self) -> "NullCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"NullCache({self.reason!r})"


class SentenceCache:
    """SQLite-backed, LRU-bounded sentence cache; safe across threads and processes.

    Every public method is total: SQLite and file-system failures become one CacheWarning
    (per kind of failure) and an empty/no-op result, never an exception.
    """

    def __init__(self, path: str | os.PathLike, *, max_entries: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT):
        self.path = Path(path).expanduser()
        self.max_entries = _resolve_max_entries(max_entries)
        self.timeout = float(timeout)
        self._lock = threading.Lock()  # guards the bookkeeping below, never held during SQL
        self._local = threading.local()
        self._holders: "weakref.WeakSet[_Holder]" = weakref.WeakSet()
        self._pid = os.getpid()
        self._hits = 0
        self._misses = 0
        self._approx_entries: int | None = None  # exact after each recount, estimated between
        self._puts_since_count = 0
        self._disabled: str | None = None  # reason, when the cache is off for good
        self._read_only: str | None = None  # reason, when lookups work but nothing is stored
        self._ready = False
        self._closed = False
        self._busy_at_fork = False
        self._broken_by_fork = False
        self._warned: set[str] = set()
        _INSTANCES.add(self)
        self._usable(write=False)  # open now, so a bad path is reported at startup

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
                found = {}
        with self._lock:
            self._hits += len(found)
            self._misses += len(wanted) - len(found)
        return found

    def put_many(self, namespace: str, pairs: list[tuple[str, str]]) -> None:
        """Store (source, translation) pairs; the last translation of a repeated source wins."""
        rows = {source: translation for source, translation in pairs}
        if not rows or not _storable(namespace) or not self._usable(write=True):
            return
        data = [(_key(namespace, s), s, t) for s, t in rows.items() if _storable(s) and _storable(t)]
        if not data:
            return
        try:
            self._store(namespace, data)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "write")

    def stats(self) -> dict:
        """What `mt cache stats` prints: path, entries, bytes on disk, hits/misses of this
        process, the bound, entries per namespace, and why the cache is off if it is."""
        usable = self._usable(write=False)
        result = {
            "enabled": usable,
            "writable": usable and self._read_only is None,
            "path": str(self.path),
            "entries": 0,
            "bytes": self._bytes_on_disk(),
            "hits": self._hits,
            "misses": self._misses,
            "max_entries": self.max_entries,
            "namespaces": {},
            "schema_version": SCHEMA_VERSION,
            "error": self._disabled or self._read_only or ("closed" if self._closed else None),
        }
        if usable:
            try:
                with self._using() as conn:
                    result["entries"] = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                    result["namespaces"] = dict(conn.execute(
                        "SELECT n.name, c.count"
                        " FROM (SELECT ns, COUNT(*) AS count FROM entries GROUP BY ns) AS c"
                        " JOIN namespaces AS n ON n.id = c.ns ORDER BY n.name"
                    ).fetchall())
            except (sqlite3.Error, OSError) as exc:
                self._failed(exc, "read")
                result["enabled"] = False
                result["error"] = str(exc)
        return result

    def clear(self) -> int:
        """Remove every entry (all namespaces); returns how many there were."""
        if not self._usable(write=True):
            return 0
        try:
            with self._using() as conn:
                with _write_transaction(conn):
                    removed = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
                    conn.execute("DELETE FROM entries")
                with self._lock:
                    self._approx_entries = 0
                    self._puts_since_count = 0
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
        """Close every thread's connection; later calls act like NullCache."""
        with self._lock:
            self._closed = True
            holders = list(self._holders)
        for holder in holders:
            with holder.lock:  # waits for a statement in flight in another thread
                conn, holder.conn = holder.conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass

    def __enter__(self) -> "SentenceCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = self._disabled or self._read_only or ("closed" if self._closed else "ok")
        return f"SentenceCache({str(self.path)!r}, max_entries={self.max_entries}, {state})"

    # ------------------------------------------------------------------ internals

    def _lookup(self, namespace: str, sources: list[str]) -> dict[str, str]:
        by_key = {_key(namespace, source): source for source in sources}
        rows = []
        with self._using() as conn:
            for chunk in _chunks(list(by_key)):
                rows += conn.execute(
                    "SELECT key, translation, last_used FROM entries"
                    f" WHERE key IN ({_placeholders(len(chunk))})",
                    chunk,
                ).fetchall()
            if rows and self._read_only is None:
                newest = conn.execute("SELECT MAX(last_used) FROM entries").fetchone()[0]
                if any(last_used < newest for _, _, last_used in rows):
                    self._touch(conn, [key for key, _, _ in rows])
        return {by_key[key]: translation for key, translation, _ in rows}

    def _touch(self, conn: sqlite3.Connection, keys: list[bytes]) -> None:
        """Mark hits as most recently used. Best effort: a busy database skips the touch
        (costing at most a slightly early eviction) rather than stalling the lookup."""
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(min(self.timeout, TOUCH_TIMEOUT) * 1000)}")
            try:
                with _write_transaction(conn):
                    stamp = _next_stamp(conn)
                    for chunk in _chunks(keys):
                        conn.execute(
                            f"UPDATE entries SET last_used = ? WHERE key IN ({_placeholders(len(chunk))})",
                            [stamp, *chunk],
                        )
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        except sqlite3.Error as exc:
            if _error_kind(exc) == "busy":
                log.debug("cache %s: LRU touch skipped, database busy", self.path)
            else:
                self._failed(exc, "write")

    def _store(self, namespace: str, data: list[tuple[bytes, str, str]]) -> None:
        with self._using() as conn, _write_transaction(conn):
            conn.execute("INSERT OR IGNORE INTO namespaces(name) VALUES (?)", (namespace,))
            ns_id = conn.execute("SELECT id FROM namespaces WHERE name = ?", (namespace,)).fetchone()[0]
            stamp = _next_stamp(conn)
            conn.executemany(
                "INSERT INTO entries(key, ns, source, translation, last_used) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET translation = excluded.translation,"
                " last_used = excluded.last_used",
                ((key, ns_id, source, translation, stamp) for key, source, translation in data),
            )
            self._evict_if_needed(conn, len(data))

    def _evict_if_needed(self, conn: sqlite3.Connection, added: int) -> None:
        """Amortised bound: COUNT(*) only when the running estimate crosses the bound or every
        RECOUNT_EVERY puts (other processes add rows we do not see); then drop the least
        recently used rows down to EVICT_TO of the bound in one statement."""
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
            conn.execute(
                "DELETE FROM entries WHERE rowid IN"
                " (SELECT rowid FROM entries ORDER BY last_used, rowid LIMIT ?)",
                (count - keep,),
            )
            log.debug("cache %s: evicted %d least recently used entries", self.path, count - keep)
            count = keep
        with self._lock:
            self._approx_entries = count
            self._puts_since_count = 0

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
        """Create or check the schema. A foreign or newer file is left untouched; an older
        schema is rebuilt (it is only a cache)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._using() as conn:
            application_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables and application_id != APPLICATION_ID:
                self._disable("foreign")
                return
            if version > SCHEMA_VERSION:
                self._disable("newer", f"schema version {version} > {SCHEMA_VERSION}")
                return
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                if version != SCHEMA_VERSION:
                    with _write_transaction(conn):
                        current = conn.execute("PRAGMA user_version").fetchone()[0]
                        if current != SCHEMA_VERSION:  # another process may have won the race
                            # New file, or an older layout of ours: (re)build; it is only a cache.
                            conn.execute("DROP TABLE IF EXISTS entries")
                            conn.execute("DROP TABLE IF EXISTS namespaces")
                            for statement in _SCHEMA.split(";"):
                                if statement.strip():
                                    conn.execute(statement)
                            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            except sqlite3.Error as exc:
                if _error_kind(exc) != "readonly" or version != SCHEMA_VERSION:
                    raise
                # An existing cache we cannot write: still worth reading, if reading works.
                conn.execute("SELECT key FROM entries LIMIT 1").fetchall()
                self._read_only = f"read-only: {exc}"
                self._warn("readonly", f"translation cache {self.path}: {_ADVICE['readonly']} ({exc}); "
                                       "cached translations are used but new ones are not stored")
        self._ready = True

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() and the fork hook may close another
        # thread's idle connection; in use, each connection belongs to one thread.
        conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable enough for a cache
        except BaseException:
            conn.close()
            raise
        return conn

    def _holder(self) -> _Holder:
        if os.getpid() != self._pid:  # forked without os.register_at_fork hooks running
            self._forget_parent_connections()
        holder = getattr(self._local, "holder", None)
        if holder is None:
            holder = self._local.holder = _Holder()
            with self._lock:
                self._holders.add(holder)
        return holder

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection, opened on first use, locked while in use."""
        holder = self._holder()
        with holder.lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the cache has been closed")
            if holder.conn is None:
                holder.conn = self._connect()
            yield holder.conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (for inspection and tests; the cache itself uses _using)."""
        with self._using() as conn:
            return conn

    def _close_idle_connections_for_fork(self) -> None:
        """Before fork (in the parent): close every connection not in use, so the child
        inherits no SQLite state; they reopen on next use."""
        with self._lock:
            holders = list(self._holders)
        busy = False
        for holder in holders:
            if not holder.lock.acquire(blocking=False):
                busy = True
                continue
            try:
                conn, holder.conn = holder.conn, None
                if conn is not None:
                    conn.close()
            except sqlite3.Error:
                pass
            finally:
                holder.lock.release()
        self._busy_at_fork = busy

    def _forget_parent_connections(self) -> None:
        """In a forked child: never touch the parent's connections, open fresh ones. If one
        was in use by another thread at the fork, SQLite's lock bookkeeping may be
        inconsistent here, so this copy of the cache turns itself off."""
        if os.getpid() == self._pid:
            return
        _FORK_ORPHANS.extend(holder for holder in list(self._holders) if holder.conn is not None)
        self._lock = threading.Lock()  # the parent's may have been held by another thread
        self._local = threading.local()
        self._holders = weakref.WeakSet()
        self._pid = os.getpid()
        self._hits = self._misses = 0
        self._approx_entries = None
        self._puts_since_count = 0
        if self._busy_at_fork:  # turned off on first use, where the warning makes sense
            self._busy_at_fork = False
            self._broken_by_fork = True

    def _failed(self, exc: BaseException, operation: str) -> None:
        """Decide how long a failure lasts, and warn once per kind of failure."""
        if self._closed:
            return
        kind = _error_kind(exc)
        if kind in ("corrupt", "cantopen") or (kind == "readonly" and operation != "write"):
            self._disable(kind, str(exc))
        elif kind == "readonly":
            self._read_only = f"read-only: {exc}"
            self._warn(kind, f"translation cache {self.path}: {_ADVICE[kind]} ({exc}); "
                             "cached translations are used but new ones are not stored")
        else:  # busy, full, io, other: may pass; skip this call only
            self._warn(kind, f"translation cache {self.path}: {_ADVICE[kind]} ({exc}); "
                             f"this {operation} was skipped, translation goes on")

    def _disable(self, kind: str, detail: str = "") -> None:
        self._disabled = f"{kind}: {detail}" if detail else kind
        suffix = f" ({detail})" if detail else ""
        self._warn(kind, f"translation cache {self.path}: {_ADVICE[kind]}{suffix}; "
                         "continuing without the cache")

    def _warn(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        warnings.warn(message, CacheWarning, stacklevel=_stacklevel_outside_module())

    def _bytes_on_disk(self) -> int:
        total = 0
        for suffix in ("", "-wal", "-shm"):
            try:
                total += os.path.getsize(f"{self.path}{suffix}")
            except OSError:
                pass
        return total


def _stacklevel_outside_module() -> int:
    """Attribute a warning to the first caller outside this module (the line that used the cache)."""
    frame, level = sys._getframe(1), 1  # level 1 = the function calling warnings.warn
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


def _resolve_max_entries(value: int | None) -> int:
    if value is not None:
        value = int(value)
        if value < 1:
            raise ValueError(f"max_entries must be at least 1, not {value}")
        return value
    raw = os.environ.get("MT_CACHE_MAX_ENTRIES", "").strip()
    if not raw:
        return DEFAULT_MAX_ENTRIES
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        warnings.warn(f"MT_CACHE_MAX_ENTRIES={raw!r} is not a positive integer; "
                      f"using {DEFAULT_MAX_ENTRIES}", CacheWarning, stacklevel=_stacklevel_outside_module())
        return DEFAULT_MAX_ENTRIES
    return value


def open_cache(path: str | os.PathLike | None = None, *, disabled: bool = False,
               max_entries: int | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> SentenceCache | NullCache:
    """The cache the CLI and server use. Never raises for a bad path: an unusable file gives a
    SentenceCache that warns once and stores nothing (its stats() say why)."""
    if disabled:
        return NullCache()
    return SentenceCache(default_cache_path() if path is None else path,
                         max_entries=max_entries, timeout=timeout)
