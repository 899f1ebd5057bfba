"""Operations: liveness, readiness (the model and the batcher) and the generated OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, current_app

from ..errors import ModelUnavailable
from . import schemas
from .errors import json_response
from .openapi import Answer, operation
from .security import has_valid_key, public_model_name
from .service import batching_stats, with_advice

bp = Blueprint("ops", __name__)


def service():
    return current_app.extensions["mt"]


@bp.get("/healthz")
@operation(summary="Liveness: 200 while the process runs", tags=("Operations",), response=schemas.Health,
           answers={200: Answer("Alive", schemas.Health, example={"status": "ok"})})
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
@operation(summary="Readiness: 200 once the model is loaded", tags=("Operations",),
           answers={200: Answer("Ready", schemas.Ready, example={
               "status": "ready", "model": "Helsinki-NLP/opus-mt-vi-en",
               "batching": {"requests": 8, "batches": 2, "sentences": 8, "mean_batch": 4.0}}),
               503: Answer("The model is not loaded; error says why and what to do", schemas.Unavailable)})
def readyz():
    translator = service()
    model = public_model_name(translator.model_id)  # an id or a folder's name, never a local path
    details = has_valid_key()  # with API keys on, the rest only for a key holder
    try:
        engine = translator.ensure_loaded()
    except ModelUnavailable as error:
        message = with_advice(translator.error or str(error), translator.model_id) if details else \
            "the model is not loaded (the reason is shown with an API key, and in the server's log)"
        return json_response({"status": "unavailable", "model": model,
                              "error": {"code": "model_unavailable", "message": message}}, 503)
    if not details:
        return json_response({"status": "ready", "model": model})
    return json_response({"status": "ready", "model": model, "batching": batching_stats(engine)})


@bp.get("/openapi.json")
@operation(summary="This OpenAPI 3.1 description", tags=("Operations",),
           answers={200: Answer("OpenAPI document")})
def openapi():
    return json_response(current_app.extensions["mt_openapi"])
