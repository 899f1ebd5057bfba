"""Subtitles in and out (SRT with ``srt``; WebVTT block by block over its source): cue numbers,
timings, settings, notes, styles and regions identical, only the cue text translated; inline
markup (<i>, <font>, {\\an8}, <v>, karaoke times) is never sent to the model but kept, byte for byte,
at the cue's edges.

Consecutive cues up to one that ends a sentence (``. ! ? …``, at most ``MAX_GROUP`` cues) form
one block, so a sentence spoken across cues is translated once, as a sentence. Its English is then
spread back over its cues: the cut between two cues falls where the word links say the English
of the one cue ends (the fewest words on the wrong side), in proportion to the Vietnamese length
where there are no links, every cue keeping at least one word when there are enough.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from .blocks import Block, DocumentError, TranslatedBlock, _word_spans

MAX_GROUP = 12  # cues per block at most: one runaway sentence cannot swallow the file
LINE_WIDTH = 42  # characters per subtitle line, the common broadcast limit
_ENDS = tuple(".!?…")
_CLOSERS = "\"'”’»)]"


@dataclass
class SubtitleDocument:
    kind: str  # "srt" or "vtt"
    cues: list  # srt.Subtitle objects, or (start, end) of each WebVTT cue's payload in the source
    bom: bool
    handle: object = None  # the WebVTT source text (edited in place of the payloads)


def _decode(data: bytes, name: str) -> tuple[str, bool]:
    try:
        return data.decode("utf-8-sig"), data.startswith(b"\xef\xbb\xbf")
    except UnicodeDecodeError as error:
        raise DocumentError(f"{name}: not valid UTF-8 (byte {error.start}); save the subtitles as UTF-8") from None


def _ends_sentence(text: str) -> bool:
    return text.rstrip().rstrip(_CLOSERS).endswith(_ENDS)


def _blocks(texts: list[str]) -> list[Block]:
    blocks, group = [], []
    for n, text in enumerate(texts):
        group.append(n)
        if _ends_sentence(text) or len(group) >= MAX_GROUP or n == len(texts) - 1:
            pieces, bounds, position = [], [], 0
            for k in group:
                flat = _split_tags(texts[k])[1]
                bounds.append((position, position + len(flat)))
                pieces.append(flat)
                position += len(flat) + 1
            text = " ".join(pieces)
            if text.strip():
                blocks.append(Block(text, [], ref=(list(group), bounds)))
            group = []
    return blocks


def read_srt(data: bytes, name: str = "input.srt") -> tuple[list[Block], SubtitleDocument]:
    import srt

    text, bom = _decode(data, name)
    try:
        cues = list(srt.parse(text))
    except srt.SRTParseError as error:
        raise DocumentError(f"{name}: not a valid SRT file ({error})") from None
    for cue in cues:
        if cue.end < cue.start:
            raise DocumentError(f"{name}: cue {cue.index} ends ({srt.timedelta_to_srt_timestamp(cue.end)}) before it "
                                f"starts ({srt.timedelta_to_srt_timestamp(cue.start)})")
    return _blocks([cue.content for cue in cues]), SubtitleDocument("srt", cues, bom)


_TIME = r"(?:(\d+):)?(\d{2}):(\d{2})\.(\d{3})"
_TIMING = re.compile(rf"{_TIME}[ \t]+-->[ \t]+{_TIME}(?:[ \t].*)?")
_KEPT_BLOCKS = ("NOTE", "STYLE", "REGION")
# Markup a cue's text may carry: VTT tags (<i>, <v Bob>, <c.x>, <00:00:01.000>), SRT's <font>, ASS {\an8}.
_TAG = re.compile(r"<[^<>\n]*>|\{\\[^{}\n]*\}")


def _seconds(groups) -> float:
    hours, minutes, seconds, millis = (int(g or 0) for g in groups)
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def read_vtt(data: bytes, name: str = "input.vtt") -> tuple[list[Block], SubtitleDocument]:
    """WebVTT read block by block over the source itself: headers, NOTE, STYLE and REGION blocks,
    identifiers, timings and settings are kept byte for byte (only cue payloads are rewritten); a
    block that is none of these (a malformed timing line, say) is an input error naming its line."""
    text, bom = _decode(data, name)
    lines = text.splitlines(keepends=True)
    if not lines or not re.match(r"WEBVTT(?:[ \t]|$)", lines[0].rstrip("\r\n")):
        raise DocumentError(f"{name}: not a valid WebVTT file (it must start with 'WEBVTT')")
    cues, offset, n, block = [], 0, 0, []
    starts = []
    for line in lines:
        starts.append(offset)
        offset += len(line)
    starts.append(offset)
    n = 0
    while n < len(lines) and lines[n].strip():  # the header block
        n += 1
    while n < len(lines):
        if not lines[n].strip():
            n += 1
            continue
        first = n
        while n < len(lines) and lines[n].strip():
            n += 1
        block = [line.rstrip("\r\n") for line in lines[first:n]]
        if block[0].split(" ", 1)[0].split("\t", 1)[0] in _KEPT_BLOCKS and "-->" not in block[0]:
            continue
        timing = 0 if "-->" in block[0] else 1 if len(block) > 1 and "-->" in block[1] else None
        match = _TIMING.fullmatch(block[timing]) if timing is not None else None
        if match is None:
            where = first + 1 + (timing or 0)
            raise DocumentError(f"{name}: line {where}: not a WebVTT cue timing ({block[timing or 0][:60]!r}); "
                                "expected 'HH:MM:SS.mmm --> HH:MM:SS.mmm'")
        start, end = _seconds(match.groups()[:4]), _seconds(match.groups()[4:])
        if end < start:
            raise DocumentError(f"{name}: cue at line {first + 1} ends ({block[timing].split('-->')[1].split()[0]})"
                                f" before it starts ({block[timing].split()[0]})")
        body = first + timing + 1
        payload_end = starts[n] - len(lines[n - 1]) + len(lines[n - 1].rstrip("\r\n"))
        cues.append((starts[body] if body < n else payload_end, payload_end))
    document = SubtitleDocument("vtt", cues, bom, text)
    return _blocks([text[a:b] for a, b in cues]), document


def _split_tags(content: str) -> tuple[str, str, str]:
    """(markup kept before, the text, markup kept after): tags at the cue's edges stay where they
    are; tags inside it move to the edges (closing ones after), byte for byte, never to the model."""
    before, after, words, position = [], [], [], 0
    for match in _TAG.finditer(content):
        words.append(content[position : match.start()])
        (after if match.group().startswith("</") else before).append(match.group())
        position = match.end()
    words.append(content[position:])
    return "".join(before), " ".join("".join(words).split()), "".join(after)


def read_subtitles(data: bytes, name: str):
    return read_vtt(data, name) if name.lower().endswith(".vtt") else read_srt(data, name)


def _cuts(words: list[tuple[int, int]], owners: list[int | None], shares: list[int]) -> list[int]:
    """Word index where each cue after the first begins: links first, proportion as the tie-break."""
    n, k = len(words), len(shares)
    total = max(1, sum(shares))
    cuts, low, seen = [], 0, 0
    for i in range(k - 1):
        seen += shares[i]
        target = seen / total * n
        high = n - (k - 1 - i) if n >= k else n
        floor = min(low + 1, high) if n >= k else low
        best = min(
            range(floor, max(floor, high) + 1),
            key=lambda c: (sum(1 for j in range(c) if owners[j] is not None and owners[j] > i)
                           + sum(1 for j in range(c, n) if owners[j] is not None and owners[j] <= i),
                           abs(c - target)),
        )
        cuts.append(best)
        low = best
    return cuts


def spread(item: TranslatedBlock) -> dict[int, str]:
    """English of each cue of the block (cue index in the file → text)."""
    cues, bounds = item.block.ref
    parts: dict[int, list[str]] = {cue: [] for cue in cues}
    for pair in item.pairs:
        if not pair.translation.strip():
            continue
        a, b = pair.start - item.start, pair.end - item.start
        inside = [n for n, (x, y) in enumerate(bounds) if x < b and y > a]
        if len(inside) <= 1:
            parts[cues[inside[0] if inside else 0]].append(pair.translation)
            continue
        words = [tuple(span) for span in pair.tgt_word_spans] or _word_spans(pair.translation)
        owners: list[int | None] = [None] * len(words)
        linked: dict[int, list[int]] = {}
        for s, t in pair.alignment:
            if s < len(pair.src_word_spans) and t < len(words):
                x = pair.src_word_spans[s][0] - item.start
                where = next((m for m, cue in enumerate(inside) if bounds[cue][0] <= x < bounds[cue][1] + 1), None)
                if where is not None:
                    linked.setdefault(t, []).append(where)
        for t, places in linked.items():
            owners[t] = sorted(places)[len(places) // 2]
        shares = [min(b, bounds[c][1]) - max(a, bounds[c][0]) for c in inside]
        cuts = [0] + _cuts(words, owners, shares) + [len(words)]
        for m, cue in enumerate(inside):
            chosen = words[cuts[m] : cuts[m + 1]]
            if chosen:
                parts[cues[cue]].append(pair.translation[chosen[0][0] : chosen[-1][1]])
    return {cue: " ".join(pieces) for cue, pieces in parts.items()}


def _lines(text: str) -> str:
    text = " ".join(text.split()) or "…"  # a cue never goes blank: that would end it early
    if len(text) <= LINE_WIDTH:
        return text
    return "\n".join(textwrap.wrap(text, width=max(LINE_WIDTH, (len(text) + 1) // 2 + 6), break_long_words=False, break_on_hyphens=False))


def write_subtitles(document: SubtitleDocument, translated: list[TranslatedBlock]) -> bytes:
    english: dict[int, str] = {}
    for item in translated:
        english.update(spread(item))
    if document.kind == "vtt":
        out, cursor, source = [], 0, document.handle
        for n, (a, b) in enumerate(document.cues):
            if n in english:
                before, _, after = _split_tags(source[a:b])
                out.append(source[cursor:a] + before + _lines(english[n]) + after)
                cursor = b
        out.append(source[cursor:])
        return ("\ufeff" if document.bom else "").encode() + "".join(out).encode("utf-8")
    import srt

    for n, cue in enumerate(document.cues):
        if n in english:
            before, _, after = _split_tags(cue.content)
            cue.content = before + _lines(english[n]) + after
    text = srt.compose(document.cues, reindex=False)
    return ("\ufeff" if document.bom else "").encode() + text.encode("utf-8")
