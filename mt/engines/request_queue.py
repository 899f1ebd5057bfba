"""One scheduler for model work: a fair queue with one worker thread (:class:`FairQueue`, also
e5's in mt.quality.embeddings) and the translation batcher built on it (:class:`BatchingEngine`).

Concurrent callers' items share model calls; the shortest work goes first (a one-sentence
request before a long article's slices), the job waiting longest always gets half a call
(nothing starves), equals take turns; identical items are computed once; a call that raises is
retried in halves so only the failing item's request gets the error. Every job carries the
caller's :mod:`mt.budget`: work whose deadline passed or whose client left is dropped before the
model sees it, and every wait is bounded (a dead worker fails its waiters). The worker starts
lazily; a forked child notices the new pid and starts afresh. Design: docs/ENGINES.md.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any, Callable, Sequence

from ..budget import Budget, current
from ..errors import DeadlineExceeded, RequestCancelled
from .attention import engine_attention
from .base import check_sentences
from .nbest import BatchedAlternatives, NBest
from .threads import ThreadPriority

log = logging.getLogger(__name__)

DEFAULT_BATCH_SENTENCES = 32
AGING = 0.5  # seconds a long job waits behind short ones before it gets half a call
DEFAULT_BATCH_WAIT_MS = 10.0
POLL_SECONDS = 0.5  # how often a waiter without a nearer deadline checks its client and the worker

# The "settings" of attention jobs (teacher-forced word-link passes): never equal to a
# DecodingSettings, so attention and translation never share a model call.
ATTENTION = ("attention",)


class BatcherClosed(RuntimeError):
    """The queue was closed: no more work through it."""


class WorkerStopped(BatcherClosed):
    """The queue's worker thread stopped (KeyboardInterrupt, SystemExit) with this work unfinished."""


class _Job:
    """One caller's items, put into model calls slice by slice by the worker."""

    __slots__ = ("items", "key", "costs", "cost_left", "budget", "results", "cursor", "done",
                 "arrived", "waiting_since", "future", "finished", "short")

    def __init__(self, items: list, key: Any, costs: list[int], budget: Budget | None, max_cost: int) -> None:
        self.items, self.key, self.costs, self.budget = items, key, costs, budget
        self.cost_left = sum(costs)  # of items[cursor:]
        self.results: list = [None] * len(items)
        self.cursor = 0  # items[:cursor] have been put into a call
        self.done = 0
        self.arrived = self.waiting_since = time.monotonic()  # then: the end of its latest call
        self.future: Future = Future()
        self.finished, self.short = False, self.cost_left <= max_cost  # short: all its work fits one call


class FairQueue:
    """``call(key, items) -> outputs`` (one per item) run on one worker thread for the items of
    every caller of :meth:`submit`; items of one call share a ``key`` (decoding settings).

    ``max_cost``: most cost per call (``cost(item)``, 1 by default: sentences; e5 counts
    characters); an item costlier than that goes alone. ``max_wait``: seconds a call waits for
    more items after its oldest job arrived. ``label(key)`` prefixes the counters of that key."""

    def __init__(self, call: Callable[[Any, list], Sequence], *, max_cost: int, max_wait: float = 0.0,
                 cost: Callable[[Any], int] | None = None, label: Callable[[Any], str] | None = None,
                 name: str = "mt-queue", on_short_waiting: Callable[[], None] | None = None) -> None:
        self._call, self.max_cost, self.max_wait, self.name = call, max_cost, max_wait, name
        self._on_short_waiting = on_short_waiting
        self._cost, self._label = cost or (lambda item: 1), label or (lambda key: "")
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        """Fresh queue, lock and (not yet started) worker: at construction and in a forked child
        (whose copy of the lock may be held by a thread that does not exist there)."""
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._jobs: list[_Job] = []  # jobs with items not yet put into a call
        self.serving_short = True  # whether the call being made serves a short (interactive) job
        self._pending = 0  # their cost
        self._worker: threading.Thread | None = None
        self._stats: dict[str, float] = dict.fromkeys(("requests", "items", "batches", "model_items", "deduplicated",
            "max_batch", "errors", "failed_batches", "retried_batches", "expired", "cancelled", "worker_stops"), 0)
        self._stats["busy_seconds"] = 0.0

    def _here(self) -> None:
        if self._pid != os.getpid():  # a forked child
            self._reset()

    def _count(self, name: str, amount: float = 1, key: Any = None) -> None:
        name = self._label(key) + name
        self._stats[name] = self._stats.get(name, 0) + amount

    # -- callers ---------------------------------------------------------------------------
    def submit(self, items: Sequence, key: Any = None) -> list:
        """The outputs for ``items`` (order kept), computed in shared calls. Raises what the call
        raised for one of them, DeadlineExceeded / RequestCancelled (the current budget),
        BatcherClosed / WorkerStopped."""
        items = list(items)
        if not items:
            return []
        self._here()
        budget = current()
        if budget is not None:
            budget.check()
        job = _Job(items, key, [max(0, int(self._cost(item))) for item in items], budget, self.max_cost)
        with self._cond:
            if self._closed:
                raise BatcherClosed("the queue is closed")
            self._count("requests", 1, key)
            self._count("items", len(items), key)
            self._jobs.append(job)
            self._pending += job.cost_left
            if not self.serving_short and job.short and self._on_short_waiting:
                self.serving_short = True  # priority inheritance: the running (niced) call ends sooner
                self._on_short_waiting()
            self._start_worker()
            self._cond.notify_all()
        return self._wait(job)

    def _wait(self, job: _Job) -> list:
        """Bounded waits (deadline, client, worker checked every POLL_SECONDS); a job given up on leaves."""
        while True:
            timeout = POLL_SECONDS
            if job.budget is not None and job.budget.deadline is not None:
                timeout = min(timeout, job.budget.remaining())
            try:
                return job.future.result(timeout)
            except FutureTimeout:
                pass
            error = job.budget.error() if job.budget is not None else None
            with self._cond:
                if error is None and not (self._worker and self._worker.is_alive()):
                    error = WorkerStopped(f"the {self.name} worker stopped before this request was done")
                if error is not None:
                    self._finish(job, error=error)
            if error is not None:
                return job.future.result(0)  # the error, or the result if it came just before

    def _finish(self, job: _Job, result: list | None = None, error: BaseException | None = None) -> bool:
        """Hand ``job`` its result or error once, and take it out of the queue (lock held)."""
        if job.finished:
            return False
        job.finished = True
        if job in self._jobs:
            self._jobs.remove(job)
            self._pending -= job.cost_left
        if isinstance(error, DeadlineExceeded):
            self._count("expired")
        elif isinstance(error, RequestCancelled):
            self._count("cancelled")
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)
        return True

    # -- control and statistics --------------------------------------------------------------
    def stats(self) -> dict:
        """Counters since start, and what is queued now (``queued_requests``, ``queued_cost``)."""
        self._here()
        with self._cond:
            stats = dict(self._stats)
            stats["busy_seconds"] = round(stats["busy_seconds"], 3)
            stats["queued_requests"] = len(self._jobs)
            stats["queued_cost"] = self._pending
            stats["running"] = bool(self._worker and self._worker.is_alive())
        return stats

    def start(self) -> None:
        """Start the worker now (else the first job starts it)."""
        self._here()
        with self._cond:
            if not self._closed:
                self._start_worker()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker after the call it is running; queued jobs fail with BatcherClosed."""
        self._here()
        with self._cond:
            self._closed = True
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    closed = property(lambda self: self._closed)

    # -- the worker ----------------------------------------------------------------------------
    def _start_worker(self) -> None:
        """Called with the lock held."""
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._worker.start()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    batch = self._next_batch()
                if batch is None:
                    return
                self._execute(*batch)
        except BaseException as fatal:
            with self._cond:  # nobody is left to serve the queue: its waiters fail now
                self._count("worker_stops")
                for job in list(self._jobs):
                    self._finish(job, error=WorkerStopped(f"the {self.name} worker stopped ({type(fatal).__name__})"))
                self._worker = None  # the next job starts a fresh one, even before this thread ends
            raise

    def _next_batch(self):
        """Wait for work, gather up to ``max_cost`` or ``max_wait``, drop spent jobs, take slices;
        None when closed. Called with the lock held (waits release it)."""
        while True:
            while not self._closed and not self._jobs:
                self._cond.wait()
            until = min(job.arrived for job in self._jobs) + self.max_wait if self._jobs else 0.0
            while self._jobs and self._pending < self.max_cost and not self._closed:
                left = until - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._closed:
                for job in list(self._jobs):
                    self._finish(job, error=BatcherClosed("the queue was closed before this request ran"))
                return None
            for job in list(self._jobs):  # spent budgets: dropped before the model sees them
                error = job.budget.error() if job.budget is not None else None
                if error is not None:
                    self._finish(job, error=error)
            if self._jobs:
                return self._take()

    def _take(self):
        """Slices for one call, one key: the job waiting longest (since it arrived or its latest call
        ended; a long one after AGING s) may fill half the call, so nothing starves; the rest goes
        shortest work first (equals take turns), a long job adding at most a quarter call."""
        oldest = min(self._jobs, key=lambda job: job.waiting_since)
        shortest = min(self._jobs, key=lambda job: (job.cost_left, job.waiting_since))
        if shortest.cost_left <= self.max_cost < oldest.cost_left and time.monotonic() - oldest.waiting_since < AGING:
            oldest = shortest
        key, room = oldest.key, self.max_cost
        slices: dict[_Job, list[int]] = {}

        def take(job: _Job, limit: int) -> None:
            nonlocal room
            end, spent = job.cursor, 0
            while end < len(job.items) and (spent + job.costs[end] <= min(limit, room)
                                            or (room == self.max_cost and end == job.cursor)):
                spent += job.costs[end]
                end += 1
            if end > job.cursor:
                slices.setdefault(job, [job.cursor, end])[1] = end
                job.cursor, job.cost_left = end, job.cost_left - spent
                self._pending -= spent
                room = max(0, room - spent)

        take(oldest, max(1, self.max_cost // 2))
        for job in sorted((j for j in self._jobs if j.key == key), key=lambda j: (j.cost_left, j.waiting_since)):
            if room == 0:
                break
            take(job, room if job.cost_left <= self.max_cost or slices.keys() <= {job} else max(1, self.max_cost // 4))
        self._jobs = [job for job in self._jobs if job.cursor < len(job.items)]
        # read by the call: a call is niced only while no short (one-call) job is in it or waiting
        self.serving_short = any(job.short for job in [*slices, *self._jobs])
        return key, [(job, start, end) for job, (start, end) in slices.items()]

    def _isolating_call(self, key: Any, unique: list, results: dict, errors: dict) -> None:
        """Fill ``results`` / ``errors`` (item -> output / exception) for one call. A call that
        raises is retried in halves down to single items, so one item that breaks the model
        fails only the jobs holding it (about 2·log2(N) extra calls). KeyboardInterrupt and
        SystemExit are not retried: they stop the worker."""
        try:
            output = list(self._call(key, unique))
            if len(output) != len(unique):
                raise RuntimeError(f"the model returned {len(output)} results for {len(unique)} inputs")
            results.update(zip(unique, output))
            return
        except Exception as caught:  # noqa: BLE001 - handed to the callers, the worker lives on
            error = caught
        with self._cond:
            self._count("failed_batches")
        if len(unique) == 1:
            log.warning("%s: model call failed for one item: %s: %s", self.name, type(error).__name__, error)
            errors[unique[0]] = error
            return
        log.warning("%s: call of %d items failed (%s: %s); retrying in halves to isolate the failing item",
                    self.name, len(unique), type(error).__name__, error)
        middle = len(unique) // 2
        for half in (unique[:middle], unique[middle:]):
            with self._cond:
                self._count("retried_batches")
            self._isolating_call(key, half, results, errors)

    def _execute(self, key: Any, slices: list[tuple[_Job, int, int]]) -> None:
        """One model call for the slices (outside the lock); results or errors to every job."""
        unique = list(dict.fromkeys(item for job, start, end in slices for item in job.items[start:end]))
        started = time.perf_counter()
        results: dict = {}
        errors: dict = {}
        fatal: BaseException | None = None
        try:
            self._isolating_call(key, unique, results, errors)
        except BaseException as caught:  # KeyboardInterrupt / SystemExit in the worker
            fatal = caught
            errors = dict.fromkeys(unique, WorkerStopped(f"the {self.name} worker stopped ({type(caught).__name__})"))
        with self._cond:
            self._count("batches", 1, key)
            self._count("model_items", len(unique), key)
            self._count("deduplicated", sum(end - start for _, start, end in slices) - len(unique), key)
            name = self._label(key) + "max_batch"
            self._stats[name] = max(self._stats.get(name, 0), len(unique))
            self._stats["busy_seconds"] += time.perf_counter() - started
            now = time.monotonic()
            for job, start, end in slices:
                if job.finished:  # given up on (deadline, client gone) while in the call
                    continue
                job.waiting_since = now
                error = next((errors[item] for item in job.items[start:end] if item in errors), None)
                if error is not None:
                    self._count("errors")
                    self._finish(job, error=error)
                    continue
                for i in range(start, end):
                    job.results[i] = results[job.items[i]]
                job.done += end - start
                if job.done == len(job.items):
                    self._finish(job, result=list(job.results))
        if fatal is not None:
            raise fatal


class BatchingEngine(BatchedAlternatives):
    """An engine whose ``translate`` calls from concurrent threads are batched together on a
    :class:`FairQueue`; it has the engine interface (``spec``, ``name``, ``settings``,
    ``namespace``, ``translate``, ``attention``), so the pipeline and the web layer use it unchanged.

    ``max_sentences`` (N): most sentences per model call. ``max_wait_ms`` (T): how long a call
    waits for more sentences after its oldest request arrived. Sentences are checked before they
    are queued (a lone surrogate fails its own request, never a batch)."""

    def __init__(self, inner: Any, *, max_sentences: int = DEFAULT_BATCH_SENTENCES,
                 max_wait_ms: float = DEFAULT_BATCH_WAIT_MS) -> None:
        if isinstance(inner, BatchingEngine):
            inner = inner.inner
        if not isinstance(max_sentences, int) or isinstance(max_sentences, bool) or max_sentences < 1:
            raise ValueError(f"max_sentences must be a whole number >= 1, not {max_sentences!r}")
        if not isinstance(max_wait_ms, (int, float)) or not 0 <= max_wait_ms < float("inf"):
            raise ValueError(f"max_wait_ms must be a number >= 0, not {max_wait_ms!r}")
        self.inner = inner
        self.max_sentences = max_sentences
        self.max_wait = float(max_wait_ms) / 1000.0
        self.queue = FairQueue(self._call, max_cost=max_sentences, max_wait=self.max_wait, name="mt-batcher",
                               label=lambda key: "attention_" if key is ATTENTION else getattr(key, "label", ""),
                               on_short_waiting=lambda: self.priority.set(True))
        self.priority = ThreadPriority(tuple(getattr(inner, "native_threads", ())))

    # -- the Engine interface ----------------------------------------------------------------
    spec = property(lambda self: self.inner.spec)
    name = property(lambda self: self.inner.name)
    settings = property(lambda self: self.inner.settings)

    namespace = property(lambda self: self.inner.namespace)

    def __getattr__(self, attribute: str):
        # anything else (device, precision, model_version, generate_ids, ...) is the inner engine's
        if attribute in ("inner", "queue"):  # not set yet: during unpickling or a failed __init__
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    def __repr__(self) -> str:
        return f"<BatchingEngine N={self.max_sentences} T={self.max_wait * 1000:g}ms around {self.inner!r}>"

    def translate(self, sentences: Sequence[str], settings=None, on_batch=None) -> list[str]:
        """Translate through the shared worker; same result as ``inner.translate`` (order kept).
        ``on_batch`` (see ``Engine.translate``) gets this request's translations when they are all
        done: its sentences share model calls with other requests'."""
        if isinstance(sentences, str):
            raise TypeError("translate() takes a list of sentences, not a single string")
        if not (sentences := list(sentences)):
            return []
        check_sentences(sentences)  # a bad sentence fails this request here, before any batch
        out = self.queue.submit(sentences, settings or self.inner.settings)
        if on_batch is not None:
            try:
                on_batch(list(out))
            except Exception as error:  # noqa: BLE001 - extra work must not cost the translation
                log.warning("on_batch failed: %s: %s", type(error).__name__, error)
        return out

    def attention(self, sources: Sequence[str], translations: Sequence[str]):
        """The inner engine's teacher-forced attention (word links), batched on the same worker:
        concurrent requests' word-link passes share one forward pass. None when the inner engine
        cannot say."""
        if isinstance(sources, str) or isinstance(translations, str):
            raise TypeError("attention() takes lists of sentences")
        pairs = list(zip(sources, translations, strict=True))
        if not pairs:
            return []
        check_sentences([text for pair in pairs for text in pair])
        results = self.queue.submit(pairs, ATTENTION)
        return None if any(result is None for result in results) else results

    def _call(self, settings, unique: list) -> list:
        """The model call for one batch: translations, or attention records (None: not available)."""
        self.priority.set(self.queue.serving_short)  # the model's threads niced for long jobs only
        if settings is ATTENTION:
            output = engine_attention(self.inner, [s for s, _ in unique], [t for _, t in unique])
            return [None] * len(unique) if output is None else list(output)
        return settings.run(self.inner, unique) if isinstance(settings, NBest) else self.inner.translate(unique, settings)

    # -- control and statistics --------------------------------------------------------------
    def stats(self) -> dict:
        """Counts since start (requests, sentences, model calls, dedup, errors, drops) and what is queued."""
        q = self.queue.stats()
        stats = {name: q.get(name, 0) for name in (
            "requests", "batches", "deduplicated", "errors", "failed_batches", "retried_batches", "max_batch",
            "busy_seconds", "attention_requests", "attention_batches", "expired", "cancelled", "worker_stops",
            "queued_requests", "running")}
        return {**stats, "sentences": q["items"], "engine_sentences": q["model_items"],
                "mean_batch": round(q["model_items"] / q["batches"], 2) if q["batches"] else 0.0,
                "queued_sentences": q["queued_cost"], "max_sentences": self.max_sentences,
                "max_wait_ms": self.max_wait * 1000}

    def start(self) -> None:
        """Start the worker thread now (else the first request starts it)."""
        self.queue.start()

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker after the batch it is running; queued requests fail with BatcherClosed."""
        self.queue.close(timeout)

    closed = property(lambda self: self.queue.closed)

    def __enter__(self) -> "BatchingEngine":  # noqa: D105
        return self

    def __exit__(self, *exc) -> None:
        self.close()
