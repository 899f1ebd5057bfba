"""The engine attention contract: what ``engine.attention(sources, translations)`` returns.

Every engine gives, per sentence pair, a :class:`TokenAttention`: char spans of its source and
target pieces and a (target pieces x source pieces) cross-attention matrix. The pieces and spans
are built here, the same way for every engine (source as ``Engine.translate`` encodes it: model
prefix + whitespace-collapsed sentence; target re-tokenised from ``strip_prefix + translation``),
so only the weights differ between engines. Word links (mt.links) are built on top of this and
never look inside an engine. See docs/CONTRACTS.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError
from ..settings import Settings, current

if TYPE_CHECKING:  # numpy is imported when used: not on the plain translation path (start time)
    import numpy as np

SPIECE = "\u2581"  # SentencePiece word-start mark


@dataclass
class TokenAttention:
    """Cross-attention of one sentence pair at subword level (the engine contract)."""

    src_spans: list[tuple[int, int]]  # char spans of source pieces in the source sentence string
    tgt_spans: list[tuple[int, int]]  # char spans of target pieces in the translation string
    weights: np.ndarray  # float32 (len(tgt_spans), len(src_spans)), rows = target pieces


def empty_attention() -> TokenAttention:
    import numpy as np

    return TokenAttention([], [], np.zeros((0, 0), dtype=np.float32))


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


def collapse(text: str) -> tuple[str, list[int]]:
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


# --------------------------------------------------------------------------- target re-tokenisation


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


def target_ids(tokenizer, texts: list[str]) -> list[list[int]]:
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


# --------------------------------------------------------------------------- the contract


def alignment_choice(family: str, n_layers: int, n_heads: int, config: Settings | None = None
                     ) -> tuple[list[int], int | None]:
    """(decoder layers, head or None for the mean over heads) from ``config``'s align_layer /
    align_head (MT_ALIGN_LAYER / MT_ALIGN_HEAD; default: the process's settings), else the family
    default (marian: last layer, head 0 -- OPUS-MT's guided-alignment head; others: last layer,
    mean). Raises ConfigError for a value out of range."""
    config = config or current()
    layer_env = (config.align_layer or "").strip()
    head_env = (config.align_head or "").strip().lower()
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


@dataclass
class AttentionRequest:
    """The texts an engine encodes for the word links of sentence pairs ``todo`` (both sides
    non-blank): ``model_inputs`` (prefix + collapsed source), ``forced_texts`` (strip_prefix +
    translation) and, per source, ``where`` (collapsed char -> char of the sentence as given)."""

    todo: list[int]
    model_inputs: list[str]
    forced_texts: list[str]
    where: list[list[int]]
    prefix: str
    strip_prefix: str

    @classmethod
    def build(cls, spec: Any, sources: Sequence[str], translations: Sequence[str]) -> "AttentionRequest":
        if len(sources) != len(translations):
            raise ValueError("attention() needs one translation per source sentence")
        todo = [i for i in range(len(sources)) if sources[i].strip() and translations[i].strip()]
        prefix, strip_prefix = spec.prefix or "", spec.strip_prefix or ""
        collapsed = [collapse(sources[i]) for i in todo]
        return cls(
            todo=todo,
            model_inputs=[prefix + text for text, _ in collapsed],
            forced_texts=[strip_prefix + translations[i].strip() for i in todo],
            where=[where for _, where in collapsed],
            prefix=prefix,
            strip_prefix=strip_prefix,
        )

    def token_attention(
        self,
        tokenizer: Any,
        k: int,
        src_ids: Sequence[int],
        src_pieces: Sequence[str],
        tgt_ids: Sequence[int],
        tgt_pieces: Sequence[str],
        matrix: np.ndarray,
        rows: Sequence[int] | None = None,
    ) -> TokenAttention:
        """The TokenAttention of request ``k`` from the engine's pieces and its (target x all
        source positions) matrix: special tokens and the model prefix dropped on the source side,
        spans mapped back to the sentence as given and to the translation. ``rows``: the target
        rows to keep (default all)."""
        import numpy as np

        special = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        unk = tokenizer.unk_token_id
        prefix = self.prefix
        pieces = [None if t == unk else p for t, p in zip(src_ids, src_pieces)]
        positions = [j for j, t in enumerate(src_ids) if t not in special]
        where = self.where[k]
        keep, src_spans = [], []
        for j, (a, b) in zip(positions, piece_spans([pieces[j] for j in positions], self.model_inputs[k])):
            if prefix and b <= len(prefix):
                continue  # the model's task prefix
            a, b = max(a - len(prefix), 0), max(b - len(prefix), 0)
            keep.append(j)
            src_spans.append((where[a], where[b - 1] + 1) if b > a else (where[a], where[a]))
        rows = list(range(len(tgt_ids))) if rows is None else list(rows)
        pieces = [None if tgt_ids[r] == unk else tgt_pieces[r] for r in rows]
        shift = len(self.strip_prefix)
        # pieces inside strip_prefix ("en: ") end at 0 after the shift and overlap no word
        tgt_spans = [(max(a - shift, 0), max(b - shift, 0)) for a, b in piece_spans(pieces, self.forced_texts[k])]
        weights = matrix[rows][:, keep] if keep else np.zeros((len(rows), 0), dtype=np.float32)
        return TokenAttention(src_spans, tgt_spans, np.ascontiguousarray(weights, dtype=np.float32))


def engine_attention(engine: Any, sources: Sequence[str], translations: Sequence[str]) -> list[TokenAttention] | None:
    """``engine.attention(sources, translations)``, looking through wrappers that have none
    (:class:`mt.engines.request_queue.BatchingEngine` and the like keep the real engine in
    ``.inner``). None when the engine cannot give its attention (no word links then)."""
    current = engine
    for _ in range(8):
        if callable(getattr(type(current), "attention", None)):
            return current.attention(sources, translations)
        inner = vars(current).get("inner") if hasattr(current, "__dict__") else None
        if inner is None:
            return None
        current = inner
    return None
