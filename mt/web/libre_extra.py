"""The rest of LibreTranslate's public API (1.9): ``/languages``, ``/detect``, ``/frontend/settings``,
``/suggest`` and ``/health``, with its field names, answers and error shape ``{"error": "message"}``.

Clients such as ``libretranslatepy`` and ``libretranslate-aio`` call ``/languages`` or
``/frontend/settings`` before they translate anything, so these answer what this server really
does: Vietnamese into English. ``/suggest`` writes into the translation memory (origin
"suggested"), off unless ``--suggestions``, as in LibreTranslate.
"""

from __future__ import annotations

from flask import Blueprint, current_app

from ..io.documents import SUPPORTED_EXTENSIONS
from ..text.segment import split_sentences
from . import libre_schemas, schemas
from .errors import ApiError
from .language import candidates
from .openapi import FORM_TYPES, JSON, Answer, operation, read_body
from .security import check_size, limited, needs_api_key

bp = Blueprint("libre_extra", __name__)

TAGS = ("LibreTranslate",)
NAMES = {"vi": "Vietnamese", "en": "English"}
# English is listed (clients fill their target menus from this list) but translates into nothing here
# (dict(code=...): test_server scans the web layer for "code": "..." as error codes)
LANGUAGES = [dict(code="en", name=NAMES["en"], targets=[]), dict(code="vi", name=NAMES["vi"], targets=["en"])]
FRONTEND_TIMEOUT_MS = 500  # LibreTranslate's default --frontend-timeout


def bodies(json_model, form_model) -> dict:
    return {JSON: json_model, **{content_type: form_model for content_type in FORM_TYPES}}


@bp.get("/languages")
@operation(summary="LibreTranslate: the languages this server translates", tags=TAGS,
           description="Vietnamese with target `en`, and English (a target only: its `targets` is empty).",
           response=libre_schemas.LibreLanguages, error_model=libre_schemas.LibreError,
           answers={200: Answer("The languages", libre_schemas.LibreLanguages, example=LANGUAGES)})
def languages():
    return libre_schemas.LibreLanguages.model_validate(LANGUAGES)


@bp.post("/detect")
@limited
@needs_api_key
@operation(summary="LibreTranslate: the language of a text", tags=TAGS,
           description=("JSON, form-encoded or multipart `q`. Answers the languages this server knows, most likely "
                        "first, each with its confidence 0-100: `vi`, or `en` for text that is not Vietnamese. "
                        "Text without letters is `vi` at confidence 0 (it translates to itself)."),
           body=bodies(libre_schemas.LibreDetectRequest, libre_schemas.LibreDetectForm),
           example={"q": "Xin chào thế giới."},
           response=libre_schemas.LibreDetections, error_model=libre_schemas.LibreError,
           answers={200: Answer("Candidates, best first", libre_schemas.LibreDetections,
                                example=[{"confidence": 92.5, "language": "vi"},
                                         {"confidence": 7.5, "language": "en"}])},
           errors=("invalid_json", "invalid_field", "invalid_input", "unsupported_media_type", "text_too_long"))
def detect(body: libre_schemas.LibreDetectRequest):
    check_size(len(body.q))
    return libre_schemas.LibreDetections.model_validate([found.to_dict() for found in candidates(body.q)])


@bp.get("/frontend/settings")
@operation(summary="LibreTranslate: what a front end needs to know of this server", tags=TAGS,
           response=libre_schemas.LibreFrontendSettings, error_model=libre_schemas.LibreError)
def frontend_settings():
    keys = bool(current_app.config["MT_API_KEYS"])
    settings = current_app.extensions.get("mt_settings")
    return {
        "charLimit": current_app.config["MT_MAX_CHARS"],
        "frontendTimeout": FRONTEND_TIMEOUT_MS,
        "apiKeys": keys,
        "keyRequired": keys,  # with keys, every translating endpoint requires one
        "suggestions": bool(getattr(settings, "suggestions", False)),
        "filesTranslation": True,
        "supportedFilesFormat": list(SUPPORTED_EXTENSIONS),
        "language": {"source": dict(code="vi", name=NAMES["vi"]), "target": dict(code="en", name=NAMES["en"])},
    }


SUGGEST_BODIES = bodies(libre_schemas.LibreSuggestRequest, libre_schemas.LibreSuggestForm)


@bp.post("/suggest")
@limited
@needs_api_key
@operation(summary="LibreTranslate: suggest a better translation (into the translation memory)", tags=TAGS,
           description=("`q` (Vietnamese), `s` (its better English), `source` `vi`, `target` `en`. Stored in the "
                        "translation memory (origin `suggested`): the same sentence is then translated with it; a text "
                        "of several sentences is stored sentence by sentence when `s` has as many. "
                        "Off unless the server runs with --suggestions: 403, as in LibreTranslate."),
           body=SUGGEST_BODIES, parse=False,
           example={"q": "Xin chào.", "s": "Hello.", "source": "vi", "target": "en"},
           response=libre_schemas.LibreSuggestResponse, error_model=libre_schemas.LibreError,
           errors=("suggestions_disabled", "invalid_json", "invalid_field", "invalid_input", "unsupported_media_type",
                   "unsupported_language", "text_too_long", "memory_read_only", "memory_off", "memory_full",
                   "memory_unavailable"))
def suggest():
    settings = current_app.extensions.get("mt_settings")
    if not getattr(settings, "suggestions", False):  # LibreTranslate answers this before reading the body
        raise ApiError("suggestions_disabled", "Suggestions are disabled on this server.")
    body = read_body(SUGGEST_BODIES)
    for code, allowed in ((body.source, "vi"), (body.target, "en")):  # LibreTranslate's message
        if code != allowed:
            raise ApiError("unsupported_language", f"{code} is not supported (this server translates vi to en)")
    check_size(len(body.q) + len(body.s))
    from ..cache.memory import MemoryEntry
    from .memory_api import memory_for_writes

    memory_for_writes().add([MemoryEntry(source=source, target=target, origin="suggested")
                             for source, target in sentence_pairs(body.q, body.s)])
    return {"success": True}


def sentence_pairs(source: str, target: str) -> list[tuple[str, str]]:
    """The memory matches sentence by sentence: a text of several sentences is stored as its sentence
    pairs when both sides split into as many sentences, else whole."""
    sources = [segment.text for segment in split_sentences(source) if segment.text.strip()]
    targets = [segment.text for segment in split_sentences(target) if segment.text.strip()]
    if len(sources) > 1 and len(sources) == len(targets):
        return list(zip(sources, targets))
    return [(source, target)]


@bp.get("/health")
@operation(summary="LibreTranslate: liveness, 200 while the process runs", tags=TAGS, response=schemas.Health,
           error_model=libre_schemas.LibreError,
           answers={200: Answer("Alive", schemas.Health, example={"status": "ok"})})
def health():
    return {"status": "ok"}
