"""``POST /api/translate/stream``: the aligned translation as server-sent events, rows as they come.

Same body, validation, caps, API keys and rate limit as ``POST /api/translate``; a request that
fails those answers the usual JSON error (no stream). Then the events, in this order: ``segments``
(every segment, untranslated: the page lays out all rows), ``rows`` (translations: cache hits at
once, then each model batch as it returns, small first), ``links`` and ``quality`` (when ready),
and ``done`` (totals and timings). A failure after the stream started is an ``error`` event in the
API's error shape, and the stream ends. Every event's data is one JSON object with an ``event``
field naming it (the SSE ``event:`` line says the same), declared below for the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Annotated, Literal

from flask import Blueprint, Response, current_app
from pydantic import Field, RootModel

from ..document import SentencePair
from ..errors import InputError, ModelUnavailable
from ..pipeline import Progress, iter_document, needs_model
from . import schemas
from .api import TRANSLATE_ERRORS, TRANSLATE_EXAMPLE, read_json_object, service
from .errors import ApiError
from .openapi import JSON, Answer, operation
from .security import check_size, limited, needs_api_key

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
# Model batch sizes of a stream: the first small (its rows arrive before a full batch would),
# then growing fourfold up to the request queue's batch. Config keys, else the environment, else these.
FIRST_BATCH, MAX_BATCH = 2, 32
FIRST_BATCH_KEY, MAX_BATCH_KEY = "MT_STREAM_FIRST_BATCH", "MT_STREAM_MAX_BATCH"


# -- the events, as the OpenAPI document declares them ------------------------------------------
class StreamSegment(schemas.ResponseModel):
    index: int
    paragraph: int
    kind: Literal["sentence", "title", "byline"]
    start: int = Field(description="Offset of the segment in the submitted text")
    end: int
    source: str = Field(description="text[start:end], as the user wrote it")
    normalized: str = Field(description="What the model sees")
    translate: bool = Field(description="Goes to the model (bylines and empty segments pass through)")


class SegmentsEvent(schemas.ResponseModel):
    event: Literal["segments"]
    model: str
    total: int = Field(description="Number of segments")
    to_translate: int = Field(description="Segments that need a translation (cached or not)")
    segments: list[StreamSegment]


class RowTranslation(schemas.ResponseModel):
    index: int
    translation: str
    cached: bool = Field(description="Served from the sentence cache")


class RowsEvent(schemas.ResponseModel):
    event: Literal["rows"]
    rows: list[RowTranslation]
    done: int = Field(description="Segments translated so far (pass-through ones included)")
    total: int


class RowLinks(schemas.ResponseModel):
    index: int
    src_words: list[str]
    src_word_spans: list[list[int]]
    tgt_words: list[str]
    tgt_word_spans: list[list[int]]
    alignment: list[list[int]]


class LinksEvent(schemas.ResponseModel):
    event: Literal["links"]
    rows: list[RowLinks] = Field(description="Word links, as in POST /api/translate's segments")


class RowQuality(schemas.ResponseModel):
    index: int
    quality: float | None
    similarity: float | None
    flagged: bool


class QualityEvent(schemas.ResponseModel):
    event: Literal["quality"]
    rows: list[RowQuality] = Field(description="Quality scores, as in POST /api/translate's segments")


class DoneEvent(schemas.ResponseModel):
    event: Literal["done"]
    model: str
    total: int
    cache_hits: int
    translation: str = Field(description="The full English text, paragraphs kept")
    timings: schemas.Timings


class ErrorEvent(schemas.ResponseModel):
    event: Literal["error"]
    error: schemas.ErrorBody


class StreamEvent(RootModel):
    """One server-sent event's data; ``event`` names it (the SSE ``event:`` line says the same)."""

    root: Annotated[SegmentsEvent | RowsEvent | LinksEvent | QualityEvent | DoneEvent | ErrorEvent,
                    Field(discriminator="event")]


# -- the view ---------------------------------------------------------------------------------
def batch_setting(key: str, default: int) -> int:
    """MT_STREAM_FIRST_BATCH / MT_STREAM_MAX_BATCH from the app's config (create_app puts the
    settings' values there; validated by mt.settings), else ``default``."""
    return max(1, int(current_app.config.get(key) or default))


@bp.post("/api/translate/stream")
@limited
@needs_api_key
@operation(
    summary="Translate an article, rows streamed as they are translated (server-sent events)", tags=("API",),
    description=(
        "Same body and checks as POST /api/translate; its errors answer JSON as there. The answer is "
        "`text/event-stream`: `segments` (every segment, untranslated), `rows` (translations: cache hits at once, "
        "then each model batch as it returns, the first small), `links` and `quality` (word links and scores, when "
        "ready), then `done` (the English text and timings). Each event's data is one JSON object whose `event` "
        "field names it. A failure once the stream has started is an `error` event "
        "(`{\"event\": \"error\", \"error\": {\"code\", \"message\"}}`) and ends the stream."),
    body={JSON: schemas.TranslateRequest},
    example=TRANSLATE_EXAMPLE,
    answers={200: Answer("Server-sent events; each data line is a StreamEvent", StreamEvent,
                         content_types=(EVENT_STREAM,))},
    errors=TRANSLATE_ERRORS,
)
def translate_stream():
    body = schemas.parse(schemas.TranslateRequest, read_json_object())
    check_size(len(body.text))
    if not body.text.strip():
        raise ApiError("empty_text", "text is empty")
    translator = service()
    translator.check_model(body.model)
    try:
        engine = translator.ensure_loaded()
    except ModelUnavailable as error:
        raise ApiError("model_unavailable", translator.unavailable_message(str(error))) from None
    steps = iter_document(body.text, engine, translator.cache, settings=translator.settings_for(engine, body.beam),
                          first_batch=batch_setting(FIRST_BATCH_KEY, FIRST_BATCH),
                          max_batch=batch_setting(MAX_BATCH_KEY, MAX_BATCH))
    try:
        first = next(steps)  # segmenting fails before any byte is sent: a plain 400
    except InputError as error:
        raise ApiError("invalid_input", str(error)) from None
    stream = events(first, steps, engine.spec.id, translator.unavailable_message)
    return Response(stream, mimetype=EVENT_STREAM,
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})




def frame(payload: dict) -> str:
    """One server-sent event; json.dumps escapes newlines, so the data is one line."""
    return f"event: {payload['event']}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def events(first: Progress, steps: Iterator[Progress], model: str, unavailable) -> Iterator[str]:
    pairs = first.pairs
    total = len(pairs)
    yield frame(segments_event(pairs, model))
    translated = 0
    try:
        for step in steps:
            if step.step == "rows":
                translated += len(step.pairs)
                if step.pairs or translated == total:
                    yield frame({"event": "rows", "rows": [row_translation(pair) for pair in step.pairs],
                                 "done": translated, "total": total})
            elif step.step == "links":
                yield frame({"event": "links", "rows": [row_links(pair) for pair in step.pairs if needs_model(pair)]})
            elif step.step == "quality":
                yield frame({"event": "quality", "rows": [row_quality(pair) for pair in step.pairs]})
            elif step.step == "done" and step.document is not None:
                document = step.document
                yield frame({"event": "done", "model": document.model, "total": total,
                             "cache_hits": document.cache_hits, "translation": document.translation,
                             "timings": document.timings})
    except ModelUnavailable as error:
        yield error_frame("model_unavailable", unavailable(str(error)))
    except InputError as error:
        yield error_frame("invalid_input", str(error))
    except Exception:  # noqa: BLE001 - the client gets an error event, the log gets the traceback
        log.exception("streamed translation failed")
        yield error_frame("internal_error", "internal server error; the server log has the details")
    finally:
        steps.close()


def error_frame(code: str, message: str) -> str:
    ApiError(code, message)  # refuses a code that is not declared in ERROR_CODES
    return frame({"event": "error", "error": {"code": code, "message": message}})


def segments_event(pairs: list[SentencePair], model: str) -> dict:
    return {
        "event": "segments", "model": model, "total": len(pairs),
        "to_translate": sum(1 for pair in pairs if needs_model(pair)),
        "segments": [{"index": pair.index, "paragraph": pair.paragraph, "kind": pair.kind, "start": pair.start,
                      "end": pair.end, "source": pair.source, "normalized": pair.normalized,
                      "translate": needs_model(pair)} for pair in pairs],
    }


def row_translation(pair: SentencePair) -> dict:
    return {"index": pair.index, "translation": pair.translation, "cached": pair.cached}


def row_links(pair: SentencePair) -> dict:
    return {"index": pair.index, "src_words": pair.src_words, "src_word_spans": pair.src_word_spans,
            "tgt_words": pair.tgt_words, "tgt_word_spans": pair.tgt_word_spans, "alignment": pair.alignment}


def row_quality(pair: SentencePair) -> dict:
    return {"index": pair.index, "quality": pair.quality, "similarity": pair.similarity, "flagged": pair.flagged}
