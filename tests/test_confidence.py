"""Decoder confidence (#21): every translated sentence carries the engine's own confidence, exp
of the mean token log-probability of its output, in [0, 1]; a cached sentence keeps the one it
was made with. On the random-weight tiny model the figures carry no signal: these tests check
range, variation, caching and transport, not meaning."""

import json

import pytest

from mt.cache import open_cache
from mt.engines.loader import load_engine
from mt.io.formats import to_jsonl, to_tsv
from mt.pipeline import translate_document

TEXT = ("Hôm nay trời đẹp quá, chúng tôi đi chơi ở công viên. Tôi là sinh viên.\n\n"
        "Giá xăng tăng 5% trong tháng này. Xin chào.")


@pytest.fixture(scope="module", params=["ctranslate2", "transformers"])
def engine(request, tiny_model_dir):
    return load_engine(str(tiny_model_dir), engine=request.param)


def translated(document):
    return [pair for pair in document.sentences if pair.kind != "byline" and pair.normalized.strip()]


def test_every_sentence_has_a_confidence_in_range_and_they_differ(engine):
    pairs = translated(translate_document(TEXT, engine, links=False, quality=False))
    assert len(pairs) == 4
    values = [pair.confidence for pair in pairs]
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values), values
    assert len(set(values)) > 1, values


def test_a_cached_sentence_keeps_its_confidence(engine, tmp_path):
    path = tmp_path / "cache.sqlite"
    first = translate_document(TEXT, engine, open_cache(path), links=False, quality=False)
    again = translate_document(TEXT, engine, open_cache(path), links=False, quality=False)
    assert all(pair.cached for pair in translated(again))
    assert [p.confidence for p in translated(again)] == [p.confidence for p in translated(first)]
    assert all(p.confidence is not None for p in translated(again))


def test_a_translation_cached_without_a_confidence_gets_null(engine, tmp_path):
    """Caches written before confidences existed keep working: the translation, confidence null."""
    cache = open_cache(tmp_path / "cache.sqlite")
    cache.put_many(engine.namespace(), [("Xin chào.", "Hello.")])
    pair = translated(translate_document("Xin chào.", engine, cache, links=False, quality=False))[0]
    assert (pair.cached, pair.translation, pair.confidence) == (True, "Hello.", None)


def test_bylines_have_none(engine):
    document = translate_document("Tôi là sinh viên.\n\nNguyễn Văn An", engine, links=False, quality=False)
    for pair in document.sentences:
        assert (pair.confidence is None) == (pair.kind == "byline")


def test_jsonl_and_tsv_carry_it(engine):
    document = translate_document(TEXT, engine, links=False, quality=False)
    rows = [json.loads(line) for line in to_jsonl(document).splitlines()]
    assert [row["confidence"] for row in rows] == [pair.confidence for pair in document.sentences]
    cells = [line.split("\t") for line in to_tsv(document).splitlines()]
    assert all(len(row) == 3 for row in cells)
    assert [float(row[2]) for row in cells] == pytest.approx([p.confidence for p in document.sentences], abs=1e-4)


def test_the_api_and_the_page_give_every_sentence_a_confidence(serve):
    server = serve()
    reply = server.post_json("/api/translate", {"text": TEXT})
    assert reply.status == 200, reply.text
    values = [row["confidence"] for row in reply.json()["sentences"]]
    assert len(values) == 4 and all(isinstance(v, float) and 0 <= v <= 1 for v in values), values
    assert len(set(values)) > 1
    again = server.post_json("/api/translate", {"text": TEXT}).json()["sentences"]
    assert all(row["cached"] for row in again) and [row["confidence"] for row in again] == values
    page = server.post_form("/", {"text": TEXT})
    assert page.status == 200 and page.text.count("data-confidence=") == 4


def test_a_repeated_cached_sentence_keeps_its_confidence_in_every_copy(tiny_engine, tmp_path):
    from mt.cache import open_cache
    from mt.pipeline import translate_document

    text = "Tôi yêu Hà Nội. Hôm nay trời đẹp quá! Tôi yêu Hà Nội."
    first = translate_document(text, tiny_engine, open_cache(tmp_path / "c.sqlite"), links=False, quality=False)
    second = translate_document(text, tiny_engine, open_cache(tmp_path / "c.sqlite"), links=False, quality=False)
    assert [p.confidence for p in second.sentences] == [p.confidence for p in first.sentences]
    assert None not in [p.confidence for p in second.sentences]
