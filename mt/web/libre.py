"""LibreTranslate-compatible ``POST /translate``: its fields, its answer and its error shape.

Errors are ``{"error": "message"}`` with the code in ``X-Error-Code`` (see :mod:`mt.web.errors`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request

from . import schemas
from .api import read_json_object
from .errors import LIBRE_PATH, ApiError, json_response
from .openapi import FORM_TYPES, JSON, Answer, operation
from .security import check_size, is_form, limited, needs_api_key

bp = Blueprint("libre", __name__)

DETECTED = {"confidence": 100, "language": "vi"}


def read_request() -> tuple[schemas.LibreRequest, bool]:
    """The fields, from JSON or a form; and whether they came from a form."""
    if request.is_json:
        return schemas.parse(schemas.LibreRequest, read_json_object()), False
    if is_form() or not request.content_length:
        values = request.values
        q = values.getlist("q")
        data: dict[str, Any] = {name: values.get(name) for name in ("source", "target", "format", "model", "beam",
                                                                     "api_key")}
        data["q"] = q if len(q) > 1 else (q[0] if q else None)
        return schemas.parse(schemas.LibreForm, data), True
    raise ApiError("unsupported_media_type",
                   "send JSON (application/json) or a form (application/x-www-form-urlencoded or multipart/form-data)")


@bp.post(LIBRE_PATH)
@limited
@needs_api_key
@operation(
    summary="LibreTranslate-compatible translation", tags=("LibreTranslate",),
    description=(
        "Accepts LibreTranslate's fields as JSON, form-encoded or multipart. `q` is a string or a list of strings "
        "(answered with a string or a list). `source` is `vi` or `auto` (default `auto`; then `detectedLanguage` "
        "is returned), `target` must be `en` (default), `format` must be `text` (`html` is not supported); "
        "`alternatives` is ignored. `model` and `beam` are accepted as extensions. Errors use LibreTranslate's "
        "shape `{\"error\": \"message\"}`; the code is in the `X-Error-Code` header."),
    body={JSON: schemas.LibreRequest, **{content_type: schemas.LibreForm for content_type in FORM_TYPES}},
    example={"q": "Xin chào thế giới.", "source": "vi", "target": "en"},
    answers={200: Answer("Translated text(s)", schemas.LibreResponse,
                         example={"translatedText": "Hello world.", "detectedLanguage": DETECTED})},
    errors=("invalid_json", "invalid_field", "unsupported_language", "unsupported_format", "unsupported_media_type",
            "text_too_long", "invalid_input", "unknown_model", "model_not_loaded", "model_unavailable"),
    error_model=schemas.LibreError,
)
def translate():
    body, from_form = read_request()
    if body.source not in ("vi", "auto"):
        raise ApiError("unsupported_language", f"{body.source} is not supported (this server translates vi to en)")
    if body.target != "en":
        raise ApiError("unsupported_language", f"{body.target} is not supported (this server translates vi to en)")
    if body.format != "text":
        raise ApiError("unsupported_format", f"{body.format} format is not supported (only text)")
    batch = isinstance(body.q, list)
    texts = body.q if batch else [body.q]
    if from_form:  # LibreTranslate normalises form line endings the same way
        texts = [schemas.newline_normalised(text) for text in texts]
    check_size(sum(len(text) for text in texts))
    translator = current_app.extensions["mt"]
    translations = [translator.translate(text, body.model, body.beam, details=False).translation
                    if text.strip() else "" for text in texts]
    answer: dict[str, Any] = {"translatedText": translations if batch else translations[0]}
    if body.source == "auto":
        answer["detectedLanguage"] = [dict(DETECTED) for _ in texts] if batch else dict(DETECTED)
    return json_response(answer)
