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
from dataclasses import dataclass, field
from typing import Any, Callable

from mt.errors import InputError

BLOCK_SEPARATOR = "\n\n"
# Characters the segmenter treats as line breaks: inside a block they are only layout (a soft
# line break of Markdown, a new line in HTML source), so they become spaces of the same length.
_LINE_BREAKS = dict.fromkeys(map(ord, "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"), " ")


class DocumentError(InputError):
    """A file that cannot be read as its format says (``code`` names the problem for the API)."""

    code = "invalid_document"


class UnsupportedFormat(DocumentError):
    code = "unsupported_format"


class FileTooLarge(DocumentError):
    code = "file_too_large"


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


def translate_blocks(blocks: list[Block], engine, cache=None, *, settings=None, quality: bool = False):
    """Translate every block of a file in one pipeline call; returns (Document, TranslatedBlocks)."""
    from mt.pipeline import translate_document

    wanted = [block for block in blocks if block.text.strip()]
    text, starts = join_blocks(wanted)
    document = translate_document(text, engine, cache, settings=settings, links=True, quality=quality)
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
    ranges = [_map_span(span, start, pairs, offsets, body) for span in block.spans]
    return TranslatedBlock(block, pairs, english, nest(block.spans, ranges, english), offsets, start)


def _map_span(span: Span, start: int, pairs: list, offsets: list[int], body: tuple[int, int]) -> tuple[int, int]:
    a, b = span.start + start, span.end + start
    if a == b:  # an image or a tag between words: a point between the same words in English
        return _point(a, pairs, offsets, body)
    found: list[tuple[int, int]] = []
    for pair, offset in zip(pairs, offsets):
        if pair.end <= a or pair.start >= b or not pair.translation:
            continue
        if a <= pair.start and b >= pair.end:  # the whole sentence
            found.append((offset, offset + len(pair.translation)))
            continue
        covered = {n for n, (x, y) in enumerate(pair.src_word_spans) if x < b and y > a}
        linked = sorted({t for s, t in pair.alignment if s in covered and t < len(pair.tgt_word_spans)})
        if linked:
            found.append((offset + min(pair.tgt_word_spans[t][0] for t in linked),
                          offset + max(pair.tgt_word_spans[t][1] for t in linked)))
        else:  # no link: the same relative place in the translation, whole words
            found.append(_proportional(pair, max(a, pair.start), min(b, pair.end), offset))
    if not found:
        return _point(a, pairs, offsets, body)
    x, y = min(x for x, _ in found), max(y for _, y in found)
    if span.atom and y - x > 3 * (b - a) + 10:  # links spread wide: insert, drop no English word
        return x, x
    return x, y


def _point(a: int, pairs: list, offsets: list[int], body: tuple[int, int]) -> tuple[int, int]:
    position = body[0]
    for pair, offset in zip(pairs, offsets):
        if pair.start >= a:
            return offset, offset
        if pair.end <= a:
            position = offset + len(pair.translation)
            continue
        x = offset + round((a - pair.start) / max(1, pair.end - pair.start) * len(pair.translation))
        bounds = [offset] + [offset + q for _, q in _word_spans(pair.translation)]
        best = min(bounds, key=lambda q: abs(q - x))
        return best, best
    return position, position


def _proportional(pair, a: int, b: int, offset: int) -> tuple[int, int]:
    length = max(1, pair.end - pair.start)
    size = len(pair.translation)
    x = round((a - pair.start) / length * size)
    y = max(x, round((b - pair.start) / length * size))
    words = pair.tgt_word_spans or _word_spans(pair.translation)
    inside = [(p, q) for p, q in words if q > x and p < max(y, x + 1)]
    if inside:
        return offset + inside[0][0], offset + inside[-1][1]
    return offset + x, offset + y


def _word_spans(text: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for word in text.split():
        position = text.index(word, position)
        spans.append((position, position + len(word)))
        position += len(word)
    return spans


def nest(spans: list[Span], ranges: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """Make mapped ranges a tree again: a child inside its parent, siblings in their source order
    and not overlapping (a later sibling starts where an earlier one ends; the elements keep their
    order, so the document's structure is the same), no range starting or ending on a blank; a
    span over source text keeps at least one English word when its parent has one to give."""
    final: list[tuple[int, int]] = [(0, 0)] * len(spans)
    children: dict[int | None, list[int]] = {}
    for index, span in enumerate(spans):
        children.setdefault(span.parent, []).append(index)

    def place(parent: int | None, low: int, high: int) -> None:
        kids = children.get(parent, [])
        cursor = low
        words = [w for w in _word_spans(text[low:high])]
        needy = [not spans[k].atom and spans[k].end > spans[k].start for k in kids]
        for n, kid in enumerate(kids):
            x, y = ranges[kid]
            x = min(max(x, cursor), high)
            later = sum(needy[n + 1 :])  # leave a word for each later sibling that had text
            cap = low + words[-later][0] if later and len(words) >= later else high
            y = min(max(y, x), max(x, cap), high)
            if not spans[kid].atom:
                while x < y and text[x].isspace():
                    x += 1
                while y > x and text[y - 1].isspace():
                    y -= 1
                if x == y and spans[kid].end > spans[kid].start:  # give it the next word
                    while x < high and text[x].isspace():
                        x += 1
                    y = x
                    while y < high and not text[y].isspace():
                        y += 1
            final[kid] = (x, y)
            cursor = y
            place(kid, x, y)

    place(None, 0, len(text))
    return final


def render(text: str, spans: list[Span], ranges: list[tuple[int, int]], *, escape: Callable[[str], str],
           opening: Callable[[Span], str], closing: Callable[[Span], str], atom: Callable[[Span], str]) -> str:
    """Text with the spans put back as markup (tree order), escaping only the translated text."""
    children: dict[int | None, list[int]] = {}
    for index, span in enumerate(spans):
        children.setdefault(span.parent, []).append(index)
    out: list[str] = []

    def emit(parent: int | None, low: int, high: int) -> None:
        cursor = low
        for kid in children.get(parent, []):
            x, y = ranges[kid]
            out.append(escape(text[cursor:x]))
            span = spans[kid]
            if span.atom:
                out.append(atom(span))
            else:
                out.append(opening(span))
                emit(kid, x, y)
                out.append(closing(span))
            cursor = y
        out.append(escape(text[cursor:high]))

    emit(None, 0, len(text))
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
