"""The `mt batch` progress bar in sentences, without segmenting every article up front.

The pipeline segments each article once, when it is translated; the bar's total is an
estimate from the bytes still to read (the sizes the listing got from ``stat``), refined
after every article with the bytes per sentence seen so far. It starts from
:data:`BYTES_PER_SENTENCE`, measured on the shared data (IWSLT15 dev2010 talks and the seed
article: 113,381 bytes, 826 sentences).
"""

from __future__ import annotations

import re

BYTES_PER_SENTENCE = 137

# C0 and C1 controls, line and paragraph separators, bidirectional overrides, lone surrogates
# (undecodable bytes of a file name): what could break a report line or disguise a name.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_OR_BACKSLASH = re.compile(_UNSAFE.pattern[:-1] + "\\\\]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(match: re.Match) -> str:
    char = match.group()
    return _SHORT.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: str, backslash: bool = True) -> str:
    """``text`` on one line, control characters escaped as repr does (``\\n``, ``\\x1b``);
    with ``backslash`` a backslash is doubled too, so a name's escapes are unambiguous."""
    pattern = _UNSAFE if not backslash else _UNSAFE_OR_BACKSLASH
    return pattern.sub(_escape, text)


class SentenceProgress:
    """A tqdm bar counting translated sentences; ``total_bytes``: size of the pending inputs."""

    def __init__(self, total_bytes: int, enabled: bool):
        from tqdm import tqdm

        self.bytes_left = total_bytes
        self.bytes_done = 0
        self.sentences = 0
        self.bar = tqdm(total=self.estimate(), unit="sent", desc="translating", disable=not enabled,
                        dynamic_ncols=True)

    def estimate(self) -> int:
        per_byte = self.sentences / self.bytes_done if self.bytes_done and self.sentences else 1 / BYTES_PER_SENTENCE
        return self.sentences + max(0, round(self.bytes_left * per_byte))

    def article_done(self, size: int, sentences: int) -> None:
        self.bytes_left = max(0, self.bytes_left - size)
        self.bytes_done += size
        self.sentences += sentences
        self.bar.total = self.estimate()
        self.bar.update(sentences)

    def article_dropped(self, size: int) -> None:
        """Failed or taken by another run: its bytes leave the estimate."""
        self.bytes_left = max(0, self.bytes_left - size)
        self.bar.total = self.estimate()
        self.bar.refresh()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
