"""The heavy lane: requests with large bodies go to the heavy worker process, or run on niced
threads, so short ones go first.

Why: the model queue shares the translation model fairly, but the Python work of a request (segmenting
100,000 characters, the word links and JSON of 150 segments, an 8,000-item list) ran on a request
thread as eager for the cores as a two-sentence request's. A translating request whose body is over
``HEAVY_BYTES`` now runs its view on a thread of a small pool niced by ``MT_HEAVY_NICE`` (default 10;
Linux nice values are per thread): the cores go to short requests first and to large ones whenever
they are idle, so large requests still finish, as fast as before on an idle server. The request
thread waits for the answer; errors reach Flask's handlers as if the view had run there. When the
server runs a heavy worker (:mod:`mt.web.heavy_process`, started by ``serve``), large requests are
answered there instead, and the lane serves them only while it starts or restarts.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import wraps

from flask import Flask, Response, copy_current_request_context, current_app, request

from ..engines.threads import lower_priority, nice_setting
from .errors import ApiError
from .heavy_process import HOP_BY_HOP, WorkerGone

__all__ = ["HEAVY_BYTES", "install_heavy_lane", "lane_thread_ids"]

HEAVY_BYTES = 32 * 1024  # a long article is ~15-30 KB of UTF-8
LANE_THREADS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_thread_ids: list[int] = []  # native ids of the lane's threads (their nice value is readable in /proc)


def lane_thread_ids() -> list[int]:
    return list(_thread_ids)


def _nice_this_thread() -> None:
    _thread_ids.append(threading.get_native_id())
    lower_priority(nice_setting("MT_HEAVY_NICE"))


def _lane() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(LANE_THREADS, thread_name_prefix="mt-heavy", initializer=_nice_this_thread)
        return _pool


def _load_here() -> None:
    """Load the model (and start the batcher) on this request thread, not on a lane thread: a
    thread inherits its creator's nice value, so the model's workers would stay niced for good."""
    service = current_app.extensions.get("mt")
    if service is None:
        return
    try:
        engine = service.ensure_loaded()
    except Exception:  # noqa: BLE001 - the view answers with the reason (503 model_unavailable)
        return
    start = getattr(engine, "start", None)
    if callable(start):
        start()


def _in_worker() -> Response | None:
    """The heavy worker's answer (mt.web.heavy_process), or None when the server has none ready."""
    worker = current_app.extensions.get("mt_heavy_worker")
    if worker is None:
        return None
    try:
        answer = worker.answer(request.environ, request.get_data(cache=True))
    except WorkerGone as error:
        raise ApiError("server_busy", str(error), headers={"Retry-After": "5"}) from None
    if answer is None:
        return None
    status, headers, body = answer
    return Response(body, status=status, headers=[(name, value) for name, value in headers
                                                  if name.lower() not in HOP_BY_HOP])


def heavy_aware(view, *, forward: bool = True):
    """``view`` in the heavy worker (when ``forward``), or else on the heavy lane, when the request's
    body is over HEAVY_BYTES; here otherwise (and always inside the worker)."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        if (request.content_length or 0) <= HEAVY_BYTES or current_app.config.get("MT_HEAVY_WORKER"):
            return view(*args, **kwargs)
        answer = _in_worker() if forward else None
        if answer is not None:
            return answer
        _load_here()
        return _lane().submit(copy_current_request_context(view), *args, **kwargs).result()

    return wrapper


def install_heavy_lane(app: Flask, skip: tuple[str, ...] = (), in_process: tuple[str, ...] = ()) -> None:
    """Every rate-limited (translating) view, except the ``skip`` endpoints (a streamed answer is
    produced while it is sent, on the request thread), gets :func:`heavy_aware`; the ``in_process``
    ones are never forwarded to the heavy worker (an alignment already runs in a worker of its own)."""
    for endpoint, view in list(app.view_functions.items()):
        if getattr(view, "rate_limited", False) and not getattr(view, "streamed", False) and endpoint not in skip:
            app.view_functions[endpoint] = heavy_aware(view, forward=endpoint not in in_process)
