"""Our JSON API: aligned translation, document alignment and the model registry (/api/...)."""

from __future__ import annotations

import threading

from flask import Blueprint, current_app

from . import schemas
from .errors import ApiError
from .glossary_api import body_terms
from .language import detect
from .openapi import operation
from .security import check_size, limited, needs_api_key, public_model_name

bp = Blueprint("api", __name__)

# what a request whose fields are checked can answer, beyond the security ones
BODY_ERRORS = ("invalid_json", "invalid_field", "unsupported_media_type", "text_too_long")
TRANSLATE_ERRORS = BODY_ERRORS + ("empty_text", "invalid_input", "unknown_model", "model_not_loaded",
                                  "model_unavailable", "invalid_glossary", "glossary_not_found", "server_busy")
ALIGN_SLOTS = 1  # alignments running at once: the one worker process (mt.web.app makes the semaphore)
ALIGN_WAIT_SECONDS = 60.0  # how long a further one waits for a slot before 503 server_busy
TRANSLATE_EXAMPLE = {"text": "Hà Nội là thủ đô của Việt Nam. Thành phố có hơn 8 triệu dân.", "beam": 4}


def service():
    return current_app.extensions["mt"]


def checked_text(text: str) -> str:
    """The caps every translating endpoint applies: 413 over --max-chars, 400 for blank text."""
    check_size(len(text))
    if not text.strip():
        raise ApiError("empty_text", "text is empty")
    return text


@bp.post("/api/translate")
@limited
@needs_api_key
@operation(
    summary="Translate an article, aligned sentence by sentence", tags=("API",),
    description=(
        "Segments the text, translates each sentence (cached sentences come from the cache), and returns every "
        "segment with its `start`/`end` offsets into the submitted text (`text[start:end] == source`; newlines "
        "are not normalised). `detected_language` says whether the text reads as Vietnamese. Unknown fields are "
        "ignored."),
    body=schemas.TranslateRequest, example=TRANSLATE_EXAMPLE, response=schemas.TranslateResponse,
    errors=TRANSLATE_ERRORS,
)
def translate(body: schemas.TranslateRequest):
    document = service().translate(checked_text(body.text), body.model, body.beam, terms=body_terms(body))
    return {**document.to_dict(), "model": public_model_name(document.model),  # as /api/models names it
            "detected_language": detect(body.text).to_dict()}


@bp.post("/api/align")
@limited
@needs_api_key
@operation(
    summary="Align a Vietnamese article with an existing English translation", tags=("API",),
    description=(
        "Both sides are split into sentences (or taken line by line with `lines: true`), embedded with "
        "multilingual-e5-small and aligned by a two-pass dynamic programme. Every unit of both sides appears in "
        "exactly one link, in order; shapes 1-1, 1-2, 2-1, 1-3, 3-1, 1-0, 0-1 (a unit with no counterpart has an "
        "empty other side). Needs no translation model."),
    body=schemas.AlignRequest, response=schemas.AlignResponse,
    example={"vi": "Tôi đi học. Trời mưa.", "en": "I go to school. It is raining."},
    errors=BODY_ERRORS + ("invalid_input", "model_unavailable", "server_busy"),
)
def align(body: schemas.AlignRequest):
    check_size(len(body.vi) + len(body.en))
    # an alignment at the size cap is a minute of CPU: it runs in the niced worker process (no GIL
    # or embedding model shared with translations), ALIGN_SLOTS at once, within its time budget
    slots = current_app.extensions["mt_align_slots"]
    if not slots.acquire(timeout=ALIGN_WAIT_SECONDS):
        raise ApiError("server_busy", f"{ALIGN_SLOTS} alignment(s) already running; retry later",
                       headers={"Retry-After": "5"})
    try:  # its errors (InputError, ModelUnavailable, AlignTimeout...) carry their codes
        return align_worker().align(body.vi, body.en, lines=body.lines)
    finally:
        slots.release()


_worker_lock = threading.Lock()


def align_worker():
    """This app's alignment worker (one process, started by the first alignment)."""
    from ..align.worker import AlignWorker

    with _worker_lock:
        worker = current_app.extensions.get("mt_align_worker")
        if worker is None:
            worker = current_app.extensions["mt_align_worker"] = AlignWorker()
        return worker


@bp.get("/api/models")
@needs_api_key
@operation(summary="The model registry and which model this server serves", tags=("API",), response=schemas.Models)
def models():
    translator = service()
    rows = [{**row, "id": public_model_name(row.get("id"))} for row in translator.model_rows()]  # no local paths
    return {"served": public_model_name(translator.model_id), "ready": translator.ready, "error": translator.error,
            "models": rows}
