"""Alignments off the server's request threads: one niced worker process (a
``concurrent.futures.ProcessPoolExecutor`` of one spawned process), a time budget per alignment
(and the request's :mod:`mt.budget`), a memory cap, and a fresh process after a crash or a timeout.

An alignment at the size cap is a minute or more of CPU (embeddings, then the DP in Python). In
the server process it would hold the GIL and the shared embedding model against every request;
in a process of its own at nice 10, interactive requests keep the cores and its own copy of the
model (design notes and figures: docs/ALIGNMENT.md, "The alignment worker").
"""
from __future__ import annotations

import atexit
import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool

from ..budget import current as current_budget
from ..errors import InputError, ModelUnavailable, MTError
from ..settings import current

__all__ = ["ALIGN_TIMEOUT_SECONDS", "AlignTimeout", "AlignWorker", "AlignWorkerFailed", "WORKER_MEMORY_MB",
           "WORKER_NICE"]

log = logging.getLogger(__name__)


ALIGN_TIMEOUT_SECONDS = 180.0  # one alignment's budget in the worker (default of MT_ALIGN_TIMEOUT)
WORKER_MEMORY_MB = 4096.0  # the worker's address-space cap (default of MT_ALIGN_MEMORY_MB)
WORKER_NICE = 19


class AlignTimeout(MTError):
    """The alignment ran past its time budget (the worker was stopped; a fresh one serves the next)."""

    code = "server_busy"  # the API answers 503 with Retry-After


class AlignWorkerFailed(MTError):
    """The worker process stopped during the alignment (killed, or out of memory)."""

    code = "server_busy"


class AlignWorker:
    """One worker process, started on first use, running one alignment at a time."""

    def __init__(self, *, timeout: float | None = None, memory_mb: float | None = None, nice: int = WORKER_NICE):
        """``timeout`` / ``memory_mb``: else the settings' (MT_ALIGN_TIMEOUT / MT_ALIGN_MEMORY_MB)."""
        config = current()
        self.timeout = timeout or config.align_timeout
        self.memory_mb = memory_mb or config.align_memory_mb
        self.nice = nice
        self._lock = threading.Lock()  # one alignment at a time
        self._context = multiprocessing.get_context("spawn")  # no copy of the server's threads and locks
        self._pool: ProcessPoolExecutor | None = None
        self._taken = None  # set by the worker when it starts a job (told from a death before it)
        self._pid: int | None = None
        self.started = 0  # processes started (a restart after a crash or a timeout adds one)
        atexit.register(self.close)

    def align(self, vi: str, en: str, *, lines: bool = False) -> dict:
        """``align_document(vi, en, lines=lines).to_dict()``, computed in the worker.

        Raises InputError / ModelUnavailable as the aligner does, AlignTimeout past the budget,
        AlignWorkerFailed when the process dies, DeadlineExceeded / RequestCancelled when the
        request's budget (mt.budget) ends first: the worker is then stopped, not left running."""
        budget = current_budget()
        wait = self.timeout if budget is None else (budget.remaining() or self.timeout)
        if not self._lock.acquire(timeout=min(wait, self.timeout)):
            raise AlignTimeout(f"another alignment held the worker past this request's budget of {wait:g} s")
        try:
            kind, payload = self._run(("align", vi, en, bool(lines)), budget)
        finally:
            self._lock.release()
        if kind == "ok":
            return payload
        if kind == "input":
            raise InputError(payload)
        if kind == "model":
            raise ModelUnavailable(payload)
        if kind == "memory":
            raise AlignWorkerFailed(payload)
        raise RuntimeError(f"the alignment worker failed: {payload}")

    def _run(self, job: tuple, budget) -> tuple:
        """The job's answer; the process is replaced once when it died before taking the job."""
        for attempt in (1, 2):
            pool = self._started()
            began = time.monotonic()  # the process's start is not the alignment's time
            self._taken.clear()
            try:
                future = pool.submit(_answer, *job[1:])
                while True:  # bounded steps: the budget's client and deadline are checked between
                    step = min(0.5, max(0.0, began + self.timeout - time.monotonic()))
                    try:
                        return future.result(step)
                    except FutureTimeout:
                        pass
                    stop = budget.error() if budget is not None else None
                    if stop is not None:
                        self._stop()
                        raise stop
                    if time.monotonic() >= began + self.timeout:
                        self._stop()
                        log.warning("alignment stopped after %.1f s (budget %g s)", time.monotonic() - began,
                                    self.timeout)
                        raise AlignTimeout(f"the alignment took longer than the server's budget of {self.timeout:g} s; "
                                           "split the documents into smaller parts, or retry later")
            except BrokenProcessPool:
                taken = self._taken.is_set()
                self._stop()
                if taken or attempt == 2:
                    raise AlignWorkerFailed("the alignment worker stopped during the alignment; "
                                            "the documents may be too large for its memory cap") from None
        raise AssertionError("unreachable")

    def pid(self) -> int | None:
        return self._pid if self._pool is not None else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the process ------------------------------------------------------------------------
    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._taken = self._context.Event()
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=self._context, initializer=_initialize,
                initargs=(self.nice, int(self.memory_mb), os.getpid(), self._taken))
            try:
                self._pid = self._pool.submit(_warm).result(120.0)  # the model loads outside any budget
            except (BrokenProcessPool, FutureTimeout):
                self._stop()
                raise AlignWorkerFailed("the alignment worker did not start") from None
            self.started += 1
        return self._pool

    def _stop(self) -> None:
        """Kill the process (a running alignment cannot be interrupted otherwise) and drop the pool."""
        pool, self._pool, pid, self._pid = self._pool, None, self._pid, None
        if pool is None:
            return
        if pid is not None:  # shutdown() alone would wait for the running alignment
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        pool.shutdown(wait=True, cancel_futures=True)


# -- the worker side ---------------------------------------------------------------------------
_taken_event = None


def _initialize(nice: int, memory_mb: int, parent: int, taken) -> None:
    """In the worker: one native thread for BLAS and OpenMP (no pool of spinning threads at nice 10
    taking CPU from the server's model calls; set at run time, the environment is never written),
    nice, memory cap, and an exit when the server is gone."""
    global _taken_event
    _taken_event = taken
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # BLAS and OpenMP, whichever are loaded
    except Exception:  # noqa: BLE001 - only a thread count
        pass
    try:
        os.nice(nice)
    except OSError:  # pragma: no cover
        pass
    try:
        import resource

        cap = int(memory_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):  # pragma: no cover - not on every platform
        pass
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose server is gone (even killed with -9) exits within a second."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _warm() -> int:
    """Load the aligner and the embedding model now (a cold start is not an alignment's time)."""
    from ..quality.embeddings import runtime_name
    from . import units  # noqa: F401

    with contextlib.suppress(Exception):  # unavailable: the alignment will say so
        runtime_name()
    return os.getpid()


def _answer(vi: str, en: str, lines: bool) -> tuple[str, object]:
    from .units import align_document

    if _taken_event is not None:
        _taken_event.set()
    try:
        return "ok", align_document(vi, en, lines=lines).to_dict()
    except InputError as error:
        return "input", str(error)
    except ModelUnavailable as error:
        return "model", str(error)
    except MemoryError:
        return "memory", "the alignment needs more memory than the worker's cap; split the documents into smaller parts"
    except Exception as error:  # noqa: BLE001 - reported to the server, which logs it
        log.exception("alignment failed")
        return "error", f"{type(error).__name__}: {error}"
