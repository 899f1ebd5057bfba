"""The web page and the HTTP API: a Flask app factory and its routes.

Everything that translates goes through :class:`TranslatorService`, the one small object that
owns the model for the web layer (``.document(text, model=None, beam=None)``). Routes never
touch the engine, so replacing the direct pipeline call by a queue that batches sentences
across concurrent requests only changes that class.

Error responses are JSON ``{"error": {"code": ..., "message": ...}}`` with a fitting status,
except on the LibreTranslate-compatible ``POST /translate`` which answers LibreTranslate's own
shape ``{"error": "message"}`` (typed LibreTranslate clients deserialise ``error`` as a string),
with the machine-readable code in the ``X-Error-Code`` header. A browser navigating to a page
gets an HTML error page instead; nobody ever gets a traceback.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import threading
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from flask import Flask, Response, current_app, render_template, request
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException

from . import __version__
from .errors import InputError, ModelUnavailable
from .formats import decode_article, english_text, to_jsonl, to_tmx, to_tsv
from .pipeline import Document, translate_document

log = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 100_000
MIN_BEAM, MAX_BEAM = 1, 8
# Worst case bytes per character on the wire: form encoding of a 3-byte UTF-8 character is 9.
BODY_BYTES_PER_CHAR = 10
BODY_SLACK = 64 * 1024

DOWNLOADS: dict[str, tuple[Callable[[Document], str], str, str]] = {
    "tmx": (to_tmx, "application/x-tmx+xml; charset=utf-8", "translation.tmx"),
    "tsv": (to_tsv, "text/tab-separated-values", "translation.tsv"),
    "jsonl": (to_jsonl, "application/jsonl; charset=utf-8", "translation.jsonl"),
    "txt": (english_text, "text/plain", "translation.txt"),
}

# Paths whose errors are always JSON, whatever the Accept header says.
JSON_PATHS = ("/api/", "/translate", "/healthz", "/readyz", "/openapi.json")
LIBRE_PATH = "/translate"

WHAT_TO_DO = (
    "To fix it: on a machine with internet access run `mt download {model}` (it fills the local "
    "Hugging Face cache), or start the server with `--model` pointing to a local model directory; "
    "then restart the server."
)

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def with_advice(reason: str, model: str | None) -> str:
    """The load error, plus what to do about it unless the message already says so."""
    reason = reason.strip()
    if "mt download" in reason or "--model" in reason:
        return reason
    return f"{reason.rstrip('.')}. " + WHAT_TO_DO.format(model=model or "MODEL")


def default_max_body_bytes(max_chars: int) -> int:
    """A request body cap that any text of ``max_chars`` characters fits in, in any encoding we accept."""
    return max_chars * BODY_BYTES_PER_CHAR + BODY_SLACK


class ApiError(Exception):
    """An error answered to the client as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def is_engine(value: Any) -> bool:
    return hasattr(value, "translate") and hasattr(value, "spec")


class TranslatorService:
    """The web layer's one door to the model: text in, aligned :class:`Document` out.

    ``engine_or_loader`` is a loaded engine or a zero-argument callable returning one; the
    callable runs at most once per process (first use, or :meth:`ensure_loaded` at start-up).
    When it fails, the reason is kept and every translation answers 503 with it: the server
    stays up so the page can say what is wrong.
    """

    def __init__(self, engine_or_loader: Any, cache, *, model_name: str | None = None):
        self.cache = cache
        self._lock = threading.Lock()
        self._engine = None
        self._loader: Callable[[], Any] | None = None
        self._error: str | None = None
        self._attempted = False
        if is_engine(engine_or_loader):
            self._engine = engine_or_loader
            self._attempted = True
        elif callable(engine_or_loader):
            self._loader = engine_or_loader
        else:
            raise TypeError("create_app needs an engine or a callable that loads one")
        self.model_name = model_name or (self._engine.spec.id if self._engine is not None else None)
        self._registry: list | None = None

    # -- the model -------------------------------------------------------------------------
    def ensure_loaded(self):
        """Return the engine, loading it on first call; raise ModelUnavailable with the reason."""
        if self._engine is not None:
            return self._engine
        with self._lock:
            if not self._attempted:
                self._attempted = True
                try:
                    self._engine = self._loader()
                    log.info("model %s loaded", self._engine.spec.id)
                except ModelUnavailable as error:
                    self._error = str(error)
                except Exception as error:  # noqa: BLE001 - a bad model must not take the server down
                    log.exception("loading the model failed")
                    self._error = f"{type(error).__name__}: {error}"
                if self._error:
                    log.warning("serving without a model: %s", self._error)
        if self._engine is None:
            raise ModelUnavailable(self._error or "the model is not loaded")
        return self._engine

    @property
    def ready(self) -> bool:
        return self._engine is not None

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def model_id(self) -> str | None:
        """The id of the served model (or of the one that failed to load)."""
        if self._engine is not None:
            return self._engine.spec.id
        return self.model_name

    def served_names(self) -> set[str]:
        names = {name for name in (self.model_name, self.model_id) if name}
        if self._engine is not None:
            spec = self._engine.spec
            names.add(spec.id)
            if getattr(spec, "path", None):
                names.add(str(spec.path))
        return names

    def registry(self) -> list:
        """The model registry (models.txt), read once; [] when it cannot be read."""
        if self._registry is None:
            try:
                from .models import load_registry

                self._registry = list(load_registry())
            except Exception as error:  # noqa: BLE001 - the registry only decorates the page
                log.warning("cannot read the model registry: %s", error)
                self._registry = []
        return self._registry

    def check_model(self, model: str | None) -> None:
        """Refuse (422) a model this process does not serve, saying what it does serve."""
        if model is None or model == "" or model in self.served_names():
            return
        served = self.model_id or "no model"
        if any(spec.id == model for spec in self.registry()):
            raise ApiError(
                422, "model_not_loaded",
                f"{model} is in the registry but this server serves {served}; start a server with "
                f"--model {model} to use it",
            )
        known = ", ".join(spec.id for spec in self.registry()) or served
        raise ApiError(422, "unknown_model", f"unknown model {model!r}; this server serves {served} (registry: {known})")

    def settings_for(self, engine, beam: int | None):
        if beam is None:
            return None
        return dataclasses.replace(engine.settings, beam=beam)

    # -- translation -----------------------------------------------------------------------
    def document(self, text: str, model: str | None = None, beam: int | None = None, *,
                 details: bool = True) -> Document:
        """Translate one article through the shared pipeline (cache first, then the model).

        ``details=False`` skips word links and quality scores: LibreTranslate clients only read text.
        """
        self.check_model(model)
        engine = self.ensure_loaded()
        return translate_document(text, engine, self.cache, settings=self.settings_for(engine, beam),
                                  links=details, quality=details)

    def model_rows(self) -> list[dict]:
        """The registry with, for each model, whether this process serves it."""
        try:
            from .models import model_status_rows

            rows = [dict(row) for row in model_status_rows()]
        except Exception as error:  # noqa: BLE001
            log.warning("cannot list the models: %s", error)
            rows = [{"id": spec.id, "family": spec.family, "license": spec.license} for spec in self.registry()]
        served = self.served_names()
        for row in rows:
            row["served"] = row.get("id") in served
            row["loaded"] = row["served"] and self.ready
        if self.model_id and not any(row["served"] for row in rows):
            spec = self._engine.spec if self._engine is not None else None
            rows.insert(0, {
                "id": self.model_id,
                "family": getattr(spec, "family", None),
                "license": getattr(spec, "license", None),
                "default": False,
                "cached": self.ready,
                "served": True,
                "loaded": self.ready,
            })
        return rows


# -- request parsing ----------------------------------------------------------------------------
def read_json_object() -> dict:
    """The request body as a JSON object, or a 415/400 ApiError."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       f"send a JSON body with Content-Type: application/json (got {request.mimetype or 'none'})")
    try:
        data = json.loads(request.get_data(cache=True))
    except (ValueError, RecursionError) as error:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return data


def is_form() -> bool:
    return request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")


def check_text(text: Any, field: str = "text") -> str:
    if not isinstance(text, str):
        raise ApiError(400, "invalid_field", f"{field} must be a string")
    return text


def check_model_field(model: Any) -> str | None:
    if model is None:
        return None
    if not isinstance(model, str):
        raise ApiError(400, "invalid_field", "model must be a string (a model id from GET /api/models)")
    return model.strip() or None


def check_beam(beam: Any, *, from_form: bool = False) -> int | None:
    if beam is None or (from_form and beam == ""):
        return None
    if from_form:
        try:
            beam = int(beam)
        except ValueError:
            raise ApiError(400, "invalid_field", f"beam must be an integer from {MIN_BEAM} to {MAX_BEAM}") from None
    if isinstance(beam, bool) or not isinstance(beam, int) or not MIN_BEAM <= beam <= MAX_BEAM:
        raise ApiError(400, "invalid_field", f"beam must be an integer from {MIN_BEAM} to {MAX_BEAM}")
    return beam


def check_size(chars: int) -> None:
    limit = current_app.config["MT_MAX_CHARS"]
    if chars > limit:
        raise ApiError(413, "text_too_long",
                       f"the text has {chars:,} characters; this server accepts at most {limit:,} per request "
                       "(--max-chars / MT_MAX_CHARS)")


def newline_normalised(text: str) -> str:
    """Browsers send textarea lines as CRLF; the page works on LF text (the API keeps its input as is)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


# -- API keys ----------------------------------------------------------------------------------
def presented_api_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip()
    if is_form():
        return request.form.get("api_key") or None
    if request.is_json:
        try:
            data = json.loads(request.get_data(cache=True))
        except (ValueError, RecursionError):
            return None
        key = data.get("api_key") if isinstance(data, dict) else None
        return key if isinstance(key, str) and key else None
    return request.args.get("api_key") or None


def check_api_key() -> None:
    keys: tuple[bytes, ...] = current_app.config["MT_API_KEYS"]
    if not keys:
        return
    key = presented_api_key()
    if key is None:
        raise ApiError(401, "api_key_required",
                       "this server requires an API key: send it as api_key, an Authorization: Bearer header "
                       "or an X-API-Key header", headers={"WWW-Authenticate": 'Bearer realm="mt"'})
    given = key.encode("utf-8")
    matched = False
    for candidate in keys:  # compare with every key, in constant time, whatever matches first
        matched |= hmac.compare_digest(given, candidate)
    if not matched:
        raise ApiError(403, "invalid_api_key", "the API key is not valid")


def needs_api_key(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        check_api_key()
        return view(*args, **kwargs)

    return wrapper


# -- responses ---------------------------------------------------------------------------------
def wants_json() -> bool:
    path = request.path
    if path.startswith("/api/") or path in JSON_PATHS:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best != "text/html"


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json", headers=headers)


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    headers = dict(headers or {})
    if request.path == LIBRE_PATH:
        headers["X-Error-Code"] = code
        return json_response({"error": message}, status, headers)
    if wants_json():
        return json_response({"error": {"code": code, "message": message}}, status, headers)
    html = render_template("error.html", status=status, code=code, message=message)
    return Response(html, status=status, mimetype="text/html", headers=headers)


HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "body_too_large", 415: "unsupported_media_type", 429: "rate_limited",
}


# -- OpenAPI -----------------------------------------------------------------------------------
def error_schema_ref(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def libre_error_ref(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LibreError"}}}}


def openapi_spec(*, max_chars: int, max_body_bytes: int, api_keys: bool, rate_limit: str | None) -> dict:
    """OpenAPI 3.1 description of every endpoint (hand-written; /docs renders it)."""
    secured = [{"bearer": []}, {"apiKeyHeader": []}, {"apiKeyField": []}] if api_keys else []
    common_errors = {
        "400": error_schema_ref("Malformed JSON or a field of the wrong type or value"),
        "413": error_schema_ref(f"Text over {max_chars:,} characters, or body over {max_body_bytes:,} bytes"),
        "415": error_schema_ref("Body is not JSON"),
        "422": error_schema_ref("Unknown model, or a registry model this server has not loaded"),
        "503": error_schema_ref("The model could not be loaded; the message says why and what to do"),
    }
    if api_keys:
        common_errors["401"] = error_schema_ref("API key missing")
        common_errors["403"] = error_schema_ref("API key not valid")
    if rate_limit:
        common_errors["429"] = error_schema_ref(f"Rate limit ({rate_limit} per client) exceeded")
    libre_errors = {status: libre_error_ref(value["description"]) for status, value in common_errors.items()}
    libre_errors["415"] = libre_error_ref("Body is neither JSON nor form-encoded")
    form_schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "description": "The Vietnamese article"},
            "file": {"type": "string", "format": "binary", "description": "A UTF-8 .txt file (replaces text)"},
            "model": {"type": "string"},
            "beam": {"type": "integer", "minimum": MIN_BEAM, "maximum": MAX_BEAM},
            "api_key": {"type": "string", "description": "Only when the server requires API keys"},
        },
    }
    translate_example = {"text": "Hà Nội là thủ đô của Việt Nam. Thành phố có hơn 8 triệu dân.", "beam": 4}
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "mt-vi-en: Vietnamese→English translation and alignment",
            "version": __version__,
            "description": (
                "Translate Vietnamese articles into English sentence by sentence, keeping each sentence's "
                "offsets in the submitted text. Errors are JSON `{\"error\": {\"code\", \"message\"}}` "
                "(LibreTranslate's `{\"error\": \"message\"}` on POST /translate). "
                f"Limits: {max_chars:,} characters per request, {max_body_bytes:,} bytes per body."
                + (" API keys required on translating endpoints." if api_keys else "")
                + (f" Rate limit: {rate_limit} per client on translating endpoints." if rate_limit else "")
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": [
            {"name": "API", "description": "Aligned translation as JSON"},
            {"name": "LibreTranslate", "description": "Drop-in replacement for LibreTranslate's /translate"},
            {"name": "Page", "description": "The HTML page and its downloads"},
            {"name": "Operations", "description": "Health, readiness and this description"},
        ],
        "paths": {
            "/api/translate": {"post": {
                "tags": ["API"],
                "summary": "Translate an article, aligned sentence by sentence",
                "description": (
                    "Segments the text, translates each sentence (cached sentences come from the cache), and "
                    "returns every segment with its `start`/`end` offsets into the submitted text "
                    "(`text[start:end] == source`; newlines are not normalised). Unknown fields are ignored."
                ),
                "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/TranslateRequest"}, "example": translate_example}}},
                "responses": {
                    "200": {"description": "The aligned document", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/TranslateResponse"}}}},
                    **common_errors,
                },
            }},
            "/api/align": {"post": {
                "tags": ["API"],
                "summary": "Align a Vietnamese article with an existing English translation",
                "description": (
                    "Both sides are split into sentences (or taken line by line with `lines: true`), embedded with "
                    "multilingual-e5-small and aligned by a two-pass dynamic programme. Every unit of both sides "
                    "appears in exactly one link, in order; shapes 1-1, 1-2, 2-1, 1-3, 3-1, 1-0, 0-1 (a unit with "
                    "no counterpart has an empty other side). Needs no translation model."
                ),
                "security": secured,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "object", "required": ["vi", "en"], "properties": {
                        "vi": {"type": "string"}, "en": {"type": "string"}, "lines": {"type": "boolean"}}},
                    "example": {"vi": "Tôi đi học. Trời mưa.", "en": "I go to school. It is raining."}}}},
                "responses": {
                    "200": {"description": "Units of both sides (offsets into the submitted texts) and the links",
                            "content": {"application/json": {"schema": {"type": "object", "properties": {
                                "vi_sentences": {"type": "array", "items": {"type": "object"}},
                                "en_sentences": {"type": "array", "items": {"type": "object"}},
                                "links": {"type": "array", "items": {"type": "object", "properties": {
                                    "vi": {"type": "array", "items": {"type": "integer"}},
                                    "en": {"type": "array", "items": {"type": "integer"}},
                                    "score": {"type": "number"}}}}}}}}},
                    **{code: answer for code, answer in common_errors.items() if code != "503"},
                },
            }},
            "/translate": {"post": {
                "tags": ["LibreTranslate"],
                "summary": "LibreTranslate-compatible translation",
                "description": (
                    "Accepts LibreTranslate's fields as JSON, form-encoded or multipart. `q` is a string or a list "
                    "of strings (answered with a string or a list). `source` is `vi` or `auto` (default `auto`; "
                    "then `detectedLanguage` is returned), `target` must be `en` (default), `format` must be "
                    "`text` (`html` is not supported); `alternatives` is ignored. `model` and `beam` are accepted as "
                    "extensions. Errors use "
                    "LibreTranslate's shape `{\"error\": \"message\"}`; the code is in the `X-Error-Code` header."
                ),
                "security": secured,
                "requestBody": {"required": True, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/LibreRequest"},
                                         "example": {"q": "Xin chào thế giới.", "source": "vi", "target": "en"}},
                    "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/LibreRequest"}},
                    "multipart/form-data": {"schema": {"$ref": "#/components/schemas/LibreRequest"}},
                }},
                "responses": {
                    "200": {"description": "Translated text(s)", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/LibreResponse"},
                        "example": {"translatedText": "Hello world.", "detectedLanguage": {"confidence": 100, "language": "vi"}}}}},
                    **libre_errors,
                },
            }},
            "/api/models": {"get": {
                "tags": ["API"],
                "summary": "The model registry and which model this server serves",
                "security": secured,
                "responses": {"200": {"description": "Models", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Models"}}}}},
            }},
            "/download/{format}": {"post": {
                "tags": ["Page"],
                "summary": "Translate and download as a file",
                "description": (
                    "Same fields as the page (form-encoded) or as POST /api/translate (JSON). The answer is an "
                    "attachment: `translation.tmx` (TMX 1.4), `translation.tsv` (Vietnamese<TAB>English), "
                    "`translation.jsonl` (one segment per line) or `translation.txt` (the English text). "
                    "Repeating a translation is served from the sentence cache."
                ),
                "security": secured,
                "parameters": [{"name": "format", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": list(DOWNLOADS)}}],
                "requestBody": {"required": True, "content": {
                    "application/x-www-form-urlencoded": {"schema": form_schema},
                    "application/json": {"schema": {"$ref": "#/components/schemas/TranslateRequest"}},
                }},
                "responses": {
                    "200": {"description": "The file (Content-Disposition: attachment)", "content": {
                        "application/x-tmx+xml": {}, "text/tab-separated-values": {}, "application/jsonl": {},
                        "text/plain": {}}},
                    "404": error_schema_ref("Unknown format"),
                    **common_errors,
                },
            }},
            "/": {
                "get": {"tags": ["Page"], "summary": "The translation page (HTML form)",
                        "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}},
                "post": {"tags": ["Page"], "summary": "Submit the form: the aligned view (HTML)",
                         "security": secured,
                         "requestBody": {"content": {"application/x-www-form-urlencoded": {"schema": form_schema},
                                                     "multipart/form-data": {"schema": form_schema}}},
                         "responses": {"200": {"description": "HTML with the aligned rows", "content": {"text/html": {}}},
                                       "4XX": {"description": "HTML page with the error message"},
                                       "503": {"description": "HTML page saying the model is unavailable"}}},
            },
            "/healthz": {"get": {"tags": ["Operations"], "summary": "Liveness: 200 while the process runs",
                                 "responses": {"200": {"description": "Alive", "content": {"application/json": {
                                     "example": {"status": "ok"}}}}}}},
            "/readyz": {"get": {"tags": ["Operations"], "summary": "Readiness: 200 once the model is loaded",
                                "responses": {
                                    "200": {"description": "Ready", "content": {"application/json": {
                                        "example": {"status": "ready", "model": "Helsinki-NLP/opus-mt-vi-en",
                                                    "batching": {"requests": 8, "batches": 2, "sentences": 8,
                                                                 "mean_batch": 4.0}}}}},
                                    "503": error_schema_ref("The model is not loaded; the message says why")}}},
            "/openapi.json": {"get": {"tags": ["Operations"], "summary": "This OpenAPI 3.1 description",
                                      "responses": {"200": {"description": "OpenAPI document",
                                                            "content": {"application/json": {}}}}}},
            "/docs": {"get": {"tags": ["Operations"], "summary": "This description as a readable HTML page",
                              "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}}}},
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
                        "code": {"type": "string", "description": (
                            "invalid_json, invalid_field, empty_text, unsupported_media_type, text_too_long, "
                            "body_too_large, unknown_model, model_not_loaded, model_unavailable, api_key_required, "
                            "invalid_api_key, rate_limited, not_found, method_not_allowed, internal_error")},
                        "message": {"type": "string", "description": "For people: what went wrong and what to do"},
                    }}},
                },
                "LibreError": {"type": "object", "required": ["error"],
                               "properties": {"error": {"type": "string"}}},
                "TranslateRequest": {
                    "type": "object", "required": ["text"],
                    "properties": {
                        "text": {"type": "string", "maxLength": max_chars, "description": "The Vietnamese article"},
                        "model": {"type": "string", "description": "A model id (default: the served model)"},
                        "beam": {"type": "integer", "minimum": MIN_BEAM, "maximum": MAX_BEAM,
                                 "description": "Beam size (default: the model's)"},
                        "api_key": {"type": "string", "description": "Only when the server requires API keys"},
                    },
                },
                "Segment": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "paragraph": {"type": "integer", "description": "Paragraph number, from 0"},
                        "kind": {"type": "string", "enum": ["sentence", "title", "byline"]},
                        "start": {"type": "integer", "description": "Offset of the segment in the submitted text"},
                        "end": {"type": "integer", "description": "End offset (exclusive)"},
                        "source": {"type": "string", "description": "text[start:end], as the user wrote it"},
                        "normalized": {"type": "string", "description": "What the model saw"},
                        "translation": {"type": "string"},
                        "cached": {"type": "boolean", "description": "Served from the sentence cache"},
                        "src_words": {"type": "array", "items": {"type": "string"},
                                      "description": "Vietnamese words as written (tên_lửa is one word in "
                                                     "word-segmented input); punctuation marks are words too"},
                        "src_word_spans": {"type": "array",
                                           "items": {"type": "array", "items": {"type": "integer"}},
                                           "description": "[start, end) of each Vietnamese word in the submitted text"},
                        "tgt_words": {"type": "array", "items": {"type": "string"},
                                      "description": "English words of the translation"},
                        "tgt_word_spans": {"type": "array",
                                           "items": {"type": "array", "items": {"type": "integer"}},
                                           "description": "[start, end) of each English word in translation"},
                        "alignment": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                                      "description": "Word links from the model's attention: [Vietnamese word "
                                                     "index, English word index] pairs; each English word has "
                                                     "at most one. Empty for bylines"},
                        "quality": {"type": ["number", "null"],
                                    "description": "How much closer the translation is to its source than to "
                                                   "unrelated Vietnamese text (multilingual-e5-small cosines; "
                                                   "human translations score about 0.07-0.2, unrelated "
                                                   "sentences about 0); null when not scored (bylines)"},
                        "similarity": {"type": ["number", "null"],
                                       "description": "Plain cosine similarity of the source and translation "
                                                      "embeddings; null when not scored"},
                        "flagged": {"type": "boolean",
                                    "description": "Low confidence: quality below the calibrated threshold, "
                                                   "or the translation looks more Vietnamese than English"},
                    },
                },
                "TranslateResponse": {
                    "type": "object",
                    "properties": {
                        "model": {"type": "string"},
                        "sentences": {"type": "array", "items": {"$ref": "#/components/schemas/Segment"}},
                        "translation": {"type": "string", "description": "The full English text, paragraphs kept"},
                        "timings": {"type": "object", "additionalProperties": {"type": "number"},
                                    "description": "segment_ms, cache_ms, model_ms, total_ms, model_sentences"},
                    },
                },
                "LibreRequest": {
                    "type": "object", "required": ["q"],
                    "properties": {
                        "q": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                        "source": {"type": "string", "enum": ["vi", "auto"], "default": "auto"},
                        "target": {"type": "string", "enum": ["en"], "default": "en"},
                        "format": {"type": "string", "enum": ["text"], "default": "text"},
                        "api_key": {"type": "string"},
                        "model": {"type": "string"},
                        "beam": {"type": "integer", "minimum": MIN_BEAM, "maximum": MAX_BEAM},
                    },
                },
                "LibreResponse": {
                    "type": "object",
                    "properties": {
                        "translatedText": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                        "detectedLanguage": {"description": "Only when source is auto (a list for a list q)", "oneOf": [
                            {"$ref": "#/components/schemas/DetectedLanguage"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/DetectedLanguage"}}]},
                    },
                },
                "DetectedLanguage": {"type": "object", "properties": {
                    "confidence": {"type": "number"}, "language": {"type": "string"}}},
                "Models": {
                    "type": "object",
                    "properties": {
                        "served": {"type": ["string", "null"], "description": "The model this server serves"},
                        "ready": {"type": "boolean"},
                        "error": {"type": ["string", "null"], "description": "Why the model is not loaded"},
                        "models": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "string"}, "family": {"type": ["string", "null"]},
                            "license": {"type": ["string", "null"]}, "default": {"type": "boolean"},
                            "cached": {"type": "boolean", "description": "Present in the local Hugging Face cache"},
                            "served": {"type": "boolean"}, "loaded": {"type": "boolean"}}}},
                    },
                },
            },
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyField": {"type": "apiKey", "in": "query", "name": "api_key",
                                "description": "Also accepted as an api_key field of the JSON or form body"},
            },
        },
    }
    return spec


def resolve_ref(spec: dict, node: dict) -> tuple[str | None, dict]:
    ref = node.get("$ref")
    if not ref:
        return None, node
    name = ref.rsplit("/", 1)[-1]
    return name, spec["components"]["schemas"][name]


def schema_type(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " | ".join(schema_type(option) for option in schema["oneOf"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array":
        return f"array of {schema_type(schema.get('items', {}))}"
    if "enum" in schema:
        return f"{kind}: " + ", ".join(str(value) for value in schema["enum"])
    return kind


def inline_code(value: str) -> Markup:
    """Escape, then show `backticked` spans as <code> (for the spec's own descriptions)."""
    parts = str(escape(value)).split("`")
    return Markup("".join(f"<code>{part}</code>" if index % 2 else part for index, part in enumerate(parts)))


def schema_rows(schema: dict, prefix: str = "") -> list[dict]:
    """Fields of a schema, nested objects flattened as ``outer.inner``."""
    rows = []
    for field, value in schema.get("properties", {}).items():
        name = prefix + field
        rows.append({"name": name, "type": schema_type(value), "description": value.get("description", "")})
        if value.get("type") == "object" and "properties" in value:
            rows.extend(schema_rows(value, name + "."))
        elif value.get("type") == "array" and "properties" in value.get("items", {}):
            rows.extend(schema_rows(value["items"], name + "[]."))
    return rows


def docs_schemas(spec: dict) -> list[dict]:
    return [{"name": name, "rows": schema_rows(schema)} for name, schema in spec["components"]["schemas"].items()]


def docs_view_model(spec: dict) -> list[dict]:
    """Flatten the spec into what docs.html shows: one entry per operation."""
    operations = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            bodies = []
            for content_type, media in op.get("requestBody", {}).get("content", {}).items():
                name, schema = resolve_ref(spec, media.get("schema", {}))
                required = set(schema.get("required", []))
                fields = [
                    {"name": field, "type": schema_type(value), "required": field in required,
                     "description": value.get("description", "")}
                    for field, value in schema.get("properties", {}).items()
                ]
                example = media.get("example")
                bodies.append({
                    "content_type": content_type, "schema": name, "fields": fields,
                    "example": json.dumps(example, ensure_ascii=False, indent=2) if example is not None else None,
                })
            responses = []
            for status, response in op.get("responses", {}).items():
                schema_name = None
                example = None
                for media in response.get("content", {}).values():
                    if "schema" in media:
                        schema_name = schema_type(media["schema"])
                    if "example" in media:
                        example = json.dumps(media["example"], ensure_ascii=False, indent=2)
                responses.append({"status": status, "description": response.get("description", ""),
                                  "schema": schema_name, "example": example,
                                  "types": list(response.get("content", {}))})
            operations.append({
                "id": f"{method}-{path}".replace("/", "-").replace("{", "").replace("}", "").strip("-"),
                "method": method.upper(), "path": path, "summary": op.get("summary", ""),
                "description": op.get("description", ""), "tags": op.get("tags", []),
                "secured": bool(op.get("security")),
                "parameters": [{"name": p["name"], "in": p["in"], "type": schema_type(p.get("schema", {}))}
                               for p in op.get("parameters", [])],
                "bodies": bodies, "responses": responses,
            })
    return operations


# -- batching across requests -----------------------------------------------------------------
def with_batching(engine_or_loader: Any, max_sentences: int | None, max_wait_ms: float | None) -> Any:
    """The engine (or loader) wrapped so that concurrent requests share model calls."""
    from .batching import DEFAULT_BATCH_SENTENCES, DEFAULT_BATCH_WAIT_MS, BatchingEngine

    options = {"max_sentences": DEFAULT_BATCH_SENTENCES if max_sentences is None else max_sentences,
               "max_wait_ms": DEFAULT_BATCH_WAIT_MS if max_wait_ms is None else max_wait_ms}
    if is_engine(engine_or_loader):
        return BatchingEngine(engine_or_loader, **options)
    if callable(engine_or_loader):
        loader = engine_or_loader

        @wraps(loader)
        def load_batched():
            return BatchingEngine(loader(), **options)

        return load_batched
    return engine_or_loader  # TranslatorService says what is wrong with it


def batching_stats(engine: Any) -> dict | None:
    """The batcher's counts (model calls, requests, sentences, mean batch); None without batching."""
    stats = getattr(engine, "stats", None)
    return stats() if callable(stats) else None


# -- the app -----------------------------------------------------------------------------------
def create_app(
    engine_or_loader: Any,
    cache=None,
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_body_bytes: int | None = None,
    api_keys: Iterable[str] | None = None,
    rate_limit: str | None = None,
    rate_limit_storage: str = "memory://",
    model_name: str | None = None,
    batching: bool = True,
    batch_sentences: int | None = None,
    batch_wait_ms: float | None = None,
) -> Flask:
    """Build the Flask app around one engine (or a loader called once) and one sentence cache.

    ``batching`` (default on): the engine is wrapped in :class:`mt.batching.BatchingEngine`, one
    worker that batches the sentences of concurrent requests (at most ``batch_sentences`` per
    model call, waiting at most ``batch_wait_ms`` for more); /readyz reports its counts.

    ``api_keys``: when given (non-empty), every endpoint that translates (POST /, /download/*,
    /translate, /api/*) requires one; the GET page, docs and health checks stay open.
    ``rate_limit`` (e.g. ``"60/minute"``): one budget per client address shared by the same
    endpoints; 429 beyond it.
    """
    from .cache import NullCache

    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    max_body_bytes = max_body_bytes or default_max_body_bytes(max_chars)
    keys = tuple(key.strip().encode("utf-8") for key in (api_keys or ()) if key.strip())

    app = Flask(__name__)
    app.debug = False
    app.config.update(
        MAX_CONTENT_LENGTH=max_body_bytes,
        MAX_FORM_MEMORY_SIZE=max_body_bytes,
        MT_MAX_CHARS=max_chars,
        MT_MAX_BODY_BYTES=max_body_bytes,
        MT_API_KEYS=keys,
        MT_RATE_LIMIT=rate_limit,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if batching:
        engine_or_loader = with_batching(engine_or_loader, batch_sentences, batch_wait_ms)
    service = TranslatorService(engine_or_loader, cache if cache is not None else NullCache(), model_name=model_name)
    app.extensions["mt"] = service
    spec = openapi_spec(max_chars=max_chars, max_body_bytes=max_body_bytes, api_keys=bool(keys), rate_limit=rate_limit)
    docs_operations = docs_view_model(spec)

    limited = lambda view: view  # noqa: E731 - no rate limit unless asked for
    if rate_limit:
        from flask_limiter import Limiter
        from flask_limiter.util import get_remote_address

        limiter = Limiter(get_remote_address, app=app, storage_uri=rate_limit_storage, headers_enabled=True,
                          default_limits=[])
        app.extensions["mt_limiter"] = limiter
        shared = limiter.shared_limit(rate_limit, scope="translate")
        limited = shared

    app.add_template_filter(inline_code, "inline_code")

    @app.context_processor
    def template_globals():
        return {"version": __version__}

    # -- before / after every request --------------------------------------------------------
    @app.before_request
    def cap_body():
        length = request.content_length
        if length is not None and length > max_body_bytes:
            raise ApiError(413, "body_too_large",
                           f"the request body has {length:,} bytes; this server accepts at most {max_body_bytes:,} "
                           "(--max-body-bytes / MT_MAX_BODY_BYTES)")

    @app.after_request
    def security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        if request.endpoint != "static":
            headers.setdefault("Cache-Control", "no-store")
        return response

    # -- errors ------------------------------------------------------------------------------
    @app.errorhandler(ApiError)
    def on_api_error(error: ApiError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.errorhandler(HTTPException)
    def on_http_error(error: HTTPException):
        status = error.code or 500
        code = HTTP_CODES.get(status, "http_error")
        message = error.description or error.name
        headers = {}
        if status == 404:
            message = f"no such endpoint: {request.method} {request.path} (see /docs)"
        elif status == 405:
            allowed = error.valid_methods or []
            message = f"{request.method} is not allowed on {request.path}; use {', '.join(sorted(allowed))}"
            headers["Allow"] = ", ".join(sorted(allowed))
        elif status == 413:
            message = f"the request body is over {max_body_bytes:,} bytes (--max-body-bytes / MT_MAX_BODY_BYTES)"
        elif status == 429:
            # Flask-Limiter adds Retry-After and X-RateLimit-* headers to this response
            message = f"rate limit exceeded ({error.description} per client); slow down and retry later"
        return error_response(status, code, message, headers)

    @app.errorhandler(Exception)
    def on_crash(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error; the server log has the details")

    # -- operations --------------------------------------------------------------------------
    @app.get("/healthz")
    def healthz():
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz():
        try:
            service.ensure_loaded()
        except ModelUnavailable as error:
            return json_response({"status": "unavailable", "model": service.model_id,
                                  "error": {"code": "model_unavailable",
                                            "message": with_advice(str(error), service.model_id)}}, 503)
        return json_response({"status": "ready", "model": service.model_id,
                              "batching": batching_stats(service.ensure_loaded())})

    @app.get("/openapi.json")
    def openapi():
        return json_response(spec)

    @app.get("/docs")
    def docs():
        return render_template("docs.html", spec=spec, operations=docs_operations, schemas=docs_schemas(spec))

    # -- JSON API ----------------------------------------------------------------------------
    def translate_or_fail(text: str, model: str | None, beam: int | None, details: bool = True) -> Document:
        try:
            return service.document(text, model=model, beam=beam, details=details)
        except ModelUnavailable as error:
            raise ApiError(503, "model_unavailable", unavailable_message(str(error))) from None
        except InputError as error:
            raise ApiError(400, "invalid_input", str(error)) from None

    def unavailable_message(reason: str) -> str:
        return f"the translation model is not available: {with_advice(reason, service.model_id)}"

    @app.post("/api/translate")
    @limited
    @needs_api_key
    def api_translate():
        data = read_json_object()
        if "text" not in data:
            raise ApiError(400, "invalid_field", "text is required")
        text = check_text(data["text"])
        model = check_model_field(data.get("model"))
        beam = check_beam(data.get("beam"))
        check_size(len(text))
        if not text.strip():
            raise ApiError(400, "empty_text", "text is empty")
        return json_response(translate_or_fail(text, model, beam).to_dict())

    @app.post("/api/align")
    @limited
    @needs_api_key
    def api_align():
        from .align import align_document

        data = read_json_object()
        for field in ("vi", "en"):
            if field not in data:
                raise ApiError(400, "invalid_field", f"{field} is required")
        vi, en = check_text(data["vi"], "vi"), check_text(data["en"], "en")
        lines = data.get("lines", False)
        if not isinstance(lines, bool):
            raise ApiError(400, "invalid_field", "lines must be true or false")
        check_size(len(vi) + len(en))
        try:
            return json_response(align_document(vi, en, lines=lines).to_dict())
        except InputError as error:
            raise ApiError(400, "invalid_input", str(error)) from None

    @app.get("/api/models")
    @needs_api_key
    def api_models():
        return json_response({"served": service.model_id, "ready": service.ready, "error": service.error,
                              "models": service.model_rows()})

    @app.post(LIBRE_PATH)
    @limited
    @needs_api_key
    def libre_translate():
        if request.is_json:
            data = read_json_object()
            q = data.get("q")
        elif is_form() or not request.content_length:
            data = request.values
            values = data.getlist("q")
            q = values if len(values) > 1 else (values[0] if values else None)
        else:
            raise ApiError(415, "unsupported_media_type",
                           "send JSON (application/json) or a form (application/x-www-form-urlencoded or multipart/form-data)")
        if q is None or q == "" or q == []:
            raise ApiError(400, "invalid_field", "Invalid request: missing q parameter")
        batch = isinstance(q, list)
        texts = q if batch else [q]
        if not all(isinstance(item, str) for item in texts):
            raise ApiError(400, "invalid_field", "Invalid request: q must be a string or a list of strings")
        source = data.get("source") or "auto"
        target = data.get("target") or "en"
        text_format = data.get("format") or "text"
        for name, value in (("source", source), ("target", target), ("format", text_format)):
            if not isinstance(value, str):
                raise ApiError(400, "invalid_field", f"Invalid request: {name} must be a string")
        if source not in ("vi", "auto"):
            raise ApiError(400, "unsupported_language", f"{source} is not supported (this server translates vi to en)")
        if target != "en":
            raise ApiError(400, "unsupported_language", f"{target} is not supported (this server translates vi to en)")
        if text_format != "text":
            raise ApiError(400, "unsupported_format", f"{text_format} format is not supported (only text)")
        if request.is_json:
            model = check_model_field(data.get("model"))
            beam = check_beam(data.get("beam"))
        else:
            model = check_model_field(data.get("model"))
            beam = check_beam(data.get("beam"), from_form=True)
        if not request.is_json:
            # LibreTranslate normalises form line endings the same way
            texts = [newline_normalised(text) for text in texts]
        check_size(sum(len(text) for text in texts))
        translations = [translate_or_fail(text, model, beam, details=False).translation if text.strip() else "" for text in texts]
        answer: dict[str, Any] = {"translatedText": translations if batch else translations[0]}
        if source == "auto":
            detected = {"confidence": 100, "language": "vi"}
            answer["detectedLanguage"] = [dict(detected) for _ in texts] if batch else detected
        return json_response(answer)

    # -- the page ----------------------------------------------------------------------------
    def page_context(**extra) -> dict:
        context = {
            "service": service,
            "ready": service.ready,
            "model_error": service.error,
            "what_to_do": (WHAT_TO_DO.format(model=service.model_id or "MODEL")
                           if service.error and with_advice(service.error, None) != service.error.strip() else ""),
            "model_options": model_options(),
            "max_chars": max_chars,
            "needs_key": bool(keys),
            "beams": list(range(MIN_BEAM, MAX_BEAM + 1)),
            "formats": list(DOWNLOADS),
            "version": __version__,
            "text": "",
            "selected_model": service.model_id,
            "beam": None,
            "api_key": "",
            "error": None,
            "document": None,
        }
        context.update(extra)
        return context

    def model_options() -> list[dict]:
        served = service.model_id
        options = [{"id": served, "label": served + ("" if service.ready else " (not loaded)"),
                    "disabled": False}] if served else []
        for spec_ in service.registry():
            if spec_.id != served and spec_.id not in service.served_names():
                options.append({"id": spec_.id, "label": f"{spec_.id} (not loaded on this server)", "disabled": True})
        return options

    def page_input() -> tuple[str, str | None, int | None]:
        """Text (or uploaded file), model and beam from the page's form."""
        if not is_form():
            raise ApiError(415, "unsupported_media_type", "the page sends its form as a form")
        text = request.form.get("text", "")
        upload = request.files.get("file")
        if upload is not None and upload.filename:
            text = decode_article(upload.read(), upload.filename)
        text = newline_normalised(text)
        model = check_model_field(request.form.get("model"))
        beam = check_beam(request.form.get("beam"), from_form=True)
        return text, model, beam

    @app.get("/")
    def index():
        ensure_started()
        return render_template("index.html", **page_context())

    @app.post("/")
    @limited
    def index_post():
        text, model, beam, api_key = "", None, None, request.form.get("api_key", "") if is_form() else ""
        try:
            text, model, beam = page_input()
            check_api_key()
            check_size(len(text))
            if not text.strip():
                raise ApiError(400, "empty_text", "Paste a Vietnamese article or choose a .txt file first.")
            document = translate_or_fail(text, model, beam)
        except InputError as error:
            return page_error(400, str(error), text, model, beam, api_key)
        except ApiError as error:
            return page_error(error.status, error.message, text, model, beam, api_key, error.headers)
        summary = {
            "segments": len(document.sentences),
            "cache_hits": document.cache_hits,
            "translated": sum(1 for pair in document.sentences if pair.kind != "byline"),
            "paragraphs": len(document.paragraphs()),
        }
        return render_template("index.html", **page_context(
            text=text, document=document, summary=summary, selected_model=model or service.model_id,
            beam=beam, api_key=api_key))

    def page_error(status, message, text, model, beam, api_key, headers=None):
        html = render_template("index.html", **page_context(
            text=text, error={"status": status, "message": message},
            selected_model=model or service.model_id, beam=beam, api_key=api_key))
        return Response(html, status=status, mimetype="text/html", headers=headers or {})

    def ensure_started():
        """The page shows the model's state: try the (once-only) load if nobody has yet."""
        try:
            service.ensure_loaded()
        except ModelUnavailable:
            pass

    @app.post("/download/<fmt>")
    @limited
    @needs_api_key
    def download(fmt: str):
        if fmt not in DOWNLOADS:
            raise ApiError(404, "not_found", f"unknown download format {fmt!r}; use one of {', '.join(DOWNLOADS)}")
        if request.is_json:
            data = read_json_object()
            text = check_text(data.get("text", ""))
            model = check_model_field(data.get("model"))
            beam = check_beam(data.get("beam"))
        else:
            try:
                text, model, beam = page_input()
            except InputError as error:
                raise ApiError(400, "invalid_input", str(error)) from None
        check_size(len(text))
        if not text.strip():
            raise ApiError(400, "empty_text", "text is empty")
        document = translate_or_fail(text, model, beam)
        render, mimetype, filename = DOWNLOADS[fmt]
        return Response(
            render(document), content_type=mimetype if "charset" in mimetype else f"{mimetype}; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename={filename}"},
        )

    return app
