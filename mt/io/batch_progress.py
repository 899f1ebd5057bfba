"""The `mt batch` progress bar in sentences, without segmenting every article up front.

The pipeline segments each article once, when it is translated; the bar's total is an
estimate from the bytes still to read (the sizes the listing got from ``stat``), refined
after every article with the bytes per sentence seen so far. It starts from
:data:`BYTES_PER_SENTENCE`, measured on the shared data (IWSLT15 dev2010 talks and the seed
article: 113,381 bytes, 826 sentences).
"""

from __future__ import annotations

BYTES_PER_SENTENCE = 137


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
