"""The lexicons and local decisions of the sentence segmenter (:mod:`mt.text.segment`).

Kept apart from the line scanner so that the word lists (abbreviations, person words,
sentence starters, label nouns) and the per-candidate tests (abbreviation, initial, list
marker, quotation opening) can be read and tuned in one place.  Every test looks at a
bounded window of text (``_MAX_TOKEN``), which keeps segmentation linear.
"""

from __future__ import annotations

import re

__all__ = ["ABBREVIATIONS", "PLACE_ABBREVIATIONS", "TITLE_ABBREVIATIONS"]

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
