"""``/api/memory``: the translation memory (add, search, delete), and :func:`memory_for_writes`, the
one gate every write goes through (this API, LibreTranslate's ``/suggest``, the page's edits).

The memory lives beside the sentence cache (:mod:`mt.cache.memory`), so every worker and replica
sees an entry as soon as it is stored. ``--memory read-only`` keeps a public server's memory as
its owner made it (writes 403); ``--memory off`` switches lookups off for the whole app (the
pipeline finds no memory on the cache) and these routes answer 404.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from flask import Blueprint, current_app, request
from pydantic import BeforeValidator, Field, StrictStr

from ..cache.memory import ORIGINS, MemoryEntry, TranslationMemory, memory_of, switch_off
from ..cache.memory_base import MAX_PROJECT_CHARS
from . import schemas
from .errors import ApiError, json_response
from .openapi import Answer, operation
from .security import limited, needs_api_key

bp = Blueprint("memory_api", __name__)

# entries per POST and characters per text: the largest body the schema allows (or one item over)
# stays under the default body cap (--max-body-bytes), so a refusal is a 400 naming the field
MAX_BATCH = 100
MAX_TEXT = 2_000
MAX_RESULTS = 100
ID_RE = re.compile(r"^[0-9a-f]{16}$")
READ_ERRORS = ("memory_off", "memory_unavailable")
WRITE_ERRORS = READ_ERRORS + ("memory_read_only",)
BODY_ERRORS = ("invalid_json", "invalid_field", "unsupported_media_type", "invalid_input")
EXAMPLE = {"entries": [{"source": "Hà Nội là thủ đô của Việt Nam.", "target": "Hanoi is the capital of Vietnam.",
                        "project": "geography"}]}


@bp.record_once
def _apply_setting(state) -> None:
    """``--memory off``: no lookups anywhere in this app (its cache answers no memory)."""
    settings, service = state.app.extensions.get("mt_settings"), state.app.extensions.get("mt")
    if settings is not None and service is not None and getattr(settings, "memory", "on") == "off":
        switch_off(service.cache)


def _setting() -> str:
    return getattr(current_app.extensions.get("mt_settings"), "memory", "on")


def memory_for_reads() -> TranslationMemory:
    """The app's memory, or 404 memory_off / 503 memory_unavailable (no cache: --no-cache)."""
    if _setting() == "off":
        raise ApiError("memory_off", "this server keeps no translation memory (--memory off)")
    memory = memory_of(current_app.extensions["mt"].cache)
    if memory is None:
        raise ApiError("memory_unavailable", "this server has no translation memory: it runs without a cache "
                                             "(--no-cache), and the memory lives beside the cache")
    return memory


def memory_for_writes() -> TranslationMemory:
    """The memory a write may change, or the ApiError to answer: 403 memory_read_only, 404
    memory_off, 503 memory_unavailable."""
    if _setting() == "read-only":
        raise ApiError("memory_read_only", "this server's translation memory is read-only (--memory read-only)")
    return memory_for_reads()


Source = Annotated[schemas.NonBlank, Field(max_length=MAX_TEXT, description="The Vietnamese sentence as written "
                                           "(word-segmented input is matched as the pipeline reads it)")]
Target = Annotated[schemas.NonBlank, Field(max_length=MAX_TEXT, description="Its English")]
ProjectName = Annotated[StrictStr, BeforeValidator(schemas.valid_unicode),
                        Field(max_length=MAX_PROJECT_CHARS, json_schema_extra={"pattern": schemas.TEXT_PATTERN})]
Project = Annotated[ProjectName | None, Field(description="An optional project name")]


class MemoryEntryIn(schemas.RequestModel):
    source: Source
    target: Target
    project: Project = None
    origin: Literal[ORIGINS] = Field("edited", description="edited (a person's translation: the default), "
                                                             "imported or suggested")


class MemoryAdd(schemas.RequestModel):
    """POST /api/memory."""

    entries: list[MemoryEntryIn] = Field(min_length=1, max_length=MAX_BATCH,
                                         description=f"1 to {MAX_BATCH:,} entries; an entry replaces the one for the "
                                                     "same normalised sentence (a correction wins)")
    api_key: schemas.ApiKey = None

    messages: ClassVar[dict[str, str]] = {
        "entries": f"entries must be a list of 1 to {MAX_BATCH:,} objects {{source, target, project?, origin?}} "
                   f"(texts of at most {MAX_TEXT:,} characters)",
        "api_key": "api_key must be a string"}
    missing: ClassVar[dict[str, str]] = {"entries": "entries is required: a list of {source, target} objects"}


class MemoryAdded(schemas.ResponseModel):
    ids: list[str] = Field(description="The new entries' ids, in the order sent (DELETE /api/memory/{entry_id})")


class MemoryHit(schemas.ResponseModel):
    id: str
    source: str
    target: str
    score: float = Field(description="1 for the sentence itself (after normalisation), else 0.75 to below 1")
    origin: Literal[ORIGINS]
    project: str | None
    created: float = Field(description="Unix seconds")


class MemoryHits(schemas.ResponseModel):
    hits: list[MemoryHit] = Field(description="Best first: the exact entry, then fuzzy matches")


class MemoryDeleted(schemas.ResponseModel):
    id: str
    deleted: bool


QUERY = [
    {"name": "q", "in": "query", "required": True, "description": "A Vietnamese sentence",
     "schema": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": schemas.NONBLANK_PATTERN}},
    {"name": "limit", "in": "query", "required": False, "description": f"Most hits, 1 to {MAX_RESULTS} (default 20)",
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS, "default": 20}},
]


@bp.post("/api/memory")
@limited
@needs_api_key
@operation(
    summary="Add entries to the translation memory", tags=("Memory",),
    description=("Stores Vietnamese sentences with their English. A later translation of the same sentence (after "
                 "normalisation: word-segmented input, tone-mark styles and spacing do not matter) comes from the "
                 "memory (`origin: \"memory\"`); similar sentences get it as a suggestion."),
    body=MemoryAdd, example=EXAMPLE, answers={201: Answer("The entries' ids", MemoryAdded)},
    errors=BODY_ERRORS + WRITE_ERRORS + ("memory_full",),
)
def add(body: MemoryAdd):
    memory = memory_for_writes()
    ids = memory.add([MemoryEntry(entry.source, entry.target, entry.origin, entry.project) for entry in body.entries])
    return json_response({"ids": ids}, 201)


@bp.get("/api/memory")
@needs_api_key
@operation(summary="Search the translation memory", tags=("Memory",), response=MemoryHits, parameters=QUERY,
           description="The entry for `q` itself (score 1) and entries whose normalised sentence scores 0.75 or "
                       "more against it (rapidfuzz ratio), best first.",
           errors=("invalid_field",) + READ_ERRORS)
def search():
    q = request.args.get("q", "")
    if not q.strip() or len(q) > MAX_TEXT or schemas.CONTROL_RE.search(q):
        raise ApiError("invalid_field", f"q is required: a Vietnamese sentence of at most {MAX_TEXT:,} characters")
    raw = request.args.get("limit", "20")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_RESULTS:
        raise ApiError("invalid_field", f"limit must be an integer from 1 to {MAX_RESULTS}")
    return {"hits": memory_for_reads().search(q, int(raw))}


@bp.delete("/api/memory/<entry_id>")
@limited
@needs_api_key
@operation(summary="Delete a translation memory entry", tags=("Memory",), response=MemoryDeleted,
           errors=WRITE_ERRORS + ("memory_entry_not_found",))
def delete(entry_id: str):
    memory = memory_for_writes()
    if not ID_RE.match(entry_id) or not memory.delete(entry_id):
        raise ApiError("memory_entry_not_found", f"no memory entry {entry_id[:100]!r}")
    return {"id": entry_id, "deleted": True}
