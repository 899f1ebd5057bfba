"""Word-level attention of one sentence pair, in the compact form the cache keeps."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

__all__ = ["RECORD_MAX_PER_ROW", "RECORD_MIN_WEIGHT", "RECORD_VERSION", "WordAttention"]

RECORD_VERSION = 1
RECORD_MIN_WEIGHT = 0.005  # word attention below this is not stored in the cache record
RECORD_MAX_PER_ROW = 8  # nor beyond the 8 largest weights of an English word
RECORD_MAX_WORDS = 1024  # words per side of a record (linking.MAX_LINK_WORDS): longer ones are not read


@dataclass
class WordAttention:
    """Word-level attention on the NORMALISED source sentence and the translation.

    Kept at this level, not at the user's words, because the same normalised sentence can come
    from differently written input (``tên_lửa`` or ``tên lửa``):
    :func:`mt.links.sentence_links` merges columns into the words as written."""

    src_spans: list[tuple[int, int]]  # words of the normalised sentence
    tgt_spans: list[tuple[int, int]]  # words of the translation
    weights: np.ndarray  # float32 (len(tgt_spans), len(src_spans))

    def to_record(self) -> str:
        """Compact JSON: spans, and per English word its largest weights (x1000, sparse)."""
        rows = []
        for row in np.asarray(self.weights, dtype=np.float32):
            order = np.argsort(-row, kind="stable")[:RECORD_MAX_PER_ROW]
            cells: list[int] = []
            for j in order:
                value = int(round(float(row[j]) * 1000))
                if row[j] < RECORD_MIN_WEIGHT or value <= 0:
                    break
                cells += [int(j), value]
            rows.append(cells)
        return json.dumps(
            {"v": RECORD_VERSION, "s": [list(x) for x in self.src_spans], "t": [list(x) for x in self.tgt_spans],
             "w": rows},
            separators=(",", ":"),
        )

    @classmethod
    def from_record(cls, record: str) -> "WordAttention":
        """Inverse of :meth:`to_record`; ValueError (or KeyError/TypeError) on a foreign record."""
        data = json.loads(record)
        if not isinstance(data, dict) or data.get("v") != RECORD_VERSION:
            raise ValueError("not a word-link record of this version")
        if len(data["s"]) > RECORD_MAX_WORDS or len(data["t"]) > RECORD_MAX_WORDS:
            raise ValueError("word-link record over the size bound")  # computed again, bounded
        src = [(int(a), int(b)) for a, b in data["s"]]
        tgt = [(int(a), int(b)) for a, b in data["t"]]
        if len(data["w"]) != len(tgt):
            raise ValueError("word-link record: rows do not match the target words")
        weights = np.zeros((len(tgt), len(src)), dtype=np.float32)
        for i, cells in enumerate(data["w"]):
            for j, value in zip(cells[0::2], cells[1::2]):
                weights[i, int(j)] = int(value) / 1000.0
        return cls(src, tgt, weights)

    def compacted(self) -> "WordAttention":
        """What the cache gives back; fresh results go through it too, so hits and misses agree."""
        return WordAttention.from_record(self.to_record())
