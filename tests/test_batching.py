"""BatchingEngine around the real tiny engine: same results, fewer model calls, fair, robust.

``Recording`` only watches the real engine's calls (what went into each call, with which
settings), optionally holding a call at a gate or refusing a marked sentence; the translations
always come from the real TransformersEngine.
"""

from __future__ import annotations

import threading
import time

import pytest

from mt.engines.request_queue import BatcherClosed, BatchingEngine
from mt.cache import open_cache
from mt.pipeline import translate_document

WORDS = ["Hà Nội", "học sinh", "bệnh viện", "thời tiết", "kinh tế", "bóng đá", "văn hoá", "giá xăng"]


def sentences(count: int, tag: str = "") -> list[str]:
    """Distinct short Vietnamese sentences."""
    return [f"Câu {tag}{i} nói về {WORDS[i % len(WORDS)]} và {WORDS[(i * 3 + 1) % len(WORDS)]}." for i in range(count)]


class Recording:
    """The real engine, with each translate() call recorded (and optionally gated or failing)."""

    def __init__(self, engine, *, fail_on: str | None = None, gate: threading.Event | None = None):
        self.engine = engine
        self.spec = engine.spec
        self.name = engine.name
        self.settings = engine.settings
        self.fail_on = fail_on
        self.gate = gate
        self.calls: list[tuple[list[str], object]] = []
        self.started = threading.Event()

    def namespace(self, settings=None) -> str:
        return self.engine.namespace(settings)

    def translate(self, batch, settings=None):
        self.calls.append((list(batch), settings))
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(60), "gate never opened"
        if self.fail_on is not None and self.fail_on in batch:
            raise RuntimeError(f"engine failure on {self.fail_on!r}")
        return self.engine.translate(batch, settings)


@pytest.fixture(scope="module")
def greedy(tiny_engine):
    return tiny_engine.settings.replace(beam=1)


def run_threads(count: int, target) -> list:
    results: list = [None] * count
    errors: list = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = target(index)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors
    return results


def test_same_interface_and_results_as_the_plain_engine(tiny_engine, greedy):
    base = sentences(10)
    texts = base[:1] + ["", base[0]] + base[1:]  # a blank one and a repeat: order and length kept
    with BatchingEngine(tiny_engine, max_sentences=4, max_wait_ms=5) as batcher:
        assert batcher.spec is tiny_engine.spec and batcher.name == tiny_engine.name
        assert batcher.settings == tiny_engine.settings
        assert batcher.namespace(greedy) == tiny_engine.namespace(greedy)
        assert batcher.namespace() == tiny_engine.namespace()
        assert batcher.model_version == tiny_engine.model_version  # everything else is the engine's
        expected = tiny_engine.translate(texts, greedy)
        assert batcher.translate(texts, greedy) == expected
        assert expected[1] == "" and expected[2] == expected[0] != ""
        assert batcher.translate([], greedy) == []
        with pytest.raises(TypeError):
            batcher.translate("một câu", greedy)
        stats = batcher.stats()
        assert stats["requests"] == 1 and stats["sentences"] == 12
        assert stats["batches"] == 3  # 12 sentences in slices of at most 4
        assert stats["deduplicated"] == 1 and stats["engine_sentences"] == 11


def test_concurrent_requests_share_model_calls(tiny_engine, greedy):
    recording = Recording(tiny_engine)
    texts = [sentences(3, tag=f"t{i}-") for i in range(8)]
    expected = [tiny_engine.translate(batch, greedy) for batch in texts]
    with BatchingEngine(recording, max_sentences=32, max_wait_ms=200) as batcher:
        results = run_threads(8, lambda i: batcher.translate(texts[i], greedy))
        stats = batcher.stats()
    assert results == expected  # each thread exactly its own translations, in its order
    assert stats["requests"] == 8 and stats["sentences"] == 24
    assert stats["batches"] == len(recording.calls) < 8, stats
    assert stats["mean_batch"] > 3
    assert sorted(s for batch, _ in recording.calls for s in batch) == sorted(s for batch in texts for s in batch)


def test_identical_sentences_across_requests_are_translated_once(tiny_engine, greedy):
    recording = Recording(tiny_engine)
    shared = sentences(4, tag="shared-")
    with BatchingEngine(recording, max_sentences=64, max_wait_ms=300) as batcher:
        results = run_threads(6, lambda i: batcher.translate(shared, greedy))
        stats = batcher.stats()
    assert all(result == tiny_engine.translate(shared, greedy) for result in results)
    sent = [s for batch, _ in recording.calls for s in batch]
    assert len(sent) < 6 * 4 and stats["deduplicated"] == 6 * 4 - len(sent)
    for batch, _ in recording.calls:
        assert len(batch) == len(set(batch))


def test_different_settings_are_never_mixed(tiny_engine, greedy):
    recording = Recording(tiny_engine)
    beam2 = greedy.replace(beam=2)
    texts = [sentences(2, tag=f"s{i}-") for i in range(6)]
    chosen = [greedy, beam2, None] * 2  # None is the engine's default (beam 4 for this model)
    with BatchingEngine(recording, max_sentences=32, max_wait_ms=200) as batcher:
        results = run_threads(6, lambda i: batcher.translate(texts[i], chosen[i]))
    for i, result in enumerate(results):
        assert result == tiny_engine.translate(texts[i], chosen[i])
    owner = {s: chosen[i] or tiny_engine.settings for i, batch in enumerate(texts) for s in batch}
    for batch, settings in recording.calls:
        assert settings is not None  # the batcher always passes the settings explicitly
        assert {owner[s] for s in batch} == {settings}
    assert len(recording.calls) < 6
    assert {settings for _, settings in recording.calls} == {greedy, beam2, tiny_engine.settings}


def test_a_failing_item_fails_only_its_own_request_and_the_worker_survives(tiny_engine, greedy):
    gate = threading.Event()
    recording = Recording(tiny_engine, fail_on="Câu lỗi.", gate=gate)
    ok = sentences(7, tag="ok-")
    with BatchingEngine(recording, max_sentences=32, max_wait_ms=0) as batcher:
        outcomes: dict[str, object] = {}

        def call(key: str, batch: list[str]) -> None:
            try:
                outcomes[key] = batch and batcher.translate(batch, greedy)
            except Exception as error:  # noqa: BLE001
                outcomes[key] = error

        first = threading.Thread(target=call, args=("first", ok[:1]))
        first.start()
        assert recording.started.wait(60)  # the first call is inside the engine, held at the gate
        waiting = [threading.Thread(target=call, args=("bad", ["Câu lỗi.", ok[1]])),
                   threading.Thread(target=call, args=("mate", ok[2:5])),
                   threading.Thread(target=call, args=("other", ok[5:]))]
        for thread in waiting:
            thread.start()
        deadline = time.monotonic() + 60
        while batcher.stats()["queued_requests"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        gate.set()
        for thread in (first, *waiting):
            thread.join(120)
        stats = batcher.stats()
        assert outcomes["first"] == tiny_engine.translate(ok[:1], greedy)
        # "bad", "mate" and "other" were queued together and shared the failing call; the batch
        # was retried in halves, so only the request holding the failing sentence has an error
        assert isinstance(outcomes["bad"], RuntimeError) and "engine failure" in str(outcomes["bad"])
        assert outcomes["mate"] == tiny_engine.translate(ok[2:5], greedy)
        assert outcomes["other"] == tiny_engine.translate(ok[5:], greedy)
        shared = next(batch for batch, _ in recording.calls if "Câu lỗi." in batch)
        assert set(ok[2:]) <= set(shared)  # they really did share the call that failed
        assert stats["errors"] == 1 and stats["failed_batches"] >= 2 and stats["retried_batches"] >= 2
        assert [batch for batch, _ in recording.calls if "Câu lỗi." in batch][-1] == ["Câu lỗi."]
        # the worker is alive and serves the next request
        assert batcher.translate(ok, greedy) == tiny_engine.translate(ok, greedy)
        assert batcher.stats()["running"]


def test_surrogates_and_poison_items_mixed_into_good_traffic(tiny_engine, greedy):
    """Lone surrogates (which make SentencePiece raise) are refused per request, before any
    batch; 20 such requests among 80 good ones through the real engine fail only themselves."""
    from mt.errors import InputError

    with pytest.raises(RuntimeError):  # what the model call would hit without the check
        tiny_engine.tokenizer(["x \ud800."])
    good = [sentences(2, tag=f"g{i}-") for i in range(80)]
    expected = [tiny_engine.translate(batch, greedy) for batch in good]
    poison = [["x \ud800.", f"Câu tốt {i}."] if i % 2 else [f"Câu {i} \udcff cuối."] for i in range(20)]
    jobs = [poison[i // 5] if i % 5 == 4 else good[i - i // 5] for i in range(100)]
    with BatchingEngine(tiny_engine, max_sentences=16, max_wait_ms=20) as batcher:
        def one(i: int):
            try:
                return batcher.translate(jobs[i], greedy)
            except InputError as error:
                return error

        results = run_threads(100, one)
        stats = batcher.stats()
    bad = [r for i, r in enumerate(results) if i % 5 == 4]
    assert all(isinstance(r, InputError) and "not valid Unicode" in str(r) for r in bad), bad
    assert [r for i, r in enumerate(results) if i % 5 != 4] == expected
    assert stats["failed_batches"] == 0 and stats["errors"] == 0  # never reached a model call
    with pytest.raises(InputError):  # the plain engine refuses them just as clearly
        tiny_engine.translate(["x \ud800."], greedy)
    # NUL and other control characters are dropped before tokenising, not sent to the model
    assert tiny_engine.translate(["Câu\x00 có\x07 ký tự."], greedy) == tiny_engine.translate(["Câu có ký tự."], greedy)


def test_a_job_with_other_settings_finishes_under_a_steady_stream(tiny_engine, greedy):
    """The next batch takes the settings of the longest-waiting job: a beam-2 article (three
    slices, so it waits in the old queue between turns) and a word-link pass both finish while
    eight clients keep sending new greedy requests. (With the settings of the first new job,
    as before, the article never got its second slice.)"""
    beam2 = greedy.replace(beam=2)
    stop = threading.Event()
    streamed = []
    outcome: dict[str, object] = {}
    with BatchingEngine(tiny_engine, max_sentences=4, max_wait_ms=0) as batcher:
        def stream(k: int) -> None:
            i = 0
            while not stop.is_set():
                batcher.translate(sentences(2, tag=f"st{k}-{i}-"), greedy)
                streamed.append(time.monotonic())
                i += 1

        def others() -> None:
            outcome["beam2"] = batcher.translate(odd, beam2)
            outcome["beam2_at"] = len(streamed)
            outcome["links"] = batcher.attention(source, translation)
            outcome["links_at"] = len(streamed)

        odd = sentences(12, tag="beam2-")
        source = sentences(1, tag="links-")
        translation = tiny_engine.translate(source, greedy)
        streams = [threading.Thread(target=stream, args=(k,)) for k in range(8)]
        for thread in streams:
            thread.start()
        deadline = time.monotonic() + 60
        while len(streamed) < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = len(streamed)
        other = threading.Thread(target=others)
        other.start()
        other.join(90)
        stop.set()
        for thread in streams:
            thread.join(120)
        other.join(120)
    assert outcome.get("beam2") == tiny_engine.translate(odd, beam2)
    links = outcome["links"]
    assert links is not None and len(links) == 1 and links[0].weights.size
    # both finished while the stream was still running (each stream request is one slice)
    assert outcome["links_at"] < len(streamed) and outcome["beam2_at"] > before


def test_a_short_request_is_not_stuck_behind_a_long_article(tiny_engine, greedy):
    recording = Recording(tiny_engine)
    long_text = sentences(200, tag="long-")
    short_text = ["Câu ngắn duy nhất."]
    done: dict[str, float] = {}
    with BatchingEngine(recording, max_sentences=8, max_wait_ms=0) as batcher:
        def long_request():
            result = batcher.translate(long_text, greedy)
            done["long"] = time.monotonic()
            return result

        long_thread = threading.Thread(target=long_request)
        long_thread.start()
        deadline = time.monotonic() + 120
        while len(recording.calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        calls_before = len(recording.calls)
        assert calls_before < 25  # the long article is still being translated
        short_result = batcher.translate(short_text, greedy)
        done["short"] = time.monotonic()
        long_thread.join(300)
        stats = batcher.stats()
    assert short_result == tiny_engine.translate(short_text, greedy)
    assert done["short"] < done["long"]
    served_in = next(i for i, (batch, _) in enumerate(recording.calls) if short_text[0] in batch)
    # in the batch after the one running when it arrived, never behind the rest of the article
    assert served_in <= calls_before + 1, (served_in, calls_before)
    assert len(recording.calls) - served_in > 10
    assert all(len(batch) <= 8 for batch, _ in recording.calls)
    assert stats["batches"] == 26 and stats["max_batch"] == 8  # 200 + 1 sentences, full batches but one


def test_two_long_articles_take_turns(tiny_engine, greedy):
    gate = threading.Event()
    recording = Recording(tiny_engine, gate=gate)
    first, second = sentences(24, tag="a-"), sentences(24, tag="b-")
    with BatchingEngine(recording, max_sentences=8, max_wait_ms=0) as batcher:
        warmup = threading.Thread(target=batcher.translate, args=(["Khởi động."], greedy))
        warmup.start()
        assert recording.started.wait(60)  # the worker is busy: both articles queue up
        threads = [threading.Thread(target=batcher.translate, args=(text, greedy)) for text in (first, second)]
        for thread in threads:
            thread.start()
            time.sleep(0.05)
        gate.set()
        for thread in (warmup, *threads):
            thread.join(120)
    def calls_with(text: list[str]) -> list[int]:
        return [i for i, (batch, _) in enumerate(recording.calls) if set(batch) & set(text)]

    # neither article waits for the other to finish: their turns interleave
    assert calls_with(second)[0] < calls_with(first)[-1]
    assert calls_with(first)[0] < calls_with(second)[-1]
    assert all(len(batch) <= 8 for batch, _ in recording.calls)


def test_cache_hits_never_reach_the_batcher(tiny_engine, greedy, tmp_path):
    cache = open_cache(tmp_path / "c.sqlite")
    text = "Hà Nội là thủ đô của Việt Nam. Thành phố có hơn tám triệu dân."
    with BatchingEngine(tiny_engine, max_wait_ms=1) as batcher:
        first = translate_document(text, batcher, cache, settings=greedy)
        after_first = batcher.stats()
        again = translate_document(text, batcher, cache, settings=greedy)
        assert batcher.stats()["requests"] == after_first["requests"] == 1
    assert all(pair.cached for pair in again.sentences) and again.translation == first.translation
    plain = translate_document(text, tiny_engine, None, settings=greedy)
    assert plain.translation == first.translation
    assert [p.alignment for p in plain.sentences] == [p.alignment for p in first.sentences]
    assert after_first["attention_requests"] == 1  # the word links of the misses: through the worker
    cache.close()


def test_close_is_clean(tiny_engine, greedy):
    gate = threading.Event()
    recording = Recording(tiny_engine, gate=gate)
    batcher = BatchingEngine(recording, max_sentences=4, max_wait_ms=0)
    assert not batcher.stats()["running"]  # the worker starts on first use
    outcomes: dict[str, object] = {}

    def call(key: str, batch: list[str]) -> None:
        try:
            outcomes[key] = batcher.translate(batch, greedy)
        except Exception as error:  # noqa: BLE001
            outcomes[key] = error

    running = threading.Thread(target=call, args=("running", ["Đang dịch."]))
    running.start()
    assert recording.started.wait(60)
    queued = threading.Thread(target=call, args=("queued", ["Chờ trong hàng."]))
    queued.start()
    deadline = time.monotonic() + 60
    while batcher.stats()["queued_requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    while not batcher.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    for thread in (running, queued, closer):
        thread.join(120)
    assert outcomes["running"] == tiny_engine.translate(["Đang dịch."], greedy)  # the batch in flight finishes
    assert isinstance(outcomes["queued"], BatcherClosed)
    assert batcher.closed and not batcher.stats()["running"]
    with pytest.raises(BatcherClosed):
        batcher.translate(["Sau khi đóng."], greedy)
    batcher.close()  # twice is fine


def test_word_link_passes_are_batched_too(tiny_engine, greedy):
    """engine_attention through the batcher: same attention as the plain engine, shared calls."""
    import numpy as np

    from mt.engines.attention import engine_attention

    sources = [sentences(2, tag=f"a{i}-") for i in range(6)]
    translations = [tiny_engine.translate(batch, greedy) for batch in sources]
    expected = [engine_attention(tiny_engine, src, tgt) for src, tgt in zip(sources, translations)]
    with BatchingEngine(tiny_engine, max_sentences=32, max_wait_ms=200) as batcher:
        results = run_threads(6, lambda i: engine_attention(batcher, sources[i], translations[i]))
        stats = batcher.stats()
        assert batcher.attention([], []) == []
    assert stats["attention_requests"] == 6 and stats["attention_batches"] < 6
    assert stats["requests"] == 0 and stats["batches"] == 0  # translation counts are separate
    for got, want in zip(results, expected):
        assert len(got) == len(want)
        for a, b in zip(got, want):
            assert a.src_spans == b.src_spans and a.tgt_spans == b.tgt_spans
            np.testing.assert_allclose(a.weights, b.weights, atol=1e-5)


def test_a_forked_child_gets_its_own_worker(tiny_engine, greedy):
    """gunicorn --preload forks after the app is built: the child starts a worker of its own."""
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")

    class Upper:  # a model-free engine: torch's thread pools do not survive a fork
        spec, name, settings = tiny_engine.spec, "upper", greedy

        def namespace(self, settings=None):
            return "upper"

        def translate(self, batch, settings=None):
            return [s.upper() for s in batch]

    batcher = BatchingEngine(Upper(), max_wait_ms=0)
    assert batcher.translate(["một"]) == ["MỘT"] and batcher.stats()["running"]
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            fresh = batcher.stats()["requests"] == 0
            code = 0 if fresh and batcher.translate(["hai", "ba"]) == ["HAI", "BA"] else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert batcher.translate(["bốn"]) == ["BỐN"] and batcher.stats()["requests"] == 2
    batcher.close()


def test_bad_options(tiny_engine):
    for kwargs in ({"max_sentences": 0}, {"max_sentences": 2.5}, {"max_wait_ms": -1}, {"max_wait_ms": float("inf")}):
        with pytest.raises(ValueError):
            BatchingEngine(tiny_engine, **kwargs)
    nested = BatchingEngine(BatchingEngine(tiny_engine))
    assert nested.inner is tiny_engine


def test_create_app_wraps_the_engine_unless_told_not_to(tiny_engine):
    from mt.web import create_app
    from mt.settings import defaults

    app = create_app(defaults(batch_sentences=4, batch_wait_ms=1), tiny_engine, None)
    client = app.test_client()
    reply = client.post("/api/translate", json={"text": "Xin chào. Tạm biệt.", "beam": 1})
    assert reply.status_code == 200
    ready = client.get("/readyz").json
    assert ready["batching"]["requests"] == 1 and ready["batching"]["batches"] == 1
    assert ready["batching"]["max_sentences"] == 4
    plain = create_app(defaults(no_batching=True), tiny_engine, None).test_client()
    same = plain.post("/api/translate", json={"text": "Xin chào. Tạm biệt.", "beam": 1})
    assert same.json["translation"] == reply.json["translation"]
    assert plain.get("/readyz").json["batching"] is None
    app.extensions["mt"].ensure_loaded().close()


def test_a_short_job_arriving_during_a_long_only_call_raises_its_priority():
    """Priority inheritance: a call serving only a long job runs niced (serving_short False); a
    short job that arrives meanwhile waits for that call, so the queue says so at once (the
    batcher then runs the call's threads at the ordinary priority) and the next call serves it."""
    from mt.engines.request_queue import FairQueue

    running, release, boosts, calls = threading.Event(), threading.Event(), [], []

    def call(_key, items):
        calls.append((list(items), queue.serving_short))
        if len(calls) == 1:
            running.set()
            assert release.wait(10)
        return [item.upper() for item in items]

    queue = FairQueue(call, max_cost=4, name="t", on_short_waiting=lambda: boosts.append(queue.serving_short))
    long_items = [f"l{n}" for n in range(8)]
    long_result: list = []
    worker = threading.Thread(target=lambda: long_result.extend(queue.submit(long_items)))
    worker.start()
    assert running.wait(10)
    assert calls[0][1] is False and boosts == [], "only the long job in the call: niced"
    short_result: list = []
    short = threading.Thread(target=lambda: short_result.extend(queue.submit(["s"])))
    short.start()
    deadline = time.monotonic() + 10
    while not boosts and time.monotonic() < deadline:
        time.sleep(0.01)
    assert boosts == [True] and queue.serving_short, "the running call was raised when the short job came"
    release.set()
    worker.join(10)
    short.join(10)
    assert long_result == [item.upper() for item in long_items] and short_result == ["S"]
    assert "s" in calls[1][0] and calls[1][1] is True, "the next call serves the short job, not niced"
    assert all(serving is False for _, serving in calls[2:]), calls
    queue.close()


def test_thread_priority_never_raises_threads_above_their_creator():
    """The alignment worker runs at nice 19: e5's threads made there stay at 19 although e5's
    own setting is 0; a model made by an ordinary thread runs its short calls at 0, long at 19."""
    import os

    from mt.engines.threads import ThreadPriority

    stop = threading.Event()
    workers = [threading.Thread(target=stop.wait) for _ in range(2)]
    for worker in workers:
        worker.start()
    tids = tuple(worker.native_id for worker in workers)
    nice = lambda tid: os.getpriority(os.PRIO_PROCESS, tid)  # noqa: E731
    try:
        made: list = []

        def in_a_niced_thread():
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            made.append(ThreadPriority(tids[:1], low=0, high=0))

        maker = threading.Thread(target=in_a_niced_thread)
        maker.start()
        maker.join()
        assert made[0].high == 19 and nice(tids[0]) == 19
        ordinary = ThreadPriority(tids[1:])
        if ordinary.enabled:  # root or CAP_SYS_NICE (CI runs as root)
            ordinary.set(False)
            assert nice(tids[1]) == 19
            ordinary.set(True)
            assert nice(tids[1]) == 0
    finally:
        stop.set()
        for worker in workers:
            worker.join()
