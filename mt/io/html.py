"""HTML in and out: only the text of translatable blocks is rewritten, every other byte is kept.

The standard library's tokenizer (``html.parser``, the browser tokenization rules: raw-text
``<script>``/``<style>``, entities with or without ``;``, tag soup) gives each token's place in
the source; blocks follow the browser's model: any element that is not phrasing content
(``<p>``, ``<li>``, ``<td>``, ``<h1>``, ``<br>`` ...) ends a block, so an unclosed ``<p>`` ends
where the browser ends it. Inline elements (``<b>``, ``<a href>``, ``<em>`` ...) become spans and
their own start/end tags are re-emitted verbatim around the English words they cover; tags and
comments between the words stay in the block at the same relative place. Because markup bytes are
only moved, never rebuilt, malformed input parses the same way after translation as before.

Untouched: ``<script>``, ``<style>``, ``<pre>``, ``<textarea>``, ``<svg>``, ``<math>``,
``<template>``, ``<noscript>``, and any element with ``translate="no"`` or class ``notranslate``;
inline ``<code>``/``<kbd>``/``<samp>`` are kept verbatim inside their sentence. Attributes
(``alt``, ``title``) are not translated. ``lang`` becomes ``en`` on ``<html>`` (added when
missing) and on any element whose ``lang`` was Vietnamese.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
import re
from html.parser import attrfind_tolerant, tagfind_tolerant

from .blocks import Block, DocumentError, Span, TranslatedBlock, render

#: More start tags than this and the file is refused (a real article page has a few thousand):
#: the tokenizer stops at once, so time and memory stay bounded (docs/DOCUMENTS.md).
MAX_TAGS = 100_000
#: Inline elements open at once at most; deeper ones are kept verbatim as atoms, so an end tag's
#: search of the open elements (and the browser's reopening of formatting ones) stays bounded.
MAX_INLINE_DEPTH = 64

INLINE = frozenset(
    "a abbr acronym b bdi bdo big cite data del dfn em font i ins label mark nobr q rp rt ruby "
    "s small span strike strong sub sup time tt u".split()
)
# Elements the browser reopens after a misnested end tag (<b><i>1</b>2</i>: "2" is still italic).
FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
VERBATIM_INLINE = frozenset("code kbd samp".split())  # kept inside the sentence, never translated
INLINE_VOID = frozenset("img wbr input embed".split())  # zero-width: kept between the same words
PROTECTED = frozenset("script style pre textarea svg math template noscript iframe object canvas".split())
VOID = frozenset("area base br col embed hr img input link meta param source track wbr keygen".split())


@dataclass
class _Token:
    kind: str  # "start", "end", "data", "ref", "other"
    start: int
    end: int = -1
    tag: str = ""
    attrs: list = field(default_factory=list)
    raw: str = ""  # the start tag's source (lang fixed), for "start"


_RAW_TEXT = frozenset("script style xmp iframe noembed noframes".split())  # text up to their end tag
_RCDATA = frozenset("textarea title".split())  # the same, but character references decoded
_NAME_END = re.compile(r"[\t\n\f\r />]")
_ATTR_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r /=>]*")
_BLANKS = re.compile(r"[\t\n\f\r ]*")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
_COMMENT_END = re.compile(r"--!?>")
# <b></b><i></i>...: attribute-less empty inline elements, one token (the builder expands it back
# into its tags where they could mean more than nothing: inline elements already MAX_INLINE_DEPTH deep)
_EMPTY_RUN = re.compile(r"(?:<(%s)></\1>)+" % "|".join(sorted(INLINE)), re.I)
_EMPTY_PAIR = re.compile(r"<([^>]*)>(</[^>]*>)")
_SIMPLE_TAG = re.compile(r"</?([A-Za-z][^\t\n\f\r />]*)>")  # <b>, </b>: no attribute to scan


def _tag(text: str, at: int) -> tuple[int, str, list, bool] | None:
    """A start or end tag at ``at`` (``<`` + letter or ``</`` + letter), scanned once, left to right
    (the browser's tag states): (end, lower-case name, attributes, self-closing); None at end of file."""
    n = len(text)
    name_at = at + 2 if text.startswith("</", at) else at + 1
    found = _NAME_END.search(text, name_at)
    position = found.start() if found else n
    name, attrs, closing = text[name_at:position].lower(), [], False
    while position < n:
        position = _BLANKS.match(text, position).end()
        if position >= n:
            break
        char = text[position]
        if char == ">":
            return position + 1, name, attrs, closing
        if char == "/":
            closing = text.startswith("/>", position)
            position += 1
            continue
        match = _ATTR_NAME.match(text, position)
        key, position = match.group().lower(), match.end()
        value = None
        after = _BLANKS.match(text, position).end()
        if text.startswith("=", after):
            position = _BLANKS.match(text, after + 1).end()
            if position < n and text[position] in "\"'":
                close = text.find(text[position], position + 1)
                if close < 0:
                    return None
                value, position = text[position + 1 : close], close + 1
            else:
                match = _UNQUOTED.match(text, position)
                value, position = match.group(), match.end()
            value = html.unescape(value)
        attrs.append((key, value))
    return None


def _tokens(text: str) -> list[_Token]:
    """The page cut into tokens covering every character once: one pass, each construct scanned
    once (the standard library's tokenizer rescans to the end of the file on unterminated tags and
    comments: quadratic, 58 s for "<a/" × 20,000). EOF inside a tag or comment: kept as is."""
    tokens: list[_Token] = []
    n, position, tags = len(text), 0, 0
    while position < n:
        lt = text.find("<", position)
        if lt < 0:
            lt = n
        if lt > position:
            tokens.append(_Token("data", position, lt, raw=html.unescape(text[position:lt])))
            position = lt
            continue
        nxt = text[lt + 1 : lt + 2]
        if nxt.isascii() and nxt.isalpha() or (nxt == "/" and text[lt + 2 : lt + 3].isascii()
                                               and text[lt + 2 : lt + 3].isalpha()):
            run = _EMPTY_RUN.match(text, lt) if nxt != "/" else None
            if run:
                tags += run.group().count("</")
                if tags > MAX_TAGS:
                    raise DocumentError(f"more than {MAX_TAGS:,} tags: too large to translate as one document")
                tokens.append(_Token("empty", lt, run.end()))
                position = run.end()
                continue
            simple = _SIMPLE_TAG.match(text, lt)
            found = (simple.end(), simple.group(1).lower(), [], False) if simple else _tag(text, lt)
            if found is None:  # end of file inside the tag: the browser drops it, we keep it
                tokens.append(_Token("other", lt, n))
                break
            end, name, attrs, _ = found
            if nxt == "/":
                tokens.append(_Token("end", lt, end, tag=name))
                position = end
                continue
            tags += 1
            if tags > MAX_TAGS:
                raise DocumentError(f"more than {MAX_TAGS:,} tags: too large to translate as one document")
            tokens.append(_Token("void" if name in VOID else "start", lt, end, name, attrs, text[lt:end]))
            position = end
            if name in _RAW_TEXT or name in _RCDATA:
                close = re.compile(rf"</{re.escape(name)}[\t\n\f\r />]", re.I).search(text, end)
                stop = close.start() if close else n
                if stop > end:
                    content = text[end:stop]
                    tokens.append(_Token("data", end, stop, raw=html.unescape(content) if name in _RCDATA else content))
                position = stop
            continue
        if text.startswith("<!--", lt):
            if text.startswith(("<!-->", "<!--->"), lt):
                end = text.index(">", lt) + 1
            else:
                close = _COMMENT_END.search(text, lt + 4)
                end = close.end() if close else n
        elif text.startswith("<!", lt) and text[lt + 2 : lt + 9].lower() == "doctype":
            gt, bracket = text.find(">", lt), text.find("[", lt)
            if 0 <= bracket < gt:  # an internal subset (XHTML): up to "]>"
                close = re.compile(r"\][\t\n\f\r ]*>").search(text, bracket)
                gt = close.end() - 1 if close else gt
            end = gt + 1 if gt >= 0 else n
        elif text.startswith(("<!", "<?", "</"), lt):  # a bogus comment, up to the next ">"
            gt = text.find(">", lt)
            end = gt + 1 if gt >= 0 else n
        else:
            tokens.append(_Token("data", lt, lt + 1, raw="<"))
            position = lt + 1
            continue
        tokens.append(_Token("other", lt, end))
        position = end
    return tokens


def _protected(token: _Token) -> bool:
    if not token.attrs:
        return token.tag in PROTECTED
    attrs = {k: (v or "") for k, v in token.attrs}
    return (token.tag in PROTECTED or attrs.get("translate", "").strip().lower() == "no"
            or "notranslate" in attrs.get("class", "").split())


def _english_lang(raw: str, tag: str) -> str:
    """The start tag with ``lang`` (and XHTML's ``xml:lang``) set to ``en`` (``lang`` added on
    <html>, right after the name, so ``<html xmlns=...>`` stays well-formed XML); the rest as written."""
    match = tagfind_tolerant.match(raw, 1)
    position = match.end() if match else len(raw)
    name_end = 1 + len(match.group(1)) if match else len(raw)
    edits, seen = [], False
    while position < len(raw):
        found = attrfind_tolerant.match(raw, position)
        if not found or found.end() == position:
            break
        if found.group(1).lower() in ("lang", "xml:lang") and found.group(3):
            seen = seen or found.group(1).lower() == "lang"
            value = found.group(3)
            quote = value[0] if value[0] in "'\"" else '"'
            if tag == "html" or value.strip("'\"").lower().startswith("vi"):
                edits.append((found.start(3), found.end(3), f"{quote}en{quote}"))
        position = found.end()
    if tag == "html" and not seen:
        edits.append((name_end, name_end, ' lang="en"'))
    for start, end, replacement in sorted(edits, reverse=True):
        raw = raw[:start] + replacement + raw[end:]
    return raw


@dataclass
class HtmlDocument:
    text: str
    bom: bool
    edits: list[tuple[int, int, str]]  # (start, end, replacement) outside blocks: lang attributes


class _Builder:
    def __init__(self, text: str):
        self.text = text
        self.blocks: list[Block] = []
        self.edits: list[tuple[int, int, str]] = []
        self._reset()

    def _reset(self):
        self.chars: list[str] = []
        self.length = 0
        self.spans: list[Span] = []
        self.stack: list[tuple[str, int]] = []  # open inline elements: (tag, span index)
        self.first = self.last = -1
        self.opened: dict[int, tuple[int, int]] = {}  # span index -> its start tag's source range
        self.runs: dict[int, list] = {}  # zero-width atoms: span index -> [source start, end, pieces]

    def _touch(self, token: _Token):
        if self.first < 0:
            self.first = token.start
        self.last = token.end

    def _add_text(self, text: str):
        self.chars.append(text)
        self.length += len(text)

    def flush(self):
        for index, (_, _, pieces) in self.runs.items():
            if len(pieces) > 1:  # joined once, when the block ends
                self.spans[index].data = ("".join(pieces), "")
        text = "".join(self.chars)
        for _, index in self.stack:
            self.spans[index].end = self.length
        if text.strip():
            self.blocks.append(Block(text, self.spans, ref=(self.first, self.last)))
        self._reset()

    def _parent(self):
        return self.stack[-1][1] if self.stack else None

    def atom(self, start: int, end: int, text: str = ""):
        if not text:
            self.zero(start, end, [self.text[start:end]])
            return
        self.spans.append(Span(self.length, self.length + len(text), (self.text[start:end], ""), True, self._parent()))
        self._add_text(text)

    def zero(self, start: int, end: int, pieces: list[str]):
        """Markup with no text at source ``[start, end)`` (``<b></b>``, a comment, ``<img>``) joins the
        zero-width atom ending where it starts (same text position and parent): 80,000 empty elements
        are one span to map, nest and render, with the same bytes (zero-width siblings, in order)."""
        last = len(self.spans) - 1
        run = self.runs.get(last)
        if run and run[1] == start and self.spans[last].start == self.length and self.spans[last].parent == self._parent():
            run[1] = end
            run[2].extend(pieces)
        else:
            self.spans.append(Span(self.length, self.length, ("".join(pieces), ""), True, self._parent()))
            self.runs[last + 1] = [start, end, pieces]

    def _collapse(self, token: _Token) -> bool:
        """The innermost open element ends at ``token`` (so nothing is reopened) with no text and
        nothing but one run of zero-width markup inside, contiguous in the source: the whole
        element becomes zero-width markup (:meth:`zero`), rendered with the same bytes."""
        tag, index = self.stack[-1]
        if tag != token.tag or index not in self.opened or self.spans[index].start != self.length:
            return False
        start, opened = self.opened[index]
        inner: list[str] = []
        if index == len(self.spans) - 2 and self.runs.get(index + 1, [-1, -1])[:2] == [opened, token.start]:
            inner = self.runs.pop(index + 1)[2]
            self.spans.pop()
        elif not (index == len(self.spans) - 1 and opened == token.start):
            return False
        self.stack.pop()
        del self.opened[index]
        self.zero(start, token.end, [self.spans.pop(index).data[0], *inner, self.text[token.start : token.end]])
        return True

    def build(self, tokens: list[_Token]) -> None:
        n = 0
        while n < len(tokens):
            token = tokens[n]
            if token.kind in ("start", "void") and not _protected(token) and (
                    token.tag == "html" or "lang" in token.raw.lower()):
                fixed = _english_lang(token.raw, token.tag)
                if fixed != token.raw and token.tag not in INLINE | INLINE_VOID | VERBATIM_INLINE:
                    self.edits.append((token.start, token.start + len(token.raw), fixed))
                token.raw = fixed
            if token.kind == "start" and _protected(token):
                end = _skip(tokens, n)
                if token.tag in INLINE or token.tag in VERBATIM_INLINE:
                    self._touch(token)
                    self._touch(tokens[end - 1])
                    self.atom(token.start, tokens[end - 1].end, _text_of(self.text, tokens[n:end]))
                else:
                    self.flush()
                n = end
                continue
            if token.kind == "start" and token.tag in VERBATIM_INLINE:
                end = _skip(tokens, n)
                self._touch(token)
                self._touch(tokens[end - 1])
                self.atom(token.start, tokens[end - 1].end, _text_of(self.text, tokens[n:end]))
                n = end
                continue
            self._token(token)
            n += 1
        self.flush()

    def _token(self, token: _Token):
        if token.kind == "empty":  # <b></b>...: zero-width markup unless inline elements are too deep
            if len(self.stack) < MAX_INLINE_DEPTH:
                self._touch(token)
                self.zero(token.start, token.end, [self.text[token.start : token.end]])
                return
            for pair in _EMPTY_PAIR.finditer(self.text, token.start, token.end):
                (a, b), (c, d) = pair.span(1), pair.span(2)
                self._token(_Token("start", a - 1, b + 1, pair.group(1).lower(), [], self.text[a - 1 : b + 1]))
                self._token(_Token("end", c, d, pair.group(1).lower()))
        elif token.kind in ("data", "ref"):
            self._touch(token)
            self._add_text(html.unescape(self.text[token.start : token.end]) if token.kind == "ref" else token.raw)
        elif token.kind == "other":
            if token.end == len(self.text):  # "<!--" to the end of the file: after the block, so
                self.flush()  # the block's trailing blanks are not moved into it
            elif self.first >= 0:
                self._touch(token)
                self.atom(token.start, token.end)
        elif token.kind == "void":
            if token.tag in INLINE_VOID and self.first >= 0:
                self._touch(token)
                self.zero(token.start, token.end, [token.raw])
            else:
                self.flush()
        elif token.kind == "start":
            if token.tag in INLINE and len(self.stack) >= MAX_INLINE_DEPTH:
                self._touch(token)
                self.atom(token.start, token.end)
            elif token.tag in INLINE:
                self._touch(token)
                self.spans.append(Span(self.length, self.length, [token.raw, ""], False, self._parent()))
                self.stack.append((token.tag, len(self.spans) - 1))
                self.opened[len(self.spans) - 1] = (token.start, token.end)
            else:
                self.flush()
        elif token.kind == "end":
            if self.stack and self._collapse(token):
                self._touch(token)
                return
            tags = [tag for tag, _ in self.stack]
            if token.tag in tags:
                self._touch(token)
                reopened = []
                while self.stack:
                    tag, index = self.stack.pop()
                    self.spans[index].end = self.length
                    if tag == token.tag:
                        self.spans[index].data[1] = self.text[token.start : token.end]
                        break
                    if tag in FORMATTING:
                        reopened.append(tag)
                for tag in reversed(reopened):  # as the browser does: closed here, open again after
                    self.spans.append(Span(self.length, self.length, ["", ""], False, self._parent()))
                    self.stack.append((tag, len(self.spans) - 1))
            elif token.tag in INLINE and self.first >= 0:  # a stray end tag: kept where it was
                self._touch(token)
                self.atom(token.start, token.end)
            elif token.tag not in INLINE:
                self.flush()


def _skip(tokens: list[_Token], n: int) -> int:
    """Index after the element opened at ``n`` (same-name nesting counted; unclosed: to the end)."""
    tag, depth = tokens[n].tag, 0
    for m in range(n, len(tokens)):
        token = tokens[m]
        if token.tag == tag and token.kind == "start":
            depth += 1
        elif token.tag == tag and token.kind == "end":
            depth -= 1
            if depth == 0:
                return m + 1
    return len(tokens)


def _text_of(text: str, tokens: list[_Token]) -> str:
    return "".join(
        t.raw if t.kind == "data" else html.unescape(text[t.start : t.end]) if t.kind == "ref" else ""
        for t in tokens
    )


def decode(data: bytes, name: str) -> tuple[str, bool]:
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        return data.decode("utf-8-sig"), bom
    except UnicodeDecodeError as error:
        raise DocumentError(f"{name}: not valid UTF-8 (byte {error.start}); save the page as UTF-8") from None


def read_html(data: bytes, name: str = "input.html") -> tuple[list[Block], HtmlDocument]:
    text, bom = decode(data, name)
    try:
        tokens = _tokens(text)
    except DocumentError as error:
        raise DocumentError(f"{name}: {error}") from None
    builder = _Builder(text)
    builder.build(tokens)
    return builder.blocks, HtmlDocument(text, bom, builder.edits)


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def write_html(document: HtmlDocument, translated: list[TranslatedBlock]) -> bytes:
    edits = list(document.edits)
    for item in translated:
        start, end = item.block.ref
        body = render(item.text, item.block.spans, item.spans, escape=_escape,
                      opening=lambda span: span.data[0], closing=lambda span: span.data[1],
                      atom=lambda span: span.data[0])
        edits.append((start, end, body))
    out, cursor = [], 0
    for start, end, replacement in sorted(edits):
        out.append(document.text[cursor:start])
        out.append(replacement)
        cursor = end
    out.append(document.text[cursor:])
    return ("\ufeff" if document.bom else "").encode() + "".join(out).encode("utf-8")
