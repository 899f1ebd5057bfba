"""The Flask app factory: configuration, the translator service, security, blueprints, the spec."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask

from .. import __version__
from . import (alternatives, api, deepl, files, glossary_api, libre, libre_extra, memory_api, ops, pages, security,
               stream)
from .docs import inline_code
from .errors import register_error_handlers
from .openapi import build_spec
from ..settings import Settings
from .service import TranslatorService, with_batching
from .wsgi import Guard
from ..cache.files import open_file_store
from ..cache.glossaries import open_glossary_store
from ..cache.usage import open_usage_store

DEFAULT_MAX_CHARS = Settings.model_fields["max_chars"].default
DEFAULT_BATCH_LIMIT = Settings.model_fields["batch_limit"].default  # texts in one LibreTranslate q list
HERE = Path(__file__).resolve().parent


def create_app(settings: Settings | None, engine_or_loader: Any, cache=None, *, model_name: str | None = None,
               run_dir: str | None = None) -> Flask:
    """Build the Flask app of ``settings`` (None: the defaults) around one engine (or a loader
    called once) and one sentence cache.

    ``settings.no_batching`` off (the default): the engine is wrapped in
    :class:`mt.engines.request_queue.BatchingEngine`, one worker that batches the sentences of
    concurrent requests (at most ``batch_sentences`` per model call, waiting at most
    ``batch_wait_ms`` for more); /readyz reports its counts.

    ``settings.api_keys`` (a file): every endpoint that translates (POST /, /download/*,
    /translate, /api/*) requires one of its keys; the GET page, docs and health checks stay open.
    ``rate_limit`` (e.g. ``"60/minute"``): one budget per client address shared by the same
    endpoints; 429 beyond it. ``batch_limit``: most texts in one LibreTranslate ``q`` list (400 beyond).
    """
    from ..cache import NullCache, limiter_storage

    settings = settings if settings is not None else Settings.model_construct()  # the defaults, no environment
    max_chars = settings.max_chars
    max_body_bytes = settings.max_body_bytes or security.default_max_body_bytes(max_chars)
    api_keys = read_api_keys(settings.api_keys) if settings.api_keys else ()
    keys = tuple(key.strip().encode("utf-8") for key in api_keys if key.strip())
    rate_limit = settings.rate_limit
    batch_limit = settings.batch_limit

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
        MT_STREAM_FIRST_BATCH=settings.stream_first_batch,
        MT_STREAM_MAX_BATCH=settings.stream_max_batch,
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.extensions["mt_settings"] = settings
    if not settings.no_batching:
        engine_or_loader = with_batching(engine_or_loader, settings.batch_sentences, settings.batch_wait_ms)
    app.extensions["mt"] = TranslatorService(engine_or_loader, cache if cache is not None else NullCache(),
                                             model_name=model_name)

    app.extensions["mt_align_slots"] = threading.BoundedSemaphore(api.ALIGN_SLOTS)
    app.add_template_filter(inline_code, "inline_code")
    app.context_processor(lambda: {"version": __version__})
    security.install(app)
    register_error_handlers(app)
    for blueprint in (ops.bp, api.bp, stream.bp, glossary_api.bp, memory_api.bp, alternatives.bp, libre.bp, deepl.bp,
                      libre_extra.bp, files.bp, pages.bp):
        app.register_blueprint(blueprint)
    security.install_rate_limit(app, rate_limit, limiter_storage(settings.rate_limit_storage, settings.cache,
                                                                 settings.no_cache))
    app.extensions["mt_openapi"] = build_spec(app)
    # downloads wait in the store every worker and replica shares (beside the cache)
    app.extensions["mt_files"] = open_file_store(app.extensions["mt"].cache, run_dir or default_run_dir())
    app.extensions["mt_glossaries"] = open_glossary_store(app.extensions["mt"].cache, run_dir or default_run_dir())
    # DeepL's API: characters this month and document jobs, beside the same store (any worker answers)
    app.extensions["mt_usage"] = open_usage_store(app.extensions["mt"].cache, run_dir or default_run_dir())
    app.wsgi_app = Guard(app.wsgi_app, max_body_bytes=max_body_bytes, request_timeout=settings.request_timeout,
                         max_streams=settings.max_streams or max(1, settings.threads // 2),
                         access_log_on=settings.access_log)
    return app


def default_run_dir() -> str:
    """Where downloads wait without a cache when no server runtime gave a folder (tests, gunicorn
    run directly): one folder per machine user, so a process's workers share it."""
    import os
    import stat
    import tempfile

    path = os.path.join(tempfile.gettempdir(), f"mt-vi-en-{os.getuid()}")
    try:  # private: only this user may read the translated files waiting there
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            return path
    except OSError:
        pass
    return tempfile.mkdtemp(prefix="mt-vi-en-")  # someone else's or unsafe folder: a fresh private one


def read_api_keys(path: str) -> list[str]:
    """One key per line; blank lines and # comments ignored."""
    from ..errors import ConfigError

    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as error:
        raise ConfigError(f"--api-keys {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--api-keys {path}: not UTF-8 text") from None
    keys = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not keys:
        raise ConfigError(f"--api-keys {path}: no keys in the file (one key per line)")
    return keys
