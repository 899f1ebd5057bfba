"""SentencePiece tokenisation of Marian (OPUS-MT) models without transformers.

Why: importing transformers pulls in torch, ~1.7 s of every ``mt translate`` start, while the
CTranslate2 engine needs neither to translate: it takes source pieces and returns target
pieces. For Marian models these are plain SentencePiece pieces, so this module does what
``MarianTokenizer`` does on the translation path, with the ``sentencepiece`` package alone:

* encode: a leading ``>>xx<<`` language code kept whole, the rest through ``source.spm``;
  pieces the model's ``vocab.json`` lacks become ``<unk>`` (as the tokenizer's ids would);
  cut to ``max_length - 1`` pieces and ``</s>`` appended (``truncation=True``);
* decode: special pieces dropped (``skip_special_tokens``), the rest through ``target.spm``,
  ``▁`` as spaces, stripped (``clean_up_tokenization_spaces`` is off for Marian).

A text that contains a special token's spelling (``</s>``, ``<unk>``, ``<pad>``) is one the
transformers tokenizer splits specially: :meth:`MarianPieces.handles` says no, and the engine
uses the transformers tokenizer for it. tests/test_pieces.py checks both directions against
``MarianTokenizer`` piece for piece.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

SPECIAL = ("</s>", "<unk>", "<pad>")
_NEEDED = ("source.spm", "target.spm", "vocab.json")


class MarianPieces:
    """The translation-path half of ``MarianTokenizer``: texts to source pieces, target pieces to text."""

    def __init__(self, model_dir: Path) -> None:
        import sentencepiece as spm

        model_dir = Path(model_dir)
        config = _tokenizer_config(model_dir) or {}
        self.source = spm.SentencePieceProcessor(model_file=str(model_dir / "source.spm"))
        self.target = spm.SentencePieceProcessor(model_file=str(model_dir / "target.spm"))
        vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
        self.source_vocab = frozenset(vocab)
        if config.get("separate_vocabs"):
            vocab = json.loads((model_dir / _target_vocab_name(config)).read_text(encoding="utf-8"))
        self.id_to_piece = {int(i): p for p, i in vocab.items()}
        self.model_max_length = int(config.get("model_max_length") or 512)

    @staticmethod
    def usable(model_dir: Path) -> bool:
        """True for a Marian folder this class reads exactly as ``MarianTokenizer`` would."""
        model_dir = Path(model_dir)
        if not all((model_dir / name).is_file() for name in _NEEDED):
            return False
        config = _tokenizer_config(model_dir)
        if config is None or config.get("tokenizer_class", "MarianTokenizer") != "MarianTokenizer":
            return False
        if config.get("sp_model_kwargs") or config.get("split_special_tokens"):
            return False  # sampling or other options that change the pieces
        if config.get("clean_up_tokenization_spaces"):
            return False
        if config.get("separate_vocabs") and not (model_dir / _target_vocab_name(config)).is_file():
            return False
        tokens = {config.get(k, d) for k, d in (("eos_token", "</s>"), ("unk_token", "<unk>"), ("pad_token", "<pad>"))}
        return tokens <= set(SPECIAL)

    @staticmethod
    def handles(text: str) -> bool:
        """False when the text spells a special token (the transformers tokenizer splits those)."""
        return not any(token in text for token in SPECIAL)

    def encode(self, text: str, max_length: int) -> list[str]:
        """Source pieces of one text, ending in ``</s>``, at most ``max_length`` of them."""
        code: list[str] = []
        if text.startswith(">>") and (end := text.find("<<")) != -1:
            code, text = [text[: end + 2]], text[end + 2 :]
        pieces = code + list(self.source.encode(text, out_type=str))
        pieces = [p if p in self.source_vocab else "<unk>" for p in pieces]
        return pieces[: max(0, max_length - 1)] + ["</s>"]

    def decode(self, pieces: Sequence[str]) -> str:
        """Text of generated target pieces."""
        kept = [p for p in pieces if p not in SPECIAL]
        return self.target.decode_pieces(kept).replace("\u2581", " ").strip()

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str | None]:
        return [self.id_to_piece.get(int(i)) for i in ids]


def _target_vocab_name(config: dict) -> str:
    """The target vocabulary of a Marian model with separate vocabularies (transformers' default name)."""
    return Path(config.get("target_vocab_file") or "target_vocab.json").name


def _tokenizer_config(model_dir: Path) -> dict | None:
    path = Path(model_dir) / "tokenizer_config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None
