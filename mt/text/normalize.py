"""Natural text for the MT model, with a map back to the user's text.

Input may come from a Vietnamese word segmenter (``tên_lửa``, every token, punctuation
and straight quotes included, separated by one space: the seed article) or be "spaced"
(same, without ``_``).  The model was trained on natural text, so :func:`normalize`
undoes that rendering, applies Unicode NFC and puts every tone mark in one place
(:mod:`mt.text.tones`).  Every output character remembers the input character it came
from (:attr:`Normalized.offsets`), because the aligned view and word links highlight
the user's own text.

Everything is linear: compiled regexes, tone fixes computed once per distinct word.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain

from .tones import TONE_STYLES, _check_style, _fix_tones, _is_syllable, normalize_tones

__all__ = ["TONE_STYLES", "Normalized", "is_word_segmented", "normalize", "normalize_tones"]


@dataclass(frozen=True)
class Normalized:
    """Normalised text plus, for each of its characters, where it came from."""

    text: str
    offsets: tuple[int, ...]  # len(text)+1 entries; offsets[-1] == len(original)
    # Original end of characters made from several input characters (NFC of decomposed
    # input): {index in text: end in original}.  Empty when every character is one input char.
    _ends: dict = field(default_factory=dict, repr=False, compare=False)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map normalised ``[start, end)`` to the ``[start, end)`` of the original it came from.

        A span that covers a removed space (``nặng",`` from ``nặng " ,``) covers it in the
        original too; an empty span maps to an empty span.
        """
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) outside normalised text of length {len(self.text)}")
        if start == end:
            return self.offsets[start], self.offsets[start]
        last = end - 1
        return self.offsets[start], self._ends.get(last, self.offsets[last] + 1)


# --------------------------------------------------------------------------- NFC with offsets

_TOKEN_RE = re.compile(r"\S+")
# Tokens with a combining diacritic (decomposed Vietnamese, e.g. from legacy converters).
_MARKED_TOKEN_RE = re.compile(r"(?<!\S)[^\s\u0300-\u036f]*[\u0300-\u036f]\S*")


@lru_cache(maxsize=1 << 14)
def _nfc_token(token: str) -> tuple[str, tuple[int, ...], tuple[tuple[int, int], ...]]:
    """NFC of one token: (text, start in token per char, (char, end) where end != start+1).

    Works per cluster (a starter and the combining marks after it); if composition
    crosses clusters (Hangul jamo) the whole token is one cluster.
    """
    target = unicodedata.normalize("NFC", token)
    bounds = [i for i in range(1, len(token)) if not unicodedata.combining(token[i])]
    out, starts, wide = [], [], []
    for start, end in zip([0, *bounds], [*bounds, len(token)]):
        piece = unicodedata.normalize("NFC", token[start:end])
        out.append(piece)
        if end - start != 1:
            wide.extend((len(starts) + k, end) for k in range(len(piece)))
        starts.extend([start] * len(piece))
    if "".join(out) != target:
        return target, (0,) * len(target), tuple((k, len(token)) for k in range(len(target)))
    return target, tuple(starts), tuple(wide)


def _nfc_tokens(text: str, tokens: re.Pattern) -> tuple[str, list[int], dict[int, int]]:
    """NFC every token ``tokens`` finds; the rest of ``text`` is copied as is."""
    pieces: list[str] = []
    starts: list[int] = []
    wide: dict[int, int] = {}
    pos = 0
    for match in tokens.finditer(text):
        token = match.group()
        if token.isascii():
            continue
        normal, rel_starts, rel_wide = _nfc_token(token)
        if normal == token and not rel_wide:
            continue
        start = match.start()
        pieces.append(text[pos:start])
        starts.extend(range(pos, start))
        base = len(starts)
        pieces.append(normal)
        starts.extend(map(start.__add__, rel_starts))
        for k, end in rel_wide:
            wide[base + k] = start + end
        pos = match.end()
    pieces.append(text[pos:])
    starts.extend(range(pos, len(text)))
    return "".join(pieces), starts, wide


def _nfc_with_map(text: str) -> tuple[str, list[int] | None, dict[int, int]]:
    """NFC ``text`` with, per output char, its start in ``text`` (None: unchanged) and
    the end of output chars made of several input chars.

    Whitespace never composes, so tokens are normalised one by one (each distinct token
    once); tokens with combining marks first, every token if that is not enough.
    """
    if unicodedata.is_normalized("NFC", text):
        return text, None, {}
    target = unicodedata.normalize("NFC", text)
    result = _nfc_tokens(text, _MARKED_TOKEN_RE)
    if result[0] != target:
        result = _nfc_tokens(text, _TOKEN_RE)
    return result


# --------------------------------------------------------------------------- detection

_UNDERSCORE_TOKEN_RE = re.compile(r"(?<!\S)\S*_\S*")
_SPLIT_PUNCT_RE = re.compile(r"(?<!\S)[,.;!?](?!\S)")  # ` , ` ` . `: punctuation split off
_ATTACHED_PUNCT_RE = re.compile(r"[^\W_][,.;!?](?!\S)")  # `word, ` `word.`: natural text
_URLISH_CHARS = frozenset("/\\@=#<>")


def _joinable(token: str) -> bool:
    """An ``a_b`` token a segmenter made (not a URL, path, e-mail or ``__dunder__``)."""
    return (
        not token.startswith("_")
        and not token.endswith("_")
        and "__" not in token
        and _URLISH_CHARS.isdisjoint(token)
    )


def _underscore_evidence(text: str) -> tuple[float, int]:
    """(score of ``_``-joined Vietnamese words, count of other ``_`` tokens).

    A join with a diacritic (``tên_lửa``) counts 1; an ASCII-only one (``tham_gia``,
    but also ``ho_ten`` in code) counts 1/2.
    """
    score, other = 0.0, 0
    for token, count in Counter(_UNDERSCORE_TOKEN_RE.findall(text)).items():
        if _joinable(token) and all(part and _is_syllable(part) for part in token.split("_")):
            score += count * (0.5 if token.isascii() else 1.0)
        else:
            other += count
    return score, other


_SAMPLE_CHARS = 1 << 20
_SAMPLE_WINDOWS = 8


def _sample(text: str) -> str:
    """A text's evenly spread windows, ~1M chars in all: enough to judge its rendering."""
    if len(text) <= _SAMPLE_CHARS:
        return text
    size = _SAMPLE_CHARS // _SAMPLE_WINDOWS
    step = (len(text) - size) // (_SAMPLE_WINDOWS - 1)
    return "\n".join(text[i * step : i * step + size] for i in range(_SAMPLE_WINDOWS))


def _detect(text: str) -> bool:
    """Word-segmented or spaced rendering? ``text`` is NFC (see is_word_segmented)."""
    text = _sample(text)
    split = len(_SPLIT_PUNCT_RE.findall(text))
    attached = len(_ATTACHED_PUNCT_RE.findall(text))
    if "_" in text:
        score, other = _underscore_evidence(text)
        tokens = max(1, len(_TOKEN_RE.findall(text)))
        if score > other:
            if attached > split:  # punctuation written naturally: need clear evidence
                if score >= 2 and score >= 0.1 * tokens:
                    return True
            elif score >= 1 and score >= 0.03 * tokens:
                return True
    return split > 0 and split > 2 * attached


def is_word_segmented(text: str) -> bool:
    """True if ``text`` is in a tokeniser's rendering that :func:`normalize` should undo.

    That is syllables joined by ``_`` (``tên_lửa``) in a fair share of the words, or
    punctuation split off by spaces (``Hà Nội , ngày 5 .``, the "spaced" rendering).
    Plain text with an occasional ``_`` (a URL, ``snake_case``) is not.
    """
    return _detect(unicodedata.normalize("NFC", text))


# --------------------------------------------------------------------------- spacing

_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # where str.splitlines splits
_H = r"[^\S\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]"  # horizontal white space
_CLOSERS = r",.;:!?…%)\]}”’»"  # attach to the word before: `nặng ,` -> `nặng,`
_OPENERS = r"(\[{“‘«"  # attach to the word after: `( Quảng_Nam` -> `(Quảng_Nam`
_CLOSER_GAP_RE = re.compile(rf"(?<=\S){_H}+(?=[{_CLOSERS}]+(?!\S))")
_OPENER_GAP_RE = re.compile(rf"(?<!\S)[{_OPENERS}]({_H}+)(?=\S)")
_QUOTE_RE = re.compile(r"(?<!\S)[\"'](?!\S)")  # straight quotes standing alone
_CLOSERS_TOKEN_RE = re.compile(rf"[{_CLOSERS}]+(?!\S)")
_DASHES = "-–—"


def _gap_before(text: str, i: int) -> tuple[int, bool]:
    """(start of the horizontal space before ``i``, True if that is a line start)."""
    j = i
    while j > 0 and text[j - 1].isspace() and text[j - 1] not in _LINE_BREAKS:
        j -= 1
    return j, j == 0 or text[j - 1] in _LINE_BREAKS


def _gap_after(text: str, i: int) -> tuple[int, bool]:
    """(end of the horizontal space after ``i``, True if that is a line end)."""
    k, n = i, len(text)
    while k < n and text[k].isspace() and text[k] not in _LINE_BREAKS:
        k += 1
    return k, k == n or text[k] in _LINE_BREAKS


def _is_dash(text: str, i: int) -> bool:
    """True if a stand-alone dash starts at ``i``."""
    return i < len(text) and text[i] in _DASHES and (i + 1 == len(text) or text[i + 1].isspace())


def _is_dash_before(text: str, j: int) -> bool:
    """True if a stand-alone dash ends at ``j``."""
    return j > 0 and text[j - 1] in _DASHES and (j == 1 or text[j - 2].isspace())


# Costs for pairing straight quotes on one line (see _pair_quotes).
_COST_AGAINST_ANCHOR = 4.0  # against clear context: `" ,` closes, `: "` opens
_COST_LEAN = 0.5  # against a hint: `, " Capital` opens
_COST_UNPAIRED = 2.0  # a quotation never closed, or a closing quote with none open
_COST_OPEN_PER_SENTENCE = 0.8
_COST_OPEN_PER_CHAR = 0.001
_SENTENCE_ENDS = (". ", "! ", "? ", "… ")  # rough sentence ends, counted in a quotation


def _quote_costs(text: str, start: int, end: int) -> tuple[float, float]:
    """(cost if opening, cost if closing) of a stand-alone quote, from its neighbours."""
    before, line_start = _gap_before(text, start)
    after, line_end = _gap_after(text, end)
    if line_end or _CLOSERS_TOKEN_RE.match(text, after):
        return _COST_AGAINST_ANCHOR, 0.0  # `nặng " ,`  `… " .`
    if line_start or text[before - 1] in "([{:":
        return 0.0, _COST_AGAINST_ANCHOR  # `biết : " Chúng_tôi`
    if _is_dash(text, after):
        return _COST_AGAINST_ANCHOR, 0.0  # `chết " - vừa nói anh`
    if _is_dash_before(text, before):
        return 0.0, _COST_AGAINST_ANCHOR  # `Nga - " Lý`
    if text[before - 1] == "," or text[after].isupper():
        return 0.0, _COST_LEAN  # `hỏi , " Bố_mẹ`: quotations start with a capital
    return 0.0, 0.0


def _open_cost(text: str, start: int, end: int) -> float:
    """Cost of a quotation staying open over ``text[start:end]``: long ones are unlikely."""
    sentences = sum(text.count(mark, start, end) for mark in _SENTENCE_ENDS)
    return sentences * _COST_OPEN_PER_SENTENCE + (end - start) * _COST_OPEN_PER_CHAR


def _pair_quotes(text: str, quotes: list[tuple[int, int]]) -> list[bool]:
    """Opening (True) or closing for each stand-alone quote of one kind on one line.

    Straight quotes look the same both ways, and quotations do get cut (a stray quote),
    so plain alternation would flip every later pair.  Instead take the cheapest
    open/closed sequence (Viterbi): follow the neighbours (:func:`_quote_costs`),
    alternate, keep quotations short, and let a stray quote cost only once.
    """
    inf = float("inf")
    cost = [0.0, inf]  # cheapest path ending closed / open after the previous quote
    back: list[tuple[int, int]] = []  # per quote, per new state: the state it came from
    prev_end = quotes[0][0]
    for start, end in quotes:
        closed = (cost[0], 0)
        if cost[1] + _COST_UNPAIRED < cost[0]:
            closed = (cost[1] + _COST_UNPAIRED, 1)  # the open quotation is never closed
        still_open = cost[1] + _open_cost(text, prev_end, start)
        if_opening, if_closing = _quote_costs(text, start, end)
        closing = (still_open + if_closing, 1)
        if closed[0] + _COST_UNPAIRED + if_closing < closing[0]:
            closing = (closed[0] + _COST_UNPAIRED + if_closing, closed[1])  # stray closing quote
        cost = [closing[0], closed[0] + if_opening]
        back.append((closing[1], closed[1]))
        prev_end = end
    state = 0 if cost[0] <= cost[1] + _COST_UNPAIRED else 1
    decisions = []
    for came_from in reversed(back):
        decisions.append(bool(state))
        state = came_from[state]
    return decisions[::-1]


_LINE_BREAK_RE = re.compile(f"[{_LINE_BREAKS}]")


def _quote_gaps(text: str) -> list[tuple[int, int]]:
    """Spaces to remove beside stand-alone straight quotes: after opening, before closing."""
    groups: dict[tuple[int, str], list[tuple[int, int]]] = {}
    line, last = 0, 0
    for match in _QUOTE_RE.finditer(text):
        if _LINE_BREAK_RE.search(text, last, match.start()):
            line += 1
        last = match.start()
        groups.setdefault((line, match.group()), []).append(match.span())
    gaps = []
    for spans in groups.values():
        for (start, end), opening in zip(spans, _pair_quotes(text, spans)):
            if opening:
                after, line_end = _gap_after(text, end)
                if not line_end and end < after:
                    gaps.append((end, after))
            else:
                before, line_start = _gap_before(text, start)
                if not line_start and before < start:
                    gaps.append((before, start))
    return gaps


def _spacing_deletions(text: str) -> list[tuple[int, int]]:
    """Spaces to remove so punctuation and quotes attach as in natural text (unsorted)."""
    gaps = [match.span() for match in _CLOSER_GAP_RE.finditer(text)]
    gaps += [match.span(1) for match in _OPENER_GAP_RE.finditer(text)]
    if '"' in text or "'" in text:
        gaps += _quote_gaps(text)
    return gaps


def _join_underscores(text: str) -> str:
    """``tên_lửa`` -> ``tên lửa`` in segmenter tokens (same length: offsets stay 1:1)."""
    tokens = set(_UNDERSCORE_TOKEN_RE.findall(text))
    if all(_joinable(token) for token in tokens):
        return text.replace("_", " ")  # every '_' is in one of these tokens

    def replace(match: re.Match) -> str:
        token = match.group()
        return token.replace("_", " ") if _joinable(token) else token

    return _UNDERSCORE_TOKEN_RE.sub(replace, text)


# --------------------------------------------------------------------------- normalize


def _kept_ranges(deletions: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    """The ranges of ``range(length)`` left after removing (possibly overlapping) deletions."""
    kept, pos = [], 0
    for start, end in sorted(deletions):
        if end <= pos:
            continue
        if start > pos:
            kept.append((pos, start))
        pos = end
    kept.append((pos, length))
    return kept


def _assemble(
    original: str, text: str, starts: list[int] | None, wide: dict[int, int], deletions: list[tuple[int, int]]
) -> Normalized:
    """Cut ``deletions`` out of ``text`` and compose the offsets back to ``original``."""
    kept = _kept_ranges(deletions, len(text)) if deletions else [(0, len(text))]
    out = text if len(kept) == 1 and kept[0] == (0, len(text)) else "".join([text[a:b] for a, b in kept])
    if starts is None:
        pieces = chain.from_iterable(range(a, b) for a, b in kept)
    else:
        pieces = chain.from_iterable(starts[a:b] for a, b in kept)
    offsets = tuple(chain(pieces, (len(original),)))
    return Normalized(out, offsets, _renumber(wide, kept) if wide else {})


def _renumber(wide: dict[int, int], kept: list[tuple[int, int]]) -> dict[int, int]:
    """Move ``wide`` keys from ``text`` positions to positions after the deletions."""
    out, removed, i = {}, 0, 0
    keys = sorted(wide)
    prev_end = 0
    for a, b in kept:
        removed += a - prev_end
        prev_end = b
        while i < len(keys) and keys[i] < b:
            if keys[i] >= a:
                out[keys[i] - removed] = wide[keys[i]]
            i += 1
    return out


def normalize(text: str, *, tone: str = "new", word_segmented: bool | None = None) -> Normalized:
    """Natural NFC text with consistent tone marks, and offsets back into ``text``.

    ``word_segmented``: True undoes a tokeniser's rendering (``_`` -> space, punctuation
    and quotes re-attached), False leaves spacing alone, None decides with
    :func:`is_word_segmented`.  Plain text only gets NFC and tone marks.
    """
    _check_style(tone)
    nfc, starts, wide = _nfc_with_map(text)
    fixed = _fix_tones(nfc, tone)
    if word_segmented is None:
        word_segmented = _detect(fixed)
    deletions: list[tuple[int, int]] = []
    if word_segmented:
        deletions = _spacing_deletions(fixed)
        if "_" in fixed:
            fixed = _join_underscores(fixed)
    return _assemble(text, fixed, starts, wide, deletions)
