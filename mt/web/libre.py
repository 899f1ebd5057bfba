"""LibreTranslate-compatible ``POST /translate``: its fields, its answer and its error shape.

Errors are ``{"error": "message"}`` with the code in ``X-Error-Code`` (see :mod:`mt.web.errors`).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app

from . import libre_schemas, schemas
from .language import detect
from .libre_text import translate_html, translate_with_alternatives, visible_text
from .errors import LIBRE_PATH, ApiError
from .openapi import FORM_TYPES, JSON, Answer, operation
from .security import check_size, limited, needs_api_key

bp = Blueprint("libre", __name__)

DETECTED = {"confidence": 100, "language": "vi"}  # the example in the spec


@bp.post(LIBRE_PATH)
@limited
@needs_api_key
@operation(
    summary="LibreTranslate-compatible translation", tags=("LibreTranslate",),
    description=(
        "Accepts LibreTranslate's fields as JSON, form-encoded or multipart. `q` is a string or a list of strings "
        "(answered with a string or a list; at most --batch-limit items, all translated in one pass). `source` is "
        "`vi` or `auto` (default `auto`; then the language of each text is detected and `detectedLanguage` is "
        "returned: `vi` with its confidence 0-100, or `en` for text that is not Vietnamese, which is answered "
        "unchanged), `target` must be `en` (default). `format` is `text` (default) or `html`: an HTML fragment or "
        "page whose text is translated block by block, every tag and attribute kept. `alternatives` (0-8) adds "
        "that many other translations: a text of several sentences gets whole-text alternatives made of each "
        "sentence's next-best hypotheses, as Argos Translate makes them; none for `html`, as in LibreTranslate. "
        "`model` and `beam` are accepted as extensions. Errors use LibreTranslate's shape "
        "`{\"error\": \"message\"}`; the code is in the `X-Error-Code` header."),
    body={JSON: libre_schemas.LibreRequest, **{content_type: libre_schemas.LibreForm for content_type in FORM_TYPES}},
    example={"q": "Xin chào thế giới.", "source": "vi", "target": "en"}, response=libre_schemas.LibreResponse,
    answers={200: Answer("Translated text(s)", libre_schemas.LibreResponse,
                         example={"translatedText": "Hello world.", "detectedLanguage": DETECTED})},
    errors=("invalid_json", "invalid_field", "batch_too_large", "unsupported_language", "unsupported_format",
            "unsupported_media_type",
            "text_too_long", "invalid_input", "unknown_model", "model_not_loaded", "model_unavailable"),
    error_model=libre_schemas.LibreError,
)
def translate(body: libre_schemas.LibreRequest):
    from_form = isinstance(body, libre_schemas.LibreForm)
    if body.source not in ("vi", "auto"):
        raise ApiError("unsupported_language", f"{body.source} is not supported (this server translates vi to en)")
    if body.target != "en":
        raise ApiError("unsupported_language", f"{body.target} is not supported (this server translates vi to en)")
    if body.format not in ("text", "html"):
        raise ApiError("unsupported_format", f"{body.format} format is not supported (text or html)")
    html = body.format == "html"
    batch = isinstance(body.q, list)
    texts = body.q if batch else [body.q]
    if from_form:  # LibreTranslate normalises form line endings the same way
        texts = [schemas.newline_normalised(text) for text in texts]
    limit = current_app.config["MT_BATCH_LIMIT"]
    if len(texts) > limit:  # LibreTranslate's --batch-limit, its message
        raise ApiError("batch_too_large",
                       f"Invalid request: request ({len(texts)}) exceeds text limit ({limit}) (--batch-limit)")
    check_size(sum(len(text) for text in texts))
    # source auto: text that is not Vietnamese is answered as it is, with detectedLanguage "en"
    seen = [visible_text(text) for text in texts] if html else texts  # detection reads the text, not the tags
    detections = [detect(text) for text in seen] if body.source == "auto" else None
    wanted = [n for n, text in enumerate(seen)
              if text.strip() and (detections is None or detections[n].language == "vi")]
    translator = current_app.extensions["mt"]
    others: list[list[str]] = [[] for _ in texts]
    chosen = [texts[n] for n in wanted]
    if not wanted:
        translated = []
    elif html:
        translated = translate_html(chosen, translator, body.model, body.beam)
    elif body.alternatives:
        translated, found = translate_with_alternatives(chosen, body.alternatives, translator, body.model, body.beam)
        for n, alternatives in zip(wanted, found):
            others[n] = alternatives
    else:
        translated = translator.translate_many(chosen, body.model, body.beam)
    translations = [text if html or text.strip() else "" for text in texts]
    for n, translation in zip(wanted, translated):
        translations[n] = translation
    answer: dict[str, Any] = {"translatedText": translations if batch else translations[0]}
    if detections is not None:
        found_languages = [detection.to_dict() for detection in detections]
        answer["detectedLanguage"] = found_languages if batch else found_languages[0]
    if body.alternatives:  # LibreTranslate's field, present only when asked for
        answer["alternatives"] = others if batch else others[0]
    return answer
