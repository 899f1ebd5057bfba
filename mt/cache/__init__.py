"""Per-sentence translation cache: one interface (base), two backends (an SQLite file, a Redis
server). `open_cache` is the front door the CLI, the server and the batches use."""

from __future__ import annotations

import os

from ..settings import current
from .base import SCHEMA_VERSION, CacheWarning, NullCache, SentenceStore, cache_key, default_cache_path
from .redis import DEFAULT_SOCKET_TIMEOUT, is_redis_url
from .sqlite import DEFAULT_TIMEOUT, SentenceCache
from .sqlite_support import DEFAULT_MAX_ENTRIES

__all__ = ["CacheWarning", "NullCache", "SentenceCache", "SentenceStore", "cache_key", "cache_location",
           "default_cache_path", "is_redis_url", "limiter_storage", "open_cache", "DEFAULT_MAX_ENTRIES", "SCHEMA_VERSION"]


def cache_location(path: str | os.PathLike | None = None) -> str | os.PathLike:
    """Where the cache is: the given path or URL, else the settings' (MT_CACHE), else the default SQLite file."""
    if path is not None and str(path).strip():
        return path
    explicit = (current().cache or "").strip()
    return explicit if is_redis_url(explicit) else default_cache_path()


def open_cache(path: str | os.PathLike | None = None, *, disabled: bool = False,
               max_entries: int | None = None, timeout: float | None = None,
               ttl: int | None = None):
    """The cache the CLI and server use: a Redis URL (redis://, rediss://, unix://) gives a
    RedisCache, anything else an SQLite file. Never raises for an unusable file or an
    unreachable server (the cache warns once and stores nothing; its stats() say why); a
    missing redis package or a malformed URL is a ConfigError."""
    if disabled:
        return NullCache()
    location = cache_location(path)
    if is_redis_url(location):
        from .redis import RedisCache

        return RedisCache(str(location), ttl=ttl, timeout=timeout or DEFAULT_SOCKET_TIMEOUT)
    return SentenceCache(location, max_entries=max_entries, timeout=timeout or DEFAULT_TIMEOUT)


def limiter_storage(storage: str, cache: str | os.PathLike | None, disabled: bool = False) -> str:
    """Flask-Limiter's storage: the cache's Redis when the cache is one and no other storage was
    asked for, so a --rate-limit holds across every replica sharing that Redis."""
    location = None if disabled else cache_location(cache)
    if storage == "memory://" and is_redis_url(location):
        from .redis import limiter_storage_uri

        return limiter_storage_uri(str(location))
    return storage
