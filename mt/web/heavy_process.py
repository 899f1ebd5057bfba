"""The heavy worker: large requests answered by a copy of the app in a niced process of its own.

Why: niced lane threads (:mod:`mt.web.heavy`) yield the cores to short requests but not the GIL,
so the Python work of a 100,000-character request still delayed every short one that needed the
interpreter meanwhile. In a process of its own, at ``MT_HEAVY_NICE``, that work competes only for
the cores, where the kernel gives short requests nearly all of them. The server forwards a large
request's WSGI environ and body over a Unix socket (``multiprocessing.connection``, authenticated
with a per-worker key) and sends the worker's answer as its own. The worker builds its app from
the server's own options (rate limits off: the server has counted the request), loads its own
copy of the model and shares the sentence cache. The first large request starts it (no second copy
of the model in memory on a server that never gets one); until it is ready, and while it restarts after a
crash, large requests run on the in-process lane as before; one caught in a crash answers 503
``server_busy``. Design notes and figures: docs/DESIGN.md ("Heavy worker").
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from ..engines.threads import nice_setting

__all__ = ["HeavyWorker", "WorkerGone", "HOP_BY_HOP"]

log = logging.getLogger(__name__)

# what of the server's WSGI environ the worker's app needs to see the same request
FORWARDED_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
                  "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme")
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
                        "upgrade", "proxy-authenticate", "proxy-authorization"})
READY_TIMEOUT = 600.0  # loading a model on two busy cores can take minutes
RESTART_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class WorkerGone(RuntimeError):
    """The worker process stopped while answering a request."""


def forwarded_environ(environ: dict) -> dict:
    """The picklable part of a WSGI environ that says what the request is."""
    kept = {key: environ[key] for key in FORWARDED_KEYS if isinstance(environ.get(key), str)}
    kept.update((key, value) for key, value in environ.items() if key.startswith("HTTP_") and isinstance(value, str))
    return kept


class HeavyWorker:
    """The server's side: starts the worker, restarts it when it stops, forwards requests to it."""

    def __init__(self, args: Any, *, nice: int | None = None) -> None:
        self.args = args  # the server's parsed options (an argparse Namespace: picklable)
        self.nice = nice_setting("MT_HEAVY_NICE") if nice is None else nice
        self._lock = threading.Lock()
        self._ready: tuple[str, bytes] | None = None  # (socket address, key) once the worker answers
        self._process: subprocess.Popen | None = None
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None
        self._counts = {"served": 0, "in_process": 0, "failed": 0, "starts": 0}

    # -- control -----------------------------------------------------------------------------
    def start(self) -> "HeavyWorker":
        """Start the worker in the background; large requests stay in-process until it is ready."""
        with self._lock:
            if self._monitor is None and not self._closed.is_set():
                self._monitor = threading.Thread(target=self._keep_running, name="mt-heavy-worker", daemon=True)
                self._monitor.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._ready is None and time.monotonic() < deadline and not self._closed.is_set():
            time.sleep(0.05)
        return self._ready is not None

    def close(self) -> None:
        """Stop the worker (after the server has finished its in-flight requests)."""
        self._closed.set()
        with self._lock:
            self._ready = None
            process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
                pass

    def stats(self) -> dict:
        """For /readyz: whether it is ready, its pid, large requests it answered, answered in-process
        (worker not ready) and lost to a crash, processes started."""
        with self._lock:
            process = self._process
            alive = process is not None and process.poll() is None
            return {"ready": self._ready is not None, "pid": process.pid if alive else None, "nice": self.nice,
                    **self._counts}

    def pid(self) -> int | None:
        return self.stats()["pid"]

    # -- forwarding --------------------------------------------------------------------------
    def answer(self, environ: dict, body: bytes) -> tuple[str, list, bytes] | None:
        """The worker's (status, headers, body) for this request; None when no worker is ready
        (the caller answers in-process). Raises WorkerGone when it stopped while answering."""
        ready = self._ready
        conn = None
        if ready is None and self._monitor is None:
            self.start()  # the first large request starts it: no second model in memory before one comes
        elif ready is not None:
            try:
                conn = Client(ready[0], family="AF_UNIX", authkey=ready[1])
                conn.send((forwarded_environ(environ), body))
            except (OSError, EOFError, ValueError):  # not taken: it is gone, restarting
                if conn is not None:
                    conn.close()
                conn = None
        if conn is None:
            self._count("in_process")
            return None
        try:
            with conn:
                status, headers, data = conn.recv()
        except (OSError, EOFError) as error:
            self._count("failed")
            raise WorkerGone(f"the worker for large requests stopped while answering this one ({error or 'closed'}); "
                             "it is restarting: retry") from None
        self._count("served")
        return status, headers, data

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    # -- the process -------------------------------------------------------------------------
    def _keep_running(self) -> None:
        restarts = 0
        while not self._closed.is_set():
            began = time.monotonic()
            code = self._run_once()
            if self._closed.is_set():
                return
            restarts = 0 if time.monotonic() - began > 300 else restarts + 1
            delay = RESTART_DELAYS[min(restarts, len(RESTART_DELAYS) - 1)]
            log.warning("the heavy worker stopped (exit status %s); large requests run in-process; restarting "
                        "in %g s", code, delay)
            self._closed.wait(delay)

    def _run_once(self) -> int | None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # so that the worker imports this copy of mt
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", "import sys; from mt.web.heavy_child import main; main(sys.argv[1:])",
                 str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        except OSError as error:
            log.warning("the heavy worker could not start: %s", error)
            return None
        finally:
            theirs.close()
        control = Connection(ours.detach())
        with self._lock:
            self._process = process
            self._counts["starts"] += 1
        if self._closed.is_set():
            process.kill()
        key = secrets.token_bytes(32)
        try:
            control.send((self.args, self.nice, key))
            if control.poll(READY_TIMEOUT):
                message = control.recv()
                if message[0] == "ready":
                    with self._lock:
                        self._ready = (message[1], key)
                    log.info("heavy worker ready (pid %d, nice %d): bodies over 32 KiB are answered there",
                             process.pid, self.nice)
                else:
                    log.warning("the heavy worker failed to start: %s", message[1])
            else:
                log.warning("the heavy worker was not ready after %g s", READY_TIMEOUT)
                process.kill()
        except (OSError, EOFError):
            pass
        code = process.wait()  # the control socket stays open while it runs: closing it stops the worker
        with self._lock:
            self._ready = None
        control.close()
        return code
