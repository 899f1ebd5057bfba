"""The request fields that choose a request's terms: ``glossary``, ``glossary_id`` and ``protect``.

One declaration for every body that translates (the JSON API, the page's form, document uploads):
JSON takes the glossary as an object ``{vietnamese: english}``, forms as TSV text (one
``Vietnamese<TAB>English`` line per entry). Each is declared with the same pattern the server
checks (:mod:`mt.cache.glossaries`), so the OpenAPI document promises exactly what is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..cache.glossaries import MAX_ENTRIES, TERM_PATTERN, TSV_PATTERN, TSV_RE, InvalidGlossary, check_entries
from ..errors import InputError

GLOSSARY_ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]{0,100}$"
TRUE, FALSE = ("true", "1", "on", "yes"), ("false", "0", "off", "no")


def entries(value: Any) -> Any:
    if value is None:
        return None
    try:
        return check_entries(value, "glossary")
    except InvalidGlossary as error:
        raise PydanticCustomError("invalid_glossary", "{reason}", {"reason": str(error)}) from None


def tsv_entries(value: Any) -> Any:
    """A form's glossary: TSV text (blank: none) as ``{vietnamese: english}``."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):  # already read (a form re-validated with its file's text)
        return entries(value)
    if isinstance(value, str) and value.lstrip().startswith("{"):  # the page's scripts send JSON too
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the decoder's stack
            parsed = None  # not JSON: refused below as TSV
        if isinstance(parsed, dict):
            return entries(parsed) or None
    if not isinstance(value, str) or not TSV_RE.search(value) or value.count("\n") > MAX_ENTRIES:
        raise PydanticCustomError(
            "invalid_glossary", "must be lines of Vietnamese<TAB>English (at most {count} lines; no blank term, "
            "control character or second tab)", {"count": MAX_ENTRIES})
    from ..terms.glossary_file import read_glossary

    try:
        return read_glossary(value, "glossary", allow_empty=True) or None
    except InputError as error:
        raise PydanticCustomError("invalid_glossary", "{reason}", {"reason": str(error)}) from None


def glossary_id(value: Any) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.search(GLOSSARY_ID_PATTERN, value):
        raise PydanticCustomError("invalid_glossary", "must be a glossary id from POST /api/glossaries")
    return value


def form_bool(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, bool):
        return True if value in (None, "") else value
    if isinstance(value, str) and value.lower() in TRUE + FALSE:
        return value.lower() in TRUE
    raise PydanticCustomError("invalid_bool", "must be true or false")


ENTRIES_SCHEMA = {"type": "object", "maxProperties": MAX_ENTRIES, "propertyNames": {"pattern": TERM_PATTERN},
                  "additionalProperties": {"type": "string", "pattern": TERM_PATTERN}}
GLOSSARY_DOC = ("Terms to enforce, Vietnamese → English (at most {count} entries, each side 1-200 characters; "
                "a Vietnamese term is matched in the normalised text, whole words, longest first)").format(count=MAX_ENTRIES)
GLOSSARY_ID_DOC = "A stored glossary (POST /api/glossaries); with `glossary` too, its entries win. Unknown: 404"
PROTECT_DOC = "Keep numbers, URLs, e-mail addresses and foreign names in the English (default true)"

Entries = Annotated[Any, BeforeValidator(entries), WithJsonSchema(ENTRIES_SCHEMA)]
Glossary = Annotated[Any, BeforeValidator(entries), WithJsonSchema({"anyOf": [ENTRIES_SCHEMA, {"type": "null"}]}),
                     Field(description=GLOSSARY_DOC)]
GlossaryId = Annotated[Any, BeforeValidator(glossary_id), WithJsonSchema(
    {"anyOf": [{"type": "string", "pattern": GLOSSARY_ID_PATTERN}, {"type": "null"}]}), Field(description=GLOSSARY_ID_DOC)]
Protect = Annotated[bool, Field(description=PROTECT_DOC, strict=True)]
FormGlossary = Annotated[Any, BeforeValidator(tsv_entries), WithJsonSchema({"type": "string", "pattern": TSV_PATTERN}),
                         Field(description="Terms to enforce as text: one Vietnamese<TAB>English line per entry "
                                           "(a header line is skipped), or a JSON object {vietnamese: english}; empty: none")]
FormGlossaryId = Annotated[Any, BeforeValidator(glossary_id), WithJsonSchema(
    {"type": "string", "pattern": GLOSSARY_ID_PATTERN}), Field(description=GLOSSARY_ID_DOC)]
FormProtect = Annotated[Any, BeforeValidator(form_bool), WithJsonSchema(
    {"type": "string", "enum": ["", *TRUE, *FALSE]}), Field(description=PROTECT_DOC)]
