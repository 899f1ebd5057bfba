"""Stored glossaries (Vietnamese → English), in the store every worker and replica shares.

A glossary created through one worker process (or one replica) must be usable through any other,
and must survive a restart: it lives beside the sentence cache, never in a process. SQLite on one
machine (a file next to the cache file, or in the server's run folder without a cache), Redis
across machines (the cache's Redis): the same rule as :mod:`mt.cache.files`. The store is bounded
(glossaries, entries per glossary, bytes per glossary and in all) and refuses with a clear error
rather than evict anyone's glossary. Entries are checked once, here (:func:`check_entries`), for
every way in: the JSON API, a form field, a TSV/CSV file, DeepL's API.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, MTError

MAX_ENTRIES = 5000  # entries in one glossary
MAX_TERM_CHARS = 200  # characters of one side of an entry (a term is a word or a phrase)
MAX_NAME_CHARS = 200
MAX_GLOSSARIES = 1000  # in one store
MAX_GLOSSARY_BYTES = 1 << 20  # one glossary's entries as UTF-8 JSON
MAX_STORE_BYTES = 64 << 20  # every glossary of a store
SQLITE_TIMEOUT = 10.0

# One side of an entry: leading spaces, a character that is not whitespace, then at most
# MAX_TERM_CHARS - 1 more, never a control character, tab or line break (a term is one cell of a
# TSV line). The same text is the OpenAPI pattern: what the spec promises is what is accepted.
NO_CONTROLS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
TERM = rf" *[^\s{NO_CONTROLS}][^{NO_CONTROLS}]{{0,{MAX_TERM_CHARS - 1}}}"
TERM_PATTERN = f"^{TERM}$"
NAME_PATTERN = rf"^ *[^\s{NO_CONTROLS}][^{NO_CONTROLS}]{{0,{MAX_NAME_CHARS - 1}}}$"
# A glossary pasted as text (the page's and the upload forms' ``glossary`` field): lines of
# TERM<TAB>TERM, LF or CRLF line ends. At most MAX_ENTRIES lines, checked on its own: a bounded
# repeat of the line makes a pattern too large for the regex engines that validate the spec
TSV_PATTERN = rf"^(?:{TERM}\t{TERM}(?:\r?\n|$))*$"
# Checked as the spec's readers (hypothesis, schemathesis) read a pattern: Python's re.search,
# where $ also matches before a final line feed (a trailing blank line is harmless: stripped)
TERM_RE, NAME_RE, TSV_RE = (re.compile(pattern) for pattern in (TERM_PATTERN, NAME_PATTERN, TSV_PATTERN))


class InvalidGlossary(InputError):
    """A glossary's entries or name break a rule (a blank term, a tab, too many entries...)."""

    code = "invalid_glossary"


class GlossaryLimit(MTError):
    """The store holds its maximum of glossaries (or bytes): delete one first."""

    code = "glossary_limit"


@dataclass(frozen=True)
class Glossary:
    id: str
    name: str
    entries: dict[str, str]
    created: float  # unix seconds

    @property
    def entry_count(self) -> int:
        return len(self.entries)

    def summary(self) -> dict:
        return {"glossary_id": self.id, "name": self.name, "entry_count": self.entry_count, "created": self.created}


def check_term(value: object, where: str) -> str:
    """One side of an entry, stripped; InvalidGlossary naming ``where`` when it breaks a rule."""
    if not isinstance(value, str):
        raise InvalidGlossary(f"{where} must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidGlossary(f"{where} is not valid Unicode (a lone surrogate)") from None
    if not TERM_RE.search(value):
        stripped = value.strip()
        if not stripped:
            raise InvalidGlossary(f"{where} is empty")
        if len(stripped) > MAX_TERM_CHARS:
            raise InvalidGlossary(f"{where} has {len(stripped):,} characters; at most {MAX_TERM_CHARS} are allowed")
        bad = re.search(f"[{NO_CONTROLS}]", value)
        if bad:
            raise InvalidGlossary(f"{where} holds a control character, tab or line break (U+{ord(bad.group()):04X})")
        raise InvalidGlossary(f"{where} must start with a character that is not whitespace (spaces aside)")
    return value.strip()


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidGlossary("a glossary needs a name (text, not blank)")
    if not NAME_RE.search(name):
        raise InvalidGlossary(f"the glossary name must be at most {MAX_NAME_CHARS} characters, with no control "
                              "characters or line breaks")
    return name.strip()


def check_entries(entries: object, what: str = "glossary") -> dict[str, str]:
    """``entries`` as a clean ``{vietnamese: english}`` (both sides stripped; a later duplicate of a
    Vietnamese term wins), or InvalidGlossary saying which entry breaks which rule."""
    if not isinstance(entries, Mapping):
        raise InvalidGlossary(f"{what} must be an object of Vietnamese → English entries")
    if len(entries) > MAX_ENTRIES:
        raise InvalidGlossary(f"{what} has {len(entries):,} entries; at most {MAX_ENTRIES:,} are allowed")
    clean: dict[str, str] = {}
    for source, target in entries.items():
        label = repr(source[:40]) if isinstance(source, str) else "a key"
        clean[check_term(source, f"{what} term {label}")] = check_term(target, f"{what} English of {label}")
    size = len(json.dumps(clean, ensure_ascii=False).encode("utf-8"))
    if size > MAX_GLOSSARY_BYTES:
        raise InvalidGlossary(f"{what} is {size:,} bytes; at most {MAX_GLOSSARY_BYTES:,} are allowed")
    return clean


def encoded(entries: dict[str, str]) -> str:
    return json.dumps(entries, ensure_ascii=False, separators=(",", ":"))


def new_id() -> str:
    """A UUID, as DeepL's glossary ids are (its clients pass them through as they are)."""
    return str(uuid.uuid4())


class SQLiteGlossaryStore:
    """Glossaries in an SQLite file (one connection per call: workers are processes)."""

    def __init__(self, path: str | Path, *, max_glossaries: int = MAX_GLOSSARIES, max_bytes: int = MAX_STORE_BYTES):
        self.path = Path(path)
        self.max_glossaries, self.max_bytes = max_glossaries, max_bytes
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS glossaries (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                         "created REAL NOT NULL, count INTEGER NOT NULL, size INTEGER NOT NULL, entries TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(str(self.path), timeout=SQLITE_TIMEOUT, isolation_level=None)

    def create(self, name: str, entries: Mapping[str, str]) -> Glossary:
        glossary = Glossary(new_id(), check_name(name), check_entries(entries), time.time())
        data = encoded(glossary.entries)
        size = len(data.encode("utf-8"))
        with self._lock, contextlib.closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                count, total = conn.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM glossaries").fetchone()
                refuse_over(count, total, size, self.max_glossaries, self.max_bytes)
                conn.execute("INSERT INTO glossaries VALUES (?, ?, ?, ?, ?, ?)",
                             (glossary.id, glossary.name, glossary.created, len(glossary.entries), size, data))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return glossary

    def get(self, glossary_id: str) -> Glossary | None:
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT id, name, entries, created FROM glossaries WHERE id = ?",
                               (glossary_id,)).fetchone()
        return Glossary(row[0], row[1], json.loads(row[2]), row[3]) if row else None

    def list(self) -> list[Glossary]:
        """Every glossary, oldest first, without its entries (``entries`` is empty: use :meth:`get`)."""
        with contextlib.closing(self._connect()) as conn:
            rows = conn.execute("SELECT id, name, count, created FROM glossaries ORDER BY created, id").fetchall()
        return [Listed(row[0], row[1], {}, row[3], row[2]) for row in rows]

    def delete(self, glossary_id: str) -> bool:
        with self._lock, contextlib.closing(self._connect()) as conn:
            return conn.execute("DELETE FROM glossaries WHERE id = ?", (glossary_id,)).rowcount > 0

    def close(self) -> None:
        """Nothing held open between calls."""


@dataclass(frozen=True)
class Listed(Glossary):
    """A glossary as listed: its entry count without its entries."""

    count: int = 0

    @property
    def entry_count(self) -> int:
        return self.count


def refuse_over(count: int, total: int, size: int, max_glossaries: int, max_bytes: int) -> None:
    if count >= max_glossaries:
        raise GlossaryLimit(f"the server holds its maximum of {max_glossaries:,} glossaries; delete one first")
    if total + size > max_bytes:
        raise GlossaryLimit(f"the server's glossaries would take over {max_bytes:,} bytes; delete one first")


class RedisGlossaryStore:
    """Glossaries in Redis: one hash per glossary, a sorted set of ids by creation, a byte counter.
    No expiry: a glossary stays until it is deleted."""

    def __init__(self, client, prefix: str, *, max_glossaries: int = MAX_GLOSSARIES, max_bytes: int = MAX_STORE_BYTES):
        self._client, self.prefix = client, f"{prefix}glossaries:"
        self.max_glossaries, self.max_bytes = max_glossaries, max_bytes
        self.index, self.bytes_key = f"{self.prefix}index", f"{self.prefix}bytes"

    def key(self, glossary_id: str) -> str:
        return f"{self.prefix}g:{glossary_id}"

    def create(self, name: str, entries: Mapping[str, str]) -> Glossary:
        glossary = Glossary(new_id(), check_name(name), check_entries(entries), time.time())
        data = encoded(glossary.entries)
        size = len(data.encode("utf-8"))
        pipe = self._client.pipeline(transaction=True)
        pipe.hset(self.key(glossary.id), mapping={"name": glossary.name, "created": repr(glossary.created),
                                                  "count": len(glossary.entries), "size": size, "entries": data})
        pipe.zadd(self.index, {glossary.id: glossary.created})
        pipe.incrby(self.bytes_key, size)
        pipe.zcard(self.index)
        *_, total, count = pipe.execute()
        try:  # counted after adding (atomically): concurrent creations cannot both slip under the bound
            refuse_over(int(count) - 1, int(total) - size, size, self.max_glossaries, self.max_bytes)
        except GlossaryLimit:
            self.delete(glossary.id)
            raise
        return glossary

    def get(self, glossary_id: str) -> Glossary | None:
        found = self._client.hmget(self.key(glossary_id), "name", "entries", "created")
        if not found or found[1] is None:
            return None
        return Glossary(glossary_id, found[0].decode("utf-8"), json.loads(found[1]), float(found[2]))

    def list(self) -> list[Glossary]:
        """Every glossary, oldest first, without its entries (``entries`` is empty: use :meth:`get`)."""
        ids = [member.decode() for member in self._client.zrange(self.index, 0, -1)]
        pipe = self._client.pipeline(transaction=False)
        for glossary_id in ids:
            pipe.hmget(self.key(glossary_id), "name", "count", "created")
        listed = []
        for glossary_id, (name, count, created) in zip(ids, pipe.execute()):
            if name is not None:  # deleted between the two reads
                listed.append(Listed(glossary_id, name.decode("utf-8"), {}, float(created), int(count)))
        return listed

    def delete(self, glossary_id: str) -> bool:
        key = self.key(glossary_id)
        size = self._client.hget(key, "size")
        if size is None:
            self._client.zrem(self.index, glossary_id)
            return False
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.zrem(self.index, glossary_id)
        deleted, _ = pipe.execute()
        if deleted:  # only the caller that removed the hash gives its bytes back
            self._client.decrby(self.bytes_key, int(size))
        return bool(deleted)

    def close(self) -> None:
        """The client belongs to the cache, which closes it."""


def open_glossary_store(cache, run_dir: str | Path):
    """The glossary store beside ``cache``: its Redis, a file next to its SQLite file, else ``run_dir``
    (the folder a server's workers share)."""
    client = getattr(cache, "_client", None)
    if client is not None and hasattr(cache, "prefix"):
        return RedisGlossaryStore(client, cache.prefix)
    path = getattr(cache, "path", None)
    if path and not getattr(cache, "_read_only", None):
        beside = Path(path).with_name(Path(path).name + ".glossaries")
        try:
            return SQLiteGlossaryStore(beside)
        except (OSError, sqlite3.Error):
            pass  # an unwritable cache folder: the run folder still works
    return SQLiteGlossaryStore(Path(run_dir) / "glossaries.sqlite")
