"""Where the terms of a normalised Vietnamese sentence are: glossary entries and protected spans.

Glossary entries are matched on syllable tokens of the normalised text, casefolded, with the
entry normalised the same way (tone style, NFC; ``_`` and hyphens separate syllables), so
``tên_lửa``, ``tên lửa`` and ``Tên Lửa`` match one entry, and ``hoá``/``hóa`` are one spelling.
Entries are indexed by their first syllable: each position of the sentence tries only the
entries that start with its syllable, longest first, so the cost is linear in the sentence
(times the few entries sharing a first syllable), never sentence × glossary.

Protected spans: numbers (with their English form: ``250.000`` → ``250,000``, ``12,5%`` → ``12.5%``),
URLs, e-mail addresses and capitalised Latin-script words that are not Vietnamese syllables
(foreign names: ``Baikonur``, ``Nazarbayev``), plus letter-digit identifiers (``A320``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from ..text.normalize import normalize
from ..text.tones import _is_syllable

__all__ = ["MINUS", "Found", "GlossaryIndex", "english_number", "entry_key", "is_foreign_name", "protected_spans"]

SYLLABLE_RE = re.compile(r"[^\W_]+")  # letters and digits; '_', spaces, hyphens and punctuation separate
_JOINER_RE = re.compile(r"[\s_\-‐‑–]+")  # what may stand between the syllables of one term


@dataclass(frozen=True)
class Found:
    """A term in the normalised text: ``[start, end)``, the English it must have, its kind, and
    (numbers) the Vietnamese form of the number that must not reach the English (without the
    ``%`` a percentage's term and English end with)."""

    start: int
    end: int
    english: str
    kind: str
    vietnamese: str = ""


@lru_cache(maxsize=1 << 16)
def entry_key(vietnamese: str, tone: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The casefolded syllables of a glossary entry, normalised as the sentences are, and the
    punctuation between them (``TP.HCM``: ``("tp", "hcm"), (".",)``; spaces, ``_`` and hyphens
    are no punctuation here)."""
    text = normalize(vietnamese, tone=tone, word_segmented=False).text
    matches = list(SYLLABLE_RE.finditer(text))
    marks = tuple(_JOINER_RE.sub("", text[a.end():b.start()]) for a, b in zip(matches, matches[1:]))
    return tuple(match.group().casefold() for match in matches), marks


class GlossaryIndex:
    """A glossary's entries as a trie of syllables (each edge also holds the entry's punctuation
    before that syllable), so a position walks at most one entry's length whatever the number of
    entries sharing its first syllables (the first entry wins a duplicate key)."""

    def __init__(self, glossary: Mapping[str, str], tone: str):
        self.by_first: dict[str, list] = {}  # first syllable -> node [english or None, {(mark, syllable): node}]
        seen: set[tuple[str, ...]] = set()
        for vietnamese, english in glossary.items():
            key, marks = entry_key(str(vietnamese), tone)
            english = " ".join(str(english).split())
            if not key or not english or key in seen:
                continue
            seen.add(key)
            node = self.by_first.setdefault(key[0], [None, {}])
            for mark, syllable in zip(marks, key[1:]):
                node = node[1].setdefault((mark, syllable), [None, {}])
            node[0] = english

    def find(self, text: str, starts_ok: Callable[[int], bool], ends_ok: Callable[[int], bool]) -> list[Found]:
        """Leftmost-longest matches in ``text`` whose ends are word boundaries of the text as
        written (``starts_ok`` / ``ends_ok`` of a normalised offset); whole syllables only."""
        folded = text.casefold()
        if len(folded) == len(text):  # one casefold for the sentence (offsets unchanged)
            tokens = [(*m.span(), m.group()) for m in SYLLABLE_RE.finditer(folded)]
        else:  # ß and the like grow when casefolded: token by token
            tokens = [(m.start(), m.end(), m.group().casefold()) for m in SYLLABLE_RE.finditer(text)]
        found: list[Found] = []
        i = 0
        while i < len(tokens):
            node = self.by_first.get(tokens[i][2])
            best, j = None, i
            if node is not None and starts_ok(tokens[i][0]):
                while True:
                    if node[0] is not None and ends_ok(tokens[j][1]):
                        best = (j, node[0])
                    if j + 1 >= len(tokens) or not node[1]:
                        break
                    mark = _JOINER_RE.sub("", text[tokens[j][1]:tokens[j + 1][0]])
                    node = node[1].get((mark, tokens[j + 1][2]))
                    if node is None:
                        break
                    j += 1
            if best is None:
                i += 1
            else:
                found.append(Found(tokens[i][0], tokens[best[0]][1], best[1], "glossary"))
                i = best[0] + 1
        return found


# --------------------------------------------------------------------------- numbers

_GROUPED_RE = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d+)?")  # 250.000  1.234.567,89
_DECIMAL_RE = re.compile(r"\d+,\d+")  # 12,5  0,75
_AMBIGUOUS_RE = re.compile(r"\d{1,3},\d{3}")  # 2,500: a decimal in Vietnamese, but often English-style
NUMBER_RE = re.compile(r"\d+(?:[.,:/]\d+)*")  # 07/12/2026: a date is one term, kept whole


def english_number(vietnamese: str) -> str:
    """A Vietnamese number token in English form: dots group thousands and the comma is the
    decimal mark in Vietnamese (``250.000`` → ``250,000``, ``1.234,5`` → ``1,234.5``,
    ``12,5`` → ``12.5``). Years, times (``14:30``), plain integers, dotted decimals (``3.5``),
    versions and an ambiguous ``2,500`` (one comma, three digits) stay as written."""
    if "/" in vietnamese:  # a date or a fraction: each part on its own (12,5/100 -> 12.5/100)
        return "/".join(english_number(part) for part in vietnamese.split("/"))
    if _GROUPED_RE.fullmatch(vietnamese) and not vietnamese.startswith("0"):
        # (a leading zero is no thousands grouping: 0.500, a phone number 090.123.456)
        return vietnamese.translate(_SWAP)
    if _DECIMAL_RE.fullmatch(vietnamese) and not _AMBIGUOUS_RE.fullmatch(vietnamese):
        return vietnamese.replace(",", ".")
    return vietnamese


_SWAP = str.maketrans({".": ",", ",": "."})


# --------------------------------------------------------------------------- names

_VIETNAMESE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323\u0302\u0306\u031b")  # tones, â ê ô, ă, ơ ư


@lru_cache(maxsize=1 << 16)
def is_foreign_name(word: str) -> bool:
    """A capitalised Latin-script word that is not a Vietnamese syllable (``Baikonur``, ``Putin``),
    without Vietnamese letters (``đ``, ``ơ``, tone marks: a misspelt Vietnamese word is not a
    name). All-capital words are left out: Vietnamese acronyms (``UBND``, ``THPT``) are translated."""
    if len(word) < 2 or not word[0].isupper() or word.isupper() or not word.isalpha() or _is_syllable(word):
        return False
    for char in word:
        if char in "đĐ" or not unicodedata.name(char, "").startswith("LATIN"):
            return False
        if not char.isascii() and _VIETNAMESE_MARKS & set(unicodedata.normalize("NFD", char)):
            return False
    return True


# --------------------------------------------------------------------------- protected spans

_LINK_RE = re.compile(r"(?:https?://|ftp://|www\.)[^\s<>\"']+|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+",
                      re.IGNORECASE)
_TRAILING = ".,;:!?)]}"
MINUS = "-\u2212"  # hyphen-minus and the minus sign
_BEFORE_SIGN = " \t\n([{:;=~"  # what may stand before a number's minus (after a digit or letter it is a dash)
_UPPER = "".join(char for code in (*range(0x41, 0x250), *range(0x1E00, 0x1F00))
                 for char in (chr(code),) if char.isupper())
# What may be protected, each a whole letter-digit run: a number (its Vietnamese separators
# included), a letter-digit identifier, a capitalised word. Lowercase words are never looked at.
_CANDIDATE_RE = re.compile(rf"(?<![^\W_])(?:(?=[^\W_]*\d)(?=[^\W_]*[^\W\d_])[^\W_]+|\d+(?:[.,:/]\d+)*"
                           rf"|[{_UPPER}][^\W_]+)")  # 100.000đ: the number 100.000 (the unit stays Vietnamese)


def protected_spans(text: str) -> list[Found]:
    """URLs, e-mail addresses, numbers and foreign names of a normalised sentence, in order."""
    found: list[Found] = []
    links: list[tuple[int, int]] = []
    if "://" in text or "@" in text or "www." in text.lower():
        for match in _LINK_RE.finditer(text):
            start, end = match.span()
            while end > start and text[end - 1] in _TRAILING:
                end -= 1
            link = text[start:end]
            kind = "email" if "@" in link and "://" not in link and not link.lower().startswith("www.") else "url"
            links.append((start, end))
            found.append(Found(start, end, link, kind))
    at = 0
    for match in _CANDIDATE_RE.finditer(text):  # numbers, identifiers and capitalised words only
        start, end = match.span()
        while at < len(links) and links[at][1] <= start:
            at += 1
        if at < len(links) and links[at][0] < end:
            continue  # inside a URL or address
        part = match.group()
        if part[0].isdigit() and NUMBER_RE.fullmatch(part):
            sign = ""
            if start and text[start - 1] in MINUS and (start == 1 or text[start - 2] in _BEFORE_SIGN):
                start, sign = start - 1, text[start - 1]  # -5 °C: the minus is the number's (not 12-3)
            if text.startswith("%", end):  # 12,5% -> 12.5%: the sign goes with its number
                found.append(Found(start, end + 1, sign + english_number(part) + "%", "number", part))
            else:
                found.append(Found(start, end, sign + english_number(part), "number", part))
        elif not part.isalpha():
            found.append(Found(start, end, part, "name"))  # an identifier: A320, MH370, 4G
        elif is_foreign_name(part):
            found.append(Found(start, end, part, "name"))
    found.sort(key=lambda item: item.start)
    return found
