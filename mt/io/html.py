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
from html.parser import HTMLParser, attrfind_tolerant, tagfind_tolerant

from .blocks import Block, DocumentError, Span, TranslatedBlock, render

#: More start tags than this and the file is refused (a real article page has a few thousand):
#: the tokenizer stops at once, so time and memory stay bounded (docs/DOCUMENTS.md).
MAX_TAGS = 100_000

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


class _Tokenizer(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=False)
        self.tokens: list[_Token] = []
        self.tags = 0
        self._lines = [0]
        for n, char in enumerate(text):
            if char == "\n":
                self._lines.append(n + 1)

    def _at(self) -> int:
        line, column = self.getpos()
        return self._lines[line - 1] + column

    def _starttag(self, tag, attrs, void):
        self.tags += 1
        if self.tags > MAX_TAGS:
            raise DocumentError(f"more than {MAX_TAGS:,} tags: too large to translate as one document")
        raw = self.get_starttag_text() or ""
        self.tokens.append(_Token("start", self._at(), tag=tag, attrs=attrs, raw=raw))
        if void:
            self.tokens[-1].kind = "void"

    def handle_starttag(self, tag, attrs):
        self._starttag(tag, attrs, tag in VOID)

    def handle_startendtag(self, tag, attrs):  # HTML ignores "/>" on non-void elements
        self._starttag(tag, attrs, tag in VOID)

    def handle_endtag(self, tag):
        self.tokens.append(_Token("end", self._at(), tag=tag))

    def handle_data(self, data):
        self.tokens.append(_Token("data", self._at(), raw=data))

    def handle_entityref(self, name):
        self.tokens.append(_Token("ref", self._at()))

    handle_charref = handle_entityref

    def handle_comment(self, data):
        self.tokens.append(_Token("other", self._at()))

    handle_decl = handle_pi = unknown_decl = handle_comment


def _tokens(text: str) -> list[_Token]:
    tokenizer = _Tokenizer(text)
    tokenizer.feed(text)
    tokenizer.close()
    tokens = tokenizer.tokens
    done: list[_Token] = []
    for n, token in enumerate(tokens):
        token.end = tokens[n + 1].start if n + 1 < len(tokens) else len(text)
        exact = {"data": len(token.raw), "start": len(token.raw), "void": len(token.raw)}.get(token.kind)
        done.append(token)
        if exact is not None and token.start + exact < token.end:  # bytes no handler saw: kept
            done.append(_Token("other", token.start + exact, token.end))
            token.end = token.start + exact
    return done


def _protected(token: _Token) -> bool:
    attrs = {k: (v or "") for k, v in token.attrs}
    return (token.tag in PROTECTED or attrs.get("translate", "").strip().lower() == "no"
            or "notranslate" in attrs.get("class", "").split())


def _english_lang(raw: str, tag: str) -> str:
    """The start tag with ``lang`` set to ``en`` (added on <html>); everything else as written."""
    match = tagfind_tolerant.match(raw, 1)
    position = match.end() if match else len(raw)
    head = position
    while position < len(raw):
        found = attrfind_tolerant.match(raw, position)
        if not found or found.end() == position:
            break
        if found.group(1).lower() == "lang" and found.group(3):
            value = found.group(3)
            quote = value[0] if value[0] in "'\"" else '"'
            if tag == "html" or value.strip("'\"").lower().startswith("vi"):
                return raw[: found.start(3)] + f"{quote}en{quote}" + raw[found.end(3) :]
            return raw
        position = found.end()
    return raw[:head] + ' lang="en"' + raw[head:] if tag == "html" else raw


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

    def _touch(self, token: _Token):
        if self.first < 0:
            self.first = token.start
        self.last = token.end

    def _add_text(self, text: str):
        self.chars.append(text)
        self.length += len(text)

    def flush(self):
        text = "".join(self.chars)
        for _, index in self.stack:
            self.spans[index].end = self.length
        if text.strip():
            self.blocks.append(Block(text, self.spans, ref=(self.first, self.last)))
        self._reset()

    def _parent(self):
        return self.stack[-1][1] if self.stack else None

    def atom(self, start: int, end: int, text: str = ""):
        self.spans.append(Span(self.length, self.length + len(text), (self.text[start:end], ""), True, self._parent()))
        self._add_text(text)

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
        if token.kind in ("data", "ref"):
            self._touch(token)
            self._add_text(html.unescape(self.text[token.start : token.end]) if token.kind == "ref" else token.raw)
        elif token.kind == "other":
            if self.first >= 0:
                self._touch(token)
                self.atom(token.start, token.end)
        elif token.kind == "void":
            if token.tag in INLINE_VOID and self.first >= 0:
                self._touch(token)
                self.spans.append(Span(self.length, self.length, (token.raw, ""), True, self._parent()))
            else:
                self.flush()
        elif token.kind == "start":
            if token.tag in INLINE:
                self._touch(token)
                self.spans.append(Span(self.length, self.length, [token.raw, ""], False, self._parent()))
                self.stack.append((token.tag, len(self.spans) - 1))
            else:
                self.flush()
        elif token.kind == "end":
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
