"""Subtitles in and out (SRT with ``srt``, WebVTT with ``webvtt-py``): cue numbers, timings,
settings and notes identical, only the cue text translated.

Consecutive cues up to one that ends a sentence (``. ! ? …``, at most ``MAX_GROUP`` cues) form
one block, so a sentence spoken across cues is translated once, as a sentence. Its English is then
spread back over its cues: the cut between two cues falls where the word links say the English
of the one cue ends (the fewest words on the wrong side), in proportion to the Vietnamese length
where there are no links, every cue keeping at least one word when there are enough.
"""

from __future__ import annotations

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
    cues: list  # srt.Subtitle or webvtt.Caption objects
    bom: bool
    handle: object = None  # the webvtt.WebVTT object


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
                flat = " ".join(texts[k].split())
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


def read_vtt(data: bytes, name: str = "input.vtt") -> tuple[list[Block], SubtitleDocument]:
    import webvtt

    text, bom = _decode(data, name)
    try:
        handle = webvtt.from_string(text)
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError, ValueError) as error:
        raise DocumentError(f"{name}: not a valid WebVTT file ({error})") from None
    for n, cue in enumerate(handle.captions, 1):
        if cue.end_in_seconds < cue.start_in_seconds:
            raise DocumentError(f"{name}: cue {cue.identifier or n} ends ({cue.end}) before it starts ({cue.start})")
    return _blocks([cue.text for cue in handle.captions]), SubtitleDocument("vtt", handle.captions, bom, handle)


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
    for n, cue in enumerate(document.cues):
        if n in english:
            if document.kind == "srt":
                cue.content = _lines(english[n])
            else:
                cue.text = _lines(english[n])
    if document.kind == "srt":
        import srt

        text = srt.compose(document.cues, reindex=False)
    else:
        text = document.handle.content
    return ("\ufeff" if document.bom else "").encode() + text.encode("utf-8")
