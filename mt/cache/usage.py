"""DeepL API state every worker and replica shares: characters translated this month, and
document translations in flight.

Why shared: DeepL's clients poll ``/v2/usage`` and ``/v2/document/{id}`` and may reach any worker
process or replica, so a count or a job kept in one process would answer differently on each. The
state lives beside the sentence cache, as the downloads of :mod:`mt.cache.files` do: SQLite on one
machine (a file next to the cache file, or in the server's run folder without a cache), Redis
across machines (the cache's Redis). A month's count is one row (one key); a job is one row (one
hash) that expires with the translated file it points to.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from pathlib import Path

JOB_TTL_SECONDS = 30 * 60  # as long as the translated file waits in mt.cache.files
PERIOD_TTL_SECONDS = 40 * 24 * 3600  # a month's count outlives its month (Redis)
SQLITE_TIMEOUT = 10.0


def period(now: float | None = None) -> str:
    """The billing period: the calendar month in UTC, e.g. ``2026-12``."""
    return time.strftime("%Y-%m", time.gmtime(time.time() if now is None else now))


def period_bounds(now: float | None = None) -> tuple[float, float]:
    """Unix seconds of the first instant of this month and of the next (UTC)."""
    import calendar

    moment = time.gmtime(time.time() if now is None else now)
    start = calendar.timegm((moment.tm_year, moment.tm_mon, 1, 0, 0, 0))
    year, month = (moment.tm_year + 1, 1) if moment.tm_mon == 12 else (moment.tm_year, moment.tm_mon + 1)
    return float(start), float(calendar.timegm((year, month, 1, 0, 0, 0)))


class SQLiteUsageStore:
    """Counts and jobs in an SQLite file (one connection per call: workers are processes)."""

    def __init__(self, path: str | Path, *, job_ttl: float = JOB_TTL_SECONDS):
        self.path, self.job_ttl = Path(path), job_ttl
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS usage (period TEXT PRIMARY KEY, characters INTEGER NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, expires REAL NOT NULL, "
                         "record TEXT NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS jobs_expires ON jobs (expires)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=SQLITE_TIMEOUT, isolation_level=None)

    def add_characters(self, count: int, now: float | None = None) -> int:
        """Add ``count`` to this month's characters; the new total."""
        key = period(now)
        with self._lock, contextlib.closing(self._connect()) as conn:
            conn.execute("INSERT INTO usage VALUES (?, ?) ON CONFLICT(period) DO UPDATE SET "
                         "characters = characters + excluded.characters", (key, int(count)))
            return int(conn.execute("SELECT characters FROM usage WHERE period = ?", (key,)).fetchone()[0])

    def characters(self, now: float | None = None) -> int:
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT characters FROM usage WHERE period = ?", (period(now),)).fetchone()
        return int(row[0]) if row else 0

    def put_job(self, job_id: str, record: dict) -> None:
        """Create or replace a job's record (a JSON object); it expires after ``job_ttl``."""
        now = time.time()
        with self._lock, contextlib.closing(self._connect()) as conn:
            conn.execute("DELETE FROM jobs WHERE expires <= ?", (now,))
            conn.execute("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?)",
                         (job_id, now + self.job_ttl, json.dumps(record)))

    def get_job(self, job_id: str) -> dict | None:
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT record FROM jobs WHERE id = ? AND expires > ?",
                               (job_id, time.time())).fetchone()
        return json.loads(row[0]) if row else None

    def close(self) -> None:
        """Nothing held open between calls."""


class RedisUsageStore:
    """Counts and jobs in the cache's Redis: one counter per month (INCRBY), one key per job."""

    def __init__(self, client, prefix: str, *, job_ttl: float = JOB_TTL_SECONDS):
        self._client, self.prefix, self.job_ttl = client, f"{prefix}deepl:", job_ttl

    def add_characters(self, count: int, now: float | None = None) -> int:
        key = f"{self.prefix}usage:{period(now)}"
        pipe = self._client.pipeline()
        pipe.incrby(key, int(count))
        pipe.expire(key, PERIOD_TTL_SECONDS)
        return int(pipe.execute()[0])

    def characters(self, now: float | None = None) -> int:
        value = self._client.get(f"{self.prefix}usage:{period(now)}")
        return int(value) if value is not None else 0

    def put_job(self, job_id: str, record: dict) -> None:
        self._client.set(f"{self.prefix}job:{job_id}", json.dumps(record), px=int(self.job_ttl * 1000))

    def get_job(self, job_id: str) -> dict | None:
        value = self._client.get(f"{self.prefix}job:{job_id}")
        return json.loads(value) if value is not None else None

    def close(self) -> None:
        """The client belongs to the cache, which closes it."""


def open_usage_store(cache, run_dir: str | Path):
    """The store beside ``cache``: its Redis, a file next to its SQLite file, else ``run_dir`` (the
    rule of :func:`mt.cache.files.open_file_store`)."""
    client = getattr(cache, "_client", None)
    if client is not None and hasattr(cache, "prefix"):
        return RedisUsageStore(client, cache.prefix)
    path = getattr(cache, "path", None)
    if path and not getattr(cache, "_read_only", None):
        try:
            return SQLiteUsageStore(Path(path).with_name(Path(path).name + ".deepl"))
        except (OSError, sqlite3.Error):
            pass  # an unwritable cache folder: the run folder still works
    return SQLiteUsageStore(Path(run_dir) / "deepl.sqlite")
