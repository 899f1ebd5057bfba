"""The block model every document format shares, and inline markup carried over by word links.

A reader turns a file into :class:`Block` s: the text of one block element (paragraph, heading,
table cell, cue group) with its inline markup as :class:`Span` s over that text. All blocks of a
file are joined into ONE article (a blank line between blocks, so the segmenter never joins
sentences across them) and sent through one :func:`mt.pipeline.translate_document` call: cache
first, one batched model call for the whole file. Each block then takes the sentences that fall
in its range (:class:`TranslatedBlock`), and every span is moved to the English words linked to
the source words it covers; a span whose words have no link lands at the same relative place,
so markup is never lost. The writer puts the English back into the file's structure.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from mt.errors import InputError

BLOCK_SEPARATOR = "\n\n"
# Characters the segmenter treats as line breaks: inside a block they are only layout (a soft
# line break of Markdown, a new line in HTML source), so they become spaces of the same length.
_WORD = re.compile(r"\S+")
_NONBLANK = re.compile(r"\S")
_LINE_BREAKS = dict.fromkeys(map(ord, "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), " ")


class DocumentError(InputError):
    """A file that cannot be read as its format says (``code`` names the problem for the API)."""

    code = "invalid_document"


class UnsupportedFormat(DocumentError):
    code = "unsupported_format"


class FileTooLarge(DocumentError):
    code = "file_too_large"


class EmptyDocument(DocumentError):
    """No text to translate: the same answer as an empty article (400 empty_text)."""

    code = "empty_text"


@dataclass
class Span:
    """Inline markup over ``Block.text[start:end]``. ``atom``: kept verbatim, never translated
    (inline code, an image, a comment); its text, if any, only gives the model the context."""

    start: int
    end: int
    data: Any = None  # the reader's handle: what the writer puts back
    atom: bool = False
    parent: int | None = None  # index of the enclosing span in Block.spans (readers nest them)


@dataclass
class Block:
    text: str
    spans: list[Span] = field(default_factory=list)
    ref: Any = None  # where the block lives in the file (the reader's handle)

    def flat_text(self) -> str:
        return self.text.translate(_LINE_BREAKS)


@dataclass
class TranslatedBlock:
    """One block in English: ``text`` keeps the source's leading/trailing whitespace, ``spans``
    gives each source span's range in ``text`` (nested as the source spans are)."""

    block: Block
    pairs: list  # the SentencePairs of this block (offsets index the joined article)
    text: str
    spans: list[tuple[int, int]]
    offsets: list[int]  # where each pair's translation starts in ``text``
    start: int = 0  # where the block starts in the joined article (the pairs' offsets)


def join_blocks(blocks: list[Block]) -> tuple[str, list[int]]:
    """The one article sent to the pipeline, and where each block starts in it."""
    starts, pieces, position = [], [], 0
    for block in blocks:
        starts.append(position)
        text = block.flat_text()
        pieces.append(text)
        position += len(text) + len(BLOCK_SEPARATOR)
    return BLOCK_SEPARATOR.join(pieces), starts


def translate_blocks(blocks: list[Block], engine, cache=None, *, settings=None, quality: bool = False, terms=None):
    """Translate every block of a file in one pipeline call, ``terms`` (mt.terms.TermRules; None: the
    pipeline's default) enforced; returns (Document, TranslatedBlocks)."""
    from mt.pipeline import translate_document

    wanted = [block for block in blocks if block.text.strip()]
    text, starts = join_blocks(wanted)
    document = translate_document(text, engine, cache, settings=settings, links=True, quality=quality,
                                  article=False, **({} if terms is None else {"terms": terms}))
    firsts = [pair.start for pair in document.sentences]
    translated = []
    for block, start in zip(wanted, starts):
        end = start + len(block.text)
        low, high = bisect.bisect_left(firsts, start), bisect.bisect_left(firsts, end)
        translated.append(carry_block(block, start, document.sentences[low:high]))
    return document, translated


def carry_block(block: Block, start: int, pairs: list) -> TranslatedBlock:
    """Assemble the block's English and move its spans onto the English words."""
    stripped = block.text.strip()
    lead = block.text[: len(block.text) - len(block.text.lstrip())]
    trail = block.text[len(lead) + len(stripped) :] if stripped else ""
    pieces, offsets, position = [], [], len(lead)
    for pair in pairs:
        if pieces and pair.translation:
            pieces.append(" ")
            position += 1
        offsets.append(position)
        pieces.append(pair.translation)
        position += len(pair.translation)
    english = lead + "".join(pieces) + trail
    body = (len(lead), len(lead) + sum(map(len, pieces)))
    index = _PairIndex(pairs, offsets)
    ranges = [_map_span(span, start, index, body) for span in block.spans]
    return TranslatedBlock(block, pairs, english, nest(block.spans, ranges, english), offsets, start)


class _PairIndex:
    """The block's sentences searchable by position (bisect), so mapping a span costs the log of
    the sentences plus the words it covers, never a pass over the whole block per span."""

    def __init__(self, pairs: list, offsets: list[int]):
        self.pairs, self.offsets = pairs, offsets
        self.starts = [pair.start for pair in pairs]
        self.ends = [pair.end for pair in pairs]
        self._words: dict[int, tuple] = {}

    def overlapping(self, a: int, b: int) -> range:
        return range(bisect.bisect_right(self.ends, a), bisect.bisect_left(self.starts, b))

    def words(self, n: int) -> tuple:
        """(source word starts, ends, source word → target words, target words, their starts, ends,
        ends of the translation's blank-separated words), computed once per sentence."""
        if n not in self._words:
            pair = self.pairs[n]
            links: dict[int, list[int]] = {}
            for s, t in pair.alignment:
                if t < len(pair.tgt_word_spans):
                    links.setdefault(s, []).append(t)
            tgt = [tuple(span) for span in pair.tgt_word_spans] or _word_spans(pair.translation)
            self._words[n] = ([x for x, _ in pair.src_word_spans], [y for _, y in pair.src_word_spans], links,
                              tgt, [x for x, _ in tgt], [y for _, y in tgt],
                              [0] + [y for _, y in _word_spans(pair.translation)])
        return self._words[n]


def _map_span(span: Span, start: int, index: _PairIndex, body: tuple[int, int]) -> tuple[int, int]:
    a, b = span.start + start, span.end + start
    if a == b:  # an image or a tag between words: a point between the same words in English
        return _point(a, index, body)
    found: list[tuple[int, int]] = []
    for n in index.overlapping(a, b):
        pair, offset = index.pairs[n], index.offsets[n]
        if not pair.translation:
            continue
        if a <= pair.start and b >= pair.end:  # the whole sentence
            found.append((offset, offset + len(pair.translation)))
            continue
        src_starts, src_ends, links = index.words(n)[:3]
        first, last = bisect.bisect_right(src_ends, a), bisect.bisect_left(src_starts, b)
        linked = [t for s in range(first, last) for t in links.get(s, ())]
        if linked:
            found.append((offset + min(pair.tgt_word_spans[t][0] for t in linked),
                          offset + max(pair.tgt_word_spans[t][1] for t in linked)))
        else:  # no link: the same relative place in the translation, whole words
            found.append(_proportional(pair, max(a, pair.start), min(b, pair.end), offset, index.words(n)[3:6]))
    if not found:
        return _point(a, index, body)
    x, y = min(x for x, _ in found), max(y for _, y in found)
    if span.atom and y - x > 3 * (b - a) + 10:  # links spread wide: insert, drop no English word
        return x, x
    return x, y


def _point(a: int, index: _PairIndex, body: tuple[int, int]) -> tuple[int, int]:
    n = bisect.bisect_right(index.ends, a)  # the first sentence that does not end at or before a
    if n == len(index.pairs):
        if not n:
            return body[0], body[0]
        position = index.offsets[-1] + len(index.pairs[-1].translation)
        return position, position
    pair, offset = index.pairs[n], index.offsets[n]
    if pair.start >= a:
        return offset, offset
    x = round((a - pair.start) / max(1, pair.end - pair.start) * len(pair.translation))
    bounds = index.words(n)[6]
    k = bisect.bisect_left(bounds, x)
    best = min(bounds[max(0, k - 1) : k + 1], key=lambda q: abs(q - x))
    return offset + best, offset + best


def _proportional(pair, a: int, b: int, offset: int, words: tuple) -> tuple[int, int]:
    length = max(1, pair.end - pair.start)
    size = len(pair.translation)
    x = round((a - pair.start) / length * size)
    y = max(x, round((b - pair.start) / length * size))
    spans, starts, ends = words
    first, last = bisect.bisect_right(ends, x), bisect.bisect_left(starts, max(y, x + 1))
    if first < last:
        return offset + spans[first][0], offset + spans[last - 1][1]
    return offset + x, offset + y


def _word_spans(text: str) -> list[tuple[int, int]]:
    return [match.span() for match in _WORD.finditer(text)]


def _children(spans: list[Span]) -> dict[int | None, list[int]]:
    children: dict[int | None, list[int]] = {}
    for index, span in enumerate(spans):
        children.setdefault(span.parent, []).append(index)
    return children


def nest(spans: list[Span], ranges: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Make mapped ranges a tree again: a child inside its parent, siblings in their source order
    and not overlapping (a later sibling starts where an earlier one ends; the elements keep their
    order, so the document's structure is the same), no range starting or ending on a blank; a
    span over source text keeps at least one English word when its parent has one to give.
    Iterative (a work list, not recursion) and linear: word starts are found once, by bisect."""
    final: list[tuple[int, int]] = [(0, 0)] * len(spans)
    children = _children(spans)
    starts = [match.start() for match in _WORD.finditer(text)]
    work: list[tuple[int | None, int, int]] = [(None, 0, len(text))]
    while work:
        parent, low, high = work.pop()
        kids = children.get(parent, [])
        cursor = low
        needy = [not spans[k].atom and spans[k].end > spans[k].start for k in kids]
        later = sum(needy)
        # the words of text[low:high]: the global word starts inside, plus a word cut at ``low``
        first, last = bisect.bisect_left(starts, low), bisect.bisect_left(starts, high)
        cut = low < high and not text[low].isspace() and (first >= len(starts) or starts[first] != low)
        count = last - first + cut
        for n, kid in enumerate(kids):
            later -= needy[n]  # leave a word for each later sibling that had text
            x, y = ranges[kid]
            x = min(max(x, cursor), high)
            if later and count >= later:
                cap = starts[last - later] if last - later >= first else low
            else:
                cap = high
            y = min(max(y, x), max(x, cap), high)
            if not spans[kid].atom:
                found = _NONBLANK.search(text, x, y)
                x = found.start() if found else y
                while y > x and text[y - 1].isspace():
                    y -= 1
                if x == y and spans[kid].end > spans[kid].start:  # give it the next word
                    found = _WORD.search(text, x, high)
                    x, y = (found.start(), found.end()) if found else (high, high)
            final[kid] = (x, y)
            cursor = y
            work.append((kid, x, y))
    return final


def render(text: str, spans: list[Span], ranges: list[tuple[int, int]], *, escape: Callable[[str], str],
           opening: Callable[[Span], str], closing: Callable[[Span], str], atom: Callable[[Span], str]) -> str:
    """Text with the spans put back as markup (tree order), escaping only the translated text.
    Iterative: a stack of open elements, so no depth of nesting can exhaust Python's stack."""
    children = _children(spans)
    out: list[str] = []
    # frames: [parent, cursor, high, next kid position]
    stack: list[list] = [[None, 0, len(text), 0]]
    while stack:
        frame = stack[-1]
        parent, cursor, high, k = frame
        kids = children.get(parent, [])
        if k == len(kids):
            out.append(escape(text[cursor:high]))
            stack.pop()
            if parent is not None:
                out.append(closing(spans[parent]))
            continue
        kid = kids[k]
        x, y = ranges[kid]
        out.append(escape(text[cursor:x]))
        frame[1], frame[3] = y, k + 1
        span = spans[kid]
        if span.atom:
            out.append(atom(span))
        else:
            out.append(opening(span))
            stack.append([kid, x, y, 0])
    return "".join(out)


def partition(text: str, spans: list[Span], ranges: list[tuple[int, int]]) -> list[tuple[str, int | None]]:
    """Flat spans (DOCX runs): the text cut into (piece, span index or None) in order."""
    pieces: list[tuple[str, int | None]] = []
    cursor = 0
    for index in sorted(range(len(spans)), key=lambda k: ranges[k]):
        x, y = ranges[index]
        if x > cursor:
            pieces.append((text[cursor:x], None))
        pieces.append((text[x:y], index))
        cursor = max(cursor, y)
    if cursor < len(text):
        pieces.append((text[cursor:], None))
    return pieces
