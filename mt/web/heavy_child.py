"""The heavy worker's side (see mt.web.heavy_process): the app built from the server's options,
answering the large requests the server forwards, each on a thread of a small pool."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection, Listener

log = logging.getLogger(__name__)

WORKER_THREADS = 4  # large requests answered at once (as many as the in-process lane)


def _call_app(app, environ: dict, body: bytes) -> tuple[str, list, bytes]:
    """Run the WSGI app on one forwarded request; its status, headers and whole body."""
    environ = dict(environ, **{
        "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.input_terminated": True, "CONTENT_LENGTH": str(len(body)),
    })
    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, list(headers)

    chunks = app(environ, start_response)
    try:
        data = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if callable(close):
            close()
    return started["status"], started["headers"], data


def _serve_one(app, conn: Connection) -> None:
    with conn:
        try:
            environ, body = conn.recv()
        except (OSError, EOFError):
            return
        answer = _call_app(app, environ, body)
        try:
            conn.send(answer)
        except OSError:  # the server gave up on it (shutting down)
            pass


def _stop_with_server(control: Connection) -> None:
    """The worker ends when the server closes the control socket, or dies (even by kill -9)."""
    try:
        control.recv()
    except (OSError, EOFError):
        pass
    os._exit(0)


def serve(fd: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server decides
    control = Connection(fd)
    args, nice, key = control.recv()
    try:
        os.nice(max(0, nice - os.nice(0)))  # the whole process, before any thread exists
    except OSError:  # pragma: no cover - not permitted: it runs at the server's priority
        pass
    from ..errors import ModelUnavailable
    from .server import build_app

    args.rate_limit = None  # the server counted the request already
    try:
        app = build_app(args)
        app.config["MT_HEAVY_WORKER"] = True  # views run here directly (see mt.web.heavy)
        try:
            engine = app.extensions["mt"].ensure_loaded()
            start = getattr(engine, "start", None)
            if callable(start):
                start()
        except ModelUnavailable:
            pass  # its answers say so, as the server's do
    except Exception as error:  # noqa: BLE001 - reported to the server, which logs it
        control.send(("failed", f"{type(error).__name__}: {error}"))
        return
    listener = Listener(family="AF_UNIX", authkey=key)
    threading.Thread(target=_stop_with_server, args=(control,), daemon=True).start()
    control.send(("ready", listener.address))
    pool = ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="mt-heavy")
    while True:
        try:
            conn = listener.accept()
        except Exception as error:  # noqa: BLE001 - a failed handshake (AuthenticationError): not the server
            log.warning("refused a connection: %s", error)
            continue
        pool.submit(_serve_one, app, conn)


def main(argv: list[str]) -> None:
    """The worker's entry point (``python -c``: ``-m`` would import this module twice)."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s heavy-worker: %(message)s")
    serve(int(argv[0]))
