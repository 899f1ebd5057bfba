"""Words with their character spans: the units word links are drawn between.

A word is a run of letters/digits (``_`` included, so ``tên_lửa`` stays whole; internal
``' ’ - & + .`` and digit-only ``, :`` keep ``don't``, ``U.S``, ``2,000`` whole) or a run of one
punctuation character. Every non-space character belongs to exactly one word, so the view can
make all of them hoverable.
"""

from __future__ import annotations

import bisect
import re
from typing import Sequence

__all__ = ["is_punctuation", "overlapping_words", "split_words"]

_W = r"[\w\u0300-\u036f]"  # word characters, combining marks included (decomposed input)
_WORD_RE = re.compile(
    rf"{_W}+(?:(?:['’\-&+.]|(?<=\d)[,:](?=\d)){_W}+)*"  # don't, oxy-hydro, U.S, 2,000, 10:30, tên_lửa
    r"|([^\w\s\u0300-\u036f])\1*"  # one punctuation character, repeated: , " ... --
)


def split_words(text: str) -> list[tuple[int, int]]:
    """Spans of the words of ``text``; together they cover every non-space character once."""
    return [m.span() for m in _WORD_RE.finditer(text)]


def is_punctuation(word: str) -> bool:
    """True for a word with no letter or digit."""
    return not any(ch.isalnum() for ch in word)


def overlapping_words(spans: Sequence[tuple[int, int]], word_spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """For each span, the indices of the words it overlaps (``word_spans`` sorted, disjoint);
    an empty span overlaps nothing."""
    starts = [s for s, _ in word_spans]
    out = []
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
