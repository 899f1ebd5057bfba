"""The units of one side of an alignment and their (group) embeddings, requested in batches."""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..quality.embeddings import EMBED_DIM, EmbedFn
from ..text.english import split_english

__all__ = ["EmbeddingBatch", "Side"]


class EmbeddingBatch:
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


class Side:
    """The units of one language: single embeddings, lengths and group embeddings."""

    def __init__(self, texts: list[str], batch: "EmbeddingBatch"):
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

    def request_pieces(self, units: list[int], batch: "EmbeddingBatch") -> None:
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

    def request_groups(self, spans: list[tuple[int, int]], batch: "EmbeddingBatch") -> None:
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
