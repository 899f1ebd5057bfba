"""What every request goes through before and after Flask: one WSGI middleware.

* **A JSON 413 every client can read.** waitress has buffered the body (up to
  :func:`mt.web.runtime.drain_limit`) before the app runs; a Content-Length over the app's cap is
  answered here without parsing, in the app's error shape (LibreTranslate's on its routes).
* **A budget per request.** A deadline (``request_timeout``) and waitress's "client gone" probe
  become the :class:`mt.budget.Budget` the model queues read: queued work of a request whose
  client hung up, or whose time is up, is dropped (a stream's too: its iteration runs in the same
  budget).
* **A bound on concurrent streams** per worker: beyond it, 503 ``server_busy`` with Retry-After,
  so long streams cannot take every thread.
* **An access log**: one line per request (client, method, path, status, bytes, seconds).
* **Large requests at a lower CPU priority.** A body over 32 KiB runs its Python work (segmenting,
  links, JSON of up to 100,000 characters) on its thread at nice 10, restored afterwards: beside
  it, short requests keep the cores (the model queue already serves them first).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus

from ..budget import Budget, budget_scope
from ..engines.threads import can_raise_priority
from .errors import ERROR_CODES, error_payload
from .security import SECURITY_HEADERS

access_log = logging.getLogger("mt.access")

STREAM_PATHS = ("/api/translate/stream",)
LARGE_BODY = 32 * 1024  # bytes: a request this large runs at LARGE_NICE
LARGE_NICE = 19


@contextlib.contextmanager
def niced(large: bool) -> Iterator[None]:
    """This thread at LARGE_NICE for a large request, back to its own priority after (where the
    system lets a thread raise its priority again: as root, or within RLIMIT_NICE)."""
    if not large or not can_raise_priority():  # lowered for good otherwise: leave the thread alone
        yield
        return
    thread = threading.get_native_id()
    try:
        before = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, max(before, LARGE_NICE))
    except OSError:
        before = None
    try:
        yield
    finally:
        if before is not None:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, thread, before)


def error_answer(path: str, code: str, message: str, extra: dict[str, str] | None = None):
    """(status line, headers, body) of an error in the app's shape, for answers given before Flask."""
    status = ERROR_CODES[code][0]
    extra = dict(extra or {})
    body = json.dumps(error_payload(path, code, message, extra)).encode("utf-8")
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
               ("Cache-Control", "no-store"), *SECURITY_HEADERS.items(), *extra.items()]
    return f"{status} {HTTPStatus(status).phrase}", headers, body


class Guard:
    """The middleware (see the module docstring); ``app`` is the Flask app's wsgi_app."""

    def __init__(self, app: Callable, *, max_body_bytes: int, request_timeout: float | None,
                 max_streams: int, access_log_on: bool = True):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.max_streams = max_streams
        self.access_log_on = access_log_on
        self._streams = threading.BoundedSemaphore(max_streams) if max_streams and max_streams > 0 else None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.monotonic()
        path = environ.get("PATH_INFO", "")
        sent: dict = {"status": "-", "bytes": 0}

        def recording_start_response(status, headers, exc_info=None):
            sent["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        early = self.refusal(environ, path)
        if early is not None:
            status, headers, body = early
            recording_start_response(status, headers)
            sent["bytes"] = len(body)
            self.log(environ, sent, started)
            return [body]
        budget = Budget.after(self.request_timeout, environ.get("waitress.client_disconnected"))
        slot = self._streams if path in STREAM_PATHS else None
        if slot is not None and not slot.acquire(blocking=False):
            status, headers, body = error_answer(
                path, "server_busy", f"{self.max_streams} streamed translations are running in this worker; "
                                     "retry shortly", {"Retry-After": "5"})
            recording_start_response(status, headers)
            sent["bytes"] = len(body)
            self.log(environ, sent, started)
            return [body]
        large = self.body_length(environ) > LARGE_BODY
        try:
            with budget_scope(budget), niced(large):
                result = self.app(environ, recording_start_response)
            return Scoped(result, budget, lambda: self.finish(environ, sent, started, slot), sent, large)
        except BaseException:
            if slot is not None:
                slot.release()
            self.log(environ, {**sent, "status": "500"}, started)
            raise

    @staticmethod
    def body_length(environ: dict) -> int:
        try:
            return int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 0

    def refusal(self, environ: dict, path: str):
        """The JSON 413 for a body over the cap (its length is known: waitress has read it)."""
        if self.body_length(environ) > self.max_body_bytes:
            # no Connection header: waitress refuses hop-by-hop headers from an app (a 500); the body
            # is already read, so the connection may be kept
            return error_answer(path, "body_too_large", f"the request body is over {self.max_body_bytes:,} bytes "
                                                        "(--max-body-bytes / MT_MAX_BODY_BYTES)")
        return None

    def finish(self, environ: dict, sent: dict, started: float, slot) -> None:
        if slot is not None:
            slot.release()
        self.log(environ, sent, started)

    def log(self, environ: dict, sent: dict, started: float) -> None:
        if not self.access_log_on:
            return
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING")
        access_log.info('%s "%s %s%s" %s %d %.3fs', environ.get("REMOTE_ADDR", "-"), environ.get("REQUEST_METHOD"),
                        path.encode("unicode_escape").decode("ascii"), "?…" if query else "", sent["status"],
                        sent["bytes"], time.monotonic() - started)


class Scoped:
    """The app's response body, iterated inside the request's budget; counts bytes, then logs."""

    def __init__(self, result: Iterable[bytes], budget: Budget, done: Callable[[], None], sent: dict,
                 large: bool = False):
        self.result, self.budget, self.done, self.sent, self.large = result, budget, done, sent, large
        self.iterator = iter(result)
        self.finished = False

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        with budget_scope(self.budget), niced(self.large):
            chunk = next(self.iterator)
        self.sent["bytes"] += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self.result, "close", None)
            if callable(close):
                with budget_scope(self.budget):
                    close()
        finally:
            if not self.finished:
                self.finished = True
                self.done()
