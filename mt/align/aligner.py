"""Sentence alignment of two documents: a two-pass DP over multilingual sentence embeddings
(how it works, and its tuning: docs/ALIGNMENT.md)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..quality import embeddings
from ..quality.embeddings import EmbedFn
from .groups import EmbeddingBatch, Side

__all__ = ["DEFAULT_PARAMS", "MAX_DP_CELLS", "MAX_MATRIX_CELLS", "AlignParams", "Link", "align_sentences"]

MAX_DP_CELLS = 400_000        # cap on the cells of the second-pass DP (band around the anchors)
MAX_MATRIX_CELLS = 36_000_000  # vi units × en units compared in the first pass


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
    def __init__(self, V: Side, E: Side, params: AlignParams, max_group: int,
                 T: Side | None, batch: EmbeddingBatch):
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
    ``embed`` maps texts to L2-normalised vectors (default: :func:`mt.quality.embeddings.embed`).
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
    embed_fn = embed or embeddings.embed  # looked up per call: monkeypatchable
    if not any(t.strip() for t in vi) or not any(t.strip() for t in en):
        return [Link((i,), (), 0.0) for i in range(len(vi))] + \
               [Link((), (j,), 0.0) for j in range(len(en))]
    if len(vi) * len(en) > MAX_MATRIX_CELLS:
        raise InputError(f"too many units to align at once ({len(vi)} × {len(en)}); "
                         "split the documents into parts of a few thousand units")
    batch = EmbeddingBatch(embed_fn)
    V = Side(vi, batch)
    E = Side(en, batch)
    T = Side(list(vi_translations), batch) if vi_translations is not None else None
    batch.run()
    if T is not None and T.E.shape[1] != V.E.shape[1]:  # every translation blank
        T.E = np.zeros((T.n, V.E.shape[1]), np.float32)
    return _Aligner(V, E, p, max_group, T, batch).run()
