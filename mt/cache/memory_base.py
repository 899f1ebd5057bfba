"""What every translation memory store shares: the entry, its key, its limits and the fuzzy index.

The key is the sentence as the model sees it (:func:`mt.text.normalize`: NFC, one tone-mark style,
a word segmenter's ``nguồn_tin`` / ``Hà Nội ,`` undone), so an entry written plainly matches the
same sentence typed word-segmented. Fuzzy lookups compare keys with rapidfuzz's ratio in one
process-local index, refreshed from the shared store by a version check per call (new rows only;
everything again after a delete): workers and replicas each hold one, the store stays the truth.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Iterator

from .. import budget
from ..errors import InputError, MTError
from ..text.normalize import normalize

log = logging.getLogger(__name__)
_PUNCTUATION_GAP = re.compile(r" ?([^\w\s]) ?")

ORIGINS = ("edited", "imported", "suggested")
MAX_ENTRIES = 200_000  # per store: a refusal (MemoryFull) beyond, never a silent eviction
MAX_CHARS = 4_000  # per source or target (a segment is at most 1,500 characters)
# UTF-8 bytes of all keys in a store: every worker holds every key in its fuzzy index, so this
# bounds that index (~140 MB of Python strings at most) whatever the sentences' lengths
MAX_KEY_BYTES = 64 * 1024 * 1024
MAX_PROJECT_CHARS = 200
FUZZY_CUTOFF = 0.75  # rapidfuzz ratio (as 0-1): 0.75 and above is a suggestion
FUZZY_CANDIDATES = 2_000  # newest entries of a compatible length compared per sentence (~4 ms)
MAX_SUGGESTIONS = 3
BUDGET_EVERY = 32  # sentences compared between checks of the request's budget (mt.budget)


class MemoryFull(MTError):
    """The memory holds its maximum of entries (or of key bytes): adding more is refused, nothing
    is evicted."""

    code = "memory_full"


class MemoryUnavailable(MTError):
    """The memory's store (its SQLite file or Redis) cannot be used for a write right now."""

    code = "memory_unavailable"


@dataclass(frozen=True)
class MemoryEntry:
    """A Vietnamese sentence as written and its English; ``id``/``created`` once stored."""

    source: str
    target: str
    origin: str = "edited"
    project: str | None = None
    id: str | None = None
    created: float | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "source": self.source, "target": self.target, "origin": self.origin,
                "project": self.project, "created": self.created}


@lru_cache(maxsize=1 << 14)  # the pipeline asks for exact and fuzzy matches of the same sentences
def memory_key(text: str) -> str:
    """The lookup key of a Vietnamese sentence: normalised as the pipeline does (segmentation
    detected), the "new" tone style whatever the engine's, ``_`` read as a space (a lone
    ``1_triệu`` too), white space collapsed and none kept
    beside punctuation (``chốn "- bà`` and ``chốn" - bà`` are one sentence). Idempotent."""
    return _PUNCTUATION_GAP.sub(r"\1", " ".join(normalize(text, tone="new").text.replace("_", " ").split()))


def length_range(length: int) -> tuple[int, int]:
    """Key lengths that can reach a ratio of 0.75 with one of ``length``: the indel distance is at
    least the length difference, so ``|a - b| <= (a + b) / 4``, i.e. ``b`` in [3a/5, 5a/3]."""
    return -(-3 * length // 5), 5 * length // 3


def checked(entry: MemoryEntry, number: int, max_chars: int) -> MemoryEntry:
    """The entry with its texts trimmed, or an InputError naming it (``number`` counts from 1)."""
    source, target = (entry.source or "").strip(), (entry.target or "").strip()
    where = f"memory entry {number}"
    if not source or not target:
        raise InputError(f"{where}: the {'source' if not source else 'target'} is empty")
    if len(source) > max_chars or len(target) > max_chars:
        raise InputError(f"{where}: a source or target over {max_chars:,} characters (one sentence is wanted)")
    if entry.origin not in ORIGINS:
        raise InputError(f"{where}: origin must be one of {', '.join(ORIGINS)}, not {entry.origin!r}")
    project = (entry.project or "").strip() or None
    if project is not None and len(project) > MAX_PROJECT_CHARS:
        raise InputError(f"{where}: a project name over {MAX_PROJECT_CHARS} characters")
    return MemoryEntry(source, target, entry.origin, project)


class FuzzyIndex:
    """Every key once, oldest first, with its length in an array: the newest candidates of a length
    range are one vectorised mask and a slice, never a Python loop over the whole memory."""

    def __init__(self) -> None:
        self.ids: dict[str, tuple[str, int]] = {}  # key -> (entry id, sequence number)
        self._position: dict[str, int] = {}  # key -> its slot in the lists below
        self._keys: list[str] = []
        self._lengths: list[int] = []  # -1: a slot whose key moved on (replaced by a later row)
        self._array = None  # numpy copy of _lengths, rebuilt after changes

    def reset(self, rows: list[tuple[str, str, int]]) -> None:
        self.ids, self._position, self._keys, self._lengths, self._array = {}, {}, [], [], None
        self.update(rows)

    def update(self, rows: list[tuple[str, str, int]]) -> None:
        """Add (key, id, seq) rows; a key's later row replaces its earlier one."""
        for key, entry_id, seq in sorted(rows, key=itemgetter(2)):
            old = self.ids.get(key)
            if old is not None and old[1] > seq:
                continue
            self.ids[key] = (entry_id, seq)
            if key in self._position:
                self._lengths[self._position[key]] = -1
            self._position[key] = len(self._keys)
            self._keys.append(key)
            self._lengths.append(len(key))
            self._array = None
        if len(self._keys) > 2 * len(self.ids) + 1024:  # many replacements: drop the dead slots
            live = sorted(self._position.items(), key=itemgetter(1))
            self._keys = [key for key, _ in live]
            self._lengths = [len(key) for key in self._keys]
            self._position = {key: slot for slot, key in enumerate(self._keys)}
            self._array = None

    def candidates(self, length: int, limit: int) -> list[str]:
        """At most ``limit`` keys of a length that can match one of ``length``, newest first."""
        import numpy

        if self._array is None:
            self._array = numpy.asarray(self._lengths, dtype=numpy.int32)
            self._key_array = numpy.asarray(self._keys, dtype=object)
        low, high = length_range(length)
        slots = numpy.flatnonzero((self._array >= low) & (self._array <= high))[-limit:]
        return self._key_array[slots[::-1]].tolist()


class TranslationMemory:
    """The memory's operations over a store (subclasses: SQLite file, Redis). Lookups never fail a
    translation: a store that cannot be read answers nothing (logged); writes raise."""

    backend = ""
    location = ""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS,
                 candidates: int = FUZZY_CANDIDATES, max_key_bytes: int = MAX_KEY_BYTES):
        self.max_entries, self.max_chars, self.candidates = max_entries, max_chars, candidates
        self.max_key_bytes = max_key_bytes
        self._reset_process_state()

    def _reset_process_state(self) -> None:
        self._pid, self._lock, self._index, self._version = os.getpid(), threading.Lock(), FuzzyIndex(), None
        self._warned_at = 0.0

    # -- the pipeline's lookups ------------------------------------------------------------------
    def exact(self, sources: list[str]) -> dict[str, str]:
        """source -> the English of the entry with the same key (one store query for all)."""
        if not self._quietly(self._refresh) or not self._index.ids:
            return {}  # an empty memory costs one small query, no normalising
        keys = {source: memory_key(source) for source in dict.fromkeys(sources)}
        found = self._quietly(self._targets, list(set(keys.values()))) or {}
        return {source: found[key] for source, key in keys.items() if key in found}

    def suggest(self, sources: list[str]) -> dict[str, list[dict]]:
        """source -> up to 3 ``{source, target, score}`` of other entries scoring 0.75 or more
        (score 0-1, best first); sources without any are left out."""
        if not self._quietly(self._refresh) or not self._index.ids:
            return {}
        hits = self._fuzzy({source: memory_key(source) for source in dict.fromkeys(sources)}, MAX_SUGGESTIONS,
                           refresh=False)
        return {source: [{"source": row["source"], "target": row["target"], "score": score}
                         for row, score in found] for source, found in hits.items() if found}

    # -- the API's and the CLI's -----------------------------------------------------------------
    def add(self, entries: list[MemoryEntry]) -> list[str]:
        """Store entries (an entry replaces the one of the same key: a correction wins); their ids,
        in order. InputError for a bad entry, MemoryFull past the bound: nothing stored then."""
        now, rows, ids = time.time(), {}, []
        for number, entry in enumerate(entries, 1):
            entry = checked(entry, number, self.max_chars)
            key = memory_key(entry.source)
            if not key:
                raise InputError(f"memory entry {number}: the source has no text once normalised")
            entry_id = secrets.token_hex(8)
            rows.pop(key, None)  # the batch's last entry of a key wins
            rows[key] = {"id": entry_id, "key": key, "source": entry.source, "target": entry.target,
                         "origin": entry.origin, "project": entry.project, "created": now}
            ids.append(entry_id)
        if rows:
            self._loudly(self._put, list(rows.values()))
        return ids

    def search(self, q: str, limit: int = 20) -> list[dict]:
        """The entry with ``q``'s key (score 1.0) and the entries scoring 0.75 or more, best first."""
        key = memory_key(q)
        if not key:
            return []
        exact = self._quietly(self._rows_by_keys, [key]) or {}
        found = [(row, 1.0) for row in exact.values()]
        found += self._fuzzy({q: key}, max(0, limit - len(found))).get(q, [])
        return [{**row, "score": score} for row, score in found[:limit]]

    def delete(self, entry_id: str) -> bool:
        return bool(self._loudly(self._delete, entry_id))

    def entries(self) -> Iterator[MemoryEntry]:
        """Every entry, oldest first."""
        for row in self._loudly(self._all_rows):
            yield MemoryEntry(row["source"], row["target"], row["origin"], row["project"], row["id"], row["created"])

    def stats(self) -> dict:
        origins, projects, count = dict.fromkeys(ORIGINS, 0), set(), 0
        for entry in self.entries():
            count += 1
            origins[entry.origin] = origins.get(entry.origin, 0) + 1
            projects.add(entry.project)
        return {"backend": self.backend, "location": self.location, "entries": count,
                "max_entries": self.max_entries, "max_chars": self.max_chars,
                "max_key_bytes": self.max_key_bytes, "origins": origins,
                "projects": sorted(project for project in projects if project)}

    # -- fuzzy matching ----------------------------------------------------------------------------
    def _fuzzy(self, keys: dict[str, str], limit: int, *, refresh: bool = True) -> dict[str, list[tuple[dict, float]]]:
        """Each source's best ``limit`` other entries at 0.75 or more; the request's budget is
        checked every few sentences (a long document against a large memory takes seconds)."""
        from rapidfuzz import process
        from rapidfuzz.distance import Indel  # fuzz.ratio's own metric, 0-1, without the 0-100 wrapper

        if limit <= 0 or (refresh and self._quietly(self._refresh) is None):
            return {}
        with self._lock:
            index = self._index
            matches = {}
            for number, (source, key) in enumerate(keys.items()):
                if number % BUDGET_EVERY == BUDGET_EVERY - 1:
                    budget.check()
                if not key:
                    continue
                choices = index.candidates(len(key), self.candidates)
                found = process.extract(key, choices, scorer=Indel.normalized_similarity, processor=None,
                                        score_cutoff=FUZZY_CUTOFF, limit=limit + 1)
                matches[source] = [(index.ids[choice][0], min(round(score, 4), 0.9999))
                                   for choice, score, _ in found if choice != key][:limit]
        wanted = list({entry_id for found in matches.values() for entry_id, _ in found})
        rows = (self._quietly(self._rows, wanted) or {}) if wanted else {}
        return {source: [(rows[entry_id], score) for entry_id, score in found if entry_id in rows]
                for source, found in matches.items()}

    def _refresh(self) -> bool:
        """Bring this process's index up to the store: new rows since the last look, or all
        again when something was deleted (the generation changed)."""
        if self._pid != os.getpid():  # a forked worker: its own lock and index
            self._reset_process_state()
        version = self._store_version()
        with self._lock:
            if version == self._version:
                return True
            if self._version is None or version[0] != self._version[0] or version[1] < self._version[1]:
                self._index.reset(self._all_keys())
            else:
                self._index.update(self._keys_since(self._version[1]))
            self._version = version
        return True

    # -- error policy -------------------------------------------------------------------------------
    def _quietly(self, function, *args):
        """A lookup: None when the store fails (a warning at most once a minute)."""
        try:
            return function(*args)
        except self._store_errors() as error:
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("translation memory %s: lookup skipped: %s", self.location, error)
            return None

    def _loudly(self, function, *args):
        try:
            return function(*args)
        except self._store_errors() as error:
            raise MemoryUnavailable(f"the translation memory ({self.location}) cannot be used: {error}") from None

    # -- the store (subclasses) ------------------------------------------------------------------------
    def _store_errors(self) -> tuple[type[BaseException], ...]:
        return (OSError,)

    def _store_version(self) -> tuple[int, int]:
        """(generation: bumped by every delete, sequence number of the newest write)."""
        raise NotImplementedError

    def _all_keys(self) -> list[tuple[str, str, int]]:
        raise NotImplementedError

    def _keys_since(self, seq: int) -> list[tuple[str, str, int]]:
        raise NotImplementedError

    def _targets(self, keys: list[str]) -> dict[str, str]:
        raise NotImplementedError

    def _rows(self, ids: list[str]) -> dict[str, dict]:
        raise NotImplementedError

    def _rows_by_keys(self, keys: list[str]) -> dict[str, dict]:
        raise NotImplementedError

    def _put(self, rows: list[dict]) -> None:
        raise NotImplementedError

    def _delete(self, entry_id: str) -> bool:
        raise NotImplementedError

    def _all_rows(self) -> Iterator[dict]:
        raise NotImplementedError


def full_of_bytes(size: int, limit: int, added: int) -> MemoryFull:
    return MemoryFull(f"the translation memory's sentences take {size:,} bytes of at most {limit:,}; "
                      f"{added:,} more do not fit (delete some first)")
