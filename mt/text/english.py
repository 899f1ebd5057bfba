"""English sentence splitting (the Vietnamese splitter is :mod:`mt.text.segment`): spans of the
sentences of a text, for aligning an article with an existing English translation."""
from __future__ import annotations

import re

__all__ = ["split_english"]

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
