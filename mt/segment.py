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

The implementation is one regex pass for candidates plus constant-time local
decisions (no backtracking-prone patterns), so it runs in linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Segment",
    "MAX_SEGMENT_WORDS",
    "MAX_TITLE_WORDS",
    "ABBREVIATIONS",
    "TITLE_ABBREVIATIONS",
    "PLACE_ABBREVIATIONS",
    "split_sentences",
]

#: Segments with more words than this are split at clause boundaries (or hard).
MAX_SEGMENT_WORDS = 150
#: Longest line (in words) that can be a title.
MAX_TITLE_WORDS = 25


@dataclass(frozen=True, slots=True)
class Segment:
    start: int
    end: int
    text: str
    paragraph: int
    kind: str  # "sentence" | "title" | "byline"


# Abbreviations after which a single full stop does not end a sentence.  Case-sensitive.
# Single letters are handled as initials (``N. Anh``, ``ông H.``), see ``_abbrev_before``.
#
# Titles and other words that precede a name: never a boundary after them.
TITLE_ABBREVIATIONS = frozenset(
    """
    ThS Ths THS Th.S Th.s TS Ts PGS Pgs PGS.TS GS Gs GS.TS GS.TSKH TSKH BS Bs BSCKI
    BSCKII KS Ks LS Ls NSƯT NSND KTS Th Tr tr Nxb NXB
    Mr Mrs Ms Dr Prof St Sr Jr Mt Gen Col Lt Sgt Rev Hon Gov Rep Capt Cmdr Adm
    Mme Mlle Messrs vs No Nos Fig fig Vol vol pp
    """.split()
)
# Administrative units that also end sentences ("... của TP."): no boundary only
# when a name follows (``TP. HCM``, ``TP. Hồ Chí Minh``, ``Tp. Cần_Thơ``).
PLACE_ABBREVIATIONS = frozenset("TP Tp tp TX Tx tx TT Tt tt".split())
ABBREVIATIONS = TITLE_ABBREVIATIONS | PLACE_ABBREVIATIONS

# Words after which a capital letter with a full stop is an initial (``ông V. Putin``).
_PERSON_WORDS = frozenset(
    """
    ông bà anh chị em cô chú bác cụ thầy cậu dì mợ thím cháu con bé lão chàng nàng
    mr mrs ms dr
    """.split()
)

# Capitalised words that start sentences and are not names: after ``X.`` (a capital
# letter and a full stop) they mark a boundary, other capitalised words are taken as
# the rest of a name (``N. Anh``, ``V. Putin``).
_SENTENCE_STARTERS = frozenset(
    """
    Tôi Chúng Ta Người Nó Họ Mình Ông Bà Chị Em Cô Các Những Mọi Mỗi Một Cả
    Trong Ngoài Trước Sau Khi Lúc Từ Tại Theo Với Để Do Vì Nếu Tuy Dù Mặc Nhưng Song
    Còn Và Rồi Thế Vậy Nên Cho Đến Hiện Hôm Ngày Năm Tháng Tuần Đây Đó Này Kia Ai
    Gì Sao Không Chưa Đã Đang Sẽ Cũng Vẫn Chỉ Hãy Xin Bởi Tất Hầu Riêng Đặc Thậm
    Ngay Bây Lần Giờ Tuy_nhiên Chúng_tôi
    The This That These Those It He She We They I You In On At After Before When But
    """.split()
)

# Nouns after which a capital letter is a label, not an initial ("số Y", "điểm F").
_LABEL_NOUNS = frozenset(
    """
    số điểm hạng loại nhóm đội lớp khối khu phường xã ấp tổ xóm đường phố quận huyện
    tỉnh tầng phòng căn lô dãy ô cửa cổng bảng mẫu kiểu dạng tuýp vitamin virus
    block phương_án phương án kế_hoạch kế hoạch giai_đoạn giai đoạn phần mục điều
    chương khoản trạm ga cột hàng bến bãi nhà trường viện
    """.split()
)

# --- character classes ------------------------------------------------------------

_TERM = ".!?…"
_QUOTES = "\"“”'‘’«»"
_OPEN_QUOTES = "\"“'‘«"
_CLOSERS = ")]}"
_OPEN_BRACKETS = "([{"
_DASHES = "-–—"
# A closing quote followed by one of these is a closing quote.
_AFTER_CLOSE = ",.;:!?)]}…"
# Characters that continue a sentence when they follow a terminal cluster.
_CONTINUERS = ",;:)]}%"
_EXTRA_WS = "\u200b\u200c\u200d\u2060\ufeff"

# One candidate = a terminal mark, then any run of terminal marks / quotes /
# closing brackets, each optionally preceded by blanks.  Every repetition consumes
# exactly one non-blank character and the pattern never fails once started, so
# matching is linear.
# Repetitions are capped (a run of 10 MB of dots is then many short candidates).
_CLUSTER_RE = re.compile(
    r"[.!?…](?:[ \t\xa0\x00-\x08\x0b\x0c\x0e-\x1f]{0,8}[.!?…\"“”'‘’«»)\]}]){0,24}"
)
# A dateline after a headline on the same line: "... qua đời (NAM ĐỊNH) Nguyễn ...".
_DATELINE_RE = re.compile(r"(?<=\w)\s+(\(\s?[^\W\d_]{2,}(?:[ _][^\W\d_]{2,}){1,3}\s?\))\s+(?=[^\W_])")
_LINE_RE = re.compile(r"\r\n|[\r\n\u2028\u2029]")
_QUOTE_RE = re.compile(r"[\"“”«»]")
_TERM_SPACE_RE = re.compile(r"[.!?…]\s")
_INITIALS_RE = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")
_LIST_MARKER_RE = re.compile(r"(?:\d{1,3}|[IVXLC]{1,5}|[a-zA-Z])")


# Whitespace for our purposes: Unicode spaces, control characters (C0, DEL, C1) and
# zero-width spaces / BOM.  All of them lie below U+3001 except the BOM.
_WS_CHARS = frozenset(
    [c for c in map(chr, range(0x3001)) if c.isspace() or c < " " or "\x7f" <= c <= "\x9f"]
    + list(_EXTRA_WS)
)
_is_ws = _WS_CHARS.__contains__


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and _is_ws(text[a]):
        a += 1
    while b > a and _is_ws(text[b - 1]):
        b -= 1
    return a, b


_MAX_TOKEN = 64  # tokens are looked at through a window this wide (keeps work linear)


def _prev_token(text: str, end: int, lo: int) -> tuple[int, int]:
    """Token (run of non-blanks) ending at ``end``, skipping blanks before it; at most
    ``_MAX_TOKEN`` characters of it (a longer token is never an abbreviation)."""
    stop = max(lo, end - _MAX_TOKEN)
    while end > stop and _is_ws(text[end - 1]):
        end -= 1
    start = end
    stop = max(lo, end - _MAX_TOKEN)
    while start > stop and not _is_ws(text[start - 1]):
        start -= 1
    return start, end


def _next_token(text: str, n: int, b: int) -> tuple[int, int]:
    """Token starting at or after ``n`` (skipping blanks); at most ``_MAX_TOKEN`` chars."""
    stop = min(b, n + _MAX_TOKEN)
    while n < stop and _is_ws(text[n]):
        n += 1
    e = n
    stop = min(b, n + _MAX_TOKEN)
    while e < stop and not _is_ws(text[e]):
        e += 1
    return n, e


# --- quotes ---------------------------------------------------------------------


def _quote_openings(text: str, a: int, b: int) -> set[int]:
    """Positions of double quotes in text[a:b] that open a quotation.

    Context decides where it can (attached to the next or the previous word, followed by
    punctuation, after a colon or bracket); the running open/closed state decides the
    rest (quotes spaced on both sides, as in word-segmented text)."""
    opening: set[int] = set()
    is_open = False
    open_pos = a
    for m in _QUOTE_RE.finditer(text, a, b):
        p = m.start()
        ch = text[p]
        if ch in "“«":
            opening.add(p)
            open_pos = p
            is_open = True
            continue
        if ch in "”»":
            is_open = False
            continue
        left_ws = p == a or _is_ws(text[p - 1])
        right_ws = p + 1 >= b or _is_ws(text[p + 1])
        n = p + 1
        while n < b and _is_ws(text[n]):
            n += 1
        nxt = text[n] if n < b else ""
        q = p
        while q > a and _is_ws(text[q - 1]):
            q -= 1
        prv = text[q - 1] if q > a else ""
        if nxt == "" or nxt in _AFTER_CLOSE:
            op = False
        elif nxt in _DASHES and (n + 1 >= b or _is_ws(text[n + 1])):
            op = False  # '..." - ông X kể' (attribution after a closing quote)
        elif prv == "" or prv in "([{":
            op = True
        elif left_ws and not right_ws:
            op = True
        elif right_ws and not left_ws:
            op = False
        elif prv == ":" or (prv in _DASHES and (q - 1 == a or _is_ws(text[q - 2]))):
            op = True
        elif prv in _TERM and not (
            is_open
            and (prv != "." or text[q - 2 : q - 1] == ".")
            and _TERM_SPACE_RE.search(text, open_pos, q - 1) is None
        ):
            # After a terminal mark a quote followed by a lowercase word, or whose
            # partner further on looks like a closing quote, opens a quotation whatever
            # the running state says: unbalanced quotes are common (quotations are cut
            # across lines) and Vietnamese puts the full stop after the closing quote
            # ('... hydro " .').  Exception: '!', '?' or '...' ending a one-sentence
            # quotation opened in this sentence (': " nhầm số rồi ! " và cúp máy').
            op = nxt.islower() or _closer_follows(text, n, b) or not is_open
        else:
            op = not is_open
        if op:
            opening.add(p)
            open_pos = p
        is_open = op
    return opening


def _closer_follows(text: str, n: int, b: int) -> bool:
    """Does the next double quote at or after ``n`` look like a closing quote?"""
    p = text.find('"', n, b)
    if p < 0:
        return False
    e = p + 1
    while e < b and _is_ws(text[e]):
        e += 1
    if e >= b or text[e] in _AFTER_CLOSE:
        return True
    q = p
    while q > n and _is_ws(text[q - 1]):
        q -= 1
    return q > n and text[q - 1] in _TERM


# --- boundary decisions ---------------------------------------------------------


def _first_word_char(text: str, n: int, b: int) -> str:
    """First letter/digit at or after n (skipping quotes, brackets, dashes, blanks)."""
    lim = min(b, n + 12)
    while n < lim:
        ch = text[n]
        if ch.isalnum():
            return ch
        if ch in _QUOTES or ch in _OPEN_BRACKETS or ch in _DASHES or _is_ws(ch) or ch in "*•·":
            n += 1
            continue
        return ch
    return ""


def _is_cap_word(tok: str) -> bool:
    return bool(tok) and tok[0].isalpha() and tok[0].isupper()


def _name_follows(text: str, n: int, b: int) -> bool:
    """Does a proper name start at ``n``?  ``HCM``, ``Cần_Thơ``, ``Hồ Chí Minh``."""
    s, e = _next_token(text, n, b)
    while s < e and (text[s] in _OPEN_QUOTES or text[s] in _OPEN_BRACKETS):
        s += 1
    tok = text[s:e].rstrip(",.;:!?)\"'”’")
    if not _is_cap_word(tok):
        return False
    if "_" in tok:
        return all(_is_cap_word(p) for p in tok.split("_"))
    if len(tok) >= 2 and tok.isupper():
        return True
    s2, e2 = _next_token(text, e, b)
    return _is_cap_word(text[s2:e2])


def _capital_then_lower(text: str, n: int, b: int) -> bool:
    """``Tôi không`` (a capitalised word, then a lowercase one): a new sentence."""
    s, e = _next_token(text, n, b)
    tok = text[s:e]
    if not _is_cap_word(tok):
        return False
    if "_" in tok:
        return not all(_is_cap_word(p) for p in tok.split("_"))
    if not tok.isalpha():
        return False
    s2, e2 = _next_token(text, e, b)
    nxt = text[s2:e2]
    return bool(nxt) and nxt[0].isalpha() and nxt[0].islower()


def _sentence_starts(text: str, n: int, b: int) -> bool:
    """After a capital letter + full stop: does the next word clearly start a sentence?
    ``... có số Y. Tôi không cần``, ``... phường K. Người ta ...``, ``TNHH K. Bảo_vệ nói``
    (a word-segmented compound with lowercase syllables is not a name) -- as opposed
    to ``N. Anh``, ``V. Putin``."""
    s, e = _next_token(text, n, b)
    tok = text[s:e].rstrip(",.;:!?")
    if not _is_cap_word(tok):
        return False
    if "_" in tok:
        return not all(_is_cap_word(p) for p in tok.split("_"))
    return tok in _SENTENCE_STARTERS


def _abbrev_before(text: str, dot: int, seg_start: int, attached: bool, n: int, b: int) -> bool:
    """Is the single full stop at ``dot`` part of an abbreviation, an initial, a list
    marker or a number?  ``n`` is where the next word starts."""
    ts, te = _prev_token(text, dot, seg_start)
    if ts == te:
        return False
    tok = text[ts:te]
    if not attached:
        # Word-segmented / spaced text: "TP . HCM", "V . H .", "70 . 000".
        if tok.isdigit() and len(tok) <= 3:
            s, e = _next_token(text, n, b)
            return e - s == 3 and text[s:e].isdigit()
        if tok in TITLE_ABBREVIATIONS:
            return True
        if tok in PLACE_ABBREVIATIONS:
            return _name_follows(text, n, b)
        if len(tok) == 1 and tok.isalpha() and tok.isupper():
            return _initial(text, ts, seg_start, n, b)
        return False
    i = 0
    while i < len(tok) and (tok[i] in _OPEN_QUOTES or tok[i] in _OPEN_BRACKETS):
        i += 1
    tok = tok[i:]
    if not tok:
        return False
    if tok in TITLE_ABBREVIATIONS:
        return True
    if tok in PLACE_ABBREVIATIONS:
        return _name_follows(text, n, b)
    if len(tok) == 1 and tok.isalpha():
        if tok.isupper():
            return _initial(text, ts + i, seg_start, n, b)
        if not tok.isascii():
            return False  # "ạ.", "ừ." are words
        # "vụ h. 15 tuổi" (a name) but "10 m." / "8 g." (units after a number)
        ps, pe = _prev_token(text, ts, seg_start)
        return not text[ps:pe].replace(",", "").replace(".", "").isdigit()
    if len(tok) <= 8 and "." in tok and tok.isupper() and _INITIALS_RE.fullmatch(tok):
        return True  # V.H.  T.T.K.
    if _LIST_MARKER_RE.fullmatch(tok):
        # "1. Xxx", "II. Xxx", "a. Xxx" at the start of a segment or after a colon
        if ts + i == seg_start:
            return True
        ps, pe = _prev_token(text, ts, seg_start)
        return pe > ps and text[pe - 1] in ":;"
    return False


def _initial(text: str, ts: int, seg_start: int, n: int, b: int) -> bool:
    """A capital letter + full stop at ``ts``: an initial unless a new sentence
    clearly starts after it (``... có số Y. Tôi không cần``)."""
    if ts <= seg_start:
        return True
    if _sentence_starts(text, n, b):
        return False
    ps, pe = _prev_token(text, ts, seg_start)
    prev = text[ps:pe]
    if prev.lower() in _PERSON_WORDS or (len(prev) <= 4 and prev.endswith(".")):
        return True
    if prev.isalpha() and prev[0].isupper() and prev[1:].islower():
        return True  # Nguyễn V. Anh
    if prev in _LABEL_NOUNS or (len(prev) >= 2 and prev.isupper() and prev.isalpha()):
        # "số Y", "điểm F", "phường K", "công ty TNHH K": a letter used as a label
        return not _capital_then_lower(text, n, b)
    return True


def _short_exclamations(text: str, cs: int, n: int, a: int, b: int) -> bool:
    """'"Mẹ! Bố!"': a quotation of one or two words, '!' or '?', one or two words and the
    closing quote is kept whole."""
    e = cs
    for _ in range(3):
        s, e = _prev_token(text, e, a)
        if s == e:
            return False
        if text[s] in "\"“":
            break
        if not text[s].isalnum():
            return False
        e = s
    else:
        return False
    p = n
    for _ in range(3):
        s, p = _next_token(text, p, b)
        if s == p:
            return False
        tok = text[s:p]
        if tok[0] in "\"”" or tok.rstrip(".").endswith(("!\"", "?\"", "!”", "?”")):
            return True
        if not tok[0].isalnum() and tok not in ("!", "?"):
            return False
    return False


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


def split_sentences(text: str) -> list[Segment]:
    """Split ``text`` into sentence segments with character offsets (see module doc)."""
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
                    for ps, pe in _split_long(text, ss, ee):
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
        if idx == last and idx > 0 and _is_byline(seg):
            kind = "byline"
        elif idx < last:
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
