"""API keys, the rate limit, body and text caps, and the security headers of every answer.

Views mark themselves with :func:`needs_api_key` (checked before the view runs) and :func:`limited`
(one shared per-client budget, applied by :func:`install_rate_limit` when the app has a limit).
"""

from __future__ import annotations

import hmac
import json
import urllib.parse
from functools import wraps

from flask import Flask, Response, current_app, request

from .errors import ApiError

# Worst case bytes per character on the wire: form encoding of a 3-byte UTF-8 character is 9.
BODY_BYTES_PER_CHAR = 10
BODY_SLACK = 64 * 1024

CSP = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def default_max_body_bytes(max_chars: int) -> int:
    """A request body cap that any text of ``max_chars`` characters fits in, in any encoding we accept."""
    return max_chars * BODY_BYTES_PER_CHAR + BODY_SLACK


def is_form() -> bool:
    return request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")


REPLACEMENT = "\ufffd".encode("utf-8")


def check_form_encoding() -> None:
    """Refuse (400 invalid_input) a form body that is not UTF-8: werkzeug silently drops such
    fields (form-encoded) or replaces the bytes (multipart), which would answer something else."""
    if not is_form():
        return
    raw = request.get_data(cache=True)
    if request.mimetype == "application/x-www-form-urlencoded":
        for part in raw.split(b"&"):
            try:
                urllib.parse.unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError as error:
                name = part.split(b"=", 1)[0].decode("ascii", "replace")[:40]
                raise ApiError("invalid_input", f"the form field {name!r} is not valid UTF-8 (byte "
                               f"{error.object[error.start]:#04x}); send UTF-8 text") from None
        return
    if REPLACEMENT in raw:
        return  # U+FFFD sent on purpose: werkzeug's own replacements cannot be told apart
    for name, value in request.form.items(multi=True):
        if "\ufffd" in value:
            raise ApiError("invalid_input", f"the form field {name!r} is not valid UTF-8; send UTF-8 text")


# -- API keys ----------------------------------------------------------------------------------
def presented_api_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip()
    if is_form() and request.form.get("api_key"):
        return request.form["api_key"]
    if request.is_json:
        try:
            data = json.loads(request.get_data(cache=True))
        except (ValueError, RecursionError):
            data = None
        key = data.get("api_key") if isinstance(data, dict) else None
        if isinstance(key, str) and key:
            return key
    return request.args.get("api_key") or None  # the query, as the OpenAPI document declares


def check_api_key() -> None:
    keys: tuple[bytes, ...] = current_app.config["MT_API_KEYS"]
    if not keys:
        return
    key = presented_api_key()
    if key is None:
        raise ApiError("api_key_required",
                       "this server requires an API key: send it as api_key, an Authorization: Bearer header "
                       "or an X-API-Key header", headers={"WWW-Authenticate": 'Bearer realm="mt"'})
    given = key.encode("utf-8", "surrogatepass")
    matched = False
    for candidate in keys:  # compare with every key, in constant time, whatever matches first
        matched |= hmac.compare_digest(given, candidate)
    if not matched:
        raise ApiError("invalid_api_key", "the API key is not valid")


def needs_api_key(view):
    """The view answers 401/403 unless the request carries a valid key (when the server has keys)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        check_api_key()
        return view(*args, **kwargs)

    wrapper.needs_api_key = True
    return wrapper


# -- rate limit --------------------------------------------------------------------------------
def limited(view):
    """Mark a view as counted against the shared per-client budget (see :func:`install_rate_limit`)."""
    view.rate_limited = True
    return view


def install_rate_limit(app: Flask, rate_limit: str | None, storage_uri: str) -> None:
    """Wrap every :func:`limited` view in one Flask-Limiter shared limit; nothing without a limit."""
    if not rate_limit:
        return
    from flask_limiter import Limiter
    from flask_limiter.util import get_remote_address

    # A shared storage (Redis) that fails falls back to per-process counting, never a 500;
    # short timeouts so a hung Redis cannot stall requests.
    redis_options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
    limiter = Limiter(get_remote_address, app=app, storage_uri=storage_uri, headers_enabled=True,
                      default_limits=[], swallow_errors=True, in_memory_fallback_enabled=True,
                      storage_options=redis_options if storage_uri.startswith(("redis", "rediss")) else {})
    app.extensions["mt_limiter"] = limiter
    shared = limiter.shared_limit(rate_limit, scope="translate")
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "rate_limited", False):
            app.view_functions[endpoint] = shared(view)


# -- caps and headers --------------------------------------------------------------------------
def check_size(chars: int) -> None:
    limit = current_app.config["MT_MAX_CHARS"]
    if chars > limit:
        raise ApiError("text_too_long",
                       f"the text has {chars:,} characters; this server accepts at most {limit:,} per request "
                       "(--max-chars / MT_MAX_CHARS)")


def cap_body() -> None:
    """Refuse a declared body over the cap before anything reads it."""
    length = request.content_length
    limit = current_app.config["MT_MAX_BODY_BYTES"]
    if length is not None and length > limit:
        raise ApiError("body_too_large",
                       f"the request body has {length:,} bytes; this server accepts at most {limit:,} "
                       "(--max-body-bytes / MT_MAX_BODY_BYTES)")
    if is_form():  # keep the raw bytes (parsing reads them from here): check_form_encoding needs them
        request.get_data(cache=True)


def security_headers(response: Response) -> Response:
    headers = response.headers
    for name, value in SECURITY_HEADERS.items():
        headers.setdefault(name, value)
    if request.endpoint != "static":
        headers.setdefault("Cache-Control", "no-store")
    return response


def install(app: Flask) -> None:
    app.before_request(cap_body)
    app.after_request(security_headers)
