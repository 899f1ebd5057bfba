"""Per-sentence translation cache: one interface (base), an SQLite file backend (sqlite).

`open_cache` is the front door the CLI, the server and the batch use.
"""

from __future__ import annotations

import os

from .base import SCHEMA_VERSION, CacheWarning, NullCache, SentenceStore, cache_key, default_cache_path
from .sqlite import DEFAULT_TIMEOUT, SentenceCache
from .sqlite_support import DEFAULT_MAX_ENTRIES

_key = cache_key  # old private name, kept for code that still imports it

__all__ = ["CacheWarning", "NullCache", "SentenceCache", "SentenceStore", "cache_key",
           "default_cache_path", "open_cache", "DEFAULT_MAX_ENTRIES", "SCHEMA_VERSION"]


def open_cache(path: str | os.PathLike | None = None, *, disabled: bool = False,
               max_entries: int | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> SentenceCache | NullCache:
    """The cache the CLI and server use. Never raises for a bad path: an unusable file gives a
    SentenceCache that warns once and stores nothing (its stats() say why)."""
    if disabled:
        return NullCache()
    return SentenceCache(default_cache_path() if path is None else path,
                         max_entries=max_entries, timeout=timeout)
