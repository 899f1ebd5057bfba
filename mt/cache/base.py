"""What every cache backend shares: the interface, the key, NullCache, and warn-once.

Why one key function: the SQLite file and a Redis server must agree on what "the same
sentence under the same model and settings" is, so a backend swap never re-translates.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import warnings
from pathlib import Path
from ..settings import cache_home, current

from typing import Protocol, runtime_checkable

__all__ = ["CacheWarning", "SentenceStore", "NullCache", "cache_key", "count_kinds", "default_cache_path",
           "entry_kind", "storable", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1  # of the SQLite layout; reported by every backend's stats()
_PACKAGE = __name__.rpartition(".")[0]  # "mt.cache"


class CacheWarning(RuntimeWarning):
    """The cache could not be used as asked; translation goes on without it."""


@runtime_checkable
class SentenceStore(Protocol):
    """The interface the pipeline uses; every method is total (never raises for cache trouble)."""

    def get_many(self, namespace: str, sources: list[str]) -> dict[str, str]: ...
    def put_many(self, namespace: str, pairs: list[tuple[str, str]]) -> None: ...
    def stats(self) -> dict: ...
    def clear(self) -> int: ...  # how many SENTENCES were removed (links/quality entries go too)
    def close(self) -> None: ...


def default_cache_path() -> Path:
    """The settings' cache (MT_CACHE), else $XDG_CACHE_HOME/mt-vi-en/translations.sqlite, else
    ~/.cache/mt-vi-en/... (mt.settings reads the variables)."""
    explicit = (current().cache or "").strip()
    if explicit:
        return Path(explicit).expanduser()
    return cache_home() / "translations.sqlite"


def cache_key(namespace: str, source: str) -> bytes:
    """sha256 of (namespace, source); the namespace is length-prefixed so no split is ambiguous."""
    ns = namespace.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(len(ns).to_bytes(8, "little"))
    digest.update(ns)
    digest.update(source.encode("utf-8", "surrogatepass"))
    return digest.digest()


# Namespace suffixes of what the pipeline stores beside each translation (docs/CONTRACTS.md):
# word links and quality scores are entries too, but not sentences.
LINKS_SUFFIX = "|links"
QUALITY_MARK = "|quality:"
CONFIDENCE_SUFFIX = "|confidence"  # decoder confidences (mt.extras)


def entry_kind(namespace: str) -> str:
    """"sentences" (translations), "links" (word links), "quality" (e5 scores) or "confidence"
    (decoder confidences) for a namespace."""
    if namespace.endswith(LINKS_SUFFIX):
        return "links"
    if namespace.endswith(CONFIDENCE_SUFFIX):
        return "confidence"
    return "quality" if QUALITY_MARK in namespace else "sentences"


def count_kinds(namespaces: dict[str, int]) -> dict[str, int]:
    """Entries per kind, from entries per namespace: what `mt cache stats`/`clear` report."""
    kinds = {"sentences": 0, "links": 0, "quality": 0, "confidence": 0}
    for namespace, count in namespaces.items():
        kinds[entry_kind(namespace)] += int(count)
    return kinds


def storable(text: object) -> bool:
    """Only valid UTF-8 strings are stored: strings with lone surrogates are simply not cached."""
    if not isinstance(text, str):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def stacklevel_outside_package() -> int:
    """Attribute a warning to the first caller outside mt.cache (the line that used the cache)."""
    frame, level = sys._getframe(1), 1  # level 1 = the function calling warnings.warn
    while frame is not None and (frame.f_globals.get("__name__") or "").startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level


class WarnOnce:
    """One CacheWarning per kind of failure and cache instance: a failing cache must not flood logs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def __call__(self, kind: str, message: str) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        warnings.warn(message, CacheWarning, stacklevel=stacklevel_outside_package())

    def reset(self, kind: str) -> None:
        """Allow the next warning of this kind again (a backend that recovered)."""
        with self._lock:
            self._warned.discard(kind)


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
