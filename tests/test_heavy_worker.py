"""The heavy worker (mt.web.heavy_process) of the real server: large requests are answered by a
niced process of their own, with the server's answers (shapes, headers, shared cache); a worker
that dies is replaced, a request it took down answers 503, and it never outlives the server."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from mt.web.heavy import HEAVY_BYTES
from server_helpers import start_server


def large_text(label: str, extra: int = 50) -> str:
    """Distinct sentences, over HEAVY_BYTES of JSON."""
    sentence = "Hôm nay trời nắng đẹp và có gió nhẹ ở thành phố"
    text = " ".join(f"{sentence} {label} số {n}." for n in range(HEAVY_BYTES // len(sentence) + extra))
    assert len(text.encode()) > HEAVY_BYTES
    return text


def heavy_worker(server) -> dict:
    return server.get("/readyz").json()["heavy_worker"]


def wait_ready(server, timeout: float = 180.0, starts: int = 1) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker = heavy_worker(server)
        if worker["ready"] and worker["starts"] >= starts:
            return worker
        time.sleep(0.2)
    raise AssertionError(f"the heavy worker never got ready: {heavy_worker(server)}\n{server.log()}")


def nice_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited, not yet reaped
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("heavy-worker")
    keys = root / "keys.txt"
    keys.write_text("k1\n", encoding="utf-8")
    process = start_server(["--model", str(tiny_model_dir), "--cache", str(root / "cache.sqlite"),
                            "--api-keys", str(keys)])
    yield process
    process.stop()


KEY = {"X-API-Key": "k1"}


def test_the_first_large_request_starts_it_and_later_ones_are_answered_there(server):
    assert heavy_worker(server) == {"ready": False, "pid": None, "nice": 10, "served": 0, "in_process": 0,
                                    "failed": 0, "starts": 0}  # no second model before a large request
    text = large_text("một")
    first = server.post_json("/api/translate", {"text": text}, KEY)  # answered in-process meanwhile
    assert first.status == 200
    worker = wait_ready(server)
    assert worker["in_process"] == 1 and worker["pid"] != server.process.pid
    assert nice_of(worker["pid"]) == 10 and nice_of(server.process.pid) == 0
    again = server.post_json("/api/translate", {"text": text}, KEY)
    assert again.status == 200 and heavy_worker(server)["served"] == 1
    rows, rows_again = first.json()["sentences"], again.json()["sentences"]
    assert [r["translation"] for r in rows_again] == [r["translation"] for r in rows]
    assert [r["alignment"] for r in rows_again] == [r["alignment"] for r in rows]
    assert all(r["cached"] for r in rows_again)  # the worker reads the server's cache file
    for header in ("content-security-policy", "x-content-type-options", "cache-control"):
        assert again.header(header) == first.header(header)


def test_its_translations_land_in_the_shared_cache(server):
    wait_ready(server)
    served = heavy_worker(server)["served"]
    text = large_text("hai")
    rows = server.post_json("/api/translate", {"text": text}, KEY).json()["sentences"]
    assert heavy_worker(server)["served"] == served + 1 and not any(r["cached"] for r in rows)
    small = server.post_json("/api/translate", {"text": rows[5]["source"]}, KEY).json()["sentences"][0]
    assert small["cached"] and small["translation"] == rows[5]["translation"]


def test_its_errors_are_the_servers_errors(server):
    wait_ready(server)
    served = heavy_worker(server)["served"]
    no_key = server.post_json("/api/translate", {"text": large_text("ba")})
    assert no_key.status == 401 and no_key.json()["error"]["code"] == "api_key_required"
    surrogate = server.request("POST", "/api/translate", json.dumps({"text": large_text("bốn") + "\ud800"}).encode(),
                               {"Content-Type": "application/json", **KEY})
    assert surrogate.status == 400 and surrogate.json()["error"]["code"] == "invalid_field"
    too_long = server.post_json("/api/translate", {"text": "a" * 100_001}, KEY)
    assert too_long.status == 413 and too_long.json()["error"]["code"] == "text_too_long"
    libre = server.post_json("/translate", {"q": ["Câu."] * 10_001, "source": "vi", "api_key": "k1"})
    assert libre.status == 400 and libre.header("x-error-code") == "batch_too_large"
    assert isinstance(libre.json()["error"], str)  # LibreTranslate's shape
    assert heavy_worker(server)["served"] == served + 4


def test_a_large_file_and_form_are_answered_there(server):
    wait_ready(server)
    served = heavy_worker(server)["served"]
    text = large_text("năm", extra=10)
    upload = server.post_multipart("/translate_file", {"source": "vi", "target": "en", "api_key": "k1"},
                                   {"file": ("bai.txt", text.encode("utf-8"))})
    assert upload.status == 200, upload.body[:300]
    page = server.post_form("/", {"text": text, "api_key": "k1"})
    assert page.status == 200 and b'class="result"' in page.body
    assert heavy_worker(server)["served"] == served + 2


def test_a_killed_worker_is_replaced_and_meanwhile_requests_are_answered_in_process(server):
    worker = wait_ready(server)
    os.kill(worker["pid"], signal.SIGKILL)
    assert gone(worker["pid"])
    answer = server.post_json("/api/translate", {"text": large_text("sáu")}, KEY)
    assert answer.status == 200  # in-process, or by the replacement if it was already up
    replaced = wait_ready(server, starts=worker["starts"] + 1)
    assert replaced["pid"] != worker["pid"]
    assert server.post_json("/api/translate", {"text": large_text("bảy")}, KEY).status == 200
    assert heavy_worker(server)["served"] > replaced["served"]


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_a_request_caught_in_a_crash_answers_503_server_busy(server):
    worker = wait_ready(server)
    # ~100,000 characters of distinct sentences: many seconds of the worker's CPU
    text = " ".join(f"Đây là câu rất dài thứ {n} nói về những con đường mới." for n in range(1700))[:99_000]
    replies = []
    before = cpu_ticks(worker["pid"])
    thread = threading.Thread(target=lambda: replies.append(server.post_json("/api/translate", {"text": text}, KEY)))
    thread.start()
    deadline = time.monotonic() + 60
    while cpu_ticks(worker["pid"]) - before < os.sysconf("SC_CLK_TCK") // 2 and time.monotonic() < deadline:
        time.sleep(0.05)  # until it has spent half a second on this request
    os.kill(worker["pid"], signal.SIGKILL)
    thread.join(120)
    (reply,) = replies
    assert reply.status == 503 and reply.json()["error"]["code"] == "server_busy", reply.body[:300]
    assert reply.header("retry-after") == "5"
    assert heavy_worker(server)["failed"] == 1
    # the replacement answers the same request
    wait_ready(server, starts=worker["starts"] + 1)
    assert server.post_json("/api/translate", {"text": text}, KEY).status == 200


def test_sigterm_finishes_a_request_in_the_worker_and_stops_it(tiny_model_dir, tmp_path):
    server = start_server(["--model", str(tiny_model_dir), "--cache", str(tmp_path / "c.sqlite"),
                           "--shutdown-timeout", "120"])
    try:
        server.post_json("/api/translate", {"text": large_text("tám")})
        worker = wait_ready(server)
        text = " ".join(f"Câu chuyện thứ {n} kể về một ngôi làng nhỏ bên sông." for n in range(1200))
        replies = []
        before = cpu_ticks(worker["pid"])
        thread = threading.Thread(target=lambda: replies.append(server.post_json("/api/translate", {"text": text})))
        thread.start()
        deadline = time.monotonic() + 60
        while cpu_ticks(worker["pid"]) - before < os.sysconf("SC_CLK_TCK") // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)
        thread.join(180)
        assert server.process.wait(timeout=60) == 0
        (reply,) = replies
        assert reply.status == 200 and len(reply.json()["sentences"]) == 1200
        assert gone(worker["pid"])
    finally:
        server.stop()


def test_the_worker_does_not_outlive_a_killed_server(tiny_model_dir, tmp_path):
    server = start_server(["--model", str(tiny_model_dir), "--cache", str(tmp_path / "c.sqlite")])
    try:
        server.post_json("/api/translate", {"text": large_text("chín")})
        worker = wait_ready(server)
        server.process.kill()
        assert gone(worker["pid"])
    finally:
        server.stop()


def test_no_heavy_worker_keeps_large_requests_in_process(tiny_model_dir, tmp_path):
    server = start_server(["--model", str(tiny_model_dir), "--no-cache", "--no-heavy-worker"])
    try:
        assert server.post_json("/api/translate", {"text": large_text("mười")}).status == 200
        assert heavy_worker(server) is None
    finally:
        server.stop()
