"""mt.cache's Redis backend against a real redis-server on loopback: shared across processes,
same keys as SQLite, TTL, scoped stats/clear, and a server that dies, hangs or comes back
(the cache must warn once and step aside, never raise)."""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import time
import warnings

import pytest

from mt.cache import CacheWarning, cache_key, open_cache
from mt.cache.redis import RedisCache, redacted
from mt.errors import ConfigError
from testkit.redis_helpers import RedisServer

NS = "Helsinki-NLP/opus-mt-vi-en@rev1|ct2-int8|beam=4,a=1.5,b=10"
NS_OTHER = NS + "|links"
VI = ["Tôi yêu Hà Nội.", "Hôm nay trời đẹp quá!", "Thủ tướng đã phát biểu tại hội nghị."]
EN = ["I love Hanoi.", "The weather is so nice today!", "The prime minister spoke at the conference."]

no_cache_warnings = pytest.mark.filterwarnings("error::mt.cache.CacheWarning")


@pytest.fixture
def server(tmp_path):
    redis_server = RedisServer(tmp_path / "redis").start()
    yield redis_server
    redis_server.stop()


@pytest.fixture
def cache(server):
    with open_cache(server.url) as opened:
        yield opened


@no_cache_warnings
def test_round_trip_and_keys_match_sqlite(cache, server, tmp_path):
    assert isinstance(cache, RedisCache)
    assert cache.get_many(NS, VI) == {}
    cache.put_many(NS, list(zip(VI, EN)) + [("bad \udcff", "x")])
    assert cache.get_many(NS, VI + ["chưa dịch", "bad \udcff"]) == dict(zip(VI, EN))
    cache.put_many(NS, [(VI[0], "I really love Hanoi.")])
    assert cache.get_many(NS, [VI[0]]) == {VI[0]: "I really love Hanoi."}
    assert cache.get_many(NS_OTHER, VI) == {}  # namespaces isolate
    # The key is the SQLite key (same derivation), under our prefix.
    keys = {key.decode() for key in server.client().scan_iter(match="mt-vi-en:*:*")}
    assert {key.rpartition(":")[2] for key in keys} == {cache_key(NS, s).hex() for s in VI}
    sqlite = open_cache(tmp_path / "c.sqlite")
    sqlite.put_many(NS, [(VI[0], EN[0])])
    assert sqlite._conn().execute("SELECT key FROM entries").fetchone()[0].hex() in {k[-64:] for k in keys}


def _other_process(url: str, queue) -> None:
    cache = open_cache(url)
    queue.put(cache.get_many(NS, VI))
    cache.put_many(NS, [("từ tiến trình khác", "from another process")])
    cache.close()


def _lookups(url: str, sources: list[str]) -> None:
    with open_cache(url) as cache:
        cache.get_many(NS, sources)


@no_cache_warnings
def test_hits_and_misses_are_counted_across_processes(cache, server):
    cache.put_many(NS, list(zip(VI, EN)))
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_lookups, args=(server.url, VI + ["một", "hai"]))  # 3 hits, 2 misses
    child.start()
    child.join(60)
    assert child.exitcode == 0
    cache.get_many(NS, VI[:1])  # this process: 1 hit, not yet saved...
    stats = cache.stats()  # ...but counted in its own stats
    assert (stats["hits"], stats["misses"]) == (4, 2)
    assert server.client().hgetall("mt-vi-en:counters") == {b"hits": b"4", b"misses": b"2"}
    cache.get_many(NS, ["ba"])  # saved with the next round trip (or on close), never one of its own
    cache.close()
    fresh = open_cache(server.url)
    assert (fresh.stats()["hits"], fresh.stats()["misses"]) == (4, 3)


def test_full_redis_under_noeviction_still_serves_hits(cache, server):
    cache.put_many(NS, list(zip(VI, EN)))
    admin = server.client()  # the test's own server: the project itself never reconfigures one
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)  # below what is used: every write is refused
    try:
        with pytest.warns(CacheWarning, match="answered with an error"):
            cache.put_many(NS, [("mới", "new")])
            found = cache.get_many(NS, VI + ["mới"])
        assert found == dict(zip(VI, EN))
    finally:
        admin.config_set("maxmemory", 0)
    cache.put_many(NS, [("mới", "new")])
    assert cache.get_many(NS, ["mới"]) == {"mới": "new"}


@no_cache_warnings
def test_hits_across_processes(cache, server):
    cache.put_many(NS, list(zip(VI, EN)))
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_other_process, args=(server.url, queue))
    child.start()
    seen = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0
    assert seen == dict(zip(VI, EN))
    assert cache.get_many(NS, ["từ tiến trình khác"]) == {"từ tiến trình khác": "from another process"}


def test_killed_mid_run_then_restarted(server):
    cache = open_cache(server.url)
    cache.put_many(NS, [(VI[0], EN[0])])
    server.kill()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.monotonic()
        for _ in range(20):  # many calls while it is down: all uncached, quick, one warning
            assert cache.get_many(NS, VI) == {}
            cache.put_many(NS, [(VI[1], EN[1])])
        assert time.monotonic() - started < 3
        assert cache.stats()["enabled"] is False and "unreachable" in cache.stats()["error"]
    assert [w.category for w in caught] == [CacheWarning]
    assert "unreachable" in str(caught[0].message)
    server.start()  # same port: the cache reconnects by itself once the retry pause has passed
    time.sleep(1.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert cache.get_many(NS, VI) == {}  # a fresh server (no persistence): empty, but answering
        cache.put_many(NS, [(VI[2], EN[2])])
        assert cache.get_many(NS, VI) == {VI[2]: EN[2]}
        assert cache.stats()["enabled"] is True


def test_down_at_start_then_comes_up(tmp_path):
    server = RedisServer(tmp_path / "later")
    with pytest.warns(CacheWarning, match="unreachable"):
        cache = open_cache(server.url)
    cache.put_many(NS, [(VI[0], EN[0])])
    assert cache.get_many(NS, VI) == {}
    assert cache.clear() == 0
    server.start()
    try:
        time.sleep(1.1)
        cache.put_many(NS, [(VI[0], EN[0])])
        assert cache.get_many(NS, VI) == {VI[0]: EN[0]}
    finally:
        server.stop()


def test_hung_server_is_bounded_by_the_timeout(cache, server):
    cache.put_many(NS, [(VI[0], EN[0])])
    server.pause()
    try:
        started = time.monotonic()
        with pytest.warns(CacheWarning, match="unreachable"):
            assert cache.get_many(NS, VI) == {}
        assert time.monotonic() - started < 2  # socket timeout 0.5 s, no retries
    finally:
        server.resume()
    time.sleep(1.1)
    assert cache.get_many(NS, VI) == {VI[0]: EN[0]}


@no_cache_warnings
def test_ttl(server):
    cache = open_cache(server.url + "?ttl=1")
    assert cache.ttl == 1
    cache.put_many(NS, [(VI[0], EN[0])])
    key = f"mt-vi-en:{next(iter(server.client().hkeys('mt-vi-en:namespaces'))).decode()}:{cache_key(NS, VI[0]).hex()}"
    assert 0 < server.client().pttl(key) <= 1000
    assert cache.get_many(NS, VI) == {VI[0]: EN[0]}
    time.sleep(1.3)
    assert cache.get_many(NS, VI) == {}
    assert server.client().pttl(open_cache(server.url).prefix + "namespaces") == -1  # no TTL on the index
    assert open_cache(server.url, ttl=60).ttl == 60
    assert open_cache(server.url).ttl is None
    with pytest.raises(ConfigError, match="TTL"):
        open_cache(server.url + "?ttl=soon")


@no_cache_warnings
def test_stats_and_clear_are_scoped_to_our_prefix(cache, server):
    other = server.client()
    other.set("someone-else:key", "theirs")
    other.set("mt-vi-en-not-ours", "theirs too")
    cache.put_many(NS, list(zip(VI, EN)))
    cache.put_many(NS_OTHER, [(VI[0], "[[0,0]]")])
    cache.get_many(NS, VI + ["chưa"])  # 3 hits, 1 miss
    stats = cache.stats()
    assert stats["enabled"] and stats["entries"] == 4
    assert stats["namespaces"] == {NS: 3, NS_OTHER: 1}
    assert stats["hits"] == 3 and stats["misses"] == 1 and stats["bytes"] > 0
    assert stats["path"] == server.url and stats["maxmemory_policy"]
    assert stats["kinds"] == {"sentences": 3, "links": 1, "quality": 0, "confidence": 0}
    assert set(open_cache(None, disabled=True).stats()) <= set(stats)
    assert cache.clear() == 3  # sentences only; the word-link entry goes too
    assert other.exists("mt-vi-en:namespaces", "mt-vi-en:counters") == 0
    assert cache.stats()["hits"] == cache.stats()["misses"] == 0  # counters reset with the entries
    assert cache.get_many(NS, VI) == {} and cache.stats()["entries"] == 0
    assert other.get("someone-else:key") == b"theirs" and other.get("mt-vi-en-not-ours") == b"theirs too"


def test_password_in_url_and_mt_cache_environment(tmp_path, monkeypatch):
    server = RedisServer(tmp_path / "auth", password="s3cr3t").start()
    try:
        monkeypatch.setenv("MT_CACHE", server.url)
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheWarning)
            cache = open_cache()
            assert isinstance(cache, RedisCache)
            cache.put_many(NS, [(VI[0], EN[0])])
            assert cache.get_many(NS, VI) == {VI[0]: EN[0]}
            assert "s3cr3t" not in json.dumps(cache.stats()) and "s3cr3t" not in repr(cache)
        with pytest.warns(CacheWarning) as caught:
            wrong = open_cache(server.url.replace("s3cr3t", "wrong"))
        assert "wrong" not in str(caught[0].message)
        assert wrong.get_many(NS, VI) == {}
    finally:
        server.stop()
    assert redacted("rediss://user:pw@h:6380/1") == "rediss://user:***@h:6380/1"


@no_cache_warnings
def test_mt_cache_stats_and_clear_commands(cache, server, tmp_path):
    from mt.cli import main

    cache.put_many(NS, list(zip(VI, EN)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["cache", "stats", "--cache", server.url]) == 0
    stats = json.loads(out.getvalue())
    assert stats["entries"] == 3 and stats["namespaces"] == {NS: 3}
    assert stats["kinds"] == {"sentences": 3, "links": 0, "quality": 0, "confidence": 0}
    assert set(stats) >= set(open_cache(tmp_path / "c.sqlite").stats())  # the SQLite shape, and more
    cache.put_many(NS_OTHER, [(VI[0], "[[0,0]]")])
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["cache", "clear", "--cache", server.url]) == 0
    assert out.getvalue().strip() == (f"removed 3 cached sentences (and 1 word-link and 0 quality entries) "
                                      f"from {server.url}")
    assert cache.get_many(NS, VI) == {}


@no_cache_warnings
def test_pipeline_on_redis_reuses_translations(cache, tiny_engine):
    from mt.pipeline import translate_document

    text = "Tôi yêu Hà Nội. Hôm nay trời đẹp quá! Tôi yêu Hà Nội."
    first = translate_document(text, tiny_engine, cache, links=True, quality=False)
    assert first.cache_hits == 0
    second = translate_document(text, tiny_engine, open_cache(cache.url), links=True, quality=False)
    assert second.cache_hits == len(second.sentences) == len(first.sentences)
    assert [p.to_dict() for p in second.sentences] == [
        {**p.to_dict(), "cached": True} for p in first.sentences]
