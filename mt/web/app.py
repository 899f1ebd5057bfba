"""The Flask app factory: configuration, the translator service, security, blueprints, the spec."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask

from .. import __version__
from . import api, files, libre, ops, pages, security, stream
from .docs import inline_code
from .errors import register_error_handlers
from .heavy import install_heavy_lane
from .openapi import build_spec
from .service import TranslatorService, with_batching

DEFAULT_MAX_CHARS = 100_000
DEFAULT_BATCH_LIMIT = 10_000  # texts in one LibreTranslate q list (its --batch-limit)
HERE = Path(__file__).resolve().parent


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
    batch_limit: int = DEFAULT_BATCH_LIMIT,
) -> Flask:
    """Build the Flask app around one engine (or a loader called once) and one sentence cache.

    ``batching`` (default on): the engine is wrapped in :class:`mt.engines.request_queue.BatchingEngine`, one
    worker that batches the sentences of concurrent requests (at most ``batch_sentences`` per
    model call, waiting at most ``batch_wait_ms`` for more); /readyz reports its counts.

    ``api_keys``: when given (non-empty), every endpoint that translates (POST /, /download/*,
    /translate, /api/*) requires one; the GET page, docs and health checks stay open.
    ``rate_limit`` (e.g. ``"60/minute"``): one budget per client address shared by the same
    endpoints; 429 beyond it. ``batch_limit``: most texts in one LibreTranslate ``q`` list (400 beyond).
    """
    from ..cache import NullCache

    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    max_body_bytes = max_body_bytes or security.default_max_body_bytes(max_chars)
    keys = tuple(key.strip().encode("utf-8") for key in (api_keys or ()) if key.strip())

    app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=str(HERE / "static"))
    app.debug = False
    app.config.update(
        MAX_CONTENT_LENGTH=max_body_bytes,
        MAX_FORM_MEMORY_SIZE=max_body_bytes,
        MT_MAX_CHARS=max_chars,
        MT_MAX_BODY_BYTES=max_body_bytes,
        MT_API_KEYS=keys,
        MT_RATE_LIMIT=rate_limit,
        MT_BATCH_LIMIT=batch_limit,
        TEMPLATES_AUTO_RELOAD=False,
    )
    if batching:
        engine_or_loader = with_batching(engine_or_loader, batch_sentences, batch_wait_ms)
    app.extensions["mt"] = TranslatorService(engine_or_loader, cache if cache is not None else NullCache(),
                                             model_name=model_name)

    app.extensions["mt_align_slots"] = threading.BoundedSemaphore(api.ALIGN_SLOTS)
    app.add_template_filter(inline_code, "inline_code")
    app.context_processor(lambda: {"version": __version__})
    security.install(app)
    register_error_handlers(app)
    for blueprint in (ops.bp, api.bp, stream.bp, libre.bp, files.bp, pages.bp):
        app.register_blueprint(blueprint)
    # large bodies: to the heavy worker when the server runs one, else on niced threads
    install_heavy_lane(app, skip=("stream.translate_stream",), in_process=("api.align",))
    security.install_rate_limit(app, rate_limit, rate_limit_storage)
    app.extensions["mt_openapi"] = build_spec(app)
    return app
