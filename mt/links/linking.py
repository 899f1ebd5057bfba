"""Word links from an engine's piece-level cross-attention (design: docs/LINKS.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..text.words import is_punctuation, overlapping_words, split_words
from .record import RECORD_MAX_WORDS, WordAttention

if TYPE_CHECKING:
    from ..engines.attention import TokenAttention
    from ..text.normalize import Normalized

__all__ = ["MAX_LINK_WORDS", "MIN_LINK_WEIGHT", "WordLinks", "links_from_matrix", "sentence_links", "word_attention", "word_matrix"]

MIN_LINK_WEIGHT = 0.10  # attention mass an English word must put on its Vietnamese word
# Words per side that carry links (the rest of a longer sentence is listed, unlinked): bounds a
# pair's word matrix at MAX_LINK_WORDS**2 float32 (4 MiB) whatever the input. The segmenter
# keeps sources far below (mt.text.segment.MAX_SEGMENT_UNITS), models' outputs below ~512 pieces.
MAX_LINK_WORDS = RECORD_MAX_WORDS


@dataclass(frozen=True)
class WordLinks:
    """Words of both sides and the links between them, for one sentence pair."""

    src_words: list[str]
    src_word_spans: list[list[int]]  # [start, end) in the ORIGINAL article
    tgt_words: list[str]
    tgt_word_spans: list[list[int]]  # [start, end) in the translation
    alignment: list[list[int]]  # [vi word index, en word index], sorted by English word

    @classmethod
    def empty(cls) -> "WordLinks":
        return cls([], [], [], [], [])


def word_matrix(
    weights: np.ndarray,
    src_piece_words: Sequence[Sequence[int]],
    tgt_piece_words: Sequence[Sequence[int]],
    n_src: int,
    n_tgt: int,
) -> np.ndarray:
    """(n_tgt, n_src) word-level attention: sum over a source word's pieces (the attention mass
    on the word), mean over a target word's pieces. ``*_piece_words[k]``: the words piece k
    overlaps (a piece over two words gives each half; a piece over none, or only over words
    ``>= n``, is ignored).

    Built from (piece, word) index pairs, never from dense piece x word matrices: memory is
    the result plus (n_tgt x source pieces), time linear in the pairs (issue #20)."""
    weights = np.asarray(weights, dtype=np.float32)
    M = np.zeros((n_tgt, n_src), dtype=np.float32)
    if weights.size == 0 or n_tgt == 0 or n_src == 0:
        return M
    tp, tw = _pairs(tgt_piece_words, n_tgt, weights.shape[0])
    sp, sw = _pairs(src_piece_words, n_src, weights.shape[1])
    if not len(tp) or not len(sp):
        return M
    rows = np.zeros((n_tgt, weights.shape[1]), dtype=np.float32)
    np.add.at(rows, tw, weights[tp])  # sum over a target word's pieces ...
    counts = np.bincount(tw, minlength=n_tgt).astype(np.float32)[:, None]
    np.divide(rows, counts, out=rows, where=counts > 0)  # ... then the mean
    share = np.array([1.0 / len(src_piece_words[p]) for p in sp], dtype=np.float32)
    np.add.at(M.T, sw, (rows[:, sp] * share).T)
    return M


def _pairs(piece_words: Sequence[Sequence[int]], n_words: int, n_pieces: int) -> tuple[np.ndarray, np.ndarray]:
    """(piece, word) index arrays of the overlaps, words below ``n_words`` only."""
    pieces, words = [], []
    for p, hit in enumerate(piece_words[:n_pieces]):
        for w in hit:
            if w < n_words:
                pieces.append(p)
                words.append(w)
    return np.asarray(pieces, dtype=np.intp), np.asarray(words, dtype=np.intp)


def links_from_matrix(
    M: np.ndarray,
    src_punct: Sequence[bool],
    tgt_punct: Sequence[bool],
    *,
    min_weight: float = MIN_LINK_WEIGHT,
    intersect: bool = False,
) -> list[list[int]]:
    """``[vi, en]`` pairs: each English word's argmax Vietnamese word, if it holds ``min_weight``
    and both are punctuation or both are not; ``intersect`` also requires the reverse argmax."""
    links = []
    if M.size == 0:
        return links
    best_en_of_vi = M.argmax(axis=0)
    for e in range(M.shape[0]):
        v = int(M[e].argmax())
        if M[e, v] < min_weight or M[e, v] <= 0:
            continue
        if src_punct[v] != tgt_punct[e]:
            continue
        if intersect and int(best_en_of_vi[v]) != e:
            continue
        links.append([v, e])
    return links


def word_attention(attention: "TokenAttention", normalized_text: str, translation: str) -> WordAttention:
    """Pieces -> words of the normalised sentence and of the translation (see :func:`word_matrix`)."""
    src_words = split_words(normalized_text)[:MAX_LINK_WORDS]
    tgt_words = split_words(translation)[:MAX_LINK_WORDS]
    n = len(normalized_text)
    src_spans = [(min(max(a, 0), n), min(max(b, a, 0), n)) for a, b in attention.src_spans]
    M = word_matrix(
        attention.weights,
        overlapping_words(src_spans, src_words),
        overlapping_words(attention.tgt_spans, tgt_words),
        len(src_words),
        len(tgt_words),
    )
    return WordAttention(src_words, tgt_words, M)


def sentence_links(
    source: str,
    source_start: int,
    normalized: "Normalized",
    translation: str,
    attention: WordAttention | None,
    *,
    min_weight: float = MIN_LINK_WEIGHT,
    intersect: bool = False,
) -> WordLinks:
    """Words of a segment as written (spans offset by ``source_start``: offsets into the article)
    and of its translation, linked through ``attention`` (None: words only, no links).

    ``normalized`` is :func:`mt.text.normalize.normalize` of ``source``; ``attention`` is the
    :class:`WordAttention` of ``normalized.text`` and ``translation``. Its columns are merged
    (summed) into the words as written, through ``normalized.offsets``."""
    src_local = split_words(source)
    tgt_spans = split_words(translation)
    src_words = [source[a:b] for a, b in src_local]
    tgt_words = [translation[a:b] for a, b in tgt_spans]
    alignment: list[list[int]] = []
    n_src, n_tgt = min(len(src_local), MAX_LINK_WORDS), min(len(tgt_spans), MAX_LINK_WORDS)
    usable = (
        attention is not None
        and src_local
        and tgt_spans
        and [tuple(x) for x in attention.tgt_spans] == tgt_spans[:n_tgt]
        and attention.weights.shape == (len(attention.tgt_spans), len(attention.src_spans))
    )
    if usable:
        n = len(normalized.text)
        original = [normalized.original_span(min(a, n), min(max(a, b), n)) for a, b in attention.src_spans]
        merge = word_matrix(
            attention.weights, overlapping_words(original, src_local[:n_src]), [[t] for t in range(n_tgt)],
            n_src, n_tgt,
        )
        alignment = links_from_matrix(
            merge,
            [is_punctuation(w) for w in src_words[:n_src]],
            [is_punctuation(w) for w in tgt_words[:n_tgt]],
            min_weight=min_weight,
            intersect=intersect,
        )
    return WordLinks(
        src_words=src_words,
        src_word_spans=[[source_start + a, source_start + b] for a, b in src_local],
        tgt_words=tgt_words,
        tgt_word_spans=[[a, b] for a, b in tgt_spans],
        alignment=alignment,
    )
