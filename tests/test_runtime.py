"""The server's runtime (issue #19, #20): identical worker processes sharing state only through the
store, malformed HTTP answered, abandoned and slow clients costing no thread for long.

Real servers (subprocesses on loopback, tiny model), a real redis-server for the replicas test."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request

import pytest

from testkit.floods import SlowHeaders
from testkit.procs import children, cpu_seconds, rss_mb
from testkit.redis_helpers import RedisServer
from testkit.server_helpers import multipart

pytestmark = pytest.mark.slow

# ~40 KB: over the old heavy-worker threshold; 20 distinct sections repeated (a request translates
# each distinct sentence once), so the size is real and the model time small
MARKDOWN = "\n\n".join(f"## Phần {n % 20}\n\nHà Nội là thủ đô của Việt Nam, số {n % 20}. Thành phố có nhiều hồ đẹp."
                         for n in range(500))


def upload(server, path: str, name: str, data: bytes, fields: dict | None = None):
    body, content_type = multipart(fields or {}, {"file": (name, data)})
    return server.request("POST", path, body, {"Content-Type": content_type})


def download(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Connection": "close"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status, answer.read()


@pytest.fixture(scope="module")
def two_workers(serve_module):
    return serve_module("--no-cache", "--workers", "2")


def served_by(server, path_part: str) -> set[str]:
    """The worker pids whose access-log lines name ``path_part``."""
    return {match.group(1) for line in list(server.lines)
            if "mt.access" in line and path_part in line and (match := re.search(r"\[(\d+)\]", line))}


def test_a_large_document_downloads_from_every_worker(two_workers):
    reply = upload(two_workers, "/translate_file", "bài.md", MARKDOWN.encode(), {"source": "vi", "target": "en"})
    assert reply.status == 200, reply.body[:300]
    url = reply.json()["translatedFileUrl"]
    name = url.rsplit("/", 1)[1].split(".", 1)[0]  # the random token (the log escapes the rest)
    first = None
    for _ in range(60):  # until both workers have answered the download
        status, data = download(url)
        assert status == 200
        first = first or data
        assert data == first and data.startswith(b"## ")
        if len(served_by(two_workers, name)) == 2:
            break
    assert len(served_by(two_workers, name)) == 2, "one worker answered every download"
    assert len(children(two_workers.process.pid)) == 2


def test_the_page_upload_downloads_from_every_worker(two_workers):
    body, content_type = multipart({}, {"file": ("tin.md", MARKDOWN.encode())})
    reply = two_workers.request("POST", "/", body, {"Content-Type": content_type, "Accept": "text/html"})
    assert reply.status == 200
    link = re.search(r'href="(/download_file/[^"]+)"', reply.text)
    assert link, reply.text[:500]
    for _ in range(20):
        status, data = download(two_workers.url + link.group(1))
        assert status == 200 and data.startswith(b"## ")


def test_a_file_translated_by_one_replica_downloads_from_the_other(serve, tmp_path):
    redis = RedisServer(tmp_path).start()
    first = second = None
    try:
        first = serve("--cache", redis.url)
        second = serve("--cache", redis.url)
        reply = upload(first, "/translate_file", "bài.md", MARKDOWN.encode(), {"source": "vi", "target": "en"})
        assert reply.status == 200, reply.body[:300]
        name = reply.json()["translatedFileUrl"].rsplit("/", 1)[1]
        status, data = download(f"{second.url}/download_file/{name}")
        assert status == 200 and data.startswith(b"## ")
        missing = second.get("/download_file/" + "x" * 32 + ".md")
        assert missing.status == 404 and missing.json()["error"]["code"] == "not_found"
    finally:
        for server in (first, second):
            if server is not None:
                server.stop()
        redis.stop()


@pytest.mark.parametrize("raw", [b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"GARBAGE\r\n\r\n",
                                 b"GET / HTTP/1.1\r\nContent-Length: nine\r\n\r\n", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\r\n\r\n"])
def test_malformed_http_gets_a_400(two_workers, raw):
    with socket.create_connection(("127.0.0.1", two_workers.port), timeout=10) as connection:
        connection.sendall(raw)
        answer = connection.recv(4096)
    assert answer.split(b" ", 2)[1] in (b"400", b"505"), answer[:200]
    assert two_workers.get("/healthz").status == 200


def timed_healthz(server, limit: float = 3.0) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=limit + 5) as answer:
        assert answer.status == 200
    return time.monotonic() - started


@pytest.fixture
def one_worker(serve):
    return serve("--request-timeout", "20")


def test_abandoned_large_uploads_stop_costing_cpu_and_healthz_answers(one_worker):
    worker = children(one_worker.process.pid)[0]
    text = "\n\n".join(f"Câu số {n} nói về một thành phố khác, nơi có {n} cây cầu." for n in range(1500))
    body = json.dumps({"text": text}).encode()
    sockets = []
    for _ in range(8):  # eight abandoned large requests: sent whole, then the clients hang up
        connection = socket.create_connection(("127.0.0.1", one_worker.port), timeout=10)
        connection.sendall(b"POST /api/translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        sockets.append(connection)
    time.sleep(1.0)
    for connection in sockets:
        connection.close()
    assert timed_healthz(one_worker) < 3.0
    # the dropped work leaves the queue at its next turn; a batch already in the model finishes.
    # Within the request budget (20 s here) the worker must be idle again.
    hung_up, spent = time.monotonic(), None
    while time.monotonic() - hung_up < 25.0:
        before = cpu_seconds(worker)
        time.sleep(2.0)
        spent = cpu_seconds(worker) - before
        if spent < 0.3:
            break
    assert spent < 0.3, f"the worker still spent {spent:.2f} s of CPU in 2 s, 25 s after its clients left"
    reply = one_worker.post_json("/api/translate", {"text": "Xin chào."})
    assert reply.status == 200


def test_healthz_answers_beside_150_slow_header_connections(one_worker):
    with SlowHeaders(one_worker.port, 150):
        time.sleep(2.5)
        for _ in range(3):
            assert timed_healthz(one_worker) < 3.0
            time.sleep(0.5)


def test_30_long_streams_leave_healthz_answering(serve):
    """Default bound: half the 8 HTTP threads stream, the other 26 clients get 503 at once."""
    server = serve("--no-cache")
    text = " ".join(f"Câu thứ {n} của một bài rất dài." for n in range(300))
    body = json.dumps({"text": text}).encode()
    opened, statuses = [], []
    for _ in range(30):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=120)
        connection.sendall(b"POST /api/translate/stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                           b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        opened.append(connection)
    time.sleep(2.0)
    assert timed_healthz(server) < 3.0
    for connection in opened:
        head = connection.recv(4096)
        statuses.append(int(head.split(b" ", 2)[1]))
        if statuses[-1] == 503:  # a keep-alive answer: read its body only if it did not come whole
            whole = head if b"server_busy" in head else head + connection.recv(4096)
            assert b"Retry-After: 5" in head and b"server_busy" in whole
    assert statuses.count(200) == 4 and statuses.count(503) == 26, statuses
    assert timed_healthz(server) < 3.0
    for connection in opened:
        connection.close()


def test_process_tree_memory_does_not_grow_with_large_requests(two_workers):
    pids = [two_workers.process.pid, *children(two_workers.process.pid)]
    for n in range(5):
        two_workers.post_json("/api/translate", {"text": f"Câu ngắn số {n}."})
    small = sum(rss_mb(pid) for pid in pids)
    for n in range(4):
        reply = upload(two_workers, "/api/translate_file", f"bài{n}.md", (MARKDOWN + f"\n\nSố {n}.").encode())
        assert reply.status == 200
    large = sum(rss_mb(pid) for pid in pids)
    assert sorted(children(two_workers.process.pid)) == sorted(pids[1:]), "no extra process was started"
    assert large < small * 1.25 + 50, (small, large)


def test_one_client_cannot_hold_more_than_its_connection_cap(serve):
    server = serve("--no-cache", "--client-connection-limit", "20")
    held = []
    try:
        held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(20)]
        time.sleep(1.0)  # all accepted
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = extra.recv(100)
            except ConnectionResetError:  # closed at once, with our request unread: a reset
                answer = b""
            assert answer == b"", "the 21st connection was served"
        for connection in held[:5]:
            connection.close()
        time.sleep(1.0)
        assert timed_healthz(server) < 3.0
    finally:
        for connection in held:
            connection.close()
