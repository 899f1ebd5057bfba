"""Batching across requests (the server): one model worker per process, fed by a fair queue.

:class:`BatchingEngine` wraps an engine and has its interface (``spec``, ``name``, ``settings``,
``namespace``, ``translate``, ``attention``), so the pipeline and the web layer use it unchanged.
Concurrent requests share model calls instead of queueing one call each behind the engine lock;
slices are served round-robin (new jobs first, as in fq_codel) so a short request is never stuck
behind a long article; jobs share a call only with equal settings; identical sentences are
translated once; the next batch takes the settings of the job that has waited longest, so no
settings starve. Sentences are checked before they are queued (a lone surrogate fails its own
request, never a batch), and a model call that raises is retried in halves so only the failing
request gets the error. The design is in docs/DESIGN.md ("Request queue"). The CLI and folder
batch use the plain engine: there is no concurrency to batch there.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from concurrent.futures import Future
from typing import Any, Sequence

from .attention import engine_attention
from .base import check_sentences

log = logging.getLogger(__name__)

DEFAULT_BATCH_SENTENCES = 32
DEFAULT_BATCH_WAIT_MS = 10.0


# The "settings" of attention jobs (teacher-forced word-link passes): never equal to a
# DecodingSettings, so attention and translation never share a model call.
ATTENTION = ("attention",)


class BatcherClosed(RuntimeError):
    """The batching engine was closed: no more translations through it."""


class _Job:
    """One ``translate()`` call waiting for its sentences; filled slice by slice by the worker."""

    __slots__ = ("sentences", "settings", "results", "cursor", "done", "arrived", "waiting_since",
                 "future", "failed")

    def __init__(self, sentences: list, settings: Any) -> None:
        self.sentences = sentences
        self.settings = settings
        self.results: list[str | None] = [None] * len(sentences)
        self.cursor = 0  # sentences[:cursor] have been put into a batch
        self.done = 0  # results filled so far
        self.arrived = time.monotonic()
        self.waiting_since = self.arrived  # arrival, then the end of its latest model call
        self.future: Future = Future()
        self.failed = False

    @property
    def left(self) -> int:
        return len(self.sentences) - self.cursor


class BatchingEngine:
    """An engine whose ``translate`` calls from concurrent threads are batched together.

    ``max_sentences`` (N): most sentences per model call, and the slice one request gets per
    turn. ``max_wait_ms`` (T): how long a batch waits for more sentences after its oldest
    request arrived. The worker thread starts on first use (and again in a forked child).
    """

    def __init__(
        self,
        inner: Any,
        *,
        max_sentences: int = DEFAULT_BATCH_SENTENCES,
        max_wait_ms: float = DEFAULT_BATCH_WAIT_MS,
    ) -> None:
        if isinstance(inner, BatchingEngine):
            inner = inner.inner
        if not isinstance(max_sentences, int) or isinstance(max_sentences, bool) or max_sentences < 1:
            raise ValueError(f"max_sentences must be a whole number >= 1, not {max_sentences!r}")
        if not isinstance(max_wait_ms, (int, float)) or not 0 <= max_wait_ms < float("inf"):
            raise ValueError(f"max_wait_ms must be a number >= 0, not {max_wait_ms!r}")
        self.inner = inner
        self.max_sentences = max_sentences
        self.max_wait = float(max_wait_ms) / 1000.0
        self._closed = False
        self._reset()
        _LIVE.add(self)

    def _reset(self) -> None:
        """Fresh queue, lock and (not yet started) worker: at construction and after a fork."""
        self._cond = threading.Condition(threading.Lock())
        self._new: deque[_Job] = deque()
        self._old: deque[_Job] = deque()
        self._pending = 0  # sentences queued and not yet put into a batch
        self._worker: threading.Thread | None = None
        self._stats = {"requests": 0, "batches": 0, "sentences": 0, "engine_sentences": 0, "deduplicated": 0,
                       "errors": 0, "failed_batches": 0, "retried_batches": 0,
                       "max_batch": 0, "busy_seconds": 0.0,
                       "attention_requests": 0, "attention_batches": 0}

    # -- the Engine interface ----------------------------------------------------------------
    @property
    def spec(self):
        return self.inner.spec

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def settings(self):
        return self.inner.settings

    def namespace(self, settings=None) -> str:
        return self.inner.namespace(settings)

    def __getattr__(self, attribute: str):
        # anything else (device, precision, model_version, generate_ids, ...) is the inner engine's
        if attribute == "inner":  # not set yet: during unpickling or a failed __init__
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    def __repr__(self) -> str:
        return (f"<BatchingEngine N={self.max_sentences} T={self.max_wait * 1000:g}ms "
                f"around {self.inner!r}>")

    def translate(self, sentences: Sequence[str], settings=None, on_batch=None) -> list[str]:
        """Translate through the shared worker; same result as ``inner.translate`` (order kept).
        ``on_batch`` (see ``Engine.translate``) gets this request's translations when they are all
        done: its sentences share model calls with other requests'."""
        if isinstance(sentences, str):
            raise TypeError("translate() takes a list of sentences, not a single string")
        sentences = list(sentences)
        if not sentences:
            return []
        check_sentences(sentences)  # a bad sentence fails this request here, before any batch
        out = self._submit(sentences, settings or self.inner.settings)
        if on_batch is not None:
            try:
                on_batch(list(out))
            except Exception as error:  # noqa: BLE001 - extra work must not cost the translation
                log.warning("on_batch failed: %s: %s", type(error).__name__, error)
        return out

    def attention(self, sources: Sequence[str], translations: Sequence[str]):
        """The inner engine's teacher-forced attention (word links), batched on the same worker.

        Concurrent requests' word-link passes share one forward pass, and every model call of
        the process runs on the one worker thread. None when the inner engine cannot say.
        """
        if isinstance(sources, str) or isinstance(translations, str):
            raise TypeError("attention() takes lists of sentences")
        pairs = list(zip(sources, translations, strict=True))
        if not pairs:
            return []
        check_sentences([text for pair in pairs for text in pair])
        results = self._submit(pairs, ATTENTION)
        return None if any(result is None for result in results) else results

    def _submit(self, items: list, key: Any) -> list:
        job = _Job(items, key)
        with self._cond:
            if self._closed:
                raise BatcherClosed("the batching engine is closed")
            counter = "attention_requests" if key is ATTENTION else "requests"
            self._stats[counter] += 1
            if key is not ATTENTION:
                self._stats["sentences"] += len(items)
            self._new.append(job)
            self._pending += len(items)
            self._start_worker()
            self._cond.notify_all()
        return job.future.result()

    # -- control and statistics --------------------------------------------------------------
    def stats(self) -> dict:
        """Counts since start: translation requests, sentences asked for, model calls
        (``batches``), sentences sent to the model after dedup, mean batch size, requests that got an
        error (``errors``), model calls that raised (``failed_batches``) and the smaller calls
        made to isolate the failing items (``retried_batches``), word-link requests and calls
        (``attention_*``); and what is queued now."""
        with self._cond:
            stats = dict(self._stats)
            stats["busy_seconds"] = round(stats["busy_seconds"], 3)
            stats["mean_batch"] = round(stats["engine_sentences"] / stats["batches"], 2) if stats["batches"] else 0.0
            stats["queued_requests"] = len(self._new) + len(self._old)
            stats["queued_sentences"] = self._pending
            stats["max_sentences"] = self.max_sentences
            stats["max_wait_ms"] = self.max_wait * 1000
            stats["running"] = bool(self._worker and self._worker.is_alive())
        return stats

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker after the batch it is running; queued requests fail with BatcherClosed."""
        with self._cond:
            self._closed = True
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "BatchingEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the worker ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker thread now (else the first request starts it): the server starts it
        from a request thread, so it never inherits a niced lane thread's priority."""
        with self._cond:
            if not self._closed:
                self._start_worker()

    def _start_worker(self) -> None:
        """Called with the lock held."""
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="mt-batcher", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            self._execute(*batch)

    def _next_batch(self):
        """Wait for work, gather up to N sentences or T ms, take slices; None when closed.

        Called with the lock held; waits on the condition (which releases it).
        """
        while not self._closed and not (self._new or self._old):
            self._cond.wait()
        if self._closed:
            self._fail_queued(BatcherClosed("the batching engine was closed before this request ran"))
            return None
        deadline = min(job.arrived for job in (*self._new, *self._old)) + self.max_wait
        while self._pending < self.max_sentences and not self._closed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._cond.wait(remaining)
        if self._closed:
            self._fail_queued(BatcherClosed("the batching engine was closed before this request ran"))
            return None
        return self._take()

    def _take(self):
        """Slices for one batch: new jobs first, then old ones, round-robin, one settings only.

        The settings are those of the job that has waited longest (since it arrived or since its
        latest model call ended), so a job with other settings (another beam, a word-link pass)
        goes next however many new requests keep coming. While old jobs are waiting, new ones get
        at most half the batch in their first turn, so a stream of new requests cannot starve an
        article that is half done either.
        """
        settings = min((*self._new, *self._old), key=lambda job: job.waiting_since).settings
        old_left = sum(job.left for job in self._old if job.settings == settings)
        room = self.max_sentences
        slices: list[tuple[_Job, int, int]] = []
        served: list[_Job] = []

        def fill(queue, limit: int) -> None:
            nonlocal room
            for job in queue:
                if room == 0 or limit == 0:
                    return
                if job.settings != settings or job.left == 0:
                    continue
                count = min(room, limit, job.left)
                slices.append((job, job.cursor, job.cursor + count))
                job.cursor += count
                room -= count
                limit -= count
                if job not in served:
                    served.append(job)

        fill(self._new, self.max_sentences - min(old_left, self.max_sentences // 2))
        fill(self._old, self.max_sentences)
        fill(self._new, self.max_sentences)  # what the old jobs left free
        self._pending -= self.max_sentences - room
        # served jobs leave their place; those with sentences left go to the back of `old`
        # (old ones first: the new ones have just had their first turn)
        taken = {id(job) for job in served}
        was_old = {id(job) for job in self._old}
        self._new = deque(job for job in self._new if id(job) not in taken)
        self._old = deque(job for job in self._old if id(job) not in taken)
        self._old.extend(job for job in served if id(job) in was_old and job.left > 0)
        self._old.extend(job for job in served if id(job) not in was_old and job.left > 0)
        return settings, slices

    def _call(self, settings, unique: list) -> list:
        """The model call for one batch: translations, or attention records (None: not available)."""
        if settings is ATTENTION:
            output = engine_attention(self.inner, [s for s, _ in unique], [t for _, t in unique])
            output = [None] * len(unique) if output is None else list(output)
        else:
            output = self.inner.translate(unique, settings)
        if len(output) != len(unique):
            raise RuntimeError(f"the engine returned {len(output)} results for {len(unique)} inputs")
        return output

    def _isolating_call(self, settings, unique: list, results: dict, errors: dict) -> None:
        """Fill ``results`` (item -> output) and ``errors`` (item -> exception) for one batch.

        A call that raises is retried in halves, down to single items, so one item that breaks
        the model fails only the requests that contain it (about 2·log2(N) extra calls for one
        such item in a batch of N). KeyboardInterrupt and SystemExit are not retried."""
        try:
            results.update(zip(unique, self._call(settings, unique)))
            return
        except Exception as caught:  # noqa: BLE001 - handed to the callers, the worker lives on
            error = caught
        with self._cond:
            self._stats["failed_batches"] += 1
        if len(unique) == 1:
            log.warning("model call failed for one item: %s: %s", type(error).__name__, error)
            errors[unique[0]] = error
            return
        log.warning("batch of %d items failed (%s: %s); retrying in halves to isolate the failing item",
                    len(unique), type(error).__name__, error)
        middle = len(unique) // 2
        for half in (unique[:middle], unique[middle:]):
            with self._cond:
                self._stats["retried_batches"] += 1
            self._isolating_call(settings, half, results, errors)

    def _execute(self, settings, slices: list[tuple[_Job, int, int]]) -> None:
        """One model call for the batch (outside the lock); results or the error to every job."""
        unique = list(dict.fromkeys(s for job, start, end in slices for s in job.sentences[start:end]))
        started = time.perf_counter()
        translations: dict = {}
        errors: dict = {}
        try:
            self._isolating_call(settings, unique, translations, errors)
        except BaseException as fatal:  # KeyboardInterrupt / SystemExit in the worker
            errors = dict.fromkeys(unique, fatal)
        elapsed = time.perf_counter() - started
        finished: list[_Job] = []
        failed: list[tuple[_Job, BaseException]] = []
        with self._cond:
            if settings is ATTENTION:
                self._stats["attention_batches"] += 1
            else:
                self._stats["batches"] += 1
                self._stats["engine_sentences"] += len(unique)
                self._stats["deduplicated"] += sum(end - start for _, start, end in slices) - len(unique)
                self._stats["max_batch"] = max(self._stats["max_batch"], len(unique))
            self._stats["busy_seconds"] += elapsed
            now = time.monotonic()
            for job, start, end in slices:
                if job.failed:
                    continue
                job.waiting_since = now
                error = next((errors[s] for s in job.sentences[start:end] if s in errors), None)
                if error is not None:
                    job.failed = True
                    failed.append((job, error))
                    self._drop(job)
                    self._stats["errors"] += 1
                    continue
                for i in range(start, end):
                    job.results[i] = translations[job.sentences[i]]
                job.done += end - start
                if job.done == len(job.sentences):
                    finished.append(job)
        for job in finished:
            job.future.set_result(list(job.results))
        for job, error in failed:
            job.future.set_exception(error)
        fatal = next((e for e in errors.values() if not isinstance(e, Exception)), None)
        if fatal is not None:
            raise fatal  # KeyboardInterrupt / SystemExit in the worker: stop it (callers are told)

    def _drop(self, job: _Job) -> None:
        """Remove a failed job's unsent sentences from the queue (lock held)."""
        self._pending -= job.left
        job.cursor = len(job.sentences)
        for queue in (self._new, self._old):
            try:
                queue.remove(job)
            except ValueError:
                pass

    def _fail_queued(self, error: BaseException) -> None:
        """Fail every queued job (lock held)."""
        for job in (*self._new, *self._old):
            if not job.failed:
                job.failed = True
                job.future.set_exception(error)
        self._new.clear()
        self._old.clear()
        self._pending = 0


# After a fork (gunicorn --preload, multiprocessing) the child has the queue but not the worker
# thread, and a lock may be held by a thread that does not exist there: start afresh.
_LIVE: "weakref.WeakSet[BatchingEngine]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for engine in list(_LIVE):
        engine._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
