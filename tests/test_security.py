"""Security of the real server (issue #20): keyless requests spend no budget, forwarded addresses
only from a trusted proxy, no Host header in download links, a quiet /readyz, and a failing
rate-limit Redis (full, or hung) that costs one warning and no request.

Every test talks to ``python server.py`` on a loopback port (testkit/server_helpers.py) with the tiny
model; the Redis tests use a real redis-server (testkit/redis_helpers.py)."""

from __future__ import annotations

import sqlite3
import time
import urllib.parse

import pytest

from testkit.redis_helpers import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.slow

KEY = "security-test-key-0123456789"
TEXT = {"text": "Xin chào."}


def write_keys(folder) -> str:
    keys = folder / "keys.txt"
    keys.write_text(f"# keys\n{KEY}\n", encoding="utf-8")
    return str(keys)


def translate(server, headers: dict | None = None):
    return server.post_json("/api/translate", TEXT, headers)


@pytest.fixture(scope="module")
def keyed_server(serve_module, tmp_path_factory):
    return serve_module("--no-cache", "--api-keys", write_keys(tmp_path_factory.mktemp("keyed")),
                        "--rate-limit", "3/minute")


# -- 1. a refused key spends nothing --------------------------------------------------------------
def test_requests_without_a_valid_key_do_not_spend_the_budget(keyed_server):
    s = keyed_server
    for _ in range(5):
        assert translate(s).status == 401
        assert translate(s, {"X-API-Key": "wrong"}).status == 403
    assert s.post_form("/", TEXT).status == 401  # the page checks the key itself
    statuses = [translate(s, {"X-API-Key": KEY}).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429], statuses  # the whole 3/minute budget was still there
    assert translate(s).status == 401  # refused for its key, not for the spent budget


# -- 4. /readyz tells nothing to a client without a key -------------------------------------------
def test_readyz_without_a_key_is_status_and_model_name(keyed_server, tiny_model_dir):
    s = keyed_server
    public = s.get("/readyz")
    assert public.status == 200
    assert public.json() == {"status": "ready", "model": tiny_model_dir.name}, public.text
    assert str(tiny_model_dir.parent) not in public.text
    detailed = s.get("/readyz", {"X-API-Key": KEY})
    assert detailed.status == 200 and detailed.json()["batching"]["requests"] >= 3, detailed.text
    assert detailed.json()["model"] == tiny_model_dir.name
    assert s.get("/healthz").json() == {"status": "ok"}
    assert s.get("/api/models").status == 401
    models = s.get("/api/models", {"X-API-Key": KEY})
    assert models.status == 200 and tiny_model_dir.name in models.text
    assert str(tiny_model_dir) not in models.text, models.text


# -- 2. X-Forwarded-For from a trusted proxy only -------------------------------------------------
@pytest.fixture(scope="module")
def proxied_server(serve_module):
    return serve_module("--trusted-proxies", "127.0.0.1", "--rate-limit", "2/minute")


def test_a_trusted_proxy_gives_each_client_its_own_budget(proxied_server):
    s = proxied_server
    first = {"X-Forwarded-For": "203.0.113.7"}
    assert [translate(s, first).status for _ in range(3)] == [200, 200, 429]
    assert translate(s, {"X-Forwarded-For": "203.0.113.8"}).status == 200  # another client, its own budget
    # the per-client download quota belongs to the forwarded client too
    upload = s.post_multipart("/translate_file", {"source": "vi", "target": "en"},
                              {"file": ("a.txt", "Xin chào.".encode())}, {"X-Forwarded-For": "203.0.113.9"})
    assert upload.status == 200, upload.text
    files = sqlite3.connect(str(s.cache_path) + ".files")
    owners = {row[0] for row in files.execute("SELECT owner FROM files")}
    files.close()
    assert owners == {"203.0.113.9"}


def test_without_trusted_proxies_forwarded_addresses_are_ignored(serve):
    s = serve("--no-cache", "--rate-limit", "3/minute")
    url = upload_file(s, {"Host": "evil.example", "X-Forwarded-Host": "evil.example",
                          "X-Forwarded-For": "203.0.113.1", "X-Forwarded-Proto": "https"})
    assert url.startswith(f"http://127.0.0.1:{s.port}/download_file/"), url
    assert s.get(urllib.parse.urlsplit(url).path).status == 200
    statuses = [translate(s, {"X-Forwarded-For": f"203.0.113.{n}"}).status for n in range(2, 5)]
    assert statuses == [200, 200, 429], statuses  # one peer, one budget, whatever it claims


# -- 3. download links never echo the Host header -------------------------------------------------
def upload_file(server, headers: dict) -> str:
    reply = server.post_multipart("/translate_file", {"source": "vi", "target": "en"},
                                  {"file": ("doc.txt", "Xin chào. Tạm biệt.".encode())}, headers)
    assert reply.status == 200, reply.text
    return reply.json()["translatedFileUrl"]


def test_download_link_is_built_from_the_listening_address_not_host(proxied_server):
    s = proxied_server
    for headers in ({"Host": "evil.example"}, {"Host": f"evil.example:{s.port}"}):  # a client, no proxy headers
        url = upload_file(s, headers)
        assert "evil.example" not in url, url
        parts = urllib.parse.urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", s.port), url
        download = s.get(parts.path)
        assert download.status == 200 and download.body.strip(), download.text


def test_download_link_from_the_trusted_proxy_uses_its_host(proxied_server):
    url = upload_file(proxied_server, {"Host": "mt.example.org", "X-Forwarded-For": "203.0.113.20",
                                       "X-Forwarded-Proto": "https"})
    assert url.startswith("https://mt.example.org/download_file/"), url


def test_download_link_uses_the_public_url(serve):
    s = serve("--no-cache", env={"MT_PUBLIC_URL": "https://mt.example.org/vi/"})
    url = upload_file(s, {"Host": "evil.example"})
    assert url.startswith("https://mt.example.org/vi/download_file/"), url
    download = s.get(urllib.parse.urlsplit(url).path.removeprefix("/vi"))
    assert download.status == 200 and download.body.strip()


# -- 5. a failing rate-limit Redis: one warning per outage, requests go on -------------------------
def limiter_lines(server) -> list[str]:
    return [line for line in server.lines if "rate limit storage" in line.lower()]


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def keep_translating(server, seconds: float, slowest: float) -> int:
    """Translate for ``seconds``; each request must be answered 200 within ``slowest`` seconds."""
    count, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        reply = translate(server)
        took = time.monotonic() - started
        assert reply.status == 200, reply.text
        assert took < slowest, f"a request took {took:.1f}s"
        count += 1
    return count


@pytest.mark.skipif(not REDIS_SERVER or not __import__("os").path.exists(REDIS_SERVER), reason="no redis-server")
def test_a_full_then_hung_redis_is_one_warning_per_outage(serve, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    s = None
    try:
        s = serve("--no-cache", "--rate-limit", "10000/minute", "--rate-limit-storage", redis.url)
        assert translate(s).status == 200
        client = redis.client()
        assert any(key.startswith(b"LIMITS") for key in client.keys("*"))  # the counters are in Redis
        assert limiter_lines(s) == []

        # full: maxmemory reached under noeviction (writes refused, PING still answered)
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", "1")
        assert keep_translating(s, 4.0, slowest=5.0) >= 3
        full = limiter_lines(s)
        assert len(full) == 1 and "WARNING" in full[0] and "maxmemory" in full[0], full
        client.config_set("maxmemory", "0")
        assert wait_for(lambda: translate(s).status == 200 and len(limiter_lines(s)) == 2, 30), limiter_lines(s)
        assert "works again" in limiter_lines(s)[1]

        # hung: SIGSTOP; each request is answered within a bounded time, one warning in all
        redis.pause()
        try:
            assert keep_translating(s, 5.0, slowest=3.0) >= 3
        finally:
            redis.resume()
        hung = limiter_lines(s)[2:]
        assert len(hung) == 1 and "WARNING" in hung[0] and "Timeout" in hung[0], limiter_lines(s)
        assert not any("Traceback" in line for line in s.lines), s.log()
        assert not any("Rate limit storage unreachable" in line or "Swallowing" in line for line in s.lines)
    finally:
        if s is not None:
            s.stop()
        redis.stop()
