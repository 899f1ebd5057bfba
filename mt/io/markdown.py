"""Markdown in and out: only the text ranges of the source are rewritten, the rest stays byte-identical.

markdown-it-py (CommonMark + GFM tables and strikethrough) finds the inline content of every
paragraph, heading and table cell and its lines in the source (token source maps). Its inline
tokens are then matched against that source text to find where each piece sits: text becomes
the block's text, emphasis/strong/strikethrough/link markers become spans whose source bytes are
re-emitted verbatim around the English words they cover (so a link's URL and title never change),
and inline code, images, autolinks and inline HTML are kept verbatim. Code blocks, fences, HTML
blocks, front matter-like thematic lines and link reference definitions are never touched. A hard
line break splits a block; a soft one is a space. A block whose source cannot be matched exactly is
left untranslated (logged) rather than risk changing its markup.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field

from .blocks import Block, DocumentError, Span, TranslatedBlock, render

log = logging.getLogger(__name__)

_ESCAPED = set("\\`*_[]<>|~&")
_LINE_START = set("#+-=>")


class _NoMatch(Exception):
    pass


@dataclass
class MarkdownDocument:
    text: str
    bom: bool
    skipped: int = 0  # blocks left untranslated because their source could not be matched
    blocks: list = field(default_factory=list)


def _parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for n, char in enumerate(text):
        if char == "\n":
            starts.append(n + 1)
    return starts


def _locate(text: str, starts: list[int], first_line: int, content: str) -> tuple[str, list[int]]:
    """Each line of an inline token's content found in its source line: (content, source offsets)."""
    offsets: list[int] = []
    for k, line in enumerate(content.split("\n")):
        n = first_line + k
        if n >= len(starts):
            raise _NoMatch
        end = starts[n + 1] - 1 if n + 1 < len(starts) else len(text)
        source = text[starts[n] : end]
        trimmed = source.rstrip()
        at = len(trimmed) - len(line) if line and trimmed.endswith(line) else source.find(line)
        if at < 0:
            raise _NoMatch
        offsets.extend(range(starts[n] + at, starts[n] + at + len(line)))
        offsets.append(starts[n] + at + len(line))  # the "\n" between lines (or the end)
    return content, offsets


def _cells(text: str, starts: list[int], line: int) -> list[tuple[str, list[int]]]:
    """The cells of a GFM table row as written (escaped pipes kept), with their source offsets."""
    end = starts[line + 1] - 1 if line + 1 < len(starts) else len(text)
    row, base = text[starts[line] : end], starts[line]
    bounds, n = [], 0
    while n < len(row):
        if row[n] == "\\":
            n += 2
            continue
        if row[n] == "|":
            bounds.append(n)
        n += 1
    edges = [-1] + bounds + [len(row)]
    cells = []
    for a, b in zip(edges, edges[1:]):
        piece = row[a + 1 : b]
        if (a == -1 and not piece.strip() and bounds) or (b == len(row) and not piece.strip() and a >= 0):
            continue  # outside the leading / trailing pipe
        left = len(piece) - len(piece.lstrip())
        stripped = piece.strip()
        cells.append((stripped, list(range(base + a + 1 + left, base + a + 1 + left + len(stripped) + 1))))
    return cells


class _Matcher:
    """Walks inline tokens over their source text ``raw``; collects blocks of text and spans."""

    def __init__(self, raw: str, offsets: list[int], text: str):
        self.raw, self.offsets, self.text = raw, offsets, text
        self.c = 0
        self.blocks: list[Block] = []
        self._new()

    def _new(self):
        self.chars: list[str] = []
        self.length = 0
        self.spans: list[Span] = []
        self.stack: list[int] = []
        self.first = -1

    def _source(self, a: int, b: int) -> str:
        return self.text[self.offsets[a] : self.offsets[b - 1] + 1] if b > a else ""

    def _expect(self, marker: str):
        if not self.raw.startswith(marker, self.c):
            raise _NoMatch
        if self.first < 0:
            self.first = self.c
        self.c += len(marker)

    def flush(self, end: int):
        text = "".join(self.chars)
        if self.stack:
            raise _NoMatch  # a span across a hard break: leave the block alone
        if text.strip() and self.first >= 0:
            self.blocks.append(Block(text, self.spans, ref=(self.offsets[self.first], self.offsets[end - 1] + 1)))
        self._new()

    def _parent(self):
        return self.stack[-1] if self.stack else None

    def _atom(self, a: int, model_text: str = ""):
        self.spans.append(Span(self.length, self.length + len(model_text), (self._source(a, self.c), ""), True,
                               self._parent()))
        self.chars.append(model_text)
        self.length += len(model_text)

    def _text(self, content: str):
        if self.first < 0:
            self.first = self.c
        raw, i = self.raw, 0
        while i < len(content):
            if raw.startswith("&", self.c):
                semi = raw.find(";", self.c, self.c + 40)
                decoded = html.unescape(raw[self.c : semi + 1]) if semi > 0 else "&"
                if semi > 0 and decoded != raw[self.c : semi + 1] and content.startswith(decoded, i):
                    self.c, i = semi + 1, i + len(decoded)
                    continue
            if self.c < len(raw) and raw[self.c] == content[i]:
                self.c += 1
                i += 1
            elif raw.startswith("\\", self.c) and raw[self.c + 1 : self.c + 2] == content[i]:
                self.c += 2
                i += 1
            else:
                raise _NoMatch
        self.chars.append(content)
        self.length += len(content)

    def _skip_blanks(self):
        while self.c < len(self.raw) and self.raw[self.c] in " \t":
            self.c += 1

    def _tail(self) -> None:
        """After a link's ``]``: ``(destination "title")``, ``[label]`` or nothing."""
        raw = self.raw
        if raw.startswith("(", self.c):
            depth, n = 0, self.c
            while n < len(raw):
                char = raw[n]
                if char == "\\":
                    n += 2
                    continue
                if char in "\"'" and depth == 1:
                    close = raw.find(char, n + 1)
                    n = close + 1 if close > 0 else len(raw)
                    continue
                if char == "<" and depth == 1 and raw[n - 1] in "( ":
                    close = raw.find(">", n)
                    n = close + 1 if close > 0 else len(raw)
                    continue
                depth += char == "("
                depth -= char == ")"
                n += 1
                if depth == 0:
                    self.c = n
                    return
            raise _NoMatch
        if raw.startswith("[", self.c):
            close = raw.find("]", self.c)
            if close < 0:
                raise _NoMatch
            self.c = close + 1

    def _brackets(self):
        """From ``![`` or ``[`` to its matching ``]``."""
        depth, n, raw = 0, self.c, self.raw
        while n < len(raw):
            if raw[n] == "\\":
                n += 2
                continue
            depth += raw[n] == "["
            depth -= raw[n] == "]"
            n += 1
            if depth == 0:
                self.c = n
                return
        raise _NoMatch

    def walk(self, children) -> None:
        skip_until_close = False
        for token in children:
            kind = token.type
            if skip_until_close:
                skip_until_close = kind != "link_close"
                continue
            start = self.c
            if kind == "text":
                self._text(token.content)
            elif kind == "softbreak":
                self._skip_blanks()
                self._expect("\n")
                self._skip_blanks()
                self.chars.append(" ")
                self.length += 1
            elif kind == "hardbreak":
                end = self.c
                if self.raw.startswith("\\", self.c):
                    self.c += 1
                self._skip_blanks()
                self._expect("\n")
                self.flush(end)
            elif kind == "code_inline":
                self._expect(token.markup)
                close = self.raw.find(token.markup, self.c)
                if close < 0:
                    raise _NoMatch
                self.c = close + len(token.markup)
                self._atom(start, token.content)
            elif kind in ("em_open", "strong_open", "s_open"):
                self._expect(token.markup)
                self.spans.append(Span(self.length, self.length, [token.markup, ""], False, self._parent()))
                self.stack.append(len(self.spans) - 1)
            elif kind in ("em_close", "strong_close", "s_close", "link_close"):
                if not self.stack:
                    raise _NoMatch
                if kind == "link_close":
                    self._expect("]")
                    self._tail()
                else:
                    self._expect(token.markup)
                index = self.stack.pop()
                self.spans[index].end = self.length
                self.spans[index].data[1] = self._source(start, self.c)
            elif kind == "link_open" and token.markup == "autolink":
                self._expect("<")
                close = self.raw.find(">", self.c)
                if close < 0:
                    raise _NoMatch
                self.c = close + 1
                self._atom(start)
                skip_until_close = True
            elif kind == "link_open":
                self._expect("[")
                self.spans.append(Span(self.length, self.length, ["[", ""], False, self._parent()))
                self.stack.append(len(self.spans) - 1)
            elif kind == "image":
                self._expect("![")
                self.c = start + 1
                self._brackets()
                self._tail()
                self._atom(start)
            elif kind == "html_inline":
                self._expect(token.content)
                self._atom(start)
            else:
                raise _NoMatch
        self._skip_blanks()
        if self.c != len(self.raw.rstrip()) and self.c < len(self.raw):
            raise _NoMatch
        self.flush(self.c)


def read_markdown(data: bytes, name: str = "input.md") -> tuple[list[Block], MarkdownDocument]:
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{name}: not valid UTF-8 (byte {error.start}); save it as UTF-8") from None
    document = MarkdownDocument(text, bom)
    md, env = _parser(), {}
    tokens = md.parse(text, env)
    starts = _line_starts(text)
    row_cells: dict[int, list] = {}
    row_seen: dict[int, int] = {}
    inline_of: dict[str, list] = {}
    blocks: list[Block] = []
    for n, token in enumerate(tokens):
        if token.type != "inline" or not token.map or not token.content.strip():
            continue
        try:
            if n > 0 and tokens[n - 1].type in ("th_open", "td_open"):
                line = token.map[0]
                if line not in row_cells:  # once per row, not once per cell
                    row_cells[line] = _cells(text, starts, line)
                cells = row_cells[line]
                k = row_seen.get(line, 0)
                row_seen[line] = k + 1
                if k >= len(cells):
                    raise _NoMatch
                raw, offsets = cells[k]
                if raw not in inline_of:  # identical cells parsed once (tokens are only read)
                    inline_of[raw] = md.parseInline(raw, env)[0].children or []
                children = inline_of[raw]
            else:
                raw, offsets = _locate(text, starts, token.map[0], token.content)
                children = token.children or []
            matcher = _Matcher(raw, offsets, text)
            matcher.walk(children)
            blocks.extend(matcher.blocks)
        except _NoMatch:
            document.skipped += 1
            log.warning("%s: line %d left untranslated (its inline markup could not be matched)", name,
                        token.map[0] + 1)
    return blocks, document


def _escape(text: str) -> str:
    return "".join("\\" + char if char in _ESCAPED else " " if char == "\n" else char for char in text)


def _line_start(text: str) -> str:
    """English that would read as a heading, list item or quote at the start of a line: escaped."""
    lead = len(text) - len(text.lstrip())
    rest = text[lead:]
    digits = len(rest) - len(rest.lstrip("0123456789"))
    if rest[:1] in _LINE_START:
        return text[:lead] + "\\" + rest
    if digits and rest[digits : digits + 1] in (".", ")"):
        return text[: lead + digits] + "\\" + rest[digits:]
    return text


def _rendered(item: TranslatedBlock) -> str:
    started = [False]

    def escape(text: str) -> str:
        escaped = _escape(text)
        if not started[0] and text.strip():
            started[0] = True
            return _line_start(escaped)
        return escaped

    def markup(value: str) -> str:
        started[0] = started[0] or bool(value)
        return value

    return render(item.text, item.block.spans, item.spans, escape=escape,
                  opening=lambda span: markup(span.data[0]), closing=lambda span: markup(span.data[1]),
                  atom=lambda span: markup(span.data[0]))


def write_markdown(document: MarkdownDocument, translated: list[TranslatedBlock]) -> bytes:
    edits = sorted((*item.block.ref, _rendered(item)) for item in translated)
    out, cursor = [], 0
    for start, end, replacement in edits:
        out.append(document.text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(document.text[cursor:])
    return ("\ufeff" if document.bom else "").encode() + "".join(out).encode("utf-8")
