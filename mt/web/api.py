"""Our JSON API: aligned translation, document alignment and the model registry (/api/...)."""

from __future__ import annotations

import json
import threading

from flask import Blueprint, current_app, request

from ..errors import InputError, ModelUnavailable
from . import schemas
from .errors import ApiError, json_response
from .language import detect
from .openapi import JSON, Answer, operation
from .security import check_size, limited, needs_api_key

bp = Blueprint("api", __name__)

# what a request whose fields are checked can answer, beyond the security ones
BODY_ERRORS = ("invalid_json", "invalid_field", "unsupported_media_type", "text_too_long")
TRANSLATE_ERRORS = BODY_ERRORS + ("empty_text", "invalid_input", "unknown_model", "model_not_loaded",
                                  "model_unavailable")
ALIGN_SLOTS = 1  # alignments running at once: the one worker process (mt.web.app makes the semaphore)
ALIGN_WAIT_SECONDS = 60.0  # how long a further one waits for a slot before 503 server_busy
TRANSLATE_EXAMPLE = {"text": "Hà Nội là thủ đô của Việt Nam. Thành phố có hơn 8 triệu dân.", "beam": 4}


def service():
    return current_app.extensions["mt"]


def read_json_object() -> dict:
    """The request body as a JSON object, or a 415/400 ApiError."""
    if not request.is_json:
        raise ApiError("unsupported_media_type",
                       f"send a JSON body with Content-Type: application/json (got {request.mimetype or 'none'})")
    try:
        data = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError) as error:
        raise ApiError("invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError("invalid_json", "the body must be a JSON object")
    return data


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
    body={JSON: schemas.TranslateRequest}, example=TRANSLATE_EXAMPLE,
    answers={200: Answer("The aligned document", schemas.TranslateResponse)},
    errors=TRANSLATE_ERRORS,
)
def translate():
    body = schemas.parse(schemas.TranslateRequest, read_json_object())
    check_size(len(body.text))
    if not body.text.strip():
        raise ApiError("empty_text", "text is empty")
    answer = service().translate(body.text, body.model, body.beam).to_dict()
    answer["detected_language"] = detect(body.text).to_dict()
    return json_response(answer)


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
    body={JSON: schemas.AlignRequest},
    example={"vi": "Tôi đi học. Trời mưa.", "en": "I go to school. It is raining."},
    answers={200: Answer("Units of both sides (offsets into the submitted texts) and the links",
                         schemas.AlignResponse)},
    errors=BODY_ERRORS + ("invalid_input", "model_unavailable", "server_busy"),
)
def align():
    from ..align.worker import AlignTimeout, AlignWorkerFailed

    body = schemas.parse(schemas.AlignRequest, read_json_object())
    check_size(len(body.vi) + len(body.en))
    # an alignment at the size cap is a minute of CPU: it runs in the niced worker process (no GIL
    # or embedding model shared with translations), ALIGN_SLOTS at once, within its time budget
    slots = current_app.extensions["mt_align_slots"]
    if not slots.acquire(timeout=ALIGN_WAIT_SECONDS):
        raise ApiError("server_busy", f"{ALIGN_SLOTS} alignment(s) already running; retry later",
                       headers={"Retry-After": "5"})
    try:
        return json_response(align_worker().align(body.vi, body.en, lines=body.lines))
    except InputError as error:
        raise ApiError("invalid_input", str(error)) from None
    except ModelUnavailable as error:
        raise ApiError("model_unavailable", f"the embedding model is not available: {error}") from None
    except (AlignTimeout, AlignWorkerFailed) as error:
        raise ApiError("server_busy", str(error), headers={"Retry-After": "30"}) from None
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
@operation(summary="The model registry and which model this server serves", tags=("API",),
           answers={200: Answer("Models", schemas.Models)})
def models():
    translator = service()
    return json_response({"served": translator.model_id, "ready": translator.ready, "error": translator.error,
                          "models": translator.model_rows()})
