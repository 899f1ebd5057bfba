"""Serve the translation page and the HTTP API with waitress (a production WSGI server).

    mt serve | python server.py [--model M] [--engine E] [--host H] [--port P] [--cache PATH|URL | --no-cache]
                     [--cache-ttl S] [--max-chars N] [--max-body-bytes N] [--threads N]
                     [--api-keys FILE] [--rate-limit "60/minute"] [--dev]
                     [--batch-sentences N] [--batch-wait-ms T] [--no-batching]
                     [--batch-limit N] [--shutdown-timeout S]

Every option has an environment variable (MT_MODEL, MT_ENGINE, MT_DEVICE, MT_HOST, MT_PORT,
MT_CACHE, MT_NO_CACHE, MT_MAX_CHARS, MT_MAX_BODY_BYTES, MT_HTTP_THREADS, MT_API_KEYS,
MT_RATE_LIMIT, MT_RATE_LIMIT_STORAGE, MT_BATCH_SENTENCES, MT_BATCH_WAIT_MS, MT_NO_BATCHING,
MT_BATCH_LIMIT, MT_SHUTDOWN_TIMEOUT);
a command-line option wins over its variable.
Defaults: http://127.0.0.1:5000, 8 threads sharing one model, 100,000 characters per request.

The threads do not call the model themselves: one worker per process batches the sentences of
concurrent requests (at most --batch-sentences per model call, waiting at most --batch-wait-ms
for more after the first arrives) and serves long articles in slices, round-robin, so a short
request is not stuck behind a long one. Cache hits never wait for it. /readyz shows its counts.

The model is loaded once, before the server starts listening. If it cannot be loaded (offline
and not in the local cache, say), the server starts anyway: the page says what is wrong and
what to do, /readyz and the translating endpoints answer 503 with the reason.

For gunicorn (or any WSGI server), ``server:app`` is an app built from the environment
variables alone (SIGTERM handling is then the WSGI server's); it loads the model on its first use (or the first /readyz), once per process:

    MT_MODEL=Helsinki-NLP/opus-mt-vi-en gunicorn -w 1 --threads 8 -b 127.0.0.1:5000 server:app

(or ``mt.web.server:wsgi_app()`` with gunicorn's factory syntax, for an installed package).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..engines.request_queue import DEFAULT_BATCH_SENTENCES, DEFAULT_BATCH_WAIT_MS
from .app import DEFAULT_BATCH_LIMIT, DEFAULT_MAX_CHARS

DEFAULT_SHUTDOWN_TIMEOUT = 30.0  # mt.web.http_server has the same default

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5000
DEFAULT_THREADS = 8

log = logging.getLogger("mt.server")
DEFAULT_PROG = "server.py"


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def env_int(parser: argparse.ArgumentParser, name: str, default: int | None) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        parser.error(f"${name} must be an integer, not {value!r}")


def env_float(parser: argparse.ArgumentParser, name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        parser.error(f"${name} must be a number, not {value!r}")


def build_parser(prog: str = DEFAULT_PROG) -> argparse.ArgumentParser:
    """The one parser of the server's options: `python server.py` and `mt serve` both use it."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Vietnamese→English translation page and HTTP API (waitress).",
        epilog="Each option also reads an environment variable, shown in brackets; the option wins.",
    )
    parser.add_argument("--model", default=os.environ.get("MT_MODEL") or None,
                        help="model id from models.txt or a local model directory [MT_MODEL] "
                        "(default: the first line of models.txt)")
    parser.add_argument("--engine", default=os.environ.get("MT_ENGINE") or None,
                        help="inference engine: auto, transformers, ctranslate2 [MT_ENGINE]")
    parser.add_argument("--device", default=os.environ.get("MT_DEVICE") or None,
                        help="device for the model, e.g. cpu or cuda [MT_DEVICE]")
    parser.add_argument("--host", default=os.environ.get("MT_HOST") or DEFAULT_HOST,
                        help=f"address to listen on [MT_HOST] (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=env_int(parser, "MT_PORT", DEFAULT_PORT),
                        help=f"port [MT_PORT] (default {DEFAULT_PORT}; 0 picks a free one)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="PATH|URL", default=os.environ.get("MT_CACHE") or None,
                       help="SQLite sentence cache file, or a Redis cache shared by replicas "
                       "(redis://[:PASSWORD@]HOST:PORT/DB, rediss://...) [MT_CACHE] "
                       "(default ~/.cache/mt-vi-en/translations.sqlite)")
    cache.add_argument("--no-cache", action="store_true", default=env_flag("MT_NO_CACHE"),
                       help="translate everything afresh, store nothing [MT_NO_CACHE=1]")
    parser.add_argument("--cache-ttl", metavar="SECONDS", type=int, default=None,
                        help="Redis cache: entries expire after this many seconds [MT_CACHE_TTL] (default: never)")
    parser.add_argument("--max-chars", type=int, default=env_int(parser, "MT_MAX_CHARS", DEFAULT_MAX_CHARS),
                        help=f"most characters per request [MT_MAX_CHARS] (default {DEFAULT_MAX_CHARS:,}); more: 413")
    parser.add_argument("--max-body-bytes", type=int, default=env_int(parser, "MT_MAX_BODY_BYTES", None),
                        help="most bytes per request body, checked before parsing [MT_MAX_BODY_BYTES] "
                        "(default: 10 × max-chars + 64 KiB); more: 413")
    parser.add_argument("--threads", type=int, default=env_int(parser, "MT_HTTP_THREADS", DEFAULT_THREADS),
                        help=f"HTTP worker threads sharing the one model [MT_HTTP_THREADS] (default {DEFAULT_THREADS})")
    parser.add_argument("--api-keys", metavar="FILE", default=os.environ.get("MT_API_KEYS") or None,
                        help="require an API key (one per line in FILE; # comments) on every endpoint that "
                        "translates [MT_API_KEYS]; off by default")
    parser.add_argument("--rate-limit", metavar="LIMIT", default=os.environ.get("MT_RATE_LIMIT") or None,
                        help='per-client limit on translating requests, e.g. "60/minute" [MT_RATE_LIMIT]; '
                        "off by default")
    parser.add_argument("--rate-limit-storage", metavar="URI",
                        default=os.environ.get("MT_RATE_LIMIT_STORAGE") or "memory://",
                        help="Flask-Limiter storage (default memory://: per process) [MT_RATE_LIMIT_STORAGE]")
    parser.add_argument("--batch-sentences", metavar="N", type=int,
                        default=env_int(parser, "MT_BATCH_SENTENCES", DEFAULT_BATCH_SENTENCES),
                        help="most sentences per model call when batching concurrent requests, and the slice "
                        f"a long article gets per turn [MT_BATCH_SENTENCES] (default {DEFAULT_BATCH_SENTENCES})")
    parser.add_argument("--batch-wait-ms", metavar="T", type=float,
                        default=env_float(parser, "MT_BATCH_WAIT_MS", DEFAULT_BATCH_WAIT_MS),
                        help="how long a batch waits for more sentences after the first arrives "
                        f"[MT_BATCH_WAIT_MS] (default {DEFAULT_BATCH_WAIT_MS:g})")
    parser.add_argument("--no-batching", action="store_true", default=env_flag("MT_NO_BATCHING"),
                        help="every request calls the model itself, one at a time (for comparison) "
                        "[MT_NO_BATCHING=1]")
    parser.add_argument("--shutdown-timeout", metavar="S", type=float,
                        default=env_float(parser, "MT_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT),
                        help="on SIGTERM/SIGINT, how long in-flight requests may take to finish before the "
                        f"server exits [MT_SHUTDOWN_TIMEOUT] (default {DEFAULT_SHUTDOWN_TIMEOUT:g})")
    parser.add_argument("--batch-limit", metavar="N", type=int,
                        default=env_int(parser, "MT_BATCH_LIMIT", DEFAULT_BATCH_LIMIT),
                        help="most texts in one LibreTranslate /translate q list [MT_BATCH_LIMIT] "
                        f"(default {DEFAULT_BATCH_LIMIT:,}); more: 400")
    parser.add_argument("--no-heavy-worker", action="store_true", default=env_flag("MT_NO_HEAVY_WORKER"),
                        help="answer large requests (bodies over 32 KiB) in this process on niced threads, "
                        "not in a niced worker process with its own copy of the model [MT_NO_HEAVY_WORKER=1]")
    parser.add_argument("--dev", action="store_true",
                        help="use Flask's development server instead of waitress (never in production)")
    return parser


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


def check_args(args: argparse.Namespace) -> None:
    from ..errors import ConfigError

    if args.max_chars < 1:
        raise ConfigError("--max-chars must be at least 1")
    if args.max_body_bytes is not None and args.max_body_bytes < 1024:
        raise ConfigError("--max-body-bytes must be at least 1024")
    if args.threads < 1:
        raise ConfigError("--threads must be at least 1")
    if args.batch_sentences < 1:
        raise ConfigError("--batch-sentences must be at least 1")
    if not 0 <= args.batch_wait_ms <= 10_000:
        raise ConfigError("--batch-wait-ms must be between 0 and 10000")
    if args.batch_limit < 1:
        raise ConfigError("--batch-limit must be at least 1")
    if not 0 <= args.shutdown_timeout <= 3600:
        raise ConfigError("--shutdown-timeout must be between 0 and 3600 seconds")
    if not 0 <= args.port <= 65535:
        raise ConfigError("--port must be between 0 and 65535")
    if args.rate_limit:
        from limits import parse_many

        try:
            parse_many(args.rate_limit)
        except ValueError:
            raise ConfigError(f'--rate-limit {args.rate_limit!r}: use a limit such as "60/minute" or "5 per second"') from None


def build_app(args: argparse.Namespace):
    """The Flask app for these options; the model is loaded by the first ensure_loaded()."""
    from ..cache import limiter_storage, open_cache
    from .app import create_app

    check_args(args)
    keys = read_api_keys(args.api_keys) if args.api_keys else None
    cache = open_cache(args.cache, disabled=args.no_cache, ttl=getattr(args, "cache_ttl", None))

    def load():
        from ..engines.loader import load_engine
        from ..pipeline import preload_quality

        preload_quality()  # the e5 model and reference vectors of the quality scores, meanwhile
        engine = load_engine(args.model, engine=args.engine, device=args.device)
        # every page and /api/translate request shows word links, which need the transformers
        # tokenizer (CTranslate2 + Marian loads it lazily): load it now, not in the first request
        getattr(engine, "tokenizer", None)
        return engine

    return create_app(
        load, cache,
        max_chars=args.max_chars,
        max_body_bytes=args.max_body_bytes,
        api_keys=keys,
        rate_limit=args.rate_limit,
        rate_limit_storage=limiter_storage(args.rate_limit_storage, args.cache, args.no_cache),
        model_name=args.model or default_model_name(),
        batching=not args.no_batching,
        batch_sentences=args.batch_sentences,
        batch_wait_ms=args.batch_wait_ms,
        batch_limit=args.batch_limit,
    )


def default_model_name() -> str | None:
    try:
        from ..models import load_registry

        registry = load_registry()
        return registry[0].id if registry else None
    except Exception:  # noqa: BLE001 - only a label for the page; loading reports the real error
        return None


def serve(app, args: argparse.Namespace) -> None:
    """Serve until SIGTERM/SIGINT; then finish in-flight requests (--shutdown-timeout), close the cache."""
    if args.dev:
        log.warning("--dev: Flask's development server, single process, NOT for production use")
        app.run(host=args.host, port=args.port, debug=False, use_reloader=False, threaded=True)
        return
    from .http_server import make_server, serve_until_signalled

    server = make_server(app, host=args.host, port=args.port, threads=args.threads)
    start_heavy_worker(app, args)
    listening = getattr(server, "effective_listen", None) or [(server.effective_host, server.effective_port)]
    for host, port in listening:
        host = f"[{host}]" if ":" in str(host) else host
        print(f"mt-vi-en: serving on http://{host}:{port}/", flush=True)
    outcome = serve_until_signalled(server, args.shutdown_timeout)
    close_service(app)
    log.info("stopped after %s: %d request(s) were in flight, %d abandoned, %.2fs; cache closed",
             outcome["signal"], outcome["in_flight"], outcome["abandoned"], outcome["seconds"])


def start_heavy_worker(app, args: argparse.Namespace) -> None:
    """Large requests to a niced worker process (mt.web.heavy_process), unless --no-heavy-worker or
    the model did not load (its answers would be the 503 the server gives anyway)."""
    if args.no_heavy_worker or not app.extensions["mt"].ready:
        return
    from .heavy_process import HeavyWorker

    app.extensions["mt_heavy_worker"] = HeavyWorker(args)  # started by the first large request


def close_service(app) -> None:
    """Stop the heavy worker and the request batcher, close (flush) the sentence cache."""
    worker = app.extensions.pop("mt_heavy_worker", None)
    if worker is not None:
        worker.close()
    service = app.extensions["mt"]
    engine = service._engine
    close = getattr(engine, "close", None)
    if callable(close) and hasattr(engine, "stats"):  # the BatchingEngine: its worker ends
        close(timeout=5)
    try:
        service.cache.close()
    except Exception as error:  # noqa: BLE001 - exiting anyway; say why the cache could not close
        log.warning("closing the cache failed: %s", error)


def main(argv: list[str] | None = None, prog: str = DEFAULT_PROG) -> int:
    """Parse the options, load the model, serve until interrupted; 2 for a configuration error."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser(prog).parse_args(argv)
    from ..errors import MTError, ModelUnavailable

    try:
        app = build_app(args)
    except MTError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    service = app.extensions["mt"]
    log.info("loading model %s", service.model_id or "(default)")
    try:
        service.ensure_loaded()
    except ModelUnavailable as error:
        log.warning("starting WITHOUT a model (the page and /readyz say why): %s", error)
    serve(app, args)
    return 0


_app = None


def wsgi_app():
    """The app built from the MT_* environment variables alone (once per process): ``server:app``."""
    global _app
    if _app is None:
        _app = build_app(build_parser().parse_args([]))
    return _app
