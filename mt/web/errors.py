"""Error answers of the web layer: one table of error codes, one exception, one response shape.

Our API answers ``{"error": {"code", "message"}}``; the LibreTranslate-compatible ``POST
/translate`` answers LibreTranslate's ``{"error": "message"}`` (typed clients deserialise ``error``
as a string) with the code in the ``X-Error-Code`` header; a browser navigating to a page gets an
HTML error page. Nobody ever gets a traceback. A domain error (:class:`mt.errors.MTError`) carries its code: one handler answers
it, views do not catch it. Every code the app can emit is in
:data:`ERROR_CODES`: :class:`ApiError` refuses any other, and the OpenAPI document lists them all.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

from ..errors import MTError

log = logging.getLogger(__name__)

# code -> (HTTP status, what it means); the OpenAPI document and /docs are generated from this
ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_json": (400, "The body is not a JSON object"),
    "invalid_field": (400, "A field is missing, of the wrong type or out of range, or its text is not valid Unicode "
                             "(a lone surrogate) or holds a control character (NUL, ESC...)"),
    "empty_text": (400, "The text is empty or only whitespace"),
    "invalid_input": (400, "The input cannot be read (a form body or uploaded file that is not UTF-8 text, say)"),
    "unsupported_language": (400, "LibreTranslate source/target other than vi (or auto) → en"),
    "batch_too_large": (400, "LibreTranslate q list longer than the server's --batch-limit"),
    "unsupported_format": (400, "LibreTranslate format other than text or html"),
    "bad_request": (400, "The request could not be parsed (a malformed form body, say)"),
    "unauthorized": (401, "Authentication required"),
    "api_key_required": (401, "This server requires an API key and none was sent"),
    "forbidden": (403, "Not allowed"),
    "invalid_api_key": (403, "The API key is not valid"),
    "not_found": (404, "No such endpoint, or an unknown download format"),
    "method_not_allowed": (405, "The endpoint exists but not for this method (see the Allow header)"),
    "text_too_long": (413, "The text is over the server's character limit (--max-chars)"),
    "body_too_large": (413, "The body is over the server's byte limit (--max-body-bytes)"),
    "unsupported_media_type": (415, "The body is not of a type this endpoint accepts"),
    "invalid_glossary": (400, "A glossary (its entries, name, or its TSV/CSV text) breaks a rule: a blank term, a "
                              "tab or line break in a term, over 5,000 entries or 200 characters a side"),
    "glossary_not_found": (404, "No stored glossary has that id (GET /api/glossaries lists them)"),
    "glossary_limit": (409, "The server holds its maximum of glossaries (or of their bytes): delete one first"),
    "unknown_model": (422, "A model id that is not in the registry and not served here"),
    "model_not_loaded": (422, "A registry model that this server does not serve"),
    "rate_limited": (429, "The client's rate limit is exceeded (see Retry-After)"),
    "quota_exceeded": (456, "DeepL API: this period's character limit (--deepl-character-limit) is reached"),
    "http_error": (400, "Any other HTTP error status, with its standard meaning"),
    "internal_error": (500, "A bug: the server log has the details"),
    "model_unavailable": (503, "The model could not be loaded; the message says why and what to do"),
    "server_busy": (503, "Too many alignments or streams running at once, an alignment past its budget, or the "
                         "shared file store full or unreachable; retry after Retry-After seconds"),
    "deadline_exceeded": (503, "The request ran past its time budget; retry after Retry-After seconds (a shorter "
                               "text answers sooner)"),
    "client_gone": (503, "The client went away before the answer (it never sees this; the log does)"),
    "memory_off": (404, "This server keeps no translation memory (--memory off)"),
    "suggestions_disabled": (403, "LibreTranslate's POST /suggest is off on this server (--suggestions turns it on)"),
    "memory_read_only": (403, "This server's translation memory is read-only (--memory read-only)"),
    "memory_entry_not_found": (404, "No translation memory entry has this id"),
    "memory_full": (507, "The translation memory holds its maximum of entries; delete some first"),
    "memory_unavailable": (503, "The translation memory's store cannot be reached (no cache, or its file or "
                                "Redis is unusable)"),
}

# codes of mt.errors classes that the API answers under an older public code
CODE_ALIASES = {"file_too_large": "text_too_long", "invalid_document": "invalid_input"}
RETRY_AFTER = {"server_busy": "30", "deadline_exceeded": "5"}

# werkzeug's HTTP errors (raised by routing, body parsing, the rate limiter) -> our codes
HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    413: "body_too_large", 415: "unsupported_media_type", 429: "rate_limited",
}

# Paths whose errors are always JSON, whatever the Accept header says.
JSON_PATHS = ("/api/", "/translate", "/translate_file", "/healthz", "/readyz", "/openapi.json", "/detect",
              "/languages", "/suggest", "/frontend/settings", "/health")
LIBRE_PATH = "/translate"
LIBRE_PATHS = (LIBRE_PATH, "/translate_file", "/detect", "/languages", "/suggest", "/frontend/settings",
               "/health")  # LibreTranslate's error shape
DEEPL_PREFIX = ("/v2/", "/v3/")  # DeepL's API (v3: what it has and we do not): errors are {"message": ...}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}``; the status comes from :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None):
        if code not in ERROR_CODES:
            raise ValueError(f"undeclared error code {code!r}: add it to mt.web.errors.ERROR_CODES")
        super().__init__(message)
        self.status = ERROR_CODES[code][0]
        self.code = code
        self.message = message
        self.headers = headers or {}


def from_store(what: str, call, *args, passing: tuple[type[BaseException], ...] = ()):
    """``call(*args)`` on a shared store (downloads, glossaries, document jobs): an unreachable store
    (Redis down, a locked disk) is 503 ``server_busy`` with Retry-After, not the client's fault and
    not a 500; the errors in ``passing`` (the store's own refusals) go through as they are."""
    try:
        return call(*args)
    except passing:
        raise
    except Exception as error:  # noqa: BLE001 - logged; the client gets a 503 it can retry
        log.warning("the %s store failed: %s", what, error)
        raise ApiError("server_busy", f"the {what} store is not reachable; retry later",
                       headers={"Retry-After": "30"}) from None


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False)
    return Response(body, status=status, mimetype="application/json", headers=headers)


def wants_json() -> bool:
    path = request.path
    if path.startswith(("/api/", *DEEPL_PREFIX)) or path in JSON_PATHS:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best != "text/html"


def error_payload(path: str, code: str, message: str, headers: dict) -> dict:
    """The JSON error body for ``path`` (LibreTranslate's shape on its routes, with the code in
    ``X-Error-Code`` added to ``headers``): one place for the shape, in Flask and before it."""
    if path in LIBRE_PATHS:
        headers["X-Error-Code"] = code
        return {"error": message}
    if path.startswith(DEEPL_PREFIX):  # DeepL's shape: {"message"}
        headers["X-Error-Code"] = code
        return {"message": message}
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> Response:
    headers = dict(headers or {})
    if request.path in LIBRE_PATHS or wants_json():
        return json_response(error_payload(request.path, code, message, headers), status, headers)
    html = render_template("error.html", status=status, code=code, message=message)
    return Response(html, status=status, mimetype="text/html", headers=headers)


def on_api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.headers)


def api_error(error: MTError) -> ApiError:
    """The answer to a domain error: its class carries the code, its message is for the user."""
    code = CODE_ALIASES.get(error.code, error.code)
    if code not in ERROR_CODES:
        log.error("%s has undeclared code %r", type(error).__name__, code)
        code = "internal_error"
    if code == "internal_error":
        log.error("unexpected %s: %s", type(error).__name__, error)
        return ApiError(code, "internal server error; the server log has the details")
    retry = getattr(error, "retry_after", None) or RETRY_AFTER.get(code)
    return ApiError(code, str(error), headers={"Retry-After": str(retry)} if retry else None)


def on_domain_error(error: MTError) -> Response:
    return on_api_error(api_error(error))


def on_http_error(error: HTTPException) -> Response:
    from flask import current_app

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
        limit = current_app.config["MT_MAX_BODY_BYTES"]
        message = f"the request body is over {limit:,} bytes (--max-body-bytes / MT_MAX_BODY_BYTES)"
    elif status == 429:
        # Flask-Limiter adds Retry-After and X-RateLimit-* headers to this response
        message = f"rate limit exceeded ({error.description} per client); slow down and retry later"
    return error_response(status, code, message, headers)


def on_crash(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "internal server error; the server log has the details")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, on_api_error)
    app.register_error_handler(MTError, on_domain_error)
    app.register_error_handler(HTTPException, on_http_error)
    app.register_error_handler(Exception, on_crash)
