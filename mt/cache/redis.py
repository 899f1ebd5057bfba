"""The Redis backend: one cache shared by server replicas and batch workers on many machines.

Same keys as the SQLite file (:func:`mt.cache.base.cache_key`), one round trip per call (MGET,
or one pipeline of SETs), bounded by the server's own eviction (``maxmemory`` with
``allkeys-lru``; this module never reconfigures a server), optional TTL. Redis being down,
slow or gone mid-run is one CacheWarning: translation goes on uncached and the cache
reconnects by itself when Redis answers again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from mt.errors import ConfigError

from .base import SCHEMA_VERSION, WarnOnce, cache_key, storable

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
        self.ttl = _ttl_seconds(ttl if ttl is not None else options.get("ttl", os.environ.get("MT_CACHE_TTL")),
                                "ttl" if ttl is not None else "MT_CACHE_TTL / ?ttl=")
        self.prefix = prefix or options.get("prefix") or DEFAULT_PREFIX
        self._namespaces_key = f"{self.prefix}namespaces"
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
        self._hits = self._misses = 0
        self._down: str | None = None  # why Redis is unreachable, while it is
        self._retry_at = 0.0
        self._closed = False
        self._call(self._client.ping)  # report an unreachable server at startup

    # ------------------------------------------------------------------ public API

    def get_many(self, namespace: str, sources: list[str]) -> dict[str, str]:
        """source -> translation for every source already cached (one MGET)."""
        wanted = list(dict.fromkeys(sources))
        found: dict[str, str] = {}
        if wanted:
            keys = [self._entry_key(namespace, source) for source in wanted]
            values = self._call(self._client.mget, keys)
            for source, value in zip(wanted, values or ()):
                if value is not None:
                    found[source] = value.decode("utf-8")
        with self._lock:
            self._hits += len(found)
            self._misses += len(wanted) - len(found)
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
        self._call(pipe.execute)

    def stats(self) -> dict:
        """Entries per namespace and their memory, under our key prefix only (SCAN, never KEYS)."""
        result = {
            "enabled": False, "writable": False, "path": self.url, "entries": 0, "bytes": 0,
            "hits": self._hits, "misses": self._misses, "max_entries": None, "namespaces": {},
            "schema_version": SCHEMA_VERSION, "error": None, "backend": "redis", "ttl": self.ttl,
            "prefix": self.prefix,
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
        names = self._call(self._client.hgetall, self._namespaces_key) or {}
        names = {tag.decode(): name.decode("utf-8", "replace") for tag, name in names.items()}
        result["namespaces"] = dict(sorted((names.get(tag, f"?{tag}"), n) for tag, n in counts.items()))
        result["entries"] = sum(counts.values())
        return result

    def clear(self) -> int:
        """Remove every entry under our prefix (all namespaces); returns how many there were."""
        counts = self._scan(delete=True)
        if counts is None:
            return 0
        self._call(self._client.unlink, self._namespaces_key)
        return sum(counts.values())

    def close(self) -> None:
        """Drop the connections; later calls act like NullCache."""
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
            keys = [key for key in keys if key != self._namespaces_key.encode()]
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
