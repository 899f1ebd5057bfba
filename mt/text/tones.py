"""Tone-mark placement: which vowel of a Vietnamese syllable carries the mark.

Tone styles.  The names follow the issue that defined this API (the public contract),
which is the reverse of the usual linguistic labels:

* ``"new"``: mark on the first vowel of an open ``oa``/``oe``/``uy`` (``hóa``, ``khỏe``,
  ``thủy``, ``ủy ban``) -- linguists usually call this the *old / traditional* style;
* ``"old"``: mark on the second vowel (``hoá``, ``khoẻ``, ``thuỷ``, ``uỷ ban``).

Everything else is the same in both: the mark sits on the vowel with a diacritic
(``ơ`` in ``ươ``/``uơ``: ``người``, ``thuở``; ``tiếng``), ``qu``/``gi`` onsets own their
``u``/``i`` (``quý``, ``giữ``, ``già``), a final consonant pulls it to the last vowel
(``hoàn``, ``toán``, ``huỳnh``), triphthongs take it in the middle (``ngoài``,
``khuỷu``), other open diphthongs on the first vowel (``mái``, ``múa``, ``núi``).
Misplaced marks are repaired the same way (``vịêc`` -> ``việc``, ``qúa`` -> ``quá``).
Only tokens that parse as one Vietnamese syllable are touched: foreign words
(``Baikonur``), numbers, URLs, e-mail addresses and words carrying two tone marks stay
as they are.  Tone fixes are computed once per distinct word.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from ..errors import ConfigError

__all__ = ["TONE_STYLES", "normalize_tones"]

TONE_STYLES = ("new", "old")  # new: hóa, thủy, khỏe ; old: hoá, thuỷ, khoẻ (see module doc)

_TONE_OF_MARK = {"\u0301": 1, "\u0300": 2, "\u0309": 3, "\u0303": 4, "\u0323": 5}
_MARK_OF_TONE = {tone: mark for mark, tone in _TONE_OF_MARK.items()}
_VOWELS = "aăâeêioôơuưy"


def _tone_tables() -> tuple[dict[str, tuple[str, int]], dict[tuple[str, int], str]]:
    """char -> (toneless char, tone) and back, for every Vietnamese vowel in both cases."""
    split: dict[str, tuple[str, int]] = {}
    join: dict[tuple[str, int], str] = {}
    for base in _VOWELS + _VOWELS.upper():
        split[base] = (base, 0)
        join[(base, 0)] = base
        for tone, mark in _MARK_OF_TONE.items():
            char = unicodedata.normalize("NFC", base + mark)
            split[char] = (base, tone)
            join[(base, tone)] = char
    return split, join


_SPLIT_TONE, _JOIN_TONE = _tone_tables()
_TONED_CHARS = frozenset(char for char, (_, tone) in _SPLIT_TONE.items() if tone)

# One syllable, lowercase and toneless.  ``gi``/``qu`` are tried before ``g``: the
# regex falls back to ``g`` + ``i`` when nothing follows (``gì``, ``gìn``).
_SYLLABLE_RE = re.compile(
    r"(?P<onset>ngh|ng|gh|gi|kh|nh|ph|qu|th|tr|ch|[bcdđghklmnprstvx])?"
    r"(?P<nucleus>[aăâeêioôơuưy]{1,3})"
    r"(?P<coda>ch|ng|nh|[cmnpt])?"
)
_OPEN_NUCLEI = frozenset(  # vowel groups ending in a glide: no final consonant
    "ai ao au ay âu ây eo êu ia iu oi ôi ơi ua uơ ưa ui ưi ưu "
    "iêu yêu oai oay oao oeo uây uôi ươi ươu uya uyu".split()
)
_CLOSED_NUCLEI = frozenset("iê yê uô ươ oă uâ oo uyê".split())  # need a final consonant
_FREE_NUCLEI = frozenset(list(_VOWELS) + "oa oe uy uê".split())  # either
_DIACRITIC_VOWELS = "ơăâêôư"  # ơ first: in ươ / uơ the mark goes on ơ
_FLIP_NUCLEI = frozenset(("oa", "oe", "uy"))  # the only groups where the styles differ
_LONGEST_SYLLABLE = 7  # nghiêng


def _parse_syllable(plain: str) -> re.Match | None:
    """Match a lowercase toneless syllable, or None if it is not Vietnamese."""
    match = _SYLLABLE_RE.fullmatch(plain)
    if match is None:
        return None
    nucleus, coda = match["nucleus"], match["coda"]
    if coda and nucleus in _OPEN_NUCLEI:
        return None
    if not coda and nucleus in _CLOSED_NUCLEI:
        return None
    if nucleus not in _OPEN_NUCLEI and nucleus not in _CLOSED_NUCLEI and nucleus not in _FREE_NUCLEI:
        return None
    return match


def _tone_index(plain: str, style: str) -> int | None:
    """Index in ``plain`` (lowercase, toneless) of the vowel that carries the tone mark."""
    match = _parse_syllable(plain)
    if match is None:
        return None
    nucleus = match["nucleus"]
    for vowel in _DIACRITIC_VOWELS:
        if vowel in nucleus:
            return match.start("nucleus") + nucleus.index(vowel)
    if len(nucleus) == 1:
        at = 0
    elif match["coda"]:
        at = len(nucleus) - 1  # hoàn, toán, huỳnh
    elif len(nucleus) == 3:
        at = 1  # ngoài, khuỷu
    elif nucleus in _FLIP_NUCLEI:
        at = 0 if style == "new" else 1  # hóa / hoá
    else:
        at = 0  # mái, múa, núi
    return match.start("nucleus") + at


def _strip_tone(word: str) -> tuple[str, int] | None:
    """(word without its tone mark, tone); None if it carries more than one mark."""
    chars = []
    tone = 0
    for char in word:
        base, mark = _SPLIT_TONE.get(char, (char, 0))
        if mark:
            if tone:
                return None
            tone = mark
        chars.append(base)
    return "".join(chars), tone


@lru_cache(maxsize=1 << 16)
def _fix_word(word: str, style: str) -> str:
    """``word`` with its tone mark where ``style`` wants it (unchanged if not a syllable)."""
    if len(word) > _LONGEST_SYLLABLE:
        return word
    stripped = _strip_tone(word)
    if stripped is None or not stripped[1]:
        return word
    plain, tone = stripped
    lower = plain.lower()
    if len(lower) != len(plain):
        return word
    at = _tone_index(lower, style)
    if at is None:
        return word
    return plain[:at] + _JOIN_TONE[(plain[at], tone)] + plain[at + 1 :]


@lru_cache(maxsize=1 << 16)
def _is_syllable(word: str) -> bool:
    """True if ``word`` (any case, any tone) parses as one Vietnamese syllable."""
    if len(word) > _LONGEST_SYLLABLE:
        return False
    stripped = _strip_tone(word)
    if stripped is None:
        return False
    lower = stripped[0].lower()
    return len(lower) == len(word) and _parse_syllable(lower) is not None


_ALNUM_RE = re.compile(r"[^\W_]+")  # letters and digits; '_' and the rest separate
_ALNUM_SPLIT_RE = re.compile(r"([^\W_]+)")
_FEW_CHANGES = 32  # up to this many distinct words to fix, one regex replaces them
_PROTECTED_RE = re.compile(
    r"(?:https?://|ftp://|www\.)\S+|(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE
)  # URLs and e-mail addresses: never touched


def _fix_tones_plain(text: str, style: str) -> str:
    """Tone-fix every word of ``text`` (no URLs in it); one fix per distinct word."""
    changes = {}
    for word in set(_ALNUM_RE.findall(text)):
        if not _TONED_CHARS.isdisjoint(word):
            fixed = _fix_word(word, style)
            if fixed != word:
                changes[word] = fixed
    if not changes:
        return text
    if len(changes) <= _FEW_CHANGES:
        words = "|".join(map(re.escape, sorted(changes, key=len, reverse=True)))
        pattern = re.compile(rf"(?<![^\W_])(?:{words})(?![^\W_])")
        return pattern.sub(lambda match: changes[match.group()], text)
    parts = _ALNUM_SPLIT_RE.split(text)
    parts[1::2] = [changes.get(word, word) for word in parts[1::2]]
    return "".join(parts)


_WWW_RE = re.compile(r"www\.", re.IGNORECASE)


def _protected_spans(text: str) -> list[tuple[int, int]]:
    """Spans of URLs and e-mail addresses (cheap test first: most texts have none)."""
    if "://" not in text and "@" not in text and not _WWW_RE.search(text):
        return []
    return [m.span() for m in _PROTECTED_RE.finditer(text)]


def _fix_tones(text: str, style: str) -> str:
    """Tone-fix an NFC text, leaving URLs and e-mail addresses alone (length unchanged)."""
    spans = _protected_spans(text)
    if not spans:
        return _fix_tones_plain(text, style)
    pieces, pos = [], 0
    for start, end in spans:
        pieces.append(_fix_tones_plain(text[pos:start], style))
        pieces.append(text[start:end])
        pos = end
    pieces.append(_fix_tones_plain(text[pos:], style))
    return "".join(pieces)


def _check_style(style: str) -> None:
    if style not in TONE_STYLES:
        raise ConfigError(f"unknown tone style {style!r}: use one of {', '.join(TONE_STYLES)}")


def normalize_tones(text: str, style: str = "new") -> str:
    """NFC ``text`` and put each tone mark where ``style`` wants it (see module doc)."""
    _check_style(style)
    return _fix_tones(unicodedata.normalize("NFC", text), style)
