"""Translated files waiting for their download, in the store every worker and replica shares.

A file translated by one worker process (or one replica) must download from any other: the bytes
live beside the sentence cache, never in a process. SQLite on one machine (a file next to the
cache file, or in the server's run folder without a cache), Redis across machines (the cache's
Redis). Entries expire after ``ttl`` seconds; each client (its address) holds at most
``max_client_bytes`` (its own oldest go first), so one client cannot evict another's files; the
whole store holds at most ``max_bytes`` and refuses (:class:`StoreFull`) rather than evict others.
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import MTError

FILE_TTL_SECONDS = 30 * 60
MAX_CLIENT_BYTES = 64 << 20
MAX_STORE_BYTES = 1 << 30
SQLITE_TIMEOUT = 10.0


class StoreFull(MTError):
    """The shared store holds its maximum of pending downloads; retry when some have expired."""

    code = "server_busy"


@dataclass(frozen=True)
class StoredFile:
    filename: str
    media_type: str
    data: bytes


def new_name(filename: str) -> str:
    """An unguessable download name that keeps a readable, safe tail."""
    tail = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in filename)[-80:].lstrip(".") or "document"
    return f"{secrets.token_urlsafe(24)}.{tail}"


class SQLiteFileStore:
    """Pending downloads in an SQLite file (one connection per call: workers are processes)."""

    def __init__(self, path: str | Path, *, ttl: float = FILE_TTL_SECONDS, max_client_bytes: int = MAX_CLIENT_BYTES,
                 max_bytes: int = MAX_STORE_BYTES):
        self.path = Path(path)
        self.ttl, self.max_client_bytes, self.max_bytes = ttl, max_client_bytes, max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, expires REAL NOT NULL, "
                         "created REAL NOT NULL, owner TEXT NOT NULL, filename TEXT NOT NULL, "
                         "media_type TEXT NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS files_owner ON files (owner, created)")
            conn.execute("CREATE INDEX IF NOT EXISTS files_expires ON files (expires)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=SQLITE_TIMEOUT, isolation_level=None)

    def put(self, filename: str, media_type: str, data: bytes, *, owner: str = "") -> str:
        name, now = new_name(filename), time.time()
        if len(data) > self.max_client_bytes:
            raise StoreFull(f"the translated file is over {self.max_client_bytes:,} bytes, the most a client may "
                            "keep waiting for download")
        with self._lock, contextlib.closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM files WHERE expires <= ?", (now,))
                rows = conn.execute("SELECT name, size FROM files WHERE owner = ? ORDER BY created DESC",
                                    (owner,)).fetchall()
                kept = len(data)
                for old_name, size in rows:  # the client's own oldest go first
                    kept += size
                    if kept > self.max_client_bytes:
                        conn.execute("DELETE FROM files WHERE name = ?", (old_name,))
                total = conn.execute("SELECT COALESCE(SUM(size), 0) FROM files").fetchone()[0]
                if total + len(data) > self.max_bytes:
                    raise StoreFull("the server holds its maximum of translated files awaiting download; "
                                    "retry in a few minutes")
                conn.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (name, now + self.ttl, now, owner, filename, media_type, len(data), data))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return name

    def get(self, name: str) -> StoredFile | None:
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT filename, media_type, data FROM files WHERE name = ? AND expires > ?",
                               (name, time.time())).fetchone()
        return StoredFile(row[0], row[1], bytes(row[2])) if row else None

    def close(self) -> None:
        """Nothing held open between calls."""


class RedisFileStore:
    """Pending downloads in Redis: one hash per file with its expiry, one sorted set per client.
    Bounded per client and by expiry; the whole store's bound is the Redis server's own
    ``maxmemory`` (the project never reconfigures a Redis it does not own)."""

    def __init__(self, client, prefix: str, *, ttl: float = FILE_TTL_SECONDS,
                 max_client_bytes: int = MAX_CLIENT_BYTES, max_bytes: int = MAX_STORE_BYTES):
        self._client, self.prefix = client, f"{prefix}files:"
        self.ttl, self.max_client_bytes, self.max_bytes = ttl, max_client_bytes, max_bytes

    def put(self, filename: str, media_type: str, data: bytes, *, owner: str = "") -> str:
        if len(data) > self.max_client_bytes:
            raise StoreFull(f"the translated file is over {self.max_client_bytes:,} bytes, the most a client may "
                            "keep waiting for download")
        name, now, ttl_ms = new_name(filename), time.time(), int(self.ttl * 1000)
        owner_key = f"{self.prefix}owner:{owner}"
        client = self._client
        # the client's files, oldest first; expired ones have left their hashes already
        members = client.zrange(owner_key, 0, -1, withscores=False)
        sizes = client.pipeline()
        for member in members:
            sizes.hget(f"{self.prefix}file:{member.decode()}", "size")
        kept, evict = len(data), []
        for member, size in reversed(list(zip(members, sizes.execute()))):
            if size is None:
                evict.append(member)
                continue
            kept += int(size)
            if kept > self.max_client_bytes:
                evict.append(member)
        pipe = client.pipeline()
        for member in evict:
            pipe.delete(f"{self.prefix}file:{member.decode()}")
            pipe.zrem(owner_key, member)
        key = f"{self.prefix}file:{name}"
        pipe.hset(key, mapping={"filename": filename, "media_type": media_type, "size": len(data), "data": data})
        pipe.pexpire(key, ttl_ms)
        pipe.zadd(owner_key, {name: now})
        pipe.pexpire(owner_key, ttl_ms)
        pipe.execute()
        return name

    def get(self, name: str) -> StoredFile | None:
        found = self._client.hmget(f"{self.prefix}file:{name}", "filename", "media_type", "data")
        if not found or found[2] is None:
            return None
        return StoredFile(found[0].decode("utf-8"), found[1].decode("utf-8"), bytes(found[2]))

    def close(self) -> None:
        """The client belongs to the cache, which closes it."""


def open_file_store(cache, run_dir: str | Path):
    """The file store beside ``cache``: its Redis, a file next to its SQLite file, else ``run_dir``
    (the folder a server's workers share; without a cache that is where downloads wait)."""
    client = getattr(cache, "_client", None)
    if client is not None and hasattr(cache, "prefix"):
        return RedisFileStore(client, cache.prefix)
    path = getattr(cache, "path", None)
    if path and not getattr(cache, "_read_only", None):
        beside = Path(path).with_name(Path(path).name + ".files")
        try:
            return SQLiteFileStore(beside)
        except (OSError, sqlite3.Error):
            pass  # an unwritable cache folder: the run folder still works
    return SQLiteFileStore(Path(run_dir) / "files.sqlite")
