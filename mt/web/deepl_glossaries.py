"""DeepL API v2's glossaries (``/v2/glossaries``, ``/v2/glossary-language-pairs``), kept in the
same store as our own /api/glossaries (``app.extensions["mt_glossaries"]``, mt.cache.glossaries):
a glossary made through either API is usable through both. Vietnamese → English only.
"""

from __future__ import annotations

from flask import Response

from .deepl_base import COMMON_ERRORS, TAGS, bp, creation_time
from .deepl_schemas import (DeepLError, DeepLGlossaryForm, DeepLGlossaryInfo, DeepLGlossaryList, DeepLGlossaryRequest,
                            DeepLLanguagePairs)
from .errors import ApiError
from .glossary_api import find, store, stored
from .openapi import FORM_TYPES, JSON, Answer, operation
from .security import limited

STORE_ERRORS = ("invalid_glossary", "glossary_limit", "server_busy")


def info(glossary) -> dict:
    return {"glossary_id": glossary.id, "name": glossary.name, "ready": True, "source_lang": "vi",
            "target_lang": "en", "creation_time": creation_time(glossary.created),
            "entry_count": len(glossary.entries)}


@bp.get("/v2/glossary-language-pairs")
@operation(summary="DeepL-compatible glossary language pairs", tags=TAGS, secured=True, response=DeepLLanguagePairs,
           errors=("invalid_api_key",), error_model=DeepLError)
def language_pairs():
    return {"supported_languages": [{"source_lang": "vi", "target_lang": "en"}]}


@bp.post("/v2/glossaries")
@limited
@operation(
    summary="DeepL-compatible glossary creation", tags=TAGS, secured=True,
    description=("`name`, `source_lang` vi, `target_lang` en, `entries` (one entry a line) in `entries_format` "
                 "tsv (Vietnamese<TAB>English) or csv (Vietnamese,English). Stored with /api/glossaries' "
                 "glossaries. Answers 201 and the glossary."),
    body={JSON: DeepLGlossaryRequest, **{content_type: DeepLGlossaryForm for content_type in FORM_TYPES}},
    example={"name": "Tin tức", "source_lang": "vi", "target_lang": "en", "entries": "Hà Nội\tHanoi",
             "entries_format": "tsv"},
    answers={201: Answer("The glossary", DeepLGlossaryInfo)},
    errors=(*COMMON_ERRORS, "unsupported_language", "invalid_input", *STORE_ERRORS), error_model=DeepLError,
)
def create(body: DeepLGlossaryRequest):
    if body.source_lang.lower() != "vi" or body.target_lang.lower() != "en":
        raise ApiError("unsupported_language", "Unsupported glossary source and target language pair: this "
                                               "server has vi → en glossaries only.")
    from ..terms.glossary_file import read_glossary

    entries = read_glossary(body.entries, f"entries.{body.entries_format}")
    glossary = stored(store().create, body.name.strip(), entries)
    return Response(DeepLGlossaryInfo.model_validate(info(glossary)).model_dump_json(), status=201,
                    mimetype="application/json")


@bp.get("/v2/glossaries")
@operation(summary="DeepL-compatible glossary list", tags=TAGS, secured=True, response=DeepLGlossaryList,
           errors=("invalid_api_key", "server_busy"), error_model=DeepLError)
def list_glossaries():
    return {"glossaries": [info(glossary) for glossary in stored(store().list)]}


@bp.get("/v2/glossaries/<glossary_id>")
@operation(summary="DeepL-compatible glossary details", tags=TAGS, secured=True, response=DeepLGlossaryInfo,
           errors=("glossary_not_found", "invalid_api_key", "server_busy"), error_model=DeepLError)
def get_glossary(glossary_id: str):
    return info(find(glossary_id))


@bp.delete("/v2/glossaries/<glossary_id>")
@operation(summary="DeepL-compatible glossary deletion", tags=TAGS, secured=True,
           answers={204: Answer("Deleted", None, content_types=())},
           errors=("glossary_not_found", "invalid_api_key", "server_busy"), error_model=DeepLError)
def delete_glossary(glossary_id: str):
    if not stored(store().delete, glossary_id):
        raise ApiError("glossary_not_found", "Glossary not found.")
    return Response(status=204)


@bp.get("/v2/glossaries/<glossary_id>/entries")
@operation(summary="DeepL-compatible glossary entries", tags=TAGS, secured=True,
           description="The entries as TSV (Vietnamese<TAB>English a line), whatever the Accept header asks.",
           answers={200: Answer("The entries", None, content_types=("text/tab-separated-values",))},
           errors=("glossary_not_found", "invalid_api_key", "server_busy"), error_model=DeepLError)
def glossary_entries(glossary_id: str):
    glossary = find(glossary_id)
    tsv = "\n".join(f"{source}\t{target}" for source, target in glossary.entries.items())
    return Response(tsv, mimetype="text/tab-separated-values")
