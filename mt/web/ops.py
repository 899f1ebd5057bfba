"""Operations: liveness, readiness (the model and the batcher) and the generated OpenAPI document."""

from __future__ import annotations

from flask import Blueprint, current_app

from ..errors import ModelUnavailable
from . import schemas
from .errors import json_response
from .openapi import Answer, operation
from .service import batching_stats, with_advice

bp = Blueprint("ops", __name__)


def service():
    return current_app.extensions["mt"]


@bp.get("/healthz")
@operation(summary="Liveness: 200 while the process runs", tags=("Operations",),
           answers={200: Answer("Alive", schemas.Health, example={"status": "ok"})})
def healthz():
    return json_response({"status": "ok"})


@bp.get("/readyz")
@operation(summary="Readiness: 200 once the model is loaded", tags=("Operations",),
           answers={200: Answer("Ready", schemas.Ready, example={
               "status": "ready", "model": "Helsinki-NLP/opus-mt-vi-en",
               "batching": {"requests": 8, "batches": 2, "sentences": 8, "mean_batch": 4.0}}),
               503: Answer("The model is not loaded; error says why and what to do", schemas.Unavailable)})
def readyz():
    translator = service()
    try:
        engine = translator.ensure_loaded()
    except ModelUnavailable as error:
        return json_response({"status": "unavailable", "model": translator.model_id,
                              "error": {"code": "model_unavailable",
                                        "message": with_advice(str(error), translator.model_id)}}, 503)
    return json_response({"status": "ready", "model": translator.model_id, "batching": batching_stats(engine)})


@bp.get("/openapi.json")
@operation(summary="This OpenAPI 3.1 description", tags=("Operations",),
           answers={200: Answer("OpenAPI document")})
def openapi():
    return json_response(current_app.extensions["mt_openapi"])
