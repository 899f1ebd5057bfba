"""API keys, the rate limit, body and text caps, and the security headers of every answer.

Views mark themselves with :func:`needs_api_key` (checked before the view runs) and :func:`limited`
(one shared per-client budget, applied by :func:`install_rate_limit` when the app has a limit).
A request without a valid key never spends that budget. The client is ``request.remote_addr``:
the peer, or the X-Forwarded-For address when the peer is a --trusted-proxies proxy (waitress
rewrites it; it drops forwarded headers from anyone else). Links the server hands out are built
from --public-url or the listening address (:func:`external_url`), never from the request's Host.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import sys
import threading
import urllib.parse
from functools import wraps
from pathlib import Path

from flask import Flask, Response, current_app, g, request

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
    if auth[:15].lower() == "deepl-auth-key ":  # DeepL's clients
        return auth[15:].strip() or None
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


def key_refusal() -> ApiError | None:
    """Why this request's key is refused (None: keys are off, or the key is valid); once per request."""
    if "mt_key_refusal" in g:
        return g.mt_key_refusal
    keys: tuple[bytes, ...] = current_app.config["MT_API_KEYS"]
    refusal = None
    key = presented_api_key() if keys else ""
    if key is None:
        refusal = ApiError("api_key_required",
                           "this server requires an API key: send it as api_key, an Authorization: Bearer header "
                           "or an X-API-Key header", headers={"WWW-Authenticate": 'Bearer realm="mt"'})
    elif keys:
        given = key.encode("utf-8", "surrogatepass")
        matched = False
        for candidate in keys:  # compare with every key, in constant time, whatever matches first
            matched |= hmac.compare_digest(given, candidate)
        if not matched:
            refusal = ApiError("invalid_api_key", "the API key is not valid")
    g.mt_key_refusal = refusal
    return refusal


def has_valid_key() -> bool:
    """True when keys are off or the request carries a valid one (what /readyz's details need)."""
    return key_refusal() is None


def check_api_key() -> None:
    refusal = key_refusal()
    if refusal is not None:
        raise refusal


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
    """Wrap every :func:`limited` view in one Flask-Limiter shared limit; nothing without a limit.

    A request without a valid key is exempt (it is refused 401/403 without spending the client's
    budget). A shared storage (Redis) that fails or refuses writes (full, ``noeviction``) is
    Flask-Limiter's in-memory fallback (per process) until a write succeeds again; requests go on,
    each Redis call bounded by a 0.5 s timeout, and the outage is one warning (:class:`OutageLog`).
    """
    if not rate_limit:
        return
    from flask_limiter import Limiter

    redis = storage_uri.startswith(("redis://", "rediss://", "redis+unix://"))
    if redis:
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        probing_storage_class()  # registers the mt+redis schemes
        options = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 0),
                   "health_check_interval": 0}
    limiter = Limiter(client_address, app=app, storage_uri=("mt+" + storage_uri) if redis else storage_uri,
                      headers_enabled=True, default_limits=[], swallow_errors=True, in_memory_fallback_enabled=True,
                      storage_options=options if redis else {})
    OutageLog.install(limiter.logger, storage_uri)
    app.extensions["mt_limiter"] = limiter
    shared = limiter.shared_limit(rate_limit, scope="translate", exempt_when=lambda: not has_valid_key())
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "rate_limited", False):
            app.view_functions[endpoint] = shared(view)


def client_address() -> str:
    """The client a budget (and a download quota) belongs to: the peer, or the address a trusted
    proxy forwarded (waitress has put it in REMOTE_ADDR; see the module's docstring)."""
    return request.remote_addr or "unknown"


_probing_storage = None


def probing_storage_class():
    """limits' RedisStorage under the ``mt+redis`` schemes, whose health check is a write: a full
    Redis (``noeviction``) still answers PING, which made Flask-Limiter leave its fallback, fail
    again and warn once a second."""
    global _probing_storage
    if _probing_storage is None:
        from limits.storage import RedisStorage

        class ProbingRedisStorage(RedisStorage):
            STORAGE_SCHEME = ["mt+redis", "mt+rediss", "mt+redis+unix"]

            def __init__(self, uri: str, **options):
                super().__init__(uri.removeprefix("mt+"), **options)

            def check(self) -> bool:
                try:
                    return bool(self.get_connection().set(f"{self.key_prefix}:mt-probe", b"1", ex=10))
                except Exception:  # noqa: BLE001 - any failure means: not usable yet
                    return False

        _probing_storage = ProbingRedisStorage
    return _probing_storage


class OutageLog(logging.Filter):
    """Flask-Limiter's storage failures as one warning per outage, without traceback (it logs one
    per failing request, some with ``logger.exception``); the recovery as one info line."""

    def __init__(self, storage_uri: str):
        super().__init__()
        from ..cache.redis import redacted

        self.where = redacted(storage_uri)
        self.down = False
        self.lock = threading.Lock()

    @classmethod
    def install(cls, logger: logging.Logger, storage_uri: str) -> None:
        for old in [f for f in logger.filters if isinstance(f, cls)]:
            logger.removeFilter(old)
        logger.addFilter(cls(storage_uri))

    def filter(self, record: logging.LogRecord) -> bool:
        with self.lock:
            if "recovered" in record.getMessage():
                if not self.down:
                    return False
                self.down = False
                record.msg, record.args = "rate limit storage %s works again: the shared budget is back", (self.where,)
                return True
            if record.levelno < logging.WARNING:
                return True
            if self.down:
                return False
            self.down = True
        error = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        reason = f"{type(error).__name__}: {error}" if error is not None else record.getMessage()
        record.msg = ("rate limit storage %s failed (%s); requests go on, counted per process in memory, "
                      "until it works again")
        record.args = (self.where, reason)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = record.stack_info = None
        return True


def public_model_name(model_id: str | None) -> str | None:
    """A model id as answered to anyone: a local folder's name, not its path on this machine."""
    if not model_id or "://" in model_id:
        return model_id
    path = Path(model_id).expanduser()
    if path.is_absolute() or model_id.startswith(".") or path.is_dir():
        return path.name or model_id
    return model_id


# -- links --------------------------------------------------------------------------------------
WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def external_url(path: str) -> str:
    """An absolute URL of ``path`` on this server: --public-url when set; else the scheme and Host
    a trusted proxy forwarded (waitress keeps forwarded headers only from it); else the address
    the server listens on. Never the Host header of a client: it would be echoed into links."""
    settings = current_app.extensions.get("mt_settings")
    public = getattr(settings, "public_url", None)
    if public:
        return public.rstrip("/") + path
    environ = request.environ
    if getattr(settings, "trusted_proxies", None) and ("HTTP_X_FORWARDED_HOST" in environ
                                                       or "HTTP_X_FORWARDED_FOR" in environ):
        return request.host_url.rstrip("/") + path
    host = str(getattr(settings, "host", None) or environ.get("SERVER_NAME") or "127.0.0.1")
    if host in WILDCARDS:
        host = socket.gethostname()  # this machine's own name: no lookup, nothing from the client
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    port = str(environ.get("SERVER_PORT") or getattr(settings, "port", "") or "")
    default = {"http": "80", "https": "443"}.get(request.scheme)
    return f"{request.scheme}://{host}" + (f":{port}" if port and port != default else "") + path


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
