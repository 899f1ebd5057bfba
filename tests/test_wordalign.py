"""Word links and the quality flag (mt.links, mt.quality.scores, the engine attention contract of
mt.engines.attention, and their integration in mt.pipeline).

Real pieces throughout: the tiny random-weight Marian model of conftest (real tokenizer, real
transformers forward pass), the real segmenter/normaliser, the SQLite cache, IWSLT'15 text, the
real multilingual-e5-small embedder. A random model's attention is not a meaningful alignment,
so the model tests check structure and plumbing (spans, indices, teacher forcing, caching);
the linking rules are checked on hand-built matrices with a known answer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mt import links as L
from mt.engines import attention as EA
from mt.engines.forced_attention import forced_cross_attention
from mt.quality import scores as Q
from mt.text.words import is_punctuation, split_words
from mt.cache import open_cache
from mt.text.normalize import normalize
from mt.pipeline import translate_document
from testkit.shared_data import SEED, iwslt_segments, needs_shared_data


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def tf_engine(tiny_model_dir):
    """The tiny model on the transformers engine (``tiny_engine`` is whatever load_engine picks)."""
    from mt.engines.loader import load_engine

    return load_engine(str(tiny_model_dir), engine="transformers")


def words_of(text: str) -> list[str]:
    return [text[a:b] for a, b in split_words(text)]


# -- words -------------------------------------------------------------------------------------
@needs_shared_data("seed")
def test_split_words_word_segmented_seed(seed_text):
    spans = split_words(seed_text)
    words = [seed_text[a:b] for a, b in spans]
    assert "tên_lửa" in words and "Không_gian" in words and "Baikonur" in words
    assert "tên" not in words[:200]  # the segmenter's tokens are the words: never cut at '_'
    assert words[:6] == ["Hãng", "Sputnik", "nguồn_tin", "từ", "Ủy", "ban"]
    # every non-space character is in exactly one word, in order
    assert all(a < b for a, b in spans) and all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    covered = "".join(words)
    assert covered == "".join(seed_text.split())
    # the seed's tokens are separated by spaces: every whitespace token is one word
    assert words == seed_text.split()


def test_split_words_plain_text_and_english():
    assert words_of('Kazakhstan sẽ phát triển tên lửa "siêu nặng", (Baikonur)…') == [
        "Kazakhstan", "sẽ", "phát", "triển", "tên", "lửa", '"', "siêu", "nặng", '"', ",", "(", "Baikonur", ")", "…"]
    assert words_of("He didn't pay $2,000 to the U.S. oxy-hydro... team!?") == [
        "He", "didn't", "pay", "$", "2,000", "to", "the", "U.S", ".", "oxy-hydro", "...", "team", "!", "?"]
    assert words_of("Russia,Kazakhstan 10:30") == ["Russia", ",", "Kazakhstan", "10:30"]
    decomposed = "vie\u0302\u0323c la\u0300m"  # combining marks stay inside their word
    assert words_of(decomposed) == ["vie\u0302\u0323c", "la\u0300m"]
    assert is_punctuation(",") and is_punctuation("...") and not is_punctuation("2,000")


def test_piece_spans_sentencepiece_pieces():
    text = "Kazakhstan sẽ cùng, Nga…"
    pieces = ["▁Ka", "zakh", "stan", "▁s", "ẽ", "▁", "cùng", ",", "▁Nga", "..."]
    spans = EA.piece_spans(pieces, text)
    assert [text[a:b] for a, b in spans] == ["Ka", "zakh", "stan", "s", "ẽ", "", "cùng", ",", "Nga", "…"]
    # unknown pieces share the text between their neighbours; nothing is lost
    spans = EA.piece_spans(["▁Ka", None, "▁s", "ẽ", None, None], "Kazakhstan sẽ cùng")
    assert [("Kazakhstan sẽ cùng")[a:b] for a, b in spans] == ["Ka", "zakhstan", "s", "ẽ", "cùng", "cùng"]
    assert EA.piece_spans([], "abc") == []


# -- pieces -> words -> links, by hand -------------------------------------------------------------
def test_word_matrix_hand_built():
    # source pieces: p0 p1 -> word 0, p2 -> word 1, p3 straddles words 1 and 2, p4 (EOS) -> none
    # target pieces: q0 -> word 0, q1 q2 -> word 1
    A = np.array([
        [0.6, 0.2, 0.1, 0.0, 0.1],
        [0.0, 0.0, 0.2, 0.6, 0.2],
        [0.0, 0.0, 0.6, 0.2, 0.2],
    ], dtype=np.float32)
    M = L.word_matrix(A, [[0], [0], [1], [1, 2], []], [[0], [1], [1]], n_src=3, n_tgt=2)
    expected = np.array([
        [0.8, 0.1, 0.0],  # sum over a source word's pieces
        [0.0, (0.2 + 0.3 + 0.6 + 0.1) / 2, (0.3 + 0.1) / 2],  # mean over the target word's pieces
    ])
    np.testing.assert_allclose(M, expected, atol=1e-6)
    assert L.links_from_matrix(M, [False] * 3, [False] * 2) == [[0, 0], [1, 1]]


def test_links_rules_floor_punctuation_intersection():
    M = np.array([
        [0.70, 0.10, 0.05],  # en 0 -> vi 0
        [0.50, 0.20, 0.10],  # en 1 -> vi 0 as well (forward keeps it, intersection does not)
        [0.05, 0.05, 0.09],  # en 2: below the floor: no link
        [0.10, 0.10, 0.60],  # en 3 -> vi 2, but vi 2 is punctuation and en 3 is not: no link
    ], dtype=np.float32)
    src_punct, tgt_punct = [False, False, True], [False, False, False, False]
    assert L.links_from_matrix(M, src_punct, tgt_punct) == [[0, 0], [0, 1]]
    assert L.links_from_matrix(M, src_punct, tgt_punct, intersect=True) == [[0, 0]]
    assert L.links_from_matrix(M, src_punct, [False, False, False, True]) == [[0, 0], [0, 1], [2, 3]]
    assert L.links_from_matrix(np.zeros((0, 0), dtype=np.float32), [], []) == []


def test_sentence_links_maps_normalised_pieces_to_words_as_written():
    source = "Nga phát_triển tên_lửa ."  # word-segmented, as in the seed
    norm = normalize(source, word_segmented=True)
    assert norm.text == "Nga phát triển tên lửa."
    translation = "Russia develops rockets."

    def span(text, part, start=0):
        i = text.index(part, start)
        return (i, i + len(part))

    src_pieces = [span(norm.text, "Nga"), span(norm.text, "phát"), span(norm.text, "triển"),
                  span(norm.text, "tên"), span(norm.text, "lửa"), span(norm.text, ".")]
    tgt_pieces = [span(translation, "Russia"), span(translation, "develop"), span(translation, "s"),
                  span(translation, "rock"), span(translation, "ets"), span(translation, ".")]
    A = np.zeros((6, 6), dtype=np.float32)
    A[0, 0] = 0.9  # Russia -> Nga
    A[1, 1], A[1, 2] = 0.3, 0.4  # develop -> phát + triển (one word as written: 0.7)
    A[2, 3] = 0.2  # "s" of develops -> tên (averaged with the row above: still phát_triển)
    A[3, 3], A[3, 4] = 0.3, 0.3  # rock -> tên + lửa
    A[4, 4] = 0.6  # ets -> lửa
    A[5, 5] = 0.8  # . -> .
    attention = L.word_attention(EA.TokenAttention(src_pieces, tgt_pieces, A), norm.text, translation)
    assert attention.weights.shape == (4, 6)  # 4 English words x 6 normalised Vietnamese words
    start = 100  # the segment's offset in its article
    links = L.sentence_links(source, start, norm, translation, attention.compacted())
    assert links.src_words == ["Nga", "phát_triển", "tên_lửa", "."]
    assert links.src_word_spans == [[100, 103], [104, 114], [115, 122], [123, 124]]
    assert links.tgt_words == ["Russia", "develops", "rockets", "."]
    assert links.tgt_word_spans == [[0, 6], [7, 15], [16, 23], [23, 24]]
    assert links.alignment == [[0, 0], [1, 1], [2, 2], [3, 3]]
    # written the plain way, the same normalised sentence links syllable by syllable
    plain = "Nga phát triển tên lửa."
    links = L.sentence_links(plain, 0, normalize(plain, word_segmented=False), translation, attention)
    assert links.src_words == ["Nga", "phát", "triển", "tên", "lửa", "."]
    assert links.alignment == [[0, 0], [2, 1], [4, 2], [5, 3]]


def test_word_attention_record_round_trip():
    weights = np.array([[0.5, 0.25, 0.001], [0.0, 0.0, 0.0]], dtype=np.float32)
    attention = L.WordAttention([(0, 3), (4, 7), (8, 9)], [(0, 2), (3, 5)], weights)
    back = L.WordAttention.from_record(attention.to_record())
    assert back.src_spans == attention.src_spans and back.tgt_spans == attention.tgt_spans
    np.testing.assert_allclose(back.weights, [[0.5, 0.25, 0.0], [0.0, 0.0, 0.0]], atol=1e-3)
    with pytest.raises(ValueError):
        L.WordAttention.from_record(json.dumps({"v": 999}))


def test_alignment_choice_defaults_and_overrides(monkeypatch):
    monkeypatch.delenv("MT_ALIGN_LAYER", raising=False)
    monkeypatch.delenv("MT_ALIGN_HEAD", raising=False)
    assert EA.alignment_choice("marian", 6, 8) == ([5], 0)  # the guided-alignment head
    assert EA.alignment_choice("nllb", 12, 16) == ([11], None)  # mean over the last layer's heads
    monkeypatch.setenv("MT_ALIGN_LAYER", "-2,-1")
    monkeypatch.setenv("MT_ALIGN_HEAD", "mean")
    assert EA.alignment_choice("marian", 6, 8) == ([4, 5], None)
    monkeypatch.setenv("MT_ALIGN_HEAD", "3")
    assert EA.alignment_choice("t5", 6, 8) == ([4, 5], 3)
    from mt.errors import ConfigError

    for layer, head in (("6", "0"), ("x", "0"), ("-1", "8"), ("-1", "first")):
        monkeypatch.setenv("MT_ALIGN_LAYER", layer)
        monkeypatch.setenv("MT_ALIGN_HEAD", head)
        with pytest.raises(ConfigError):
            EA.alignment_choice("marian", 6, 8)


# -- the real tiny model -------------------------------------------------------------------------
def test_attention_shapes_and_spans(tf_engine, tiny_engine):
    sources = ["Kazakhstan sẽ cùng  với Nga\nphát triển tên lửa.", "Tôi đi học.", "   ", "Xin chào"]
    translations = tf_engine.translate(sources)
    translations[3] = ""  # no translation: nothing to attend
    result = tf_engine.attention(sources, translations)
    assert len(result) == 4
    # every engine gives the same pieces and spans (the contract); weights are its own
    for mine, theirs in zip(result, EA.engine_attention(tiny_engine, sources, translations)):
        assert mine.src_spans == theirs.src_spans and mine.tgt_spans == theirs.tgt_spans
        assert mine.weights.shape == theirs.weights.shape
    for source, translation, att in zip(sources, translations, result):
        assert att.weights.dtype == np.float32
        assert att.weights.shape == (len(att.tgt_spans), len(att.src_spans))
        if not (source.strip() and translation):
            assert att.weights.size == 0
            continue
        # source spans index the sentence as given (double space and newline included)
        assert "".join(source[a:b] for a, b in att.src_spans) == "".join(source.split())
        assert "".join(translation[a:b] for a, b in att.tgt_spans) == "".join(translation.split())
        rows = att.weights.sum(axis=1)  # attention rows sum to 1 over the source, EOS included
        assert np.all(rows <= 1.0 + 1e-4) and np.all(rows > 0)


@needs_shared_data("iwslt15")
def test_teacher_forcing_reproduces_generation(tf_engine):
    """The forced pass sees what generation saw: fed the generated pieces, its cross-attention
    equals generate()'s step by step; and the text round-trips through re-tokenisation."""
    from mt.engines.base import DecodingSettings

    tok, model = tf_engine.tokenizer, tf_engine.model
    greedy = DecodingSettings(beam=1, max_len_a=1.0, max_len_b=5)
    for sentence in iwslt_segments("tst2010", "vi")[:3]:
        encoded = tf_engine._encode([sentence])
        with tf_engine._lock:
            _, output = tf_engine.generate_ids(
                encoded, greedy, output_attentions=True, return_dict_in_generate=True)
        generated = output.sequences[0].tolist()
        assert generated[0] == model.generation_config.decoder_start_token_id
        pieces = [t for t in generated[1:] if t not in (tok.eos_token_id, tok.pad_token_id)]
        forced = forced_cross_attention(tf_engine, encoded, [pieces])[0]
        assert forced.shape == (len(pieces), len(encoded[0]))
        for step, layers in enumerate(output.cross_attentions[: len(pieces)]):
            expected = layers[-1][0, 0, -1].float().numpy()  # last layer, head 0, this step
            np.testing.assert_allclose(forced[step], expected, atol=2e-5)

    # re-tokenising a translation: canonical target pieces come back unchanged, and the forced
    # text is always exactly the translation (a random model's odd piece choices included)
    for english in iwslt_segments("tst2010", "en")[:20]:
        ids = tok(text_target=[english], add_special_tokens=False)["input_ids"][0]
        text = tok.decode(ids, skip_special_tokens=True, use_source_tokenizer=False)
        if tok.unk_token_id not in ids:
            assert EA.target_ids(tok, [text])[0] == ids
    sources = iwslt_segments("tst2010", "vi")[:12]
    for translation in tf_engine.translate(sources):
        ids = EA.target_ids(tok, [translation])[0]
        assert tok.decode(ids, skip_special_tokens=True, use_source_tokenizer=False) == translation


@needs_shared_data("seed")
def test_seed_document_links_invariants(tiny_engine, seed_text):
    document = translate_document(seed_text, tiny_engine)
    linked = 0
    for pair in document.sentences:
        if pair.kind == "byline":
            assert pair.src_words == pair.tgt_words == pair.alignment == pair.src_word_spans == []
            assert pair.quality is None and pair.similarity is None and pair.flagged is False
            continue
        assert pair.src_words == pair.source.split()  # the seed is word-segmented: tokens as written
        assert len(pair.src_word_spans) == len(pair.src_words)
        for word, (a, b) in zip(pair.src_words, pair.src_word_spans):
            assert seed_text[a:b] == word and pair.start <= a < b <= pair.end
        for word, (a, b) in zip(pair.tgt_words, pair.tgt_word_spans):
            assert pair.translation[a:b] == word
        english_linked = [e for _, e in pair.alignment]
        assert len(english_linked) == len(set(english_linked))  # every English word at most once
        assert english_linked == sorted(english_linked)
        for v, e in pair.alignment:
            assert 0 <= v < len(pair.src_words) and 0 <= e < len(pair.tgt_words)
            assert is_punctuation(pair.src_words[v]) == is_punctuation(pair.tgt_words[e])
        linked += bool(pair.alignment)
        # the view's runs rebuild both texts exactly
        assert "".join(text for text, _ in pair.source_runs()) == pair.source
        assert "".join(text for text, _ in pair.translation_runs()) == pair.translation
    assert linked >= 10  # random attention still has argmaxes above the floor
    record = document.to_dict()["sentences"][0]
    assert {"src_words", "src_word_spans", "tgt_words", "alignment", "quality", "flagged"} <= set(record)
    assert json.loads(json.dumps(record, ensure_ascii=False)) == record


class CountingEngine:
    """The real tiny engine, counting what reaches the model: translations and attention passes."""

    def __init__(self, engine):
        self.inner = engine
        self.spec = engine.spec
        self.settings = engine.settings
        self.translated: list[list[str]] = []
        self.attended: list[list[str]] = []

    def namespace(self, settings=None):
        return self.inner.namespace(settings)

    def translate(self, sentences, settings=None):
        self.translated.append(list(sentences))
        return self.inner.translate(sentences, settings)

    def attention(self, sources, translations):
        self.attended.append(list(sources))
        return EA.engine_attention(self.inner, sources, translations)


@needs_shared_data("seed")
def test_links_are_cached_beside_translations(tiny_engine, seed_text, tmp_path):
    cache = open_cache(tmp_path / "cache.sqlite")
    counting = CountingEngine(tiny_engine)
    first = translate_document(seed_text, counting, cache, quality=False)
    assert len(counting.translated) == 1 and len(counting.attended) == 1
    assert len(counting.attended[0]) == 13  # one teacher-forced batch, byline not sent
    second = translate_document(seed_text, counting, cache, quality=False)
    assert len(counting.translated) == 1 and len(counting.attended) == 1  # nothing reached the model
    assert [p.alignment for p in second.sentences] == [p.alignment for p in first.sentences]
    assert second.timings["links_sentences"] == 0

    # translations cached but links not (computed by a caller that skipped them): links only
    other = open_cache(tmp_path / "other.sqlite")
    counting = CountingEngine(tiny_engine)
    without = translate_document(seed_text, counting, other, links=False, quality=False)
    assert all(p.alignment == [] and p.src_words == [] for p in without.sentences)
    assert counting.attended == []
    again = translate_document(seed_text, counting, other, quality=False)
    assert len(counting.translated) == 1 and len(counting.attended) == 1
    assert [p.alignment for p in again.sentences] == [p.alignment for p in first.sentences]


def test_links_through_batching_engine(tiny_engine):
    from mt.engines.request_queue import BatchingEngine

    text = "Tôi đi học. Trời mưa to."
    with BatchingEngine(tiny_engine) as batcher:
        batched = translate_document(text, batcher, quality=False)
    plain = translate_document(text, tiny_engine, quality=False)
    assert [p.alignment for p in batched.sentences] == [p.alignment for p in plain.sentences]
    assert any(p.alignment for p in plain.sentences)


def test_engine_without_attention_gives_words_without_links(tiny_engine):
    class Opaque:  # an engine that cannot show its attention
        spec, settings = tiny_engine.spec, tiny_engine.settings

        def namespace(self, settings=None):
            return tiny_engine.namespace(settings)

        def translate(self, sentences, settings=None):
            return tiny_engine.translate(sentences, settings)

    document = translate_document("Tôi đi học.", Opaque(), quality=False)
    pair = document.sentences[0]
    assert pair.src_words == ["Tôi", "đi", "học", "."] and pair.tgt_words and pair.alignment == []


def test_json_api_returns_links_and_quality(tiny_engine, tmp_path):
    from mt.web import create_app
    from mt.settings import defaults

    app = create_app(defaults(no_batching=True), tiny_engine, open_cache(tmp_path / "c.sqlite"))
    reply = app.test_client().post("/api/translate", json={"text": "Kazakhstan sẽ cùng_với Nga phát_triển tên_lửa ."})
    assert reply.status_code == 200
    sentence = reply.get_json()["sentences"][0]
    assert sentence["src_words"] == ["Kazakhstan", "sẽ", "cùng_với", "Nga", "phát_triển", "tên_lửa", "."]
    assert sentence["src_word_spans"][5] == [38, 45]
    assert all(isinstance(pair, list) and len(pair) == 2 for pair in sentence["alignment"])
    assert isinstance(sentence["quality"], float) and isinstance(sentence["similarity"], float)
    assert sentence["flagged"] is True  # the random model's gibberish
    schema = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]["Segment"]["properties"]
    assert {"src_words", "src_word_spans", "tgt_words", "tgt_word_spans", "alignment", "quality", "similarity",
            "flagged"} <= set(schema)


# -- quality -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iwslt_pairs():
    """40 human line pairs from tst2010 (the threshold was calibrated on dev2010)."""
    vi, en = iwslt_segments("tst2010", "vi"), iwslt_segments("tst2010", "en")
    assert len(vi) == len(en) > 100
    picked = [i for i in range(0, len(vi), len(vi) // 40) if len(vi[i].split()) >= 4][:40]
    return [vi[i] for i in picked], [en[i] for i in picked]


@needs_shared_data("iwslt15")
def test_quality_separates_real_from_mismatched_and_untranslated(iwslt_pairs):
    vi, en = iwslt_pairs
    real = Q.quality_scores(vi, en)
    mismatched = Q.quality_scores(vi, en[7:] + en[:7])
    copies = Q.quality_scores(vi, vi)  # untranslated output: very "similar" to its source
    assert real.quality.shape == (len(vi),) and real.quality.dtype == np.float32
    assert np.mean(real.quality >= Q.QUALITY_THRESHOLD) >= 0.9
    assert np.mean(~real.flagged()) >= 0.9  # human translations pass
    assert np.mean(mismatched.flagged()) >= 0.85  # unrelated English sentences do not
    assert np.mean(copies.flagged()) >= 0.85 and np.all(copies.similarity > 0.99)
    assert real.quality.mean() > mismatched.quality.mean() + 0.05
    blank = Q.quality_scores(["Xin chào", ""], ["", "Hello"])
    assert blank.similarity.tolist() == blank.quality.tolist() == [0.0, 0.0]


@needs_shared_data("seed")
def test_random_model_translations_are_all_flagged(tiny_engine, seed_text, tmp_path, monkeypatch):
    from mt.quality import embeddings

    calls = []
    real_embed = embeddings.embed
    monkeypatch.setattr(embeddings, "embed", lambda texts: calls.append(len(texts)) or real_embed(texts))
    cache = open_cache(tmp_path / "c.sqlite")
    document = translate_document(seed_text, tiny_engine, cache, links=False)
    # the 13 sources are embedded while the model decodes, the 13 translations as their model batch
    # is decoded; then one scoring call over both (in the embedder's memo: not embedded twice); the
    # reference sentences come precomputed with the package (mt/quality/reference_vectors.npz)
    assert calls == [13, 13, 26]
    scored = [p for p in document.sentences if p.kind != "byline"]
    assert len(scored) == 13
    assert all(isinstance(p.quality, float) and isinstance(p.similarity, float) for p in scored)
    assert all(p.flagged for p in scored)  # gibberish: the honest answer
    assert "quality_ms" in document.timings
    again = translate_document(seed_text, tiny_engine, cache, links=False)
    assert len(calls) == 3  # scores come from the cache: no embedding call the second time
    assert [p.quality for p in again.sentences] == [p.quality for p in document.sentences]
