"""mt/pieces.py (Marian tokenisation without transformers) against the real ``MarianTokenizer``
of the tiny test model, piece for piece, and the CTranslate2 engine's two translation paths
(SentencePiece alone, transformers tokenizer) and its parallel batches against each other."""

from __future__ import annotations

import random
import subprocess
import sys
import unicodedata

import pytest

from mt.engines.ctranslate2 import CTranslate2Engine
from mt.errors import ConfigError
from mt.models import resolve_model
from mt.engines.marian_pieces import MarianPieces
from testkit.tiny_model import sample_sentences
from mt.engines.base import DecodingSettings, balanced_batch_size
from mt.engines.threads import thread_split

GREEDY = DecodingSettings(beam=1, max_len_a=1.5, max_len_b=10)

EDGE_CASES = [
    "",
    " ",
    "  nhiều   khoảng   trắng  ",
    "dòng một\ndòng hai\tcó tab",
    ">>eng<< Xin chào các bạn",
    ">>chưa đóng",
    "Tên lửa 🚀 bay lên 3,5 km/giờ – “ngoạn mục”!",
    unicodedata.normalize("NFD", "Hoà bình và thuỷ điện"),
    "Ω≈ç√∫ 中文 العربية ñandú",
    "a" * 300,
]


@pytest.fixture(scope="module")
def hf_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def pieces(tiny_model_dir) -> MarianPieces:
    assert MarianPieces.usable(tiny_model_dir)
    return MarianPieces(tiny_model_dir)


def texts() -> list[str]:
    return sample_sentences("vi")[:200] + sample_sentences("en")[:50] + EDGE_CASES


@pytest.mark.parametrize("max_length", [512, 12])
def test_encode_matches_marian_tokenizer(pieces, hf_tokenizer, max_length):
    for text in texts():
        ids = hf_tokenizer([text], truncation=True, max_length=max_length)["input_ids"][0]
        assert pieces.encode(text, max_length) == hf_tokenizer.convert_ids_to_tokens(ids), text


def test_decode_matches_marian_tokenizer(pieces, hf_tokenizer):
    rng = random.Random(7)
    vocab = hf_tokenizer.get_vocab()
    ids_of_texts = [hf_tokenizer(text_target=t, add_special_tokens=False)["input_ids"] for t in sample_sentences("en")[:100]]
    random_ids = [[rng.randrange(len(vocab)) for _ in range(rng.randrange(0, 30))] for _ in range(200)]
    specials = [[hf_tokenizer.unk_token_id, *ids[:3], hf_tokenizer.eos_token_id, hf_tokenizer.pad_token_id] for ids in ids_of_texts[:20]]
    for ids in ids_of_texts + random_ids + specials:
        expected = hf_tokenizer.decode(ids, skip_special_tokens=True, use_source_tokenizer=False)
        assert pieces.decode(hf_tokenizer.convert_ids_to_tokens(ids)) == expected, ids


def test_special_token_spellings_are_left_to_transformers(pieces):
    assert not MarianPieces.handles("a </s> b") and not MarianPieces.handles("<unk>")
    assert MarianPieces.handles("a < /s > b")


def test_unusual_tokenizer_settings_are_not_taken_over(tiny_model_dir, tmp_path):
    import json
    import shutil

    odd = tmp_path / "odd"
    shutil.copytree(tiny_model_dir, odd)
    cfg = json.loads((odd / "tokenizer_config.json").read_text())
    cfg["sp_model_kwargs"] = {"enable_sampling": True}
    (odd / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert not MarianPieces.usable(odd)
    cfg.pop("sp_model_kwargs")
    cfg["separate_vocabs"] = True  # a target vocabulary it does not have
    (odd / "tokenizer_config.json").write_text(json.dumps(cfg))
    assert not MarianPieces.usable(odd)
    (odd / "target_vocab.json").write_text((odd / "vocab.json").read_text())
    assert MarianPieces.usable(odd)
    (odd / "source.spm").unlink()
    assert not MarianPieces.usable(odd)


# --------------------------------------------------------------------------- the engine


@pytest.fixture(scope="module")
def ct2_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("ct2")


@pytest.fixture(scope="module")
def ct2_engine(tiny_model_dir, ct2_dir):
    return CTranslate2Engine(resolve_model(str(tiny_model_dir)), tiny_model_dir, compute_type="float32", cache_dir=ct2_dir)


def test_engine_translates_the_same_with_either_tokenizer(ct2_engine):
    sentences = sample_sentences("vi")[:40] + ["Có ký hiệu </s> ở giữa câu"]
    assert ct2_engine.pieces is not None
    fast = ct2_engine.translate(sentences, GREEDY)
    ct2_engine.pieces = None  # the transformers tokenizer on both ends
    try:
        slow = ct2_engine.translate(sentences, GREEDY)
    finally:
        ct2_engine.pieces = MarianPieces(ct2_engine.model_dir)
    assert fast == slow
    assert sum(bool(t) for t in fast) == len(sentences)


def test_loading_a_marian_model_imports_neither_torch_nor_transformers(tiny_model_dir, ct2_engine, ct2_dir):
    """The start-up saving this module exists for, checked in a fresh interpreter (the model
    converted before, by the fixture: converting needs transformers)."""
    code = (
        "import sys; from mt.engines.loader import load_engine; "
        f"e = load_engine({str(tiny_model_dir)!r}, engine='ctranslate2:float32'); "
        "print(e.translate(['Xin chào'])[0] != '', 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "MT_CT2_DIR": str(ct2_dir), "MT_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False", "False"]


def test_parallel_batches_give_the_serial_translations(tiny_model_dir, ct2_engine, monkeypatch, tmp_path):
    sentences = sample_sentences("vi")[:60]
    monkeypatch.setenv("MT_THREADS", "2")
    parallel = CTranslate2Engine(resolve_model(str(tiny_model_dir)), tiny_model_dir, compute_type="float32",
                                 cache_dir=tmp_path / "ct2")
    assert parallel.parallel_batches == 2 and ct2_engine.parallel_batches == 1
    small = GREEDY  # many batches: 60 sentences in batches of at most 8
    parallel.max_batch_sentences = ct2_engine.max_batch_sentences = 8
    try:
        assert parallel.translate(sentences, small) == ct2_engine.translate(sentences, small)
    finally:
        ct2_engine.max_batch_sentences = parallel.max_batch_sentences = 64


def test_balanced_batch_size():
    assert balanced_batch_size(46, 16, 1) == 16
    assert balanced_batch_size(46, 16, 2) == 12  # 4 batches, 2 rounds of 2
    assert balanced_batch_size(10, 16, 2) == 5
    assert balanced_batch_size(1, 16, 4) == 16
    assert balanced_batch_size(3, 16, 4) == 1


def test_thread_split(monkeypatch):
    monkeypatch.delenv("MT_CT2_INTER_THREADS", raising=False)
    assert thread_split(1) == (1, 1)
    assert thread_split(2) == (2, 1)
    assert thread_split(16) == (4, 4)
    monkeypatch.setenv("MT_CT2_INTER_THREADS", "1")
    assert thread_split(2) == (1, 2)
    monkeypatch.setenv("MT_CT2_INTER_THREADS", "two")
    with pytest.raises(ConfigError):
        thread_split(2)
