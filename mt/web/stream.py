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

from ..document import SentencePair, sentence_fields
from ..errors import MTError
from ..pipeline import Progress, iter_document, needs_model
from . import schemas
from .api import TRANSLATE_ERRORS, TRANSLATE_EXAMPLE, checked_text, service
from .glossary_api import body_terms
from .errors import ApiError, api_error
from .openapi import EVENT_STREAM, Answer, operation
from .security import limited, needs_api_key, public_model_name

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

# Model batch sizes of a stream: the first small (its rows arrive before a full batch would),
# then growing fourfold up to the request queue's batch. Config keys, else the environment, else these.
FIRST_BATCH, MAX_BATCH = 2, 32
FIRST_BATCH_KEY, MAX_BATCH_KEY = "MT_STREAM_FIRST_BATCH", "MT_STREAM_MAX_BATCH"


# -- the events, as the OpenAPI document declares them ------------------------------------------
StreamSegment = schemas.sentence_model(
    "StreamSegment", ("segment",), translate=(bool, Field(description="Goes to the model (bylines and empty segments "
                                                                      "pass through)")))
RowTranslation = schemas.sentence_model("RowTranslation", ("translation",))
RowLinks = schemas.sentence_model("RowLinks", ("links",), translation=(str, Field(
    description="The segment's final English (glossary terms and protected spans applied: it may differ from the "
                "rows event's)")))
RowQuality = schemas.sentence_model("RowQuality", ("quality",))


class SegmentsEvent(schemas.ResponseModel):
    event: Literal["segments"]
    model: str
    total: int = Field(description="Number of segments")
    to_translate: int = Field(description="Segments that need a translation (cached or not)")
    segments: list[StreamSegment]


class RowsEvent(schemas.ResponseModel):
    event: Literal["rows"]
    rows: list[RowTranslation]
    done: int = Field(description="Segments translated so far (pass-through ones included)")
    total: int


class LinksEvent(schemas.ResponseModel):
    event: Literal["links"]
    rows: list[RowLinks] = Field(description="Word links, as in POST /api/translate's segments")


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
    body=schemas.TranslateRequest, example=TRANSLATE_EXAMPLE,
    answers={200: Answer("Server-sent events; each data line is a StreamEvent", StreamEvent,
                         content_types=(EVENT_STREAM,))},
    errors=TRANSLATE_ERRORS,
)
def translate_stream(body: schemas.TranslateRequest):
    translator = service()
    translator.check_model(body.model)
    engine = translator.ensure_loaded()
    steps = iter_document(checked_text(body.text), engine, translator.cache,
                          settings=translator.settings_for(engine, body.beam), terms=body_terms(body),
                          first_batch=batch_setting(FIRST_BATCH_KEY, FIRST_BATCH),
                          max_batch=batch_setting(MAX_BATCH_KEY, MAX_BATCH))
    first = next(steps)  # segmenting fails before any byte is sent: a plain 400
    return Response(events(first, steps, public_model_name(engine.spec.id)), mimetype=EVENT_STREAM,
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def frame(payload: dict) -> str:
    """One server-sent event; json.dumps escapes newlines, so the data is one line."""
    return f"event: {payload['event']}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"


def events(first: Progress, steps: Iterator[Progress], model: str) -> Iterator[str]:
    pairs = first.pairs
    total = len(pairs)
    yield frame(segments_event(pairs, model))
    translated = 0
    try:
        for step in steps:
            if step.step == "rows":
                translated += len(step.pairs)
                if step.pairs or translated == total:
                    yield frame({"event": "rows", "rows": rows(step.pairs, TRANSLATION), "done": translated,
                                 "total": total})
            elif step.step == "links":
                yield frame({"event": "links", "rows": rows([pair for pair in step.pairs if needs_model(pair)], LINKS)})
            elif step.step == "quality":
                yield frame({"event": "quality", "rows": rows(step.pairs, QUALITY)})
            elif step.step == "done" and step.document is not None:
                document = step.document
                yield frame({"event": "done", "model": model, "total": total,
                             "cache_hits": document.cache_hits, "translation": document.translation,
                             "timings": document.timings})
    except MTError as error:  # its code, as the JSON API would answer it
        answer = api_error(error)
        yield error_frame(answer.code, answer.message)
    except Exception:  # noqa: BLE001 - the client gets an error event, the log gets the traceback
        log.exception("streamed translation failed")
        yield error_frame("internal_error", "internal server error; the server log has the details")
    finally:
        steps.close()


def error_frame(code: str, message: str) -> str:
    ApiError(code, message)  # refuses a code that is not declared in ERROR_CODES
    return frame({"event": "error", "error": {"code": code, "message": message}})


SEGMENT, TRANSLATION, LINKS, QUALITY = (("index", *sentence_fields(group))
                                        for group in ("segment", "translation", "links", "quality"))
LINKS = (*LINKS, "translation")  # word links index the final English: the links row carries it


def rows(pairs: list[SentencePair], names: tuple[str, ...]) -> list[dict]:
    """The fields ``names`` of each pair (mt.document declares them; the row models are made from them)."""
    return [{name: getattr(pair, name) for name in names} for pair in pairs]


def segments_event(pairs: list[SentencePair], model: str) -> dict:
    return {
        "event": "segments", "model": model, "total": len(pairs),
        "to_translate": sum(1 for pair in pairs if needs_model(pair)),
        "segments": [{**row, "translate": needs_model(pair)} for row, pair in zip(rows(pairs, SEGMENT), pairs)],
    }
