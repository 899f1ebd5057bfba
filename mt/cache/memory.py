"""The translation memory, in the store every worker and replica shares (stub: filled in by its
implementation). ``memory_of(cache)`` is the memory beside a sentence cache, or None."""

from __future__ import annotations

from typing import Protocol

__all__ = ["MemoryLookup", "memory_of"]


class MemoryLookup(Protocol):
    """What the pipeline asks of a translation memory (sources are normalised sentences)."""

    def exact(self, sources: list[str]) -> dict[str, str]: ...
    def suggest(self, sources: list[str]) -> dict[str, list[dict]]: ...


def memory_of(cache) -> MemoryLookup | None:
    """The memory beside ``cache`` (None: no memory, e.g. NullCache)."""
    return None
