"""Word links between a Vietnamese sentence and its English translation, and a quality flag.

No real translation-model weights were available where this was written (no model hub): the
word-link choices below follow the models' training recipes and are tested for structure on a
random-weight model; the quality thresholds are calibrated on real human translations.

Word links
==========
Taken from the translation model's own cross-attention, teacher-forced: the (possibly cached)
translation is tokenised and forced as decoder input in one forward pass with
``output_attentions=True``, so a cached translation can be linked without decoding again, and
with exactly the model that produced it. The steps:

1. :func:`transformers_attention` (the engine contract in docs/CONTRACTS.md: an engine's
   ``attention(sources, translations)``): source pieces exactly as ``Engine.translate`` encodes
   them (model prefix + whitespace-collapsed sentence), target pieces from the target tokenizer
   (``text_target=``) for ``strip_prefix + translation``; decoder input ``[start] + [forced
   BOS] + pieces``, so row *k* of the cross-attention is the step that predicts target piece
   *k*, as at generation time. Special tokens (EOS, language codes) and the model prefix are
   dropped; the result is a :class:`TokenAttention` per sentence: piece char spans on both sides
   and a (target pieces × source pieces) weight matrix.
2. Pieces -> words (:func:`word_matrix`): a source word's weight is the *sum* of its pieces'
   weights (attention is a distribution over source positions, so this is the mass on the
   word), a target word's row is the *mean* of its pieces' rows. A piece that straddles two
   words gives each an equal share.
3. Links (:func:`links_from_matrix`): each English word is linked to its argmax Vietnamese word
   (Marian's ``--alignment`` hard alignment does the same per target token) when that word holds
   at least ``MIN_LINK_WEIGHT`` of the attention; punctuation links only to punctuation and
   words only to words (attention "sinks" on commas and full stops are not links). So every
   English word has at most one link, a Vietnamese word any number. ``intersect=True`` keeps
   only links that are also the Vietnamese word's own argmax (higher precision, lower recall);
   the pipeline uses the forward direction, which is what guided alignment was trained for.

Words. Vietnamese words are the user's own tokens (:func:`split_words` on the segment as
written): in word-segmented input ``tên_lửa`` is one word, in plain input a syllable is a word
(nothing says which syllables belong together). English words likewise. A word is a run of
letters/digits (``_`` included; internal ``' ’ - & + .`` and digit-only ``, :`` keep it whole:
``don't``, ``oxy-hydro``, ``U.S``, ``2,000``) or a run of one punctuation character (``,``
``"`` ``...``). Punctuation tokens are words too, so every non-space character belongs to
exactly one word and the view can make all of them hoverable; they are just never linked to
non-punctuation. Source piece spans (in the normalised sentence) are mapped back to the user's
text with :attr:`mt.normalize.Normalized.offsets`, so ``tên lửa`` (two pieces after
normalisation) lands in the one word ``tên_lửa``; word spans are offsets into the original
article.

Which attention. OPUS-MT models (``transformer-align``) were trained with guided alignment on
one cross-attention head: Marian's ``collectOneHead`` takes head 0 of the last decoder layer
(``--transformer-guided-alignment-layer last``). The Hugging Face conversion
(``convert_marian_to_pytorch.py``) only transposes each weight matrix (``opus_dict[k].T``), and
both Marian (``SplitHeads``) and HF (``view(..., heads, head_dim)``) cut heads as contiguous
blocks of the projection, so that head is ``model.decoder.layers[-1].encoder_attn`` head 0 here
(in a CTranslate2 conversion: ``alignment_layer=-1, alignment_heads=1``). Families without a
trained alignment head (t5, mbart, nllb, m2m100) use the mean over the heads of the last decoder
layer. No real weights are available where this was written (no model hub), so the sharpness of
these choices was *not* measured; with the weights at hand, override them:

    MT_ALIGN_LAYER=-2      # decoder layer (index, negative from the end; "-2,-1" averages layers)
    MT_ALIGN_HEAD=mean     # a head number, or "mean" over all heads

and compare candidates with ``python benchmarks/wordlinks.py MODEL_DIR`` (entropy of each
layer/head on IWSLT sentences, and agreement of its links with the guided head's).

Caching. The pipeline stores, per (normalised sentence, translation), the *word-level* matrix
over the words of the normalised sentence (:class:`WordAttention`, sparse JSON: the 8 largest
weights of each English word, x1000) under the engine's cache namespace + ``|links``. It is kept
at that level, not at the level of the user's words, because the same normalised sentence can
come from differently written input (``tên_lửa`` / ``tên lửa``): :func:`sentence_links` merges
its columns into the words as written. Fresh results go through the same compaction, so a
cached document links exactly as an uncached one.

Quality
=======
:func:`quality_scores` embeds, in ONE call per document, the normalised sources, their
translations and two fixed sets of unrelated reference sentences (``REFERENCE_VI``,
``REFERENCE_EN``; cached per process by :func:`mt.align.embed`) with multilingual-e5-small.
With s, t the source and translation embeddings:

* ``similarity`` = cos(s, t);
* ``quality`` = cos(s, t) - mean cos(t, REFERENCE_VI): how much closer the translation is to its
  source than to unrelated Vietnamese text;
* ``english`` = mean cos(t, REFERENCE_EN) - mean cos(t, REFERENCE_VI): is it English at all.

``flagged`` = ``quality < QUALITY_THRESHOLD`` or ``english < ENGLISH_THRESHOLD``. Why not the
plain cosine: e5's cosines carry a language bias. On IWSLT'15 dev2010 (768 TED line pairs)
human pairs have cosine 0.88 on average and mismatched pairs (vi line i vs a random other en
line) 0.77 -- separable (equal error rate 1.6 % at 0.824) -- but the gibberish of the random
test model, full of Vietnamese syllables, scores 0.83 on average (p90 0.85): as close to *any*
Vietnamese sentence as a real translation is to its source, so half of it would pass. An
untranslated copy scores 1.0. The margin and the language test remove both
(``benchmarks/quality.py``, calibrated on dev2010, checked on tst2010):

    quality   real pairs   dev2010 mean 0.124, p1 0.065, p5 0.083   tst2010 p1 0.067, p5 0.086
              mismatched   dev2010 mean 0.012, p95 0.052, p99 0.065; tst2010 p95 0.053, p99 0.068
              tiny model   dev2010 (200 lines) max 0.045
              equal error rate: dev2010 t = 0.065 (1.0 % each way), tst2010 t = 0.068 (1.2 %)
    english   real en lines      dev2010 p1 -0.034, min -0.076;  tst2010 p1 -0.033
              copies (vi as en)  dev2010 p99 -0.068, max -0.020;  tst2010 p99 -0.071
              equal error rate: dev2010 t = -0.039 (0.3 %), tst2010 t = -0.041 (0.2 %)

``QUALITY_THRESHOLD = 0.065`` and ``ENGLISH_THRESHOLD = -0.04`` (the dev2010 equal-error
points). Flagged on dev2010: 1.4 % of the human translations, 99.0 % of the mismatched pairs,
99.7 % of the untranslated copies and all 200 random-model translations; on the held-out tst2010
(1,342 pairs): 1.1 % of the human translations, 98.4 % mismatched, 99.8 % copies. What the flag does not see: a fluent translation that
drops or distorts a detail (the embedding of the whole sentence barely moves), and very short
lines, whose embeddings are noisy. The references are everyday sentences; news text is close
enough (the seed article's translations by the random model are all flagged).
"""

from __future__ import annotations

import json
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from .normalize import Normalized

log = logging.getLogger(__name__)

__all__ = [
    "MIN_LINK_WEIGHT",
    "ENGLISH_THRESHOLD",
    "QUALITY_THRESHOLD",
    "QualityScores",
    "TokenAttention",
    "WordAttention",
    "WordLinks",
    "alignment_choice",
    "decoder_lead",
    "engine_attention",
    "flag",
    "forced_cross_attention",
    "is_punctuation",
    "links_from_matrix",
    "piece_spans",
    "quality_scores",
    "sentence_links",
    "split_words",
    "transformers_attention",
    "word_attention",
    "word_matrix",
]

QUALITY_THRESHOLD = 0.065  # see the module docstring and benchmarks/quality.py
ENGLISH_THRESHOLD = -0.04
MIN_LINK_WEIGHT = 0.10  # attention mass an English word must put on its Vietnamese word
RECORD_VERSION = 1
RECORD_MIN_WEIGHT = 0.005  # word attention below this is not stored in the cache record
RECORD_MAX_PER_ROW = 8  # nor beyond the 8 largest weights of an English word
ATTENTION_BUDGET_BYTES = 256 << 20  # attention tensors of one teacher-forced batch (all layers)
MAX_ATTENTION_BATCH = 64

SPIECE = "\u2581"  # SentencePiece word-start mark

# --------------------------------------------------------------------------- data


@dataclass
class TokenAttention:
    """Cross-attention of one sentence pair at subword level (the engine contract)."""

    src_spans: list[tuple[int, int]]  # char spans of source pieces in the source sentence string
    tgt_spans: list[tuple[int, int]]  # char spans of target pieces in the translation string
    weights: np.ndarray  # float32 (len(tgt_spans), len(src_spans)), rows = target pieces


@dataclass
class WordAttention:
    """Word-level attention of one sentence pair, on the NORMALISED source: what the cache keeps.

    Source words are :func:`split_words` of the normalised sentence (the user's own words are
    unions of these: ``tên_lửa`` -> ``tên`` ``lửa``), target words those of the translation.
    Kept at this level because the same normalised sentence can come from differently written
    input (``tên_lửa`` or ``tên lửa``): :func:`sentence_links` merges columns into the words
    as written."""

    src_spans: list[tuple[int, int]]  # words of the normalised sentence
    tgt_spans: list[tuple[int, int]]  # words of the translation
    weights: np.ndarray  # float32 (len(tgt_spans), len(src_spans))

    def to_record(self) -> str:
        """Compact JSON: spans, and per English word its largest weights (x1000, sparse)."""
        rows = []
        for row in np.asarray(self.weights, dtype=np.float32):
            order = np.argsort(-row, kind="stable")[:RECORD_MAX_PER_ROW]
            cells: list[int] = []
            for j in order:
                value = int(round(float(row[j]) * 1000))
                if row[j] < RECORD_MIN_WEIGHT or value <= 0:
                    break
                cells += [int(j), value]
            rows.append(cells)
        return json.dumps(
            {"v": RECORD_VERSION, "s": [list(x) for x in self.src_spans], "t": [list(x) for x in self.tgt_spans],
             "w": rows},
            separators=(",", ":"),
        )

    @classmethod
    def from_record(cls, record: str) -> "WordAttention":
        """Inverse of :meth:`to_record`; ValueError (or KeyError/TypeError) on a foreign record."""
        data = json.loads(record)
        if not isinstance(data, dict) or data.get("v") != RECORD_VERSION:
            raise ValueError("not a word-link record of this version")
        src = [(int(a), int(b)) for a, b in data["s"]]
        tgt = [(int(a), int(b)) for a, b in data["t"]]
        if len(data["w"]) != len(tgt):
            raise ValueError("word-link record: rows do not match the target words")
        weights = np.zeros((len(tgt), len(src)), dtype=np.float32)
        for i, cells in enumerate(data["w"]):
            for j, value in zip(cells[0::2], cells[1::2]):
                weights[i, int(j)] = int(value) / 1000.0
        return cls(src, tgt, weights)

    def compacted(self) -> "WordAttention":
        """What the cache gives back; fresh results go through it too, so hits and misses agree."""
        return WordAttention.from_record(self.to_record())


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


# --------------------------------------------------------------------------- words

_W = r"[\w\u0300-\u036f]"  # word characters, combining marks included (decomposed input)
_WORD_RE = re.compile(
    rf"{_W}+(?:(?:['’\-&+.]|(?<=\d)[,:](?=\d)){_W}+)*"  # don't, oxy-hydro, U.S, 2,000, 10:30, tên_lửa
    r"|([^\w\s\u0300-\u036f])\1*"  # one punctuation character, repeated: , " ... --
)


def split_words(text: str) -> list[tuple[int, int]]:
    """Spans of the words of ``text`` (see the module docstring); together they cover every
    non-space character exactly once."""
    return [m.span() for m in _WORD_RE.finditer(text)]


def is_punctuation(word: str) -> bool:
    """True for a word with no letter or digit."""
    return not any(ch.isalnum() for ch in word)


# --------------------------------------------------------------------------- pieces -> chars


def _surface(piece: str | None) -> str | None:
    """The characters a piece stands for ('' for a bare word-start mark, None when unknown)."""
    if piece is None:
        return None
    if len(piece) > 2 and piece.startswith("<") and piece.endswith(">"):  # <unk>, <0xE1>, <pad>
        return None
    return piece.replace(SPIECE, " ").strip()


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _trim_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _match_at(text: str, i: int, surface: str) -> int | None:
    """End of ``surface`` read at ``text[i:]`` (exactly, or after NFKC: ``…`` vs ``...``)."""
    if text.startswith(surface, i):
        return i + len(surface)
    for k in range(1, len(surface) + 3):
        if i + k > len(text):
            break
        if unicodedata.normalize("NFKC", text[i : i + k]) == surface:
            return i + k
    return None


_SEARCH_WINDOW = 48


def _find(text: str, surface: str, start: int, *, word_start: bool) -> int:
    """First occurrence of ``surface`` at or after ``start`` (within a window), at the start of a
    word when the piece carries the word-start mark; -1 if none."""
    stop = start + _SEARCH_WINDOW + len(surface)
    found = text.find(surface, start, stop)
    while word_start and found > 0 and not text[found - 1].isspace():
        found = text.find(surface, found + 1, stop)
    return found


def piece_spans(pieces: Sequence[str | None], text: str) -> list[tuple[int, int]]:
    """Char span in ``text`` of each piece, matching pieces left to right.

    ``pieces`` are SentencePiece strings (``▁word``; None for an unknown piece such as
    ``<unk>``). A bare ``▁`` gets an empty span. Pieces that cannot be matched (unknown, or
    changed by the tokenizer's normalisation) share the text between their matched neighbours,
    so no character is lost.
    """
    spans: list[tuple[int, int] | None] = [None] * len(pieces)
    pending: list[int] = []
    cursor = 0

    def settle(end: int) -> None:
        start = _skip_space(text, cursor)
        stop = max(start, _trim_end(text, start, end))
        for k in pending:
            spans[k] = (start, stop)
        pending.clear()

    for i, piece in enumerate(pieces):
        surface = _surface(piece)
        if surface is None:
            pending.append(i)
            continue
        j = _skip_space(text, cursor)
        if surface == "":
            spans[i] = (j, j)
            continue
        end = _match_at(text, j, surface)
        start = j
        if end is None:
            found = _find(text, surface, j, word_start=piece.startswith(SPIECE))
            if found < 0:
                pending.append(i)
                continue
            start, end = found, found + len(surface)
            if not pending and found > j:
                start = j  # skipped characters belong to this piece
        if pending:
            settle(start)
        spans[i] = (start, end)
        cursor = end
    if pending:
        settle(len(text))
    return [s if s is not None else (cursor, cursor) for s in spans]


# --------------------------------------------------------------------------- pieces -> words


def _overlaps(spans: Sequence[tuple[int, int]], word_spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """For each span, the indices of the words it overlaps (word spans sorted, disjoint)."""
    starts = [s for s, _ in word_spans]
    out = []
    import bisect

    for a, b in spans:
        hit = []
        if b > a:
            k = max(0, bisect.bisect_right(starts, a) - 1)
            while k < len(word_spans) and word_spans[k][0] < b:
                if word_spans[k][1] > a:
                    hit.append(k)
                k += 1
        out.append(hit)
    return out


def word_matrix(
    weights: np.ndarray,
    src_piece_words: Sequence[Sequence[int]],
    tgt_piece_words: Sequence[Sequence[int]],
    n_src: int,
    n_tgt: int,
) -> np.ndarray:
    """(n_tgt, n_src) word-level attention: sum over a source word's pieces, mean over a target
    word's pieces. ``*_piece_words[k]``: the words piece k overlaps (a piece over two words gives
    each half; a piece over none is ignored)."""
    weights = np.asarray(weights, dtype=np.float32)
    P = np.zeros((len(src_piece_words), n_src), dtype=np.float32)
    for p, words in enumerate(src_piece_words):
        for w in words:
            P[p, w] = 1.0 / len(words)
    Q = np.zeros((n_tgt, len(tgt_piece_words)), dtype=np.float32)
    for t, words in enumerate(tgt_piece_words):
        for w in words:
            Q[w, t] = 1.0
    counts = Q.sum(axis=1, keepdims=True)
    Q = np.divide(Q, counts, out=np.zeros_like(Q), where=counts > 0)
    if weights.size == 0:
        return np.zeros((n_tgt, n_src), dtype=np.float32)
    return Q @ weights @ P


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


def word_attention(attention: TokenAttention, normalized_text: str, translation: str) -> WordAttention:
    """Pieces -> words of the normalised sentence and of the translation (see :func:`word_matrix`)."""
    src_words = split_words(normalized_text)
    tgt_words = split_words(translation)
    n = len(normalized_text)
    src_spans = [(min(max(a, 0), n), min(max(b, a, 0), n)) for a, b in attention.src_spans]
    M = word_matrix(
        attention.weights,
        _overlaps(src_spans, src_words),
        _overlaps(attention.tgt_spans, tgt_words),
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

    ``normalized`` is :func:`mt.normalize.normalize` of ``source``; ``attention`` is the
    :class:`WordAttention` of ``normalized.text`` and ``translation``. Its columns are merged
    (summed) into the words as written, through ``normalized.offsets``."""
    src_local = split_words(source)
    tgt_spans = split_words(translation)
    src_words = [source[a:b] for a, b in src_local]
    tgt_words = [translation[a:b] for a, b in tgt_spans]
    alignment: list[list[int]] = []
    usable = (
        attention is not None
        and src_local
        and tgt_spans
        and [tuple(x) for x in attention.tgt_spans] == tgt_spans
        and attention.weights.shape == (len(attention.tgt_spans), len(attention.src_spans))
    )
    if usable:
        n = len(normalized.text)
        original = [normalized.original_span(min(a, n), min(max(a, b), n)) for a, b in attention.src_spans]
        merge = word_matrix(
            attention.weights, _overlaps(original, src_local), [[t] for t in range(len(tgt_spans))],
            len(src_local), len(tgt_spans),
        )
        alignment = links_from_matrix(
            merge,
            [is_punctuation(w) for w in src_words],
            [is_punctuation(w) for w in tgt_words],
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


# --------------------------------------------------------------------------- engines


def alignment_choice(family: str, n_layers: int, n_heads: int) -> tuple[list[int], int | None]:
    """(decoder layers, head or None for the mean over heads) from ``MT_ALIGN_LAYER`` /
    ``MT_ALIGN_HEAD``, else the family default (marian: last layer, head 0; others: last layer,
    mean). Raises ConfigError for a value out of range."""
    layer_env = os.environ.get("MT_ALIGN_LAYER", "").strip()
    head_env = os.environ.get("MT_ALIGN_HEAD", "").strip().lower()
    try:
        layers = [int(x) for x in layer_env.split(",") if x.strip()] if layer_env else [-1]
    except ValueError:
        raise ConfigError(f"MT_ALIGN_LAYER={layer_env!r}: use a layer number, or several separated by commas") from None
    for layer in layers:
        if not -n_layers <= layer < n_layers:
            raise ConfigError(f"MT_ALIGN_LAYER={layer} is outside the model's {n_layers} decoder layers")
    layers = [layer % n_layers for layer in layers]
    if head_env in ("mean", "all", "avg"):
        head = None
    elif head_env:
        try:
            head = int(head_env)
        except ValueError:
            raise ConfigError(f"MT_ALIGN_HEAD={head_env!r}: use a head number or 'mean'") from None
        if not 0 <= head < n_heads:
            raise ConfigError(f"MT_ALIGN_HEAD={head} is outside the model's {n_heads} heads")
    else:
        head = 0 if family == "marian" else None
    return layers, head


def _collapse(text: str) -> tuple[str, list[int]]:
    """``" ".join(text.split())`` (what Engine.translate feeds the model) and, for each of its
    characters plus the end, the index in ``text``."""
    out, where = [], []
    for m in re.finditer(r"\S+", text):
        if out:
            out.append(" ")
            where.append(m.start() - 1)
        out.append(m.group())
        where.extend(range(m.start(), m.end()))
    where.append(len(text))
    return "".join(out), where


def _vocab(tokenizer) -> dict[str, int]:
    vocab = getattr(tokenizer, "_mt_vocab", None)
    if vocab is None:
        vocab = dict(tokenizer.get_vocab())
        try:
            tokenizer._mt_vocab = vocab
        except AttributeError:  # pragma: no cover - slotted tokenizers
            pass
    return vocab


def _greedy_ids(surface: str, word_start: bool, vocab: dict[str, int], unk: int) -> list[int]:
    """Longest-match segmentation of ``surface`` into vocabulary pieces (for text the target
    tokenizer calls unknown, e.g. a Vietnamese name the model copied with source pieces)."""
    ids: list[int] = []
    for n, word in enumerate(surface.split()):
        s = (SPIECE + word) if (word_start or n > 0) else word
        i = 0
        while i < len(s):
            for k in range(min(len(s) - i, 24), 0, -1):
                tid = vocab.get(s[i : i + k])
                if tid is not None and tid != unk:
                    ids.append(tid)
                    i += k
                    break
            else:
                ids.append(unk)
                i += 1
    return ids


def _target_ids(tokenizer, texts: list[str]) -> list[list[int]]:
    """Target-side token ids of each text, no special tokens; unknown pieces re-segmented."""
    encoded = tokenizer(text_target=texts, add_special_tokens=False)["input_ids"]
    unk = tokenizer.unk_token_id
    pieces_of = tokenizer.convert_ids_to_tokens
    out = []
    for text, ids in zip(texts, encoded):
        ids = list(ids)
        if unk is not None and unk in ids:
            pieces = tokenizer.convert_ids_to_tokens(ids)
            spans = piece_spans([None if t == unk else p for t, p in zip(ids, pieces)], text)
            fixed: list[int] = []
            k = 0
            while k < len(ids):
                if ids[k] != unk:
                    fixed.append(ids[k])
                    k += 1
                    continue
                run_end = k
                while run_end < len(ids) and ids[run_end] == unk:
                    run_end += 1
                a = spans[k][0]
                b = max(spans[j][1] for j in range(k, run_end))
                surface = text[a:b]
                word_start = (a == 0 or text[a - 1].isspace()) and not (fixed and pieces_of(fixed[-1:]) == [SPIECE])
                fixed.extend(_greedy_ids(surface, word_start, _vocab(tokenizer), unk) if surface else ids[k:run_end])
                k = run_end
            ids = fixed
        out.append(ids)
    return out


def _attention_batches(lengths: list[int], bytes_per_cell: int) -> list[list[int]]:
    """Longest first; a batch's padded attention tensors stay within ATTENTION_BUDGET_BYTES."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in order:
        n = max(1, lengths[i])
        w = max(width, n)
        if current and (len(current) >= MAX_ATTENTION_BATCH or (len(current) + 1) * w * w * bytes_per_cell > ATTENTION_BUDGET_BYTES):
            batches.append(current)
            current, w = [], n
        current.append(i)
        width = w
    if current:
        batches.append(current)
    return batches


def _shape(model) -> tuple[int, int, int]:
    """(decoder layers, decoder heads, encoder layers) of a seq2seq model config."""
    cfg = model.config
    n_layers = getattr(cfg, "decoder_layers", None) or getattr(cfg, "num_decoder_layers", None) or cfg.num_layers
    n_heads = getattr(cfg, "decoder_attention_heads", None) or cfg.num_heads
    n_enc = getattr(cfg, "encoder_layers", None) or getattr(cfg, "num_layers", None) or n_layers
    return int(n_layers), int(n_heads), int(n_enc)


def decoder_lead(engine: Any) -> list[int]:
    """Decoder input before the first target piece, as ``generate`` builds it for this engine:
    the decoder start token, then the forced BOS (target language code) when there is one."""
    model = engine.model
    gen, cfg = model.generation_config, model.config
    family_kwargs = getattr(engine, "_gen_kwargs", {}) or {}
    start = family_kwargs.get("decoder_start_token_id")
    if start is None:
        start = gen.decoder_start_token_id if gen.decoder_start_token_id is not None else cfg.decoder_start_token_id
    forced_bos = family_kwargs.get("forced_bos_token_id", getattr(gen, "forced_bos_token_id", None))
    return [int(start)] + ([int(forced_bos)] if forced_bos is not None else [])


def forced_cross_attention(
    engine: Any,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    *,
    layers: Sequence[int] | None = None,
    head: int | None | str = "default",
) -> list[np.ndarray]:
    """Teacher-forced cross-attention: for each sentence, a float32 array (target pieces, source
    positions) -- row t is the decoder step that predicts ``tgt_ids[t]``, columns are all of
    ``src_ids`` (EOS and language codes included).

    ``src_ids``: the encoder input (``engine._encode``); ``tgt_ids``: the target pieces without
    the decoder lead or EOS. ``layers``/``head``: default :func:`alignment_choice`; ``head=None``
    means the mean over heads, ``head="all"`` returns (layers, heads, T, S) per sentence instead
    (for benchmarks/wordlinks.py). Takes the engine lock.
    """
    import torch

    model = engine.model
    cfg = model.config
    n_layers, n_heads, n_enc = _shape(model)
    if layers is None or head == "default":
        default_layers, default_head = alignment_choice(engine.spec.family, n_layers, n_heads)
        layers = default_layers if layers is None else [layer % n_layers for layer in layers]
        head = default_head if head == "default" else head
    lead = decoder_lead(engine)
    eos = cfg.eos_token_id if isinstance(cfg.eos_token_id, int) else 0
    pad = cfg.pad_token_id if cfg.pad_token_id is not None else eos
    bytes_per_cell = 4 * n_heads * (n_enc + 3 * n_layers)
    lengths = [max(len(s), len(t) + len(lead)) for s, t in zip(src_ids, tgt_ids)]
    out: list[np.ndarray] = [np.zeros((0, 0), dtype=np.float32)] * len(src_ids)
    with engine._lock:
        impl = getattr(cfg, "_attn_implementation", None)
        eager = impl not in (None, "eager")
        if eager:  # sdpa/flash kernels return no attention weights
            model.set_attn_implementation("eager")
        try:
            for batch in _attention_batches(lengths, bytes_per_cell):
                S = max(max(len(src_ids[k]) for k in batch), 1)
                seqs = [lead + list(tgt_ids[k]) for k in batch]  # the EOS step is not needed
                T = max(len(q) for q in seqs)
                input_ids = torch.full((len(batch), S), pad, dtype=torch.long)
                attention_mask = torch.zeros((len(batch), S), dtype=torch.long)
                decoder_ids = torch.full((len(batch), T), pad, dtype=torch.long)
                decoder_mask = torch.zeros((len(batch), T), dtype=torch.long)
                for r, k in enumerate(batch):
                    input_ids[r, : len(src_ids[k])] = torch.tensor(list(src_ids[k]), dtype=torch.long)
                    attention_mask[r, : len(src_ids[k])] = 1
                    decoder_ids[r, : len(seqs[r])] = torch.tensor(seqs[r], dtype=torch.long)
                    decoder_mask[r, : len(seqs[r])] = 1
                with torch.inference_mode():
                    result = model(
                        input_ids=input_ids.to(engine.device),
                        attention_mask=attention_mask.to(engine.device),
                        decoder_input_ids=decoder_ids.to(engine.device),
                        decoder_attention_mask=decoder_mask.to(engine.device),
                        output_attentions=True,
                        use_cache=False,
                        return_dict=True,
                    )
                    if head == "all":
                        cross = torch.stack(list(result.cross_attentions), dim=1).float()  # (B, L, H, T, S)
                    else:
                        cross = torch.stack([result.cross_attentions[layer] for layer in layers]).float().mean(dim=0)
                        cross = cross.mean(dim=1) if head is None else cross[:, int(head)]  # (B, T, S)
                    cross = cross.cpu().numpy()
                del result
                for r, k in enumerate(batch):
                    n_t, n_s = len(tgt_ids[k]), len(src_ids[k])
                    rows = slice(len(lead) - 1, len(lead) - 1 + n_t)  # row i predicts decoder input i + 1
                    out[k] = np.ascontiguousarray(cross[r][..., rows, :n_s], dtype=np.float32)
        finally:
            if eager:
                model.set_attn_implementation(impl)
    return out


def transformers_attention(engine: Any, sources: Sequence[str], translations: Sequence[str]) -> list[TokenAttention]:
    """The ``attention`` of a :class:`mt.translate.TransformersEngine` (the contract in
    docs/CONTRACTS.md; see the module docstring): sources encoded exactly as ``translate`` does,
    translations re-tokenised with the target tokenizer and forced as decoder input."""
    sources, translations = list(sources), list(translations)
    if len(sources) != len(translations):
        raise ValueError("attention() needs one translation per source sentence")
    out = [TokenAttention([], [], np.zeros((0, 0), dtype=np.float32)) for _ in sources]
    todo = [i for i in range(len(sources)) if sources[i].strip() and translations[i].strip()]
    if not todo:
        return out
    spec, tok = engine.spec, engine.tokenizer
    prefix, strip_prefix = spec.prefix or "", spec.strip_prefix or ""
    collapsed = [_collapse(sources[i]) for i in todo]
    model_inputs = [prefix + text for text, _ in collapsed]
    forced_texts = [strip_prefix + translations[i].strip() for i in todo]
    special = set(tok.all_special_ids) - {tok.unk_token_id}

    with engine._lock:
        src_ids = engine._encode(model_inputs)
        tgt_ids = _target_ids(tok, forced_texts)
        matrices = forced_cross_attention(engine, src_ids, tgt_ids)
    for k, i in enumerate(todo):
        # source pieces: spans in "prefix + collapsed" -> in the sentence as given; specials and prefix dropped
        ids = src_ids[k]
        pieces = [None if t == tok.unk_token_id else p for t, p in zip(ids, tok.convert_ids_to_tokens(ids))]
        positions = [j for j, t in enumerate(ids) if t not in special]
        where = collapsed[k][1]
        keep, src_spans = [], []
        for j, (a, b) in zip(positions, piece_spans([pieces[j] for j in positions], model_inputs[k])):
            if prefix and b <= len(prefix):
                continue  # the model's task prefix
            a, b = max(a - len(prefix), 0), max(b - len(prefix), 0)
            keep.append(j)
            src_spans.append((where[a], where[b - 1] + 1) if b > a else (where[a], where[a]))
        # target pieces: spans in "strip_prefix + translation" -> in the translation
        ids = tgt_ids[k]
        pieces = [None if t == tok.unk_token_id else p for t, p in zip(ids, tok.convert_ids_to_tokens(ids))]
        shift = len(strip_prefix)
        tgt_spans = [(max(a - shift, 0), max(b - shift, 0)) for a, b in piece_spans(pieces, forced_texts[k])]
        # pieces inside strip_prefix ("en: ") end at 0 after the shift and overlap no word
        weights = matrices[k][:, keep] if keep else np.zeros((len(ids), 0), dtype=np.float32)
        out[i] = TokenAttention(src_spans, tgt_spans, np.ascontiguousarray(weights, dtype=np.float32))
    return out


def engine_attention(engine: Any, sources: Sequence[str], translations: Sequence[str]) -> list[TokenAttention] | None:
    """``engine.attention(sources, translations)``, looking through wrappers that have none
    (:class:`mt.batching.BatchingEngine` and the like keep the real engine in ``.inner``); a
    :class:`mt.translate.TransformersEngine` without the method gets :func:`transformers_attention`.
    None when the engine cannot give its attention (no word links then)."""
    from .translate import TransformersEngine

    current = engine
    for _ in range(8):
        if callable(getattr(type(current), "attention", None)):
            return current.attention(sources, translations)
        if isinstance(current, TransformersEngine):
            return transformers_attention(current, sources, translations)
        inner = vars(current).get("inner") if hasattr(current, "__dict__") else None
        if inner is None:
            return None
        current = inner
    return None


# --------------------------------------------------------------------------- quality

# Unrelated everyday sentences (written for this module), the baselines of the quality scores:
# how similar a translation is to Vietnamese, and to English, that is NOT its source.
REFERENCE_VI = (
    "Hôm nay trời nắng đẹp và có gió nhẹ.",
    "Giá rau ở chợ tăng mạnh vào sáng nay.",
    "Học sinh cả nước bắt đầu năm học mới.",
    "Bác sĩ khuyên người dân uống đủ nước mỗi ngày.",
    "Đội bóng của trường đã thắng trận đấu tối qua.",
    "Thành phố sẽ xây thêm ba cây cầu mới.",
    "Anh ấy làm việc ở một công ty phần mềm.",
    "Chúng tôi đi du lịch Đà Lạt vào mùa hè.",
    "Nông dân đang thu hoạch lúa ở đồng bằng.",
    "Cuộc họp kéo dài đến chiều muộn.",
    "Bà tôi thường kể chuyện cổ tích cho các cháu.",
    "Quốc hội thông qua luật đất đai sửa đổi.",
    "Cửa hàng mở cửa từ tám giờ sáng.",
    "Con mèo ngủ trên ghế cạnh cửa sổ.",
    "Xe buýt số mười chạy qua trung tâm thành phố.",
    "Cô giáo giao bài tập về nhà cho cả lớp.",
)
REFERENCE_EN = (
    "The weather is sunny today with a light breeze.",
    "Vegetable prices at the market rose sharply this morning.",
    "Students across the country start the new school year.",
    "Doctors advise people to drink enough water every day.",
    "The school team won last night's match.",
    "The city will build three more bridges.",
    "He works at a software company.",
    "We went on holiday to Da Lat in the summer.",
    "Farmers are harvesting rice in the delta.",
    "The meeting lasted until late afternoon.",
    "My grandmother often tells fairy tales to her grandchildren.",
    "The National Assembly passed the amended land law.",
    "The shop opens at eight in the morning.",
    "The cat is sleeping on the chair by the window.",
    "Bus number ten runs through the city centre.",
    "The teacher gave the whole class homework.",
)


@dataclass(frozen=True)
class QualityScores:
    """Per-pair scores (float32 arrays, one entry per pair; 0 where a side is blank)."""

    similarity: np.ndarray  # cosine of source and translation embeddings
    quality: np.ndarray  # similarity minus the translation's mean cosine with REFERENCE_VI
    english: np.ndarray  # translation's mean cosine with REFERENCE_EN minus that with REFERENCE_VI

    def flagged(self) -> np.ndarray:
        return flag(self.quality, self.english)


def flag(quality, english):
    """Low confidence: not clearly closer to its source than to unrelated Vietnamese text, or
    closer to Vietnamese than to English (untranslated). Works on floats and arrays."""
    return (np.asarray(quality) < QUALITY_THRESHOLD) | (np.asarray(english) < ENGLISH_THRESHOLD)


def quality_scores(
    sources: Sequence[str], translations: Sequence[str], embed: Callable[[Sequence[str]], np.ndarray] | None = None
) -> QualityScores:
    """Score each (source, translation) pair with ONE embedding call for all of them (the
    reference sentences ride along; :func:`mt.align.embed` caches them per process).
    ``embed`` defaults to :func:`mt.align.embed`."""
    if len(sources) != len(translations):
        raise ValueError("quality_scores needs one translation per source")
    n = len(sources)
    similarity, quality, english = (np.zeros(n, dtype=np.float32) for _ in range(3))
    todo = [i for i in range(n) if str(sources[i]).strip() and str(translations[i]).strip()]
    if todo:
        if embed is None:
            from .align import embed
        texts = [sources[i] for i in todo] + [translations[i] for i in todo] + list(REFERENCE_VI) + list(REFERENCE_EN)
        vectors = np.asarray(embed(texts), dtype=np.float32)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        k, r = len(todo), len(REFERENCE_VI)
        src, tgt = vectors[:k], vectors[k : 2 * k]
        ref_vi, ref_en = vectors[2 * k : 2 * k + r], vectors[2 * k + r :]
        cos = np.einsum("ij,ij->i", src, tgt)
        to_vi = (tgt @ ref_vi.T).mean(axis=1)
        to_en = (tgt @ ref_en.T).mean(axis=1)
        similarity[todo], quality[todo], english[todo] = cos, cos - to_vi, to_en - to_vi
    return QualityScores(similarity, quality, english)
