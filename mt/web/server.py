"""Serve the translation page and the HTTP API: ``mt serve`` / ``python server.py [options]``.

Every option is a field of :class:`mt.settings.Settings` (its MT_* variable, default and limits are
declared there; ``--help`` lists them). ``--workers N`` identical processes share one port
(gunicorn's arbiter, waitress's HTTP in each: :mod:`mt.web.runtime`); each loads its own copy of
the model before it takes requests, and all of them share state only through the store (the
sentence cache, downloads, rate-limit counters). A model that cannot be loaded does not stop the
server: the page says what is wrong and what to do, /readyz and the translating endpoints answer
503 with the reason.

Under another WSGI server, ``server:app`` (or ``mt.web.server:wsgi_app()``) is the app built from
the MT_* variables alone, loading the model on first use, once per process.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..settings import Settings, add_options, settings_from_options

log = logging.getLogger("mt.server")
DEFAULT_PROG = "server.py"

# the server's options, in --help's order: each is a field of mt.settings.Settings (its variable,
# default and limits are declared there once)
SERVE_FIELDS = ("model", "engine", "device", "host", "port", "workers", "threads", "cache", "no_cache", "cache_ttl",
                "max_chars", "max_body_bytes", "request_timeout", "connection_limit", "client_connection_limit",
                "channel_timeout",
                "max_streams", "trusted_proxies", "public_url", "access_log", "api_keys", "rate_limit", "rate_limit_storage",
                "batch_sentences", "batch_wait_ms", "no_batching", "batch_limit", "deepl_character_limit",
                "shutdown_timeout", "dev",
                "memory", "suggestions")


def build_parser(prog: str = DEFAULT_PROG) -> argparse.ArgumentParser:
    """The one parser of the server's options: `python server.py` and `mt serve` both use it."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Vietnamese→English translation page and HTTP API (waitress).",
        epilog="Each option also reads an environment variable, shown in brackets; the option wins.",
    )
    add_options(parser, SERVE_FIELDS)
    return parser


def parse_settings(argv: list[str] | None = None, prog: str = DEFAULT_PROG) -> Settings:
    """The server's Settings: options over MT_* variables; ConfigError naming the one that is wrong."""
    return settings_from_options(build_parser(prog).parse_args(argv), SERVE_FIELDS)


def for_a_server(settings: Settings) -> Settings:
    """A server's defaults where they differ from the CLI's: e5 at nice 0 (MT_E5_NICE unset), as
    every request waits for its quality scores (niced, e5 was the short requests' tail)."""
    return settings if settings.e5_nice is not None else settings.model_copy(update={"e5_nice": 0})


def build_app(settings: Settings, run_dir: str | None = None):
    """The Flask app for these settings; the model is loaded by the first ensure_loaded()."""
    from ..cache import open_cache
    from .app import create_app

    cache = open_cache(settings.cache, disabled=settings.no_cache, ttl=settings.cache_ttl,
                       max_entries=settings.cache_max_entries)

    def load():
        from ..engines.loader import load_engine
        from ..pipeline import preload_quality

        engine = load_engine(settings.model, engine=settings.engine, device=settings.device, config=settings)
        # e5 after the model: the model's own native threads are told apart by when they start
        # (mt.engines.threads.ThreadPriority renices them per call)
        preload_quality()
        # every page and /api/translate request shows word links, which need the transformers
        # tokenizer (CTranslate2 + Marian loads it lazily): load it now, not in the first request
        getattr(engine, "tokenizer", None)
        return engine

    return create_app(settings, load, cache, model_name=settings.model or default_model_name(), run_dir=run_dir)


def default_model_name() -> str | None:
    try:
        from ..models import load_registry

        registry = load_registry()
        return registry[0].id if registry else None
    except Exception:  # noqa: BLE001 - only a label for the page; loading reports the real error
        return None


def close_service(app) -> None:
    """Stop the request batcher, close (flush) the sentence cache: a worker's last act."""
    service = app.extensions["mt"]
    engine = service._engine
    close = getattr(engine, "close", None)
    if callable(close) and hasattr(engine, "stats"):  # the BatchingEngine: its worker ends
        close(timeout=5)
    try:
        service.cache.close()
    except Exception as error:  # noqa: BLE001 - exiting anyway; say why the cache could not close
        log.warning("closing the cache failed: %s", error)


def worker_app(settings: Settings, run_dir: str | None):
    """One worker's app, its model loaded before it takes requests (the server starts without a
    model when it cannot be loaded: the page and /readyz say why)."""
    from ..errors import ModelUnavailable

    app = build_app(settings, run_dir=run_dir)
    service = app.extensions["mt"]
    log.info("loading model %s", service.model_id or "(default)")
    try:
        engine = service.ensure_loaded()
        start = getattr(engine, "start", None)
        if callable(start):  # the batcher's thread, started here: never by a large request's niced thread
            start()
    except ModelUnavailable as error:
        log.warning("starting WITHOUT a model (the page and /readyz say why): %s", error)
    app.mt_close = lambda: close_service(app)  # the runtime calls it when the worker stops
    return app


def main(argv: list[str] | None = None, prog: str = DEFAULT_PROG) -> int:
    """Parse the options, check them, serve with --workers processes until SIGTERM/SIGINT; 2 for a
    configuration error (one line, before any worker starts)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [%(process)d] %(levelname)s %(name)s: %(message)s")
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    from ..errors import MTError
    from ..settings import use

    try:
        settings = use(for_a_server(settings_from_options(args, SERVE_FIELDS)))
        close_service(build_app(settings))  # a bad key file, cache URL or limit: said here, once
    except MTError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    if settings.dev:
        log.warning("--dev: Flask's development server, single process, NOT for production use")
        worker_app(settings, None).run(host=settings.host, port=settings.port, debug=False,  # run_dir: the app's own
                                       use_reloader=False, threaded=True)
        return 0
    from .runtime import serve

    return serve(settings, lambda run_dir: worker_app(settings, run_dir))


_app = None


def wsgi_app():
    """The app built from the MT_* environment variables alone (once per process): ``server:app``."""
    global _app
    if _app is None:
        from ..settings import load, use

        _app = build_app(use(for_a_server(load())))
    return _app
