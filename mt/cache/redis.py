"""The Redis backend: one cache shared by server replicas and batch workers on many machines.

Same keys as the SQLite file (:func:`mt.cache.base.cache_key`), one round trip per call (MGET,
or one pipeline of SETs), bounded by the server's own eviction (``maxmemory`` with
``allkeys-lru``; this module never reconfigures a server), optional TTL. Redis being down,
slow or gone mid-run is one CacheWarning: translation goes on uncached and the cache
reconnects by itself when Redis answers again. Hits and misses are counted in Redis itself
(one hash under our prefix), so `mt cache stats` shows those of every process and replica.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from mt.errors import ConfigError

from ..settings import current
from .base import SCHEMA_VERSION, WarnOnce, cache_key, count_kinds, storable

__all__ = ["RedisCache", "is_redis_url", "limiter_storage_uri", "REDIS_SCHEMES", "DEFAULT_PREFIX", "DEFAULT_SOCKET_TIMEOUT"]

log = logging.getLogger(__name__)

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_PREFIX = "mt-vi-en:"
DEFAULT_SOCKET_TIMEOUT = 0.5  # seconds; a slow Redis costs at most this per call, then is skipped
RETRY_AFTER = 1.0  # seconds between reconnection attempts while Redis is down
SCAN_COUNT = 1000  # keys per SCAN step in stats() and clear()
INSTALL_HINT = "pip install 'mt-vi-en[redis]'"


def is_redis_url(location: object) -> bool:
    return isinstance(location, str) and location.strip().lower().startswith(REDIS_SCHEMES)


def redacted(url: str) -> str:
    """The URL with its password replaced, fit for stats, logs and warnings."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _split_options(url: str) -> tuple[str, dict[str, str]]:
    """Take our own query options (ttl, prefix) out of the URL; redis-py parses the rest."""
    parts = urlsplit(url)
    ours, theirs = {}, []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        (ours.__setitem__(name, value) if name in ("ttl", "prefix") else theirs.append((name, value)))
    return urlunsplit(parts._replace(query=urlencode(theirs))), ours


def limiter_storage_uri(url: str) -> str:
    """The same Redis for Flask-Limiter's counters (``limits`` storage URI): our own query
    options removed, ``unix://`` spelt as ``limits`` wants it. Its keys carry its own prefix."""
    client_url, _ = _split_options(url.strip())
    return "redis+unix://" + client_url[len("unix://"):] if client_url.lower().startswith("unix://") else client_url


def _ttl_seconds(value: object, source: str) -> int | None:
    if value in (None, "", 0, "0"):
        return None
    try:
        seconds = int(str(value).replace("_", ""))
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ConfigError(f"{source}: the cache TTL must be a whole number of seconds, not {value!r}")
    return seconds


def _namespace_tag(namespace: str) -> str:
    """Short stable tag of a namespace, part of every key so stats can count per namespace."""
    return hashlib.sha256(namespace.encode("utf-8", "surrogatepass")).hexdigest()[:12]


class RedisCache:
    """Sentence cache in a Redis server; every public method is total, like SentenceCache."""

    def __init__(self, url: str, *, ttl: int | None = None, prefix: str | None = None,
                 timeout: float = DEFAULT_SOCKET_TIMEOUT):
        try:
            import redis
        except ImportError:
            raise ConfigError(f"a Redis cache needs the redis package: {INSTALL_HINT}") from None
        self._redis = redis
        client_url, options = _split_options(url.strip())
        self.url = redacted(url.strip())
        self.path = self.url  # what stats() and `mt cache clear` show as the location
        self.ttl = _ttl_seconds(ttl if ttl is not None else options.get("ttl", current().cache_ttl),
                                "ttl" if ttl is not None else "MT_CACHE_TTL / ?ttl=")
        self.prefix = prefix or options.get("prefix") or DEFAULT_PREFIX
        self._namespaces_key = f"{self.prefix}namespaces"
        self._counters_key = f"{self.prefix}counters"  # hash: hits, misses of every process
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            self._client = redis.Redis.from_url(
                client_url, socket_timeout=timeout, socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0), health_check_interval=0)
        except ValueError as exc:
            raise ConfigError(f"--cache {self.url}: not a usable Redis URL ({exc})") from None
        self._lock = threading.Lock()
        self._warn = WarnOnce()
        self._hits = self._misses = 0  # this process's
        self._unsaved = [0, 0]  # hits, misses not yet added to the shared counters
        self._down: str | None = None  # why Redis is unreachable, while it is
        self._retry_at = 0.0
        self._closed = False
        self._call(self._client.ping)  # report an unreachable server at startup

    # ------------------------------------------------------------------ public API

    def get_many(self, namespace: str, sources: list[str]) -> dict[str, str]:
        """source -> translation for every source already cached: one round trip (MGET, with the
        counts of the previous lookups added to the shared counters in the same pipeline)."""
        wanted = list(dict.fromkeys(sources))
        found: dict[str, str] = {}
        if wanted:
            keys = [self._entry_key(namespace, source) for source in wanted]
            pipe = self._client.pipeline(transaction=False)
            pipe.mget(keys)
            self._add_counts(pipe)
            replies = self._execute(pipe)
            for source, value in zip(wanted, (replies[0] or ()) if replies else ()):
                if value is not None:
                    found[source] = value.decode("utf-8")
        with self._lock:
            self._hits += len(found)
            self._misses += len(wanted) - len(found)
            self._unsaved[0] += len(found)
            self._unsaved[1] += len(wanted) - len(found)
        return found

    def put_many(self, namespace: str, pairs: list[tuple[str, str]]) -> None:
        """Store (source, translation) pairs in one pipeline; the last of a repeated source wins."""
        rows = {s: t for s, t in dict(pairs).items() if storable(s) and storable(t)}
        if not rows or not storable(namespace):
            return
        pipe = self._client.pipeline(transaction=False)
        pipe.hset(self._namespaces_key, _namespace_tag(namespace), namespace)
        for source, translation in rows.items():
            pipe.set(self._entry_key(namespace, source), translation.encode("utf-8"), ex=self.ttl)
        self._add_counts(pipe)
        self._execute(pipe)

    def stats(self) -> dict:
        """Entries per namespace and per kind (sentences, word links, quality scores) and their
        memory, under our key prefix only (SCAN, never KEYS); hits and misses of every process."""
        self.flush_counts()
        result = {
            "enabled": False, "writable": False, "path": self.url, "entries": 0, "bytes": 0,
            "hits": self._hits, "misses": self._misses, "max_entries": None, "namespaces": {},
            "schema_version": SCHEMA_VERSION, "error": None, "backend": "redis", "ttl": self.ttl,
            "prefix": self.prefix, "kinds": count_kinds({}),
        }
        memory = self._call(self._client.info, "memory")
        if memory is None:
            result["error"] = "closed" if self._closed else self._down
            return result
        result.update(enabled=True, writable=True, maxmemory=memory.get("maxmemory"),
                      maxmemory_policy=memory.get("maxmemory_policy"))
        counts = self._scan(count_bytes=True, result=result)
        if counts is None:
            result.update(enabled=False, writable=False, error=self._down)
            return result
        names = self._namespace_names()
        result["namespaces"] = dict(sorted((names.get(tag, f"?{tag}"), n) for tag, n in counts.items()))
        result["entries"] = sum(counts.values())
        result["kinds"] = count_kinds(result["namespaces"])
        shared = self._call(self._client.hmget, self._counters_key, "hits", "misses")
        if shared is not None:
            with self._lock:
                result["hits"], result["misses"] = (int(shared[0] or 0) + self._unsaved[0],
                                                    int(shared[1] or 0) + self._unsaved[1])
        return result

    def clear(self) -> int:
        """Remove every entry under our prefix (all namespaces, word links and quality scores too)
        and reset the hit counters; returns how many SENTENCES (translations) there were."""
        names = self._namespace_names()
        counts = self._scan(delete=True)
        if counts is None:
            return 0
        self._call(self._client.unlink, self._namespaces_key, self._counters_key)
        with self._lock:
            self._unsaved = [0, 0]
        return count_kinds({names.get(tag, f"?{tag}"): n for tag, n in counts.items()})["sentences"]

    def flush_counts(self) -> None:
        """Add this process's unsaved hits and misses to the shared counters now."""
        if self._unsaved != [0, 0]:
            pipe = self._client.pipeline(transaction=False)
            self._add_counts(pipe)
            self._execute(pipe)

    def close(self) -> None:
        """Save the hit counts, drop the connections; later calls act like NullCache."""
        if not self._closed:
            self.flush_counts()
        self._closed = True
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection may fail; nothing to do
            pass

    def __enter__(self) -> "RedisCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisCache({self.url!r}, ttl={self.ttl}, {self._down or ('closed' if self._closed else 'ok')})"

    # ------------------------------------------------------------------ internals

    def _namespace_names(self) -> dict[str, str]:
        names = self._call(self._client.hgetall, self._namespaces_key) or {}
        return {tag.decode(): name.decode("utf-8", "replace") for tag, name in names.items()}

    def _add_counts(self, pipe) -> None:
        """Queue this process's unsaved hits and misses on ``pipe`` (HINCRBY on our counters)."""
        with self._lock:
            hits, misses = self._unsaved
            self._unsaved = [0, 0]
        pipe.queued_counts = (hits, misses)
        if hits:
            pipe.hincrby(self._counters_key, "hits", hits)
        if misses:
            pipe.hincrby(self._counters_key, "misses", misses)

    def _execute(self, pipe):
        """Run a pipeline: its replies, a refused command's as None (a full Redis under
        ``noeviction`` refuses the writes but still answers the MGET); None when Redis is
        unreachable, and then the queued counts are kept for the next round trip."""
        replies = self._call(pipe.execute, raise_on_error=False)
        if replies is None:
            hits, misses = getattr(pipe, "queued_counts", (0, 0))
            with self._lock:
                self._unsaved[0] += hits
                self._unsaved[1] += misses
            return None
        refused = [reply for reply in replies if isinstance(reply, Exception)]
        if refused:
            self._failed(refused[0])
        return [None if isinstance(reply, Exception) else reply for reply in replies]

    def _entry_key(self, namespace: str, source: str) -> str:
        return f"{self.prefix}{_namespace_tag(namespace)}:{cache_key(namespace, source).hex()}"

    def _scan(self, *, delete: bool = False, count_bytes: bool = False, result: dict | None = None):
        """Walk our keys with SCAN: count them per namespace tag, optionally sum their memory or
        UNLINK them. None when Redis failed on the way."""
        counts: dict[str, int] = {}
        cursor = 0
        while True:
            step = self._call(self._client.scan, cursor, match=f"{self.prefix}*:*", count=SCAN_COUNT)
            if step is None:
                return None
            cursor, keys = step
            keys = [key for key in keys if key not in (self._namespaces_key.encode(), self._counters_key.encode())]
            for key in keys:
                tag = key.decode()[len(self.prefix):].partition(":")[0]
                counts[tag] = counts.get(tag, 0) + 1
            if keys and delete:
                self._call(self._client.unlink, *keys)
            if keys and count_bytes:
                pipe = self._client.pipeline(transaction=False)
                for key in keys:
                    pipe.memory_usage(key)
                result["bytes"] += sum(size or 0 for size in self._call(pipe.execute) or ())
            if cursor == 0:
                return counts

    def _call(self, function, *args, **kwargs):
        """Run one Redis round trip; on failure warn once, go on uncached, retry after a pause."""
        if self._closed or (self._down and time.monotonic() < self._retry_at):
            return None
        try:
            value = function(*args, **kwargs)
        except self._redis.exceptions.RedisError as exc:
            return self._failed(exc)
        if self._down:
            log.warning("translation cache %s: Redis answers again; cache back in use", self.url)
            self._down = None
            self._warn.reset("down")
        return value

    def _failed(self, exc: Exception) -> None:
        errors = self._redis.exceptions
        if not isinstance(exc, (errors.ConnectionError, errors.TimeoutError)):
            # The server answered with an error (out of memory under noeviction, a command
            # disabled by the operator...): skip this call only.
            self._warn("response", f"translation cache {self.url}: Redis answered with an error "
                                   f"({exc}); this call was skipped, translation goes on")
            return None
        self._retry_at = time.monotonic() + RETRY_AFTER
        self._down = f"unreachable: {exc}"
        self._warn("down", f"translation cache {self.url}: Redis is unreachable ({exc}); translation "
                           f"goes on uncached and retries Redis every {RETRY_AFTER:g} s")
        return None
