"""mt.budget and the one model queue (mt.engines.request_queue.FairQueue) that honours it.

The engine is the real tiny TransformersEngine, as a subclass that records every batch it is
handed (and can hold a call at a gate, or raise for one marked sentence): what the model saw is
what it really received, and every translation comes from the real model.
"""
from __future__ import annotations

import threading
import time

import pytest

from mt import budget
from mt.budget import Budget, budget_scope
from mt.engines.request_queue import POLL_SECONDS, BatchingEngine, WorkerStopped
from mt.errors import DeadlineExceeded, MTError, RequestCancelled

WORDS = ["Hà Nội", "học sinh", "bệnh viện", "thời tiết", "kinh tế", "bóng đá"]


def sentences(count: int, tag: str) -> list[str]:
    return [f"Câu {tag}{i} nói về {WORDS[i % len(WORDS)]}." for i in range(count)]


@pytest.fixture()
def recorded(tiny_engine):
    """The real engine, as a subclass recording its batches; ``gate`` holds each call until set;
    a batch holding ``fail_on`` raises RuntimeError, one holding ``die_on`` raises SystemExit."""
    base = type(tiny_engine)

    class Recorded(base):
        def translate(self, batch, settings=None, on_batch=None):
            self.calls.append(list(batch))
            self.started.set()
            assert self.gate.wait(60), "gate never opened"
            if self.die_on in batch:
                raise SystemExit("worker thread killed")
            if self.fail_on in batch:
                raise RuntimeError("the model cannot take this sentence")
            return base.translate(self, batch, settings)

    engine = Recorded.__new__(Recorded)
    engine.__dict__.update(tiny_engine.__dict__)
    engine.calls, engine.started, engine.gate = [], threading.Event(), threading.Event()
    engine.fail_on = engine.die_on = None
    return engine


@pytest.fixture(scope="module")
def greedy(tiny_engine):
    return tiny_engine.settings.replace(beam=1)


class Call(threading.Thread):
    """``batcher.translate(batch)`` on a thread of its own, under ``budget``; result or error kept."""

    def __init__(self, batcher, batch, settings, budget_=None):
        super().__init__(daemon=True)
        self.args_ = (batcher, batch, settings, budget_)
        self.result = self.error = self.ended = None
        self.start()

    def run(self):
        batcher, batch, settings, budget_ = self.args_
        with budget_scope(budget_):
            try:
                self.result = batcher.translate(batch, settings)
            except BaseException as error:  # noqa: BLE001 - inspected by the test
                self.error = error
        self.ended = time.monotonic()


def wait_queued(batcher, count: int) -> None:
    deadline = time.monotonic() + 30
    while batcher.stats()["queued_requests"] < count:
        assert time.monotonic() < deadline, batcher.stats()
        time.sleep(0.005)


def busy(batcher, engine, settings) -> Call:
    """A one-sentence call that holds the model at the gate: what comes next queues."""
    call = Call(batcher, ["Khởi động mô hình."], settings)
    assert engine.started.wait(60)
    return call


# -- the budget itself ---------------------------------------------------------------------------
def test_no_budget_is_no_limit_and_scopes_nest():
    assert budget.current() is None
    budget.check()  # nothing set: passes
    assert budget.remaining() is None and budget.remaining(5.0) == 5.0
    outer = Budget.after(60)
    with budget_scope(outer):
        assert budget.current() is outer and 59 < budget.remaining() <= 60
        assert budget.remaining(1.0) == 1.0  # the smaller of the two
        with budget_scope(Budget.after(0)):
            with pytest.raises(DeadlineExceeded) as caught:
                budget.check()
            assert caught.value.code == "deadline_exceeded" and isinstance(caught.value, MTError)
            assert budget.remaining() == 0.0
        assert budget.current() is outer
        seen = []
        thread = threading.Thread(target=lambda: seen.append(budget.current()))
        thread.start()
        thread.join()
        assert seen == [None]  # another thread does not inherit it
    assert budget.current() is None


def test_cancelled_client():
    gone = threading.Event()
    with budget_scope(Budget.after(None, cancelled=gone.is_set)):
        budget.check()
        assert budget.remaining() is None
        gone.set()
        with pytest.raises(RequestCancelled) as caught:
            budget.check()
        assert caught.value.code == "client_gone"

    def broken() -> bool:
        raise OSError("socket already closed")

    Budget(None, broken).check()  # a probe that raises is not a cancellation


# -- the queue -------------------------------------------------------------------------------------
def test_a_short_request_is_served_before_a_long_articles_slices(recorded, greedy, tiny_engine):
    article, short = sentences(40, "bài-"), ["Câu ngắn duy nhất."]
    with BatchingEngine(recorded, max_sentences=8, max_wait_ms=0) as batcher:
        first = busy(batcher, recorded, greedy)
        long_call = Call(batcher, article, greedy)
        wait_queued(batcher, 1)
        time.sleep(0.05)  # the article has waited longer than the short request
        short_call = Call(batcher, short, greedy)
        wait_queued(batcher, 2)
        recorded.gate.set()
        for call in (first, long_call, short_call):
            call.join(120)
    assert short_call.result == tiny_engine.translate(short, greedy)
    assert long_call.result == tiny_engine.translate(article, greedy)  # it finished too
    calls = recorded.calls
    assert short[0] in calls[1], calls[1]  # the very next call after the one that was running
    assert short_call.ended < long_call.ended
    # the short request's call carries at most a quarter call of the article (short calls stay
    # short); alone, the article gets full calls
    assert len(calls[1]) <= 1 + 8 // 4 and sum(len(c) for c in calls[1:]) == 41, calls
    assert all(len(c) == 8 for c in calls[2:-1]), [len(c) for c in calls]


def test_an_expired_item_is_dropped_before_the_model_sees_it(recorded, greedy):
    doomed = sentences(3, "hết-hạn-")
    with BatchingEngine(recorded, max_sentences=8, max_wait_ms=0) as batcher:
        first = busy(batcher, recorded, greedy)
        began = time.monotonic()
        late = Call(batcher, doomed, greedy, Budget.after(0.3))
        late.join(10)
        waited = late.ended - began
        assert isinstance(late.error, DeadlineExceeded), late.error
        assert 0.25 < waited < 1.0, waited  # at its deadline, while the model is still busy
        assert batcher.stats()["queued_requests"] == 0  # out of the queue at once
        recorded.gate.set()
        first.join(60)
        assert batcher.translate(["Sau đó."], greedy)
        stats = batcher.stats()
    seen = {s for call in recorded.calls for s in call}
    assert not seen & set(doomed), recorded.calls
    assert stats["expired"] == 1 and stats["errors"] == 0


def test_an_item_expired_in_the_queue_is_dropped_by_the_worker(recorded, greedy):
    """Expired before the worker forms the next call (and before its waiter looked): the
    worker drops it; the model gets only the live request."""
    doomed, live = sentences(2, "cũ-"), sentences(2, "sống-")
    with BatchingEngine(recorded, max_sentences=8, max_wait_ms=0) as batcher:
        first = busy(batcher, recorded, greedy)
        late = Call(batcher, doomed, greedy, Budget.after(0.05))
        ok = Call(batcher, live, greedy, Budget.after(60))
        wait_queued(batcher, 2)
        time.sleep(0.1)  # past the deadline; the waiter may sleep up to POLL_SECONDS more
        recorded.gate.set()
        for call in (first, late, ok):
            call.join(60)
    assert isinstance(late.error, DeadlineExceeded) and ok.error is None
    assert recorded.calls[1] == live


def test_a_cancelled_item_is_dropped(recorded, greedy):
    gone = threading.Event()
    doomed = sentences(2, "bỏ-đi-")
    with BatchingEngine(recorded, max_sentences=8, max_wait_ms=0) as batcher:
        first = busy(batcher, recorded, greedy)
        left = Call(batcher, doomed, greedy, Budget.after(None, cancelled=gone.is_set))
        wait_queued(batcher, 1)
        gone.set()
        left.join(POLL_SECONDS + 2)  # told within a poll, the model still busy
        assert isinstance(left.error, RequestCancelled), left.error
        recorded.gate.set()
        first.join(60)
        stats = batcher.stats()
    assert not {s for call in recorded.calls for s in call} & set(doomed)
    assert stats["cancelled"] == 1


def test_a_failing_item_fails_alone(recorded, greedy, tiny_engine):
    bad = "Câu này làm mô hình lỗi."
    recorded.fail_on = bad
    mates = [sentences(3, "bạn-"), sentences(2, "khác-")]
    with BatchingEngine(recorded, max_sentences=16, max_wait_ms=0) as batcher:
        first = busy(batcher, recorded, greedy)
        poisoned = Call(batcher, [bad, "Câu tốt đi cùng."], greedy)
        others = [Call(batcher, m, greedy) for m in mates]
        wait_queued(batcher, 3)
        recorded.gate.set()
        for call in (first, poisoned, *others):
            call.join(120)
        stats = batcher.stats()
    shared = recorded.calls[1]
    assert bad in shared and set(mates[0]) <= set(shared)  # they really shared the failing call
    assert isinstance(poisoned.error, RuntimeError)
    assert [call.result for call in others] == [tiny_engine.translate(m, greedy) for m in mates]
    assert stats["errors"] == 1 and stats["retried_batches"] >= 2


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit, on purpose
def test_worker_death_fails_waiters_within_their_deadline(recorded, greedy, tiny_engine):
    recorded.die_on = "Câu giết luồng."
    with BatchingEngine(recorded, max_sentences=8, max_wait_ms=0) as batcher:
        killer = Call(batcher, ["Câu giết luồng."], greedy)
        assert recorded.started.wait(60)
        queued = [Call(batcher, sentences(2, "chờ-"), greedy, Budget.after(20)),
                  Call(batcher, sentences(2, "chờ-mãi-"), greedy)]  # no budget: still never hangs
        wait_queued(batcher, 2)
        began = time.monotonic()
        recorded.gate.set()
        for call in (killer, *queued):
            call.join(POLL_SECONDS + 10)
            assert not call.is_alive()
        assert all(isinstance(call.error, WorkerStopped) for call in (killer, *queued)), \
            [call.error for call in (killer, *queued)]
        assert max(call.ended for call in queued) - began < 5
        assert batcher.stats()["worker_stops"] == 1
        # the next request starts a fresh worker
        again = sentences(2, "lại-")
        assert batcher.translate(again, greedy) == tiny_engine.translate(again, greedy)


def test_embeddings_honour_the_budget():
    from mt.quality import embeddings

    with budget_scope(Budget.after(0)):
        with pytest.raises(DeadlineExceeded):
            embeddings.embed(["Một câu chưa từng được nhúng 98765."])
