"""Alternatives (issue #23): the engines' n best (mt.engines.nbest, Engine.alternatives), the
batcher's pass-through, TranslatorService.alternatives and ``POST /api/alternatives``.

Everything runs the real tiny random-weight Marian model (tests/conftest.py): in-process with the
transformers engine and its CTranslate2 conversion, and through a real server on a loopback port
(with API keys on, so the route's key check is exercised too).
"""

from __future__ import annotations

import threading

import pytest

from mt.budget import Budget, budget_scope
from mt.engines.base import MAX_ALTERNATIVES, DecodingSettings
from mt.engines.request_queue import BatchingEngine
from mt.errors import DeadlineExceeded, InputError
from mt.text.normalize import is_word_segmented
from testkit.tiny_model import sample_sentences

GREEDY = DecodingSettings(beam=1, max_len_a=1.5, max_len_b=10)
KEY = "alternatives-test-key-0123456789"


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    return sample_sentences("vi")[:12]


@pytest.fixture(scope="module")
def ct2_engine(tiny_model_dir, tmp_path_factory):
    from mt.engines.ctranslate2 import CTranslate2Engine
    from mt.models import resolve_model

    return CTranslate2Engine(resolve_model(str(tiny_model_dir)), tiny_model_dir, compute_type="float32",
                             cache_dir=tmp_path_factory.mktemp("ct2-cache"))


@pytest.fixture(params=["transformers", "ctranslate2"])
def engine(request, tiny_engine, ct2_engine):
    return tiny_engine if request.param == "transformers" else ct2_engine


def check_alternatives(found: list[list[str]], n: int) -> None:
    for options in found:
        assert 1 <= len(options) <= n, options
        assert len(set(options)) == len(options), options  # distinct
        assert all(option and option == option.strip() for option in options), options


@pytest.mark.parametrize("n", [1, 3, MAX_ALTERNATIVES])
def test_alternatives_are_distinct_bounded_and_start_with_the_best(engine, sentences, n):
    found = engine.alternatives(sentences, n)
    assert len(found) == len(sentences)
    check_alternatives(found, n)
    if n <= engine.settings.beam:  # the same beam search: its best is the usual translation
        assert [options[0] for options in found] == engine.translate(sentences)


def test_more_alternatives_extend_fewer(engine, sentences):
    """With the same beam, asking for more hypotheses keeps the best and adds others."""
    wide = engine.settings.replace(beam=MAX_ALTERNATIVES)
    few, many = engine.alternatives(sentences, 2, wide), engine.alternatives(sentences, MAX_ALTERNATIVES, wide)
    assert [options[:1] for options in few] == [options[:1] for options in many]
    assert sum(len(options) for options in many) > sum(len(options) for options in few)


def test_the_two_engines_agree_on_the_greedy_hypothesis(tiny_engine, ct2_engine, sentences):
    """n = 1 with a beam of 1 is greedy decoding, where the engines match token for token
    (tests/test_ct2.py): the hooks keep the caps, prefix and decoding of translate."""
    expected = [[text] for text in tiny_engine.translate(sentences, GREEDY)]
    assert tiny_engine.alternatives(sentences, 1, GREEDY) == expected
    assert ct2_engine.alternatives(sentences, 1, GREEDY) == expected


def test_blank_sentences_get_none_and_bad_input_is_refused(engine):
    assert engine.alternatives(["", "   ", None], 3) == [[], [], []]
    assert engine.alternatives([], 3) == []
    for bad in (0, MAX_ALTERNATIVES + 1, -1, True, 2.0, "3", None):
        with pytest.raises(InputError, match="n must be"):
            engine.alternatives(["Xin chào."], bad)
    with pytest.raises(InputError, match="surrogate"):
        engine.alternatives(["a\ud800"], 2)
    with pytest.raises(TypeError):
        engine.alternatives("Xin chào.", 2)


def test_the_batcher_passes_alternatives_through_its_queue(ct2_engine, sentences):
    """Concurrent requests for alternatives and translations through one BatchingEngine: each gets
    what the plain engine gives, alternatives calls are counted apart, and a spent budget is
    refused before any model work."""
    expected = ct2_engine.alternatives(sentences, 4)
    translations = ct2_engine.translate(sentences)
    with BatchingEngine(ct2_engine, max_sentences=8, max_wait_ms=20) as batcher:
        results: dict[int, list] = {}

        def ask(k: int) -> None:
            part = sentences[k::3]
            results[k] = batcher.alternatives(part, 4) if k % 2 == 0 else batcher.translate(part)

        threads = [threading.Thread(target=ask, args=(k,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert results[0] == expected[0::3] and results[2] == expected[2::3]
        assert results[1] == translations[1::3]
        counts = batcher.queue.stats()
        assert counts["alternatives_requests"] == 2 and counts["alternatives_items"] == len(sentences[0::3]) * 2
        assert counts["requests"] == 1  # the translation, counted apart
        with budget_scope(Budget.after(0.0)), pytest.raises(DeadlineExceeded):
            batcher.alternatives(sentences[:2], 3)
        with pytest.raises(InputError):
            batcher.alternatives(sentences[:2], MAX_ALTERNATIVES + 1)
        assert batcher.queue.stats()["alternatives_requests"] == 2


def test_the_service_normalises_like_the_pipeline(tiny_engine):
    """Word-segmented input gets the alternatives of the sentence written plainly, as the pipeline
    would translate it; a "sentence" over the segmenter's bound is refused."""
    from mt.cache import NullCache
    from mt.text.segment import MAX_SEGMENT_CHARS
    from mt.web.service import TranslatorService

    service = TranslatorService(tiny_engine, NullCache())
    segmented = "Hà_Nội là thủ_đô của Việt_Nam , thành_phố có hơn 8 triệu dân ."
    plain = "Hà Nội là thủ đô của Việt Nam, thành phố có hơn 8 triệu dân."
    assert is_word_segmented(segmented)
    assert service.alternatives(segmented, 3) == tiny_engine.alternatives([plain], 3)[0]
    assert service.alternatives_many([segmented, "", plain], 3) == [
        tiny_engine.alternatives([plain], 3)[0], [], tiny_engine.alternatives([plain], 3)[0]]
    with pytest.raises(InputError, match="at most"):
        service.alternatives("a" * (MAX_SEGMENT_CHARS + 1), 2)


# -- through a real server ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(serve_module, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    return serve_module("--no-cache", "--api-keys", str(keys))


def ask(server, payload, key: str | None = KEY):
    return server.post_json("/api/alternatives", payload, {"X-API-Key": key} if key else None)


def error_code(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body[:300])
    return reply.json()["error"]["code"]


def test_post_alternatives_returns_distinct_alternatives(server):
    sentence = "Hà Nội là thủ đô của Việt Nam."
    reply = ask(server, {"sentence": sentence, "n": 4})
    assert reply.status == 200, reply.body[:300]
    body = reply.json()
    assert set(body) == {"alternatives", "model"}
    check_alternatives([body["alternatives"]], 4)
    again = ask(server, {"sentence": sentence, "n": 2}).json()["alternatives"]
    assert again[0] == body["alternatives"][0]  # the same best: both within the model's beam of 4
    wide = ask(server, {"sentence": sentence, "n": MAX_ALTERNATIVES}).json()["alternatives"]
    check_alternatives([wide], MAX_ALTERNATIVES)
    assert len(wide) > len(again)
    translated = server.post_json("/api/translate", {"text": sentence}, {"X-API-Key": KEY}).json()
    assert again[0] == translated["translation"]
    assert len(ask(server, {"sentence": sentence}).json()["alternatives"]) <= 3  # the default n


def test_post_alternatives_refuses_bad_requests(server):
    assert error_code(ask(server, {"sentence": "Xin chào.", "n": 0}), 400) == "invalid_field"
    assert error_code(ask(server, {"sentence": "Xin chào.", "n": MAX_ALTERNATIVES + 1}), 400) == "invalid_field"
    assert error_code(ask(server, {"sentence": "Xin chào.", "n": "3"}), 400) == "invalid_field"
    assert error_code(ask(server, {"sentence": "Xin chào.", "n": 2.5}), 400) == "invalid_field"
    assert error_code(ask(server, {"n": 2}), 400) == "invalid_field"
    assert error_code(ask(server, {"sentence": "  \n"}), 400) == "empty_text"
    assert error_code(ask(server, {"sentence": "a " * 1000}), 400) == "invalid_field"
    assert error_code(ask(server, {"sentence": "Xin chào.", "model": "nope/nothing"}), 422) == "unknown_model"
    assert error_code(ask(server, {"sentence": "Xin chào."}, key=None), 401) == "api_key_required"
    assert error_code(ask(server, {"sentence": "Xin chào."}, key="wrong"), 403) == "invalid_api_key"
