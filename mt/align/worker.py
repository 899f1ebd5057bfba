"""Alignments off the server's request threads: one niced worker process, a time budget per
alignment, a memory cap, and a fresh process after a crash or a timeout.

An alignment at the size cap is a minute or more of CPU (embeddings, then the DP in Python). In
the server process it would hold the GIL and the shared embedding model against every request;
in a process of its own at nice 10, interactive requests keep the cores and its own copy of the
model (design notes and figures: docs/DESIGN.md, "Alignment worker").
"""
from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

from ..errors import InputError, ModelUnavailable, MTError
from ..settings import child_environment, current

__all__ = ["ALIGN_TIMEOUT_SECONDS", "AlignTimeout", "AlignWorker", "AlignWorkerFailed", "WORKER_MEMORY_MB",
           "WORKER_NICE"]

log = logging.getLogger(__name__)


ALIGN_TIMEOUT_SECONDS = 180.0  # one alignment's budget in the worker (default of MT_ALIGN_TIMEOUT)
WORKER_MEMORY_MB = 4096.0  # the worker's address-space cap (default of MT_ALIGN_MEMORY_MB)
WORKER_NICE = 10
# the worker's native threads: BLAS on one thread, OpenMP threads that sleep instead of spinning
# (spinning threads at nice 10 would still take CPU from the server's own model calls)
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


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
        self._process: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self.started = 0  # processes started (a restart after a crash or a timeout adds one)
        atexit.register(self.close)

    def align(self, vi: str, en: str, *, lines: bool = False) -> dict:
        """``align_document(vi, en, lines=lines).to_dict()``, computed in the worker.

        Raises InputError / ModelUnavailable as the aligner does, AlignTimeout past the budget,
        AlignWorkerFailed when the process dies."""
        with self._lock:
            began = time.monotonic()
            conn = self._started(("align", vi, en, bool(lines)))
            try:
                ready = conn.poll(self.timeout)
                answer = conn.recv() if ready else None
            except (EOFError, OSError):
                code = self._stop()
                raise AlignWorkerFailed(f"the alignment worker stopped during the alignment (exit status {code}); "
                                        "the documents may be too large for its memory cap") from None
            if answer is None:
                self._stop()
                log.warning("alignment stopped after %.1f s (budget %g s)", time.monotonic() - began, self.timeout)
                raise AlignTimeout(f"the alignment took longer than the server's budget of {self.timeout:g} s; "
                                   "split the documents into smaller parts, or retry later")
        kind, payload = answer
        if kind == "ok":
            return payload
        if kind == "input":
            raise InputError(payload)
        if kind == "model":
            raise ModelUnavailable(payload)
        if kind == "memory":
            raise AlignWorkerFailed(payload)
        raise RuntimeError(f"the alignment worker failed: {payload}")

    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the process ------------------------------------------------------------------------
    def _started(self, job: tuple) -> Connection:
        """Send ``job`` and wait for the worker to take it; a worker that died while idle (its
        death not yet seen, or seen only now) is replaced once."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                conn.send(job)
                if conn.poll(60.0) and conn.recv() == ("taken",):
                    return conn
            except (EOFError, OSError):
                pass
            code = self._stop()
            if attempt == 2:
                raise AlignWorkerFailed(f"the alignment worker did not start (exit status {code})")
        raise AssertionError("unreachable")

    def _connection(self) -> Connection:
        if self._process is not None and self._process.poll() is not None:
            self._stop()  # died while idle
        if self._process is None:
            ours, theirs = socket.socketpair()
            env = child_environment(**WORKER_ENV)
            root = str(Path(__file__).resolve().parents[2])  # so that `-m mt.align.worker` finds this copy
            env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), root) if p)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mt.align.worker", str(theirs.fileno()), str(os.getpid()),
                 str(self.nice), str(int(self.memory_mb))],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            theirs.close()
            self._conn = Connection(ours.detach())
            self.started += 1
        return self._conn

    def _stop(self) -> int | None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            return None


# -- the worker side ---------------------------------------------------------------------------
def _lower_priority(nice: int, memory_mb: int) -> None:
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


def _exit_with_parent(parent: int) -> None:
    """A worker whose server is gone (even killed with -9) exits within a second."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _answer(vi: str, en: str, lines: bool) -> tuple[str, object]:
    from .units import align_document

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


def serve(fd: int, parent: int, nice: int, memory_mb: int) -> None:
    _lower_priority(nice, memory_mb)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    conn = Connection(fd)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job[0] == "align":
            try:
                conn.send(("taken",))
            except OSError:
                return
            answer = _answer(*job[1:])
        else:
            answer = ("error", f"unknown job {job[0]!r}")
        try:
            conn.send(answer)
        except OSError:
            return


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s align-worker: %(message)s")
    serve(*(int(arg) for arg in sys.argv[1:5]))
