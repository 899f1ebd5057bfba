"""Sentence segmentation with character offsets.

``split_sentences(text)`` cuts Vietnamese (or mixed) running text into segments that
a translation model can take one at a time.  It works on three renderings alike:

* plain text (``Ông nói: "Tốt lắm!" Rồi đi.``),
* word-segmented text as produced by Vietnamese tokenisers (``tên_lửa``, every token,
  punctuation and straight quotes included, separated by one space, often the whole
  article on one line), and
* "spaced" text (tokens separated by spaces, no ``_``).

Every :class:`Segment` carries ``start``/``end`` offsets into the string passed in,
with ``text == input[start:end]`` and no surrounding whitespace.

Rules
-----
* Lines: a line break (``\n``, ``\r\n``, ``\r``, U+2028, U+2029) always ends a
  segment; a blank line starts a new paragraph (``Segment.paragraph``, 0-based).  Other
  control characters (``\x00``, ``\x0b``, ``\x1b`` ...) and zero-width spaces count
  as whitespace at segment edges and are otherwise left alone, so offsets stay valid.
* Candidates come from one compiled regex pass: a terminal mark (``. ! ? …``)
  followed by a run of terminal marks, quotes and closing brackets, blanks allowed
  between them (``! " .``, ``… .``).  Each candidate is decided locally:

  - it must be followed by whitespace, so ``1.200``, ``12.11.2018``, ``6,88``,
    ``8.30``, ``TP.HCM``, URLs and e-mail addresses are never cut.  Only exception, a
    missing space between two words: ``hết.Sau`` (lowercase word, mark, capitalised word);
  - a single full stop is no boundary after a title abbreviation (``ThS. TS. PGS. GS.
    BS. Th.S. Mr. Dr. St.`` ..., ``TITLE_ABBREVIATIONS``); after ``TP. Tp. TX.`` ...
    (``PLACE_ABBREVIATIONS``) only when a name follows (``TP. HCM``, but ``... của
    TP. Thân mình ...``); after initials (``V.H.``, ``N. Anh``, ``ông H.``) -- a
    capital letter is taken as an initial unless a clear sentence starter follows
    (``... có số Y. Tôi ...``) or it is a label after a noun such as ``số``/``điểm``
    and a capitalised word + lowercase word follow; after a lowercase letter that is
    not a unit after a number (``vụ h. 15 tuổi`` vs ``10 m. Như vậy``); after a list
    marker at the start of a segment or after a colon (``1.``, ``II.``, ``a.``); and
    in a tokenised number (``70 . 000``).  Word-segmented ``TP . HCM`` / ``V . H .``
    are treated like ``TP. HCM`` / ``V. H.``;
  - then the next word decides: lowercase (``… . việc``), a comma, semicolon, colon,
    closing bracket or ``%`` continue the sentence; a capital, a digit, an opening
    quote or bracket start a new one, except that an ellipsis followed by a number
    continues (``Đào hầm suốt... 15 năm``).  After a dash: a following opening quote
    or capital is a new turn, a lowercase word continues, and a dash right after a
    closing quote is an attribution (``! " - ông X nói``) and continues;
  - ``"Mẹ! Bố!"`` (one or two words, ``!``/``?``, one or two words, closing quote)
    stays one segment.
* Quotations: every straight ``"`` is classified as opening or closing from its
  context: attached to the next / previous word, followed by ``, . ; : ! ? )`` or by
  a dash (closing), after ``:``, ``(`` or a dialogue dash (opening).  A quote spaced on
  both sides (word-segmented text) after a terminal mark opens a quotation when a
  lowercase word follows or its partner further on looks like a closing quote, except
  that ``!``/``?``/``...`` may end a one-sentence quotation opened in the same sentence
  (``: " nhầm số rồi ! " và cúp máy``); Vietnamese puts the full stop after the
  closing quote (``... hydro " .``).  Otherwise the running open/closed state decides.
  A closing quote stays with its sentence, an opening quote goes to the next one.
  Inside a quotation the same rules apply: a multi-sentence quotation is split at
  ``. Capital`` (as the VTB treebank does), and an attribution after the closing
  quote (``" , ông X nói .``) stays with the quotation's last sentence, so a
  quotation + attribution is one segment when the quotation has one sentence (a full
  stop followed by a lowercase word inside it is no boundary).
* A headline run into its first sentence on one line is cut before a dateline in
  capitals (``... qua đời (NAM ĐỊNH) Nguyễn Thị Diệp ...``).
* Kinds: the last segment of a text that is 1–4 capitalised words or initials
  without final punctuation is a ``"byline"`` (``… Baikonur . Đan Nguyên``, ``N. Anh``);
  a line that is one short segment (at most ``MAX_TITLE_WORDS`` words) without final
  punctuation, followed by a line that starts with a capital, a digit or a quote, is a
  ``"title"``; everything else is a ``"sentence"``.
* Length: a segment of more than ``MAX_SEGMENT_WORDS`` (= 150) words -- words being
  whitespace-separated tokens that contain a letter or digit, so ``tên_lửa`` counts
  once -- is split at clause boundaries (``;``, ``:``, `` - ``, ``,``, then before a
  conjunction such as ``và``/``nhưng``), taking the last such point that keeps the
  piece within the limit (and at least a quarter of it), failing that hard at the
  limit, so that no model silently truncates it.
* Size bound (cost per segment in the model and the linker): no segment exceeds
  ``MAX_SEGMENT_CHARS`` characters or ``MAX_SEGMENT_UNITS`` :func:`mt.text.words.split_words`
  units, even without whitespace (``a,a,a,...``): cut after clause punctuation + space, else
  at a space, else after punctuation, else (one over-long unit) hard at the character bound.

The implementation is one regex pass for candidates plus constant-time local
decisions (no backtracking-prone patterns), so it runs in linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import unicodedata

from .segment_rules import (
    ABBREVIATIONS,
    PLACE_ABBREVIATIONS,
    TITLE_ABBREVIATIONS,
    _abbrev_before,
    _CLOSERS,
    _CLUSTER_RE,
    _CONTINUERS,
    _DASHES,
    _DATELINE_RE,
    _first_word_char,
    _INITIALS_RE,
    _is_ws,
    _LINE_RE,
    _MAX_TOKEN,
    _next_token,
    _OPEN_QUOTES,
    _quote_openings,
    _QUOTES,
    _short_exclamations,
    _strip,
    _TERM,
)
from .words import split_words

__all__ = [
    "Segment",
    "MAX_SEGMENT_CHARS",
    "MAX_SEGMENT_UNITS",
    "MAX_SEGMENT_WORDS",
    "MAX_TITLE_WORDS",
    "ABBREVIATIONS",
    "TITLE_ABBREVIATIONS",
    "PLACE_ABBREVIATIONS",
    "split_sentences",
]

#: Segments with more words than this are split at clause boundaries (or hard).
MAX_SEGMENT_WORDS = 150
#: No segment is longer than this many characters (see "Size bound" in the module doc).
MAX_SEGMENT_CHARS = 1500
#: No segment has more split_words() units (words and punctuation runs) than this.
MAX_SEGMENT_UNITS = 300
#: Longest line (in words) that can be a title.
MAX_TITLE_WORDS = 25


@dataclass(frozen=True, slots=True)
class Segment:
    start: int
    end: int
    text: str
    paragraph: int
    kind: str  # "sentence" | "title" | "byline"


def _line_cuts(text: str, a: int, b: int, out: list[int]) -> None:
    """Append boundary positions inside the stripped line text[a:b] to ``out``."""
    openings: set[int] | None = None
    seg_start = a
    for m in _CLUSTER_RE.finditer(text, a, b):
        cs, ce = m.span()
        if ce >= b:
            break
        cluster = m.group()
        # Cut before the first opening quote inside the cluster (it starts the next
        # sentence); closing quotes and brackets stay with this one.
        cut = ce
        opened = False
        if len(cluster) > 1 and any(c in _QUOTES for c in cluster):
            if openings is None:
                openings = _quote_openings(text, a, b)
            for i, c in enumerate(cluster):
                if c in _QUOTES and (cs + i) in openings:
                    cut, opened = cs + i, True
                    break
                if c in "'‘" and i and _is_ws(cluster[i - 1]) and not _is_ws(text[cs + i + 1]):
                    cut, opened = cs + i, True  # ". 'Tiếp" opens a quote
                    break
        if not opened and not _is_ws(text[ce]):
            # ".200", "TP.HCM", "x.org": inside a token.  Only a missing space after a
            # full stop between two words is taken as a boundary ("hết.Sau").
            if (
                len(cluster) == 1
                and cs >= a + 2
                and text[cs - 1].islower()
                and text[cs - 2].islower()
                and text[ce].isupper()
                and ce + 1 < b
                and text[ce + 1].islower()
            ):
                ts = cs - 2
                stop = max(seg_start, cs - _MAX_TOKEN)
                while ts > stop and text[ts - 1].isalpha():
                    ts -= 1
                tok = text[ts:cs]
                if (ts == seg_start or _is_ws(text[ts - 1])) and tok not in ABBREVIATIONS:
                    out.append(ce)
                    seg_start = ce
            continue
        while cut > cs and _is_ws(text[cut - 1]):
            cut -= 1
        n = cut
        while n < b and _is_ws(text[n]):
            n += 1
        kept = text[cs:cut] if cut - cs > 1 else cluster[:1]
        if len(kept) > 2 and kept[0] == "." and _is_ws(kept[1]) and kept[1:].lstrip(" \t\xa0") in ("...", "…"):
            cut = cs + 1  # "huynh đệ. ... Rồi": the ellipsis opens the next sentence
            kept = kept[0]
            n = cs + 2
            while _is_ws(text[n]):
                n += 1
        terms = kept if len(kept) == 1 else "".join(c for c in kept if c in _TERM)
        if terms == ".":
            attached = cs > a and not _is_ws(text[cs - 1]) and text[cs - 1] not in _QUOTES + _CLOSERS
            if _abbrev_before(text, cs, seg_start, attached, n, b):
                continue
        if terms in ("!", "?") and _short_exclamations(text, cs, n, a, b):
            continue
        if not opened:
            nc = text[n]
            if nc in _CONTINUERS:
                continue
            if nc in _DASHES:
                # '! " - ông X nói' (attribution) or '. - Ý kiến ...' (a new turn)
                ns, ne = _next_token(text, n + 1, b)
                if ne > ns and text[ns] in _OPEN_QUOTES:
                    pass
                elif kept[-1] in _QUOTES:
                    continue
                else:
                    w = _first_word_char(text, n + 1, b)
                    if w and w.islower():
                        continue
            else:
                w = _first_word_char(text, n, b)
                if w.islower():
                    continue
                if w.isdigit() and (terms.endswith("...") or terms.endswith("…")):
                    continue  # "Đào hầm suốt... 15 năm"
        out.append(cut)
        seg_start = n
    if text.find("(", a, b) >= 0:
        for m in _DATELINE_RE.finditer(text, a, b):
            inner = m.group(1)
            if inner.isupper():
                out.append(m.start(1))
        out.sort()


# --- kinds and long segments -------------------------------------------------------


# A word: a whitespace-separated token containing a letter or a digit.  (The leading
# class and the letter/digit class are disjoint and a match only starts at a token
# start, so a long punctuation-only token costs linear time.)
_WORD_RE = re.compile(r"(?<!\S)(?:[^\w\s]|_)*[^\W_]\S*")
_CLAUSE_RES = (
    re.compile(r";(?=\s)"),
    re.compile(r":(?=\s)"),
    re.compile(r"\s[-–—](?=\s)"),
    re.compile(r",(?=\s)"),
    re.compile(
        r"\s(?=(?:và|nhưng|hoặc|hay|song|mà|nên|rồi|vì|bởi_vì|bởi vì|do_đó|do đó|"
        r"tuy_nhiên|tuy nhiên|trong_khi|trong khi|còn|and|but|or|while|because|which)\s)"
    ),
)


def _split_long(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Split text[a:b] into pieces of at most MAX_SEGMENT_WORDS words."""
    if b - a <= 2 * MAX_SEGMENT_WORDS or len(text[a:b].split()) <= MAX_SEGMENT_WORDS:
        return [(a, b)]
    # words: whitespace-separated tokens that contain a letter or a digit
    words = [m.start() for m in _WORD_RE.finditer(text, a, b)]
    if len(words) <= MAX_SEGMENT_WORDS:
        return [(a, b)]
    pieces = []
    i = 0  # index of the first word of the current piece
    start = a
    while len(words) - i > MAX_SEGMENT_WORDS:
        lo = words[i + MAX_SEGMENT_WORDS // 4]  # keep pieces reasonably long
        hi = words[i + MAX_SEGMENT_WORDS]  # the word that would overflow
        cut = -1
        for rx in _CLAUSE_RES:
            last = None
            for m in rx.finditer(text, lo, hi):
                last = m
            if last is not None:
                cut = last.end()
                break
        if cut < 0:
            cut = hi
        s, e = _strip(text, start, cut)
        if e > s:
            pieces.append((s, e))
        start = cut
        while i < len(words) and words[i] < cut:
            i += 1
    s, e = _strip(text, start, b)
    if e > s:
        pieces.append((s, e))
    return pieces


_CLAUSE_END = frozenset(".!?;:,…")


def _hard_cut(text: str, a: int, b: int) -> int:
    """A cut inside text[a:b] at the character bound, moved back off combining marks."""
    cut = a + MAX_SEGMENT_CHARS
    while cut > a + MAX_SEGMENT_CHARS - 8 and unicodedata.combining(text[cut]):
        cut -= 1  # a longer run of marks is cut anyway: each cut keeps the full bound
    return cut if cut < b else b


def _bound(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Cut text[a:b] into pieces within MAX_SEGMENT_CHARS and MAX_SEGMENT_UNITS (module doc).

    Linear: each cut looks back over at most one window of units and moves on by at least a
    quarter of one (or by the character bound, for one over-long unit)."""
    if b - a <= MAX_SEGMENT_UNITS:  # every unit has a character: both bounds hold
        return [(a, b)]
    units = [(a + s, a + e) for s, e in split_words(text[a:b])]
    if len(units) <= MAX_SEGMENT_UNITS and b - a <= MAX_SEGMENT_CHARS:
        return [(a, b)]
    pieces: list[tuple[int, int]] = []
    i, start = 0, a  # first unit of the current piece, and where the piece starts
    while i < len(units):
        if units[i][1] - start > MAX_SEGMENT_CHARS:  # one unit over the bound: cut it hard
            cut = _hard_cut(text, start, units[i][1])
            pieces.append((start, cut))
            start = cut
            if cut >= units[i][1]:
                i += 1
            continue
        j = i + 1  # the piece is units[i:j]; extend it while both bounds hold
        stop = min(len(units), i + MAX_SEGMENT_UNITS)
        while j < stop and units[j][1] - start <= MAX_SEGMENT_CHARS:
            j += 1
        if j < len(units):
            j = _best_cut(text, units, i, j)
        pieces.append((start, units[j - 1][1]))
        if j < len(units):
            start = units[j][0]
        i = j
    return [(s, e) for s, e in (_strip(text, s, e) for s, e in pieces) if e > s]


def _best_cut(text: str, units: list[tuple[int, int]], i: int, j: int) -> int:
    """Where to end a piece that could take units[i:j]: the last clause end before whitespace,
    else whitespace, else after punctuation, in the last three quarters; else ``j``."""
    lo = i + max(1, (j - i) // 4)
    space = punct = -1
    for k in range(j, lo - 1, -1):
        prev_a, prev_b = units[k - 1]
        gap = units[k][0] > prev_b
        if gap and text[prev_b - 1] in _CLAUSE_END:
            return k
        if gap and space < 0:
            space = k
        if punct < 0 and not any(ch.isalnum() for ch in text[prev_a:prev_b]):
            punct = k
    return space if space > 0 else punct if punct > 0 else j


_TITLE_END_OK = re.compile(r"[\w\"”'’»)\]]")


def _is_name_token(tok: str) -> bool:
    """``Nguyên``, ``Đan_Nguyên``, ``N.``, ``V.H.``, ``TTXVN``."""
    if not tok[0].isalpha() or not tok[0].isupper():
        return False
    if tok.endswith("."):
        return bool(_INITIALS_RE.fullmatch(tok[:-1])) and len(tok) <= 8
    parts = tok.replace("-", "_").split("_")
    return all(p and p[0].isupper() and p.isalpha() for p in parts)


def _is_byline(seg: str) -> bool:
    if not seg or not (seg[-1].isalpha() or seg[-1] == "."):
        return False
    toks = seg.split()
    if not 1 <= len(toks) <= 4 or toks[-1].endswith("."):
        return False
    return all(_is_name_token(t) for t in toks)


# --- public API ---------------------------------------------------------------------


def split_sentences(text: str, article: bool = True) -> list[Segment]:
    """Split ``text`` into sentence segments with character offsets (see module doc). ``article``
    False: no titles or bylines (a document's joined blocks: a short last cell is text, not a signature)."""
    if not isinstance(text, str):
        raise TypeError(f"split_sentences() expects str, not {type(text).__name__}")
    raw: list[tuple[int, int, int, int]] = []  # start, end, paragraph, line
    para = 0
    para_used = False
    line_no = 0
    line_info: list[tuple[int, int]] = []  # (first raw index, count) per non-blank line
    pos = 0
    n = len(text)
    line_iter = _LINE_RE.finditer(text)
    while pos <= n:
        m = next(line_iter, None)
        le = m.start() if m else n
        a, b = _strip(text, pos, le)
        if a < b:
            cuts: list[int] = []
            _line_cuts(text, a, b, cuts)
            first = len(raw)
            s = a
            for c in cuts + [b]:
                ss, ee = _strip(text, s, c)
                if ss < ee:
                    for ls, le_ in _split_long(text, ss, ee):
                        for ps, pe in _bound(text, ls, le_):
                            raw.append((ps, pe, para, line_no))
                s = c
            line_info.append((first, len(raw) - first))
            para_used = True
            line_no += 1
        elif para_used:
            para += 1
            para_used = False
        if m is None:
            break
        pos = m.end()

    segs: list[Segment] = []
    last = len(raw) - 1
    for idx, (s, e, p, ln) in enumerate(raw):
        seg = text[s:e]
        kind = "sentence"
        if article and idx == last and idx > 0 and _is_byline(seg):
            kind = "byline"
        elif article and idx < last:
            first, count = line_info[ln]
            if count == 1 and _is_title(text, seg, raw[idx + 1][0]):
                kind = "title"
        segs.append(Segment(s, e, seg, p, kind))
    return segs


def _is_title(text: str, seg: str, next_start: int) -> bool:
    if seg[-1] in _TERM or seg[-1] in ",;:":
        return False
    if not _TITLE_END_OK.match(seg[-1]):
        return False
    if seg[0] in _DASHES or seg[0] in "*•+·":
        return False
    words = seg.split()
    if len(words) > MAX_TITLE_WORDS:
        return False
    w0 = _first_word_char(seg, 0, len(seg))
    if not w0 or w0.islower():
        return False
    w = _first_word_char(text, next_start, len(text))
    return bool(w) and not w.islower()
