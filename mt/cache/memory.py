"""The translation memory, in the store every worker and replica shares: an SQLite file beside the
sentence cache (``<cache>.memory``) or keys in the cache's Redis. ``memory_of(cache)`` is the
memory beside a sentence cache (None without one: --no-cache), made once per cache object, so
the pipeline may ask for it on every request.

An exact match on the normalised sentence (:func:`memory_key`) outranks the model; fuzzy matches
(rapidfuzz ratio 0.75 and above) become suggestions. See docs/MEMORY.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .memory_base import (FUZZY_CANDIDATES, FUZZY_CUTOFF, MAX_CHARS, MAX_ENTRIES, ORIGINS, MemoryEntry, MemoryFull,
                          MemoryUnavailable, TranslationMemory, memory_key)
from .memory_redis import RedisMemory
from .memory_sqlite import SQLiteMemory

__all__ = ["FUZZY_CANDIDATES", "FUZZY_CUTOFF", "MAX_CHARS", "MAX_ENTRIES", "ORIGINS", "MemoryEntry", "MemoryFull",
           "MemoryUnavailable", "RedisMemory", "SQLiteMemory", "TranslationMemory", "memory_key", "memory_of",
           "memory_path", "switch_off"]

log = logging.getLogger(__name__)
_ATTRIBUTE = "_mt_translation_memory"


def memory_path(cache_path: str | Path) -> Path:
    """The memory file beside an SQLite cache file."""
    path = Path(cache_path)
    return path.with_name(path.name + ".memory")


def memory_of(cache) -> TranslationMemory | None:
    """The memory beside ``cache``, memoised on it (None: no memory, e.g. NullCache)."""
    if cache is None:
        return None
    found = getattr(cache, _ATTRIBUTE, False)
    if found is not False:
        return found
    memory = _open(cache)
    try:
        setattr(cache, _ATTRIBUTE, memory)
    except AttributeError:  # a cache that takes no attributes: made again next time (cheap, nothing opened)
        pass
    return memory


def switch_off(cache) -> None:
    """No memory for ``cache`` in this process from now on (``--memory off``): memory_of gives None."""
    try:
        setattr(cache, _ATTRIBUTE, None)
    except AttributeError:
        pass


def _open(cache) -> TranslationMemory | None:
    client = getattr(cache, "_client", None)
    if client is not None and hasattr(cache, "prefix"):
        return RedisMemory(client, cache.prefix, location=f"{getattr(cache, 'url', '')} ({cache.prefix}memory.*)")
    path = getattr(cache, "path", None)
    if path and str(path) != ":memory:":
        return SQLiteMemory(memory_path(path))
    return None
