"""Two real server processes (``python server.py``) on one real redis-server: a sentence
translated through one is a cache hit through the other, and --rate-limit counts across both."""

from __future__ import annotations

import threading

import pytest

from testkit.server_helpers import ServerProcess, clean_env
from testkit.redis_helpers import RedisServer

RATE = 4
TEXT = "Tôi yêu Hà Nội. Hôm nay trời đẹp quá! Thủ tướng đã phát biểu tại hội nghị."


@pytest.fixture(scope="module")
def replicas(tiny_model_dir, tmp_path_factory):
    redis_server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    args = ["--model", str(tiny_model_dir), "--engine", "transformers", "--cache", redis_server.url,
            "--rate-limit", f"{RATE}/minute"]
    # The first replica stores with a TTL (--cache-ttl), the second with MT_CACHE_TTL.
    servers = [ServerProcess(args + ["--cache-ttl", "3600"], env=clean_env()),
               ServerProcess(list(args), env={**clean_env(), "MT_CACHE_TTL": "7200"})]
    starters = [threading.Thread(target=server.start) for server in servers]  # load both at once
    for thread in starters:
        thread.start()
    for thread in starters:
        thread.join(400)
    try:
        assert all(server.port for server in servers), [server.log() for server in servers]
        yield redis_server, servers
    finally:
        for server in servers:
            server.stop()
        redis_server.stop()


@pytest.mark.timeout(600)
def test_two_replicas_share_cache_and_rate_limit(replicas):
    redis_server, (first, second) = replicas
    one = first.post_json("/api/translate", {"text": TEXT})
    assert one.status == 200, one.text
    assert [pair["cached"] for pair in one.json()["sentences"]] == [False, False, False]
    two = second.post_json("/api/translate", {"text": TEXT})
    assert two.status == 200, two.text
    assert [pair["cached"] for pair in two.json()["sentences"]] == [True, True, True]
    assert [p["translation"] for p in two.json()["sentences"]] == [p["translation"] for p in one.json()["sentences"]]
    client = redis_server.client()
    ttls = {client.ttl(key) for key in client.scan_iter(match="mt-vi-en:*:*")}
    assert ttls and all(3500 < ttl <= 3600 for ttl in ttls), ttls  # stored by the first, --cache-ttl 3600
    assert second.post_json("/api/translate", {"text": "Câu mới."}).status == 200
    ttls = {client.ttl(key) for key in client.scan_iter(match="mt-vi-en:*:*")}
    assert any(7000 < ttl <= 7200 for ttl in ttls), ttls  # the second's MT_CACHE_TTL

    # Three requests used; the budget of RATE per minute is shared, not RATE per replica.
    statuses = [server.post_json("/api/translate", {"text": "Xin chào."}).status
                for server in (first, second, first)]
    assert statuses == [200, 429, 429], statuses
    assert redis_server.client().keys("LIMITS*"), "the limiter's counters live in the shared Redis"

    redis_server.kill()  # Redis gone: both replicas keep translating (uncached, counting locally)
    alone = first.post_json("/api/translate", {"text": "Một câu hoàn toàn mới."})
    assert alone.status == 200, alone.text
    assert second.get("/healthz").status == 200
    assert "Traceback" not in first.log() and "Traceback" not in second.log()
