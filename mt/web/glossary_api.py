"""``/api/glossaries``: stored glossaries (create, list, read, delete), and :func:`term_rules`, the
one place a request's ``glossary`` / ``glossary_id`` / ``protect`` become its :class:`TermRules`.

Glossaries live in the shared store (:mod:`mt.cache.glossaries`, beside the sentence cache), so
every worker and replica sees one as soon as it is created. Every route needs an API key when the
server has keys (reads too: a glossary is a client's data). Terms are applied after the cache, so
a new glossary costs no re-translation.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import ClassVar

from flask import Blueprint, current_app, url_for
from pydantic import Field

from ..cache.glossaries import NAME_PATTERN, GlossaryLimit, InvalidGlossary
from ..terms import DEFAULT_TERMS, NO_TERMS, TermRules
from . import schemas
from .errors import ApiError, from_store, json_response
from .glossary_fields import Entries
from .openapi import Answer, operation
from .security import limited, needs_api_key

bp = Blueprint("glossary_api", __name__)
log = logging.getLogger(__name__)

STORE_ERRORS = ("server_busy",)
GLOSSARY_EXAMPLE = {"name": "space", "entries": {"tên lửa": "rocket", "vệ tinh": "satellite"}}


class StoredGlossaryCreate(schemas.RequestModel):
    """POST /api/glossaries."""

    name: str = Field(description="For people: what the glossary is for (1-200 characters)",
                      json_schema_extra={"pattern": NAME_PATTERN})
    entries: Entries = Field(description="Vietnamese → English, at most 5,000 entries, each side 1-200 characters")
    api_key: schemas.ApiKey = None

    messages: ClassVar[dict[str, str]] = {"name": "name must be a string of 1 to 200 characters, not blank",
                                          "api_key": "api_key must be a string"}
    missing: ClassVar[dict[str, str]] = {"entries": "entries is required: an object {vietnamese: english}"}


class StoredGlossary(schemas.ResponseModel):
    glossary_id: str = Field(description="Use it as glossary_id in POST /api/translate, the stream and documents")
    name: str
    entry_count: int
    created: float = Field(description="Unix seconds")


class StoredGlossaries(schemas.ResponseModel):
    glossaries: list[StoredGlossary] = Field(description="Oldest first")


class StoredGlossaryEntries(StoredGlossary):
    entries: dict[str, str] = Field(description="Vietnamese → English")


class StoredGlossaryDeleted(schemas.ResponseModel):
    glossary_id: str
    deleted: bool


def store():
    """The shared glossary store (mt.cache.glossaries), opened by create_app."""
    return current_app.extensions["mt_glossaries"]


def stored(call, *args):
    """A glossary store call (see :func:`mt.web.errors.from_store`); its own refusals pass."""
    return from_store("glossary", call, *args, passing=(InvalidGlossary, GlossaryLimit))


def find(glossary_id: str):
    found = stored(store().get, glossary_id) if glossary_id else None
    if found is None:
        raise ApiError("glossary_not_found", f"no glossary {glossary_id[:100]!r}: list them with GET /api/glossaries")
    return found


def term_rules(glossary: Mapping[str, str] | str | None = None, glossary_id: str | None = None,
               protect: bool = True) -> TermRules:
    """A request's terms: the stored glossary ``glossary_id`` (404 glossary_not_found when unknown)
    with ``glossary``'s entries on top (an object, or TSV/CSV text), protected spans unless
    ``protect`` is false."""
    entries: dict[str, str] = {}
    if glossary_id:
        found = find(glossary_id)  # every request asks the store: a deleted glossary is 404 at once
        if not glossary:
            return stored_rules(found, bool(protect))
        entries.update(found.entries)
    if isinstance(glossary, str):
        from ..terms.glossary_file import read_glossary

        glossary = read_glossary(glossary, "glossary", allow_empty=True)
    if glossary:
        entries.update(glossary)
    if not entries:
        return DEFAULT_TERMS if protect else NO_TERMS
    return TermRules(glossary=entries, protect=bool(protect))


_RULES: OrderedDict[tuple[str, float, bool], TermRules] = OrderedDict()  # newest last
_RULES_KEPT = 16
_rules_lock = threading.Lock()


def stored_rules(found, protect: bool) -> TermRules:
    """The TermRules of a stored glossary, kept for the next request: stored glossaries never change
    (create and delete only), and the rules' index of a 5,000-entry glossary costs ~0.1 s to build.
    Derived state only: the glossary itself is read from the shared store on every request."""
    key = (found.id, found.created, protect)
    with _rules_lock:
        rules = _RULES.get(key)
        if rules is not None:
            _RULES.move_to_end(key)
            return rules
    rules = TermRules(glossary=dict(found.entries), protect=protect)
    with _rules_lock:
        _RULES[key] = rules
        while len(_RULES) > _RULES_KEPT:
            _RULES.popitem(last=False)
    return rules


def body_terms(body) -> TermRules:
    """The terms of a parsed request body (any model with the three fields; absent ones default)."""
    return term_rules(getattr(body, "glossary", None), getattr(body, "glossary_id", None),
                      getattr(body, "protect", True))


@bp.post("/api/glossaries")
@limited
@needs_api_key
@operation(
    summary="Store a glossary", tags=("Glossaries",),
    description=("Stores `entries` (Vietnamese → English) under a new id, shared by every worker and replica. Use "
                 "the id as `glossary_id` when translating: terms are applied after the cache, so a glossary costs "
                 "no re-translation. A later duplicate of a Vietnamese term wins."),
    body=StoredGlossaryCreate, example=GLOSSARY_EXAMPLE,
    answers={201: Answer("The stored glossary (its entries in GET /api/glossaries/{glossary_id})", StoredGlossary)},
    errors=("invalid_json", "invalid_field", "unsupported_media_type", "invalid_glossary", "glossary_limit",
            *STORE_ERRORS),
)
def create(body: StoredGlossaryCreate):
    glossary = stored(store().create, body.name, body.entries)
    answer = StoredGlossary.model_validate(glossary.summary()).model_dump(mode="json")
    return json_response(answer, 201, {"Location": url_for("glossary_api.read", glossary_id=glossary.id)})


@bp.get("/api/glossaries")
@needs_api_key
@operation(summary="List the stored glossaries", tags=("Glossaries",), response=StoredGlossaries, errors=STORE_ERRORS)
def listing():
    return {"glossaries": [glossary.summary() for glossary in stored(store().list)]}


@bp.get("/api/glossaries/<glossary_id>")
@needs_api_key
@operation(summary="A stored glossary with its entries", tags=("Glossaries",), response=StoredGlossaryEntries,
           errors=("glossary_not_found", *STORE_ERRORS))
def read(glossary_id: str):
    glossary = find(glossary_id)
    return {**glossary.summary(), "entries": glossary.entries}


@bp.delete("/api/glossaries/<glossary_id>")
@limited
@needs_api_key
@operation(summary="Delete a stored glossary", tags=("Glossaries",), response=StoredGlossaryDeleted,
           errors=("glossary_not_found", *STORE_ERRORS))
def delete(glossary_id: str):
    if not stored(store().delete, glossary_id):
        raise ApiError("glossary_not_found", f"no glossary {glossary_id[:100]!r}: list them with GET /api/glossaries")
    return {"glossary_id": glossary_id, "deleted": True}
