"""translate_document end to end: real segmenter, normaliser, SQLite cache and tiny Marian model."""

import dataclasses

import pytest

from mt.cache import open_cache
from mt.pipeline import translate_document, translate_documents
from testkit.shared_data import SEED, needs_shared_data


class CountingEngine:
    """Wraps the real tiny engine only to count what reaches the model (outputs untouched)."""

    def __init__(self, engine):
        self.inner = engine
        self.spec = engine.spec
        self.settings = engine.settings
        self.calls: list[list[str]] = []

    def namespace(self, settings=None):
        return self.inner.namespace(settings)

    def translate(self, sentences, settings=None):
        self.calls.append(list(sentences))
        return self.inner.translate(sentences, settings)


@pytest.fixture
def seed_text():
    return SEED.read_text(encoding="utf-8")


@needs_shared_data("seed")
def test_seed_document_structure(tiny_engine, seed_text):
    document = translate_document(seed_text, tiny_engine)
    assert len(document.sentences) == 14
    assert [pair.kind for pair in document.sentences][-1] == "byline"
    for pair in document.sentences:
        assert seed_text[pair.start : pair.end] == pair.source
        assert "_" not in pair.normalized
        assert pair.cached is False
    byline = document.sentences[-1]
    assert byline.translation == "Đan Nguyên"
    assert all(pair.translation for pair in document.sentences)
    assert "vịêc" not in " ".join(pair.normalized for pair in document.sentences)
    assert document.model == tiny_engine.spec.id
    assert document.translation.split(" ")[-2:] == ["Đan", "Nguyên"]


@needs_shared_data("seed")
def test_only_misses_reach_model_in_one_call(tiny_engine, seed_text, tmp_path):
    cache = open_cache(tmp_path / "cache.sqlite")
    counting = CountingEngine(tiny_engine)
    first = translate_document(seed_text, counting, cache)
    assert len(counting.calls) == 1
    assert len(counting.calls[0]) == 13  # byline not sent
    second = translate_document(seed_text, counting, cache)
    assert len(counting.calls) == 1  # everything from the cache
    assert all(pair.cached for pair in second.sentences if pair.kind != "byline")
    assert [p.translation for p in first.sentences] == [p.translation for p in second.sentences]

    extended = "Một câu hoàn toàn mới ở đầu bài.\n\n" + seed_text
    third = translate_document(extended, counting, cache)
    assert counting.calls[-1] == ["Một câu hoàn toàn mới ở đầu bài."]
    assert third.cache_hits == 13


@needs_shared_data("seed")
def test_cache_persists_across_processes_and_keys_on_settings(tiny_engine, seed_text, tmp_path):
    path = tmp_path / "cache.sqlite"
    translate_document(seed_text, tiny_engine, open_cache(path))
    reopened = open_cache(path)
    assert translate_document(seed_text, tiny_engine, reopened).cache_hits == 13
    other_beam = dataclasses.replace(tiny_engine.settings, beam=tiny_engine.settings.beam + 1)
    fresh = translate_document(seed_text, tiny_engine, reopened, settings=other_beam)
    assert fresh.cache_hits == 0


def test_duplicate_sentences_translated_once(tiny_engine):
    counting = CountingEngine(tiny_engine)
    text = "Tôi đi học. Trời mưa to. Tôi đi học."
    document = translate_document(text, counting)
    assert counting.calls == [["Tôi đi học.", "Trời mưa to."]]
    assert document.sentences[0].translation == document.sentences[2].translation


def test_paragraphs_and_line_breaks_kept(tiny_engine):
    text = "Tiêu đề bài báo\nCâu thứ nhất. Câu thứ hai.\n\nĐoạn hai có một câu."
    document = translate_document(text, tiny_engine)
    assert [p.paragraph for p in document.sentences] == [0, 0, 0, 1]
    assert document.sentences[0].kind == "title"
    english = document.translation
    assert english.count("\n\n") == 1
    first_paragraph, second_paragraph = english.split("\n\n")
    assert first_paragraph.count("\n") == 1  # the title keeps its own line
    assert second_paragraph == document.sentences[3].translation


@pytest.mark.parametrize("text", ["", "   \n\n  \t"])
def test_empty_input_gives_empty_document(tiny_engine, text):
    document = translate_document(text, tiny_engine)
    assert document.sentences == []
    assert document.translation == ""


def test_document_dict_has_api_fields(tiny_engine):
    record = translate_document("Xin chào.", tiny_engine).to_dict()
    assert set(record) >= {"model", "sentences", "translation", "timings"}
    assert set(record["sentences"][0]) >= {
        "start", "end", "source", "normalized", "translation", "cached", "kind", "paragraph"
    }


class KilledDuringLinks(CountingEngine):
    """The real engine, but the process "dies" (KeyboardInterrupt) in the word-link pass."""

    def attention(self, sources, translations):
        raise KeyboardInterrupt


def test_translations_are_cached_only_with_their_word_links(tiny_engine, tmp_path):
    """A run killed between translating and linking leaves no translation without its links,
    so a resumed run links every sentence exactly as an uninterrupted one (issue #11)."""
    text = "Hôm nay trời đẹp. Chúng tôi đi học."
    cache = open_cache(tmp_path / "c.sqlite")
    with pytest.raises(KeyboardInterrupt):
        translate_document(text, KilledDuringLinks(tiny_engine), cache, quality=False)
    namespace = tiny_engine.namespace()
    assert cache.get_many(namespace, ["Hôm nay trời đẹp.", "Chúng tôi đi học."]) == {}
    first = translate_document(text, tiny_engine, cache, quality=False)
    assert not any(pair.cached for pair in first.sentences)
    assert set(cache.get_many(namespace, ["Hôm nay trời đẹp.", "Chúng tôi đi học."])) == {
        "Hôm nay trời đẹp.", "Chúng tôi đi học."}
    again = translate_document(text, tiny_engine, cache, quality=False)
    assert all(pair.cached for pair in again.sentences)
    assert [p.alignment for p in again.sentences] == [p.alignment for p in first.sentences]
    # the many-texts pass (LibreTranslate lists) holds its translations back the same way
    many = open_cache(tmp_path / "many.sqlite")
    with pytest.raises(KeyboardInterrupt):
        translate_documents([text, "Trời mưa."], KilledDuringLinks(tiny_engine), many, quality=False)
    assert many.get_many(namespace, ["Hôm nay trời đẹp.", "Chúng tôi đi học.", "Trời mưa."]) == {}
    # plain text (no links asked for) caches its translations at once, as before
    plain = open_cache(tmp_path / "plain.sqlite")
    translate_document(text, tiny_engine, plain, links=False, quality=False)
    assert len(plain.get_many(namespace, ["Hôm nay trời đẹp.", "Chúng tôi đi học."])) == 2
