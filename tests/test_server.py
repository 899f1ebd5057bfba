"""The real server (``python server.py``) over real HTTP: every endpoint and every error status.

Servers run as subprocesses on free loopback ports with the tiny random-weight Marian model
(conftest's ``tiny_model_dir``); nothing is mocked. Every answer checked with :func:`error_of` or
:func:`documented` must be declared in the server's own /openapi.json for its route and status,
and its body must validate against the declared schema class (which forbids undeclared fields).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from urllib.parse import urlsplit

import pytest

from mt.web import libre_schemas, schemas
from mt.web.errors import ERROR_CODES, HTTP_CODES
from testkit.server_helpers import ROOT, SERVER, clean_env
from testkit.shared_data import SEED, needs_shared_data

XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"
UNAVAILABLE_MODEL = "Helsinki-NLP/opus-mt-vi-en"
API_KEY = "test-key-0123456789"
RATE = 12  # per minute, on the secured server


@pytest.fixture(scope="module")
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module()


@pytest.fixture(scope="module")
def unavailable_server(serve_module, tmp_path_factory):
    """A model that is neither cached nor downloadable: offline, with an empty Hugging Face home."""
    home = tmp_path_factory.mktemp("empty-hf-home")
    return serve_module("--model", UNAVAILABLE_MODEL, "--cache", home / "c.sqlite",
                        env={"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "hub"), "HF_HUB_OFFLINE": "1",
                             "TRANSFORMERS_OFFLINE": "1"})


@pytest.fixture(scope="module")
def nocache_server(serve_module):
    # a batch waits up to 50 ms for company: the 8 concurrent clients below share model calls
    # even when the machine is slow to hand their requests to the server's threads
    return serve_module("--no-cache", "--threads", "8", "--batch-wait-ms", "50")


@pytest.fixture(scope="module")
def secured_server(serve_module, tmp_path_factory):
    keys = tmp_path_factory.mktemp("secured") / "keys.txt"
    keys.write_text(f"# test keys\n{API_KEY}\n\nsecond-key\n", encoding="utf-8")
    return serve_module("--api-keys", keys, "--rate-limit", f"{RATE}/minute")


SPECS: dict[int, dict] = {}


def spec_of(server) -> dict:
    if server.port not in SPECS:
        SPECS[server.port] = server.get("/openapi.json").json()
    return SPECS[server.port]


def operation_of(spec: dict, method: str, path: str) -> dict | None:
    """The spec's operation for a request, matching path templates such as /download/{format}."""
    path = urlsplit(path).path
    for template, methods in spec["paths"].items():
        pattern = "^" + re.sub(r"\\{[^/]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in methods:
            return methods[method.lower()]
    return None


def documented(reply, model=None):
    """Check that the spec declares this answer (route, method, status) and that the JSON body
    validates against the declared schema (and ``model``, when given); return the parsed body."""
    spec = spec_of(reply.server)
    op = operation_of(spec, reply.method, reply.path)
    assert op is not None, f"{reply.method} {reply.path} is not in /openapi.json"
    response = op["responses"].get(str(reply.status))
    assert response is not None, f"{reply.method} {reply.path} answered {reply.status}, not in /openapi.json"
    body = None
    for media in response.get("content", {}).values():
        if "$ref" in media.get("schema", {}):
            name = media["schema"]["$ref"].rsplit("/", 1)[-1]
            declared = getattr(schemas, name, None) or getattr(libre_schemas, name)
            assert model is None or declared is model, (declared, model)
            body = reply.json()
            declared.model_validate(body)  # extra="forbid": a field the schema lacks fails here
    if model is not None and body is None:
        raise AssertionError(f"{reply.method} {reply.path} {reply.status} declares no {model.__name__}")
    return body


def error_of(reply, status: int, code: str | None = None) -> dict:
    """Check the JSON error shape {"error": {"code", "message"}} and return the inner object;
    the code must be in the spec's table, and in the operation's answers for this status."""
    assert reply.status == status, (reply.status, reply.body[:500])
    assert reply.header("Content-Type").startswith("application/json"), reply.headers
    error = reply.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code, error
    assert "Traceback" not in reply.text
    assert error["code"] in schema_of(reply.server, "ErrorBody")["properties"]["code"]["enum"]
    if operation_of(spec_of(reply.server), reply.method, reply.path) is not None:  # not 404/405 routing
        documented(reply)
        codes = operation_of(spec_of(reply.server), reply.method, reply.path)["responses"][str(status)]
        if "x-error-codes" in codes:
            assert error["code"] in codes["x-error-codes"], (reply.path, status, codes)
    return error


def libre_error_of(reply, status: int, code: str | None = None) -> str:
    """LibreTranslate's shape on /translate: {"error": "message"} and the code in X-Error-Code."""
    assert reply.status == status, (reply.status, reply.body[:500])
    libre_schemas.LibreError.model_validate(reply.json())
    documented(reply, libre_schemas.LibreError)
    header = reply.header("X-Error-Code")
    assert header in ERROR_CODES and (code is None or header == code), header
    response = operation_of(spec_of(reply.server), "POST", "/translate")["responses"][str(status)]
    assert header in response["x-error-codes"], (header, response)
    return reply.json()["error"]


def schema_of(server, name: str) -> dict:
    return spec_of(server)["components"]["schemas"][name]


def local_app():
    """The same app as the servers' (no model needed to list its routes)."""
    from mt.web import create_app
    from mt.settings import defaults

    return create_app(defaults(no_batching=True), lambda: None, None)


# -- operations ------------------------------------------------------------------------------------
def test_healthz_and_readyz(server):
    reply = server.get("/healthz")
    assert reply.status == 200 and reply.json() == {"status": "ok"}
    documented(reply, schemas.Health)
    reply = server.get("/readyz")
    assert reply.status == 200
    assert reply.json()["status"] == "ready" and reply.json()["model"]
    documented(reply, schemas.Ready)


def test_openapi_describes_every_endpoint(server):
    reply = server.get("/openapi.json")
    assert reply.status == 200
    spec = reply.json()
    assert spec["openapi"].startswith("3.1")
    for path in ("/api/translate", "/translate", "/api/models", "/healthz", "/readyz", "/openapi.json",
                 "/docs", "/", "/download/{format}", "/api/align"):
        assert path in spec["paths"], path
    assert "post" in spec["paths"]["/api/translate"] and "post" in spec["paths"]["/translate"]


def test_openapi_lists_exactly_the_routes_of_the_app(server):
    from mt.web.openapi import openapi_path

    app = local_app()
    routes = {(openapi_path(rule.rule), method.lower()) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    listed = {(path, method) for path, methods in server.get("/openapi.json").json()["paths"].items()
              for method in methods}
    assert listed == routes
    assert len(routes) >= 11  # the 10 paths of #10 (/ has GET and POST), and the routes added since


def test_every_error_code_the_code_can_emit_is_in_the_spec(server):
    """The codes in the source (ApiError("code", ...), the HTTP fallbacks, the 500 and /readyz's
    503) are all in the spec's table, each answered with the status the table gives it."""
    source = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "mt" / "web").glob("*.py"))
    emitted = set(re.findall(r'ApiError\(\s*"(\w+)"', source))
    emitted |= set(re.findall(r'error_response\(\s*\d+,\s*"(\w+)"', source))
    emitted |= set(re.findall(r'"code":\s*"(\w+)"', source))
    emitted |= set(HTTP_CODES.values()) | {"http_error"}
    assert {"invalid_input", "unsupported_language", "unsupported_format", "invalid_field", "internal_error",
            "model_unavailable", "text_too_long"} <= emitted  # the scan finds them
    enum = set(schema_of(server, "ErrorBody")["properties"]["code"]["enum"])
    assert emitted <= enum == set(ERROR_CODES)
    for path, methods in spec_of(server)["paths"].items():
        for method, op in methods.items():
            for status, response in op["responses"].items():
                for code in response.get("x-error-codes", []):
                    assert ERROR_CODES[code][0] == int(status), (path, method, status, code)


def test_timings_and_segments_are_declared_field_by_field(server):
    """A drifted field fails: the response schemas forbid what they do not declare."""
    timings = schema_of(server, "Timings")
    assert timings["additionalProperties"] is False
    assert {"segment_ms", "memory_ms", "cache_ms", "model_ms", "model_sentences", "links_ms", "links_model_ms", "terms_ms",
            "links_sentences", "quality_ms", "store_ms", "total_ms"} == set(timings["properties"])
    with pytest.raises(ValueError):
        schemas.Timings.model_validate({"segment_ms": 1, "cache_ms": 1, "model_ms": 1, "model_sentences": 1,
                                        "total_ms": 1, "new_ms": 1})


def test_docs_page_renders_the_spec(server):
    reply = server.get("/docs")
    assert reply.status == 200 and reply.header("Content-Type").startswith("text/html")
    for text in ("/api/translate", "/translate", "/readyz", "TranslateRequest", "translatedText"):
        assert text in reply.text
    assert "cdn" not in reply.text.lower()


def test_page_form_and_security_headers(server):
    reply = server.get("/")
    assert reply.status == 200
    html = reply.text
    for needle in ('name="text"', 'name="model"', 'type="file"', 'name="file"', '<label for="text"',
                   'src="/static/app.js', 'href="/static/style.css'):
        assert needle in html, needle
    assert "<script>" not in html  # inline scripts are forbidden by the CSP
    csp = reply.header("Content-Security-Policy")
    assert "default-src 'self'" in csp
    assert reply.header("X-Content-Type-Options") == "nosniff"
    assert reply.header("Referrer-Policy")
    static = server.get("/static/app.js")
    assert static.status == 200 and b"is-active" in static.body


def test_models(server):
    reply = server.get("/api/models")
    assert reply.status == 200
    data = documented(reply, schemas.Models)
    assert data["ready"] is True and data["error"] is None and data["served"]
    served = [row for row in data["models"] if row["served"]]
    assert len(served) == 1 and served[0]["loaded"] is True
    assert served[0]["id"] == data["served"]


# -- JSON API ------------------------------------------------------------------------------------
@needs_shared_data("seed")
def test_translate_seed_offsets_and_cache(server, seed_text):
    reply = server.post_json("/api/translate", {"text": seed_text})
    assert reply.status == 200, reply.text
    data = documented(reply, schemas.TranslateResponse)
    assert data["model"]
    assert set(data["timings"]) >= {"total_ms", "model_ms", "cache_ms", "segment_ms", "links_ms", "quality_ms"}
    sentences = data["sentences"]
    assert len(sentences) == 14
    assert [s["kind"] for s in sentences].count("byline") == 1 and sentences[-1]["kind"] == "byline"
    for pair in sentences:
        assert set(pair) >= {"start", "end", "source", "normalized", "translation", "cached", "kind", "paragraph"}
        assert seed_text[pair["start"]:pair["end"]] == pair["source"]
        assert pair["translation"]
    assert data["translation"]

    again = documented(server.post_json("/api/translate", {"text": seed_text}), schemas.TranslateResponse)
    translated = [pair for pair in again["sentences"] if pair["kind"] != "byline"]
    assert translated and all(pair["cached"] is True for pair in translated)
    assert [p["translation"] for p in again["sentences"]] == [p["translation"] for p in sentences]
    assert again["translation"] == data["translation"]


def test_offsets_index_the_submitted_string(server):
    text = "Tiêu đề\r\n\r\nHà Nội là thủ đô.  Thành phố rất đẹp!\r\nTôi thích nó.\n"
    reply = server.post_json("/api/translate", {"text": text, "beam": 2})
    assert reply.status == 200, reply.text
    sentences = reply.json()["sentences"]
    assert sentences
    for pair in sentences:
        assert text[pair["start"]:pair["end"]] == pair["source"]


def test_unknown_fields_are_ignored(server):
    reply = server.post_json("/api/translate", {"text": "Xin chào.", "colour": "blue", "beam": 1})
    assert reply.status == 200 and reply.json()["sentences"]


@pytest.mark.parametrize("payload, what", [
    ({"text": 5}, "text"),
    ({"text": ["a"]}, "text"),
    ({}, "text"),
    ({"text": "Xin chào.", "beam": "4"}, "beam"),
    ({"text": "Xin chào.", "beam": 4.5}, "beam"),
    ({"text": "Xin chào.", "beam": True}, "beam"),
    ({"text": "Xin chào.", "beam": 0}, "beam"),
    ({"text": "Xin chào.", "beam": 9}, "beam"),
    ({"text": "Xin chào.", "model": 3}, "model"),
])
def test_wrong_field_types_are_400(server, payload, what):
    error = error_of(server.post_json("/api/translate", payload), 400, "invalid_field")
    assert what in error["message"]


def test_a_whole_float_beam_is_that_integer(server):
    """JSON Schema's integer includes 4.0 (the spec says integer): taken as 4, as schemathesis expects."""
    reply = server.post_json("/api/translate", {"text": "Xin chào.", "beam": 4.0})
    assert reply.status == 200 and reply.json()["sentences"]


def test_empty_text_is_400(server):
    error_of(server.post_json("/api/translate", {"text": "  \n "}), 400, "empty_text")


@pytest.mark.parametrize("body", [b"{bad json", b"", b"\xff\xfe{", b"[1, 2]", b'"text"', b"[" * 100000])
def test_malformed_json_is_400(server, body):
    reply = server.request("POST", "/api/translate", body, {"Content-Type": "application/json"})
    error_of(reply, 400, "invalid_json")


def test_wrong_content_type_is_415(server):
    reply = server.request("POST", "/api/translate", b"text=hello", {"Content-Type": "application/x-www-form-urlencoded"})
    error_of(reply, 415, "unsupported_media_type")
    reply = server.request("POST", "/api/translate", b'{"text": "x"}', {"Content-Type": "text/plain"})
    error_of(reply, 415, "unsupported_media_type")


def test_too_many_characters_is_413(server):
    error = error_of(server.post_json("/api/translate", {"text": "a" * 100_001}), 413, "text_too_long")
    assert "100,000" in error["message"]
    reply = server.post_json("/translate", {"q": ["a" * 60_000, "b" * 60_000], "source": "vi", "target": "en"})
    assert reply.status == 413 and "error" in reply.json()


def test_too_big_a_body_is_413_before_parsing(server):
    body = b'{"text": "' + b"a" * 3_000_000 + b'"}'
    error = error_of(server.request("POST", "/api/translate", body, {"Content-Type": "application/json"}),
                     413, "body_too_large")
    assert "bytes" in error["message"]
    # not JSON at all: the size is refused before anything looks at the content
    reply = server.request("POST", "/api/translate", b"\x00" * 3_000_000, {"Content-Type": "application/json"})
    error_of(reply, 413, "body_too_large")


def test_unknown_model_is_422(server):
    error = error_of(server.post_json("/api/translate", {"text": "Xin chào.", "model": "nope/nothing"}),
                     422, "unknown_model")
    assert "nope/nothing" in error["message"]


def test_registry_model_not_loaded_is_422(server):
    models = server.get("/api/models").json()["models"]
    others = [row["id"] for row in models if not row["served"]]
    if not others:
        pytest.skip("the registry lists no model besides the served one")
    error = error_of(server.post_json("/api/translate", {"text": "Xin chào.", "model": others[0]}),
                     422, "model_not_loaded")
    assert "--model" in error["message"]


def test_served_model_may_be_named(server):
    served = server.get("/api/models").json()["served"]
    reply = server.post_json("/api/translate", {"text": "Xin chào.", "model": served})
    assert reply.status == 200 and reply.json()["model"] == served


def test_unknown_route_and_wrong_method(server):
    error_of(server.get("/api/nothing-here"), 404, "not_found")
    error_of(server.get("/nothing-here"), 404, "not_found")  # http.client sends no Accept: JSON
    html = server.get("/nothing-here", {"Accept": "text/html"})
    assert html.status == 404 and html.header("Content-Type").startswith("text/html")
    reply = server.get("/api/translate")
    error_of(reply, 405, "method_not_allowed")
    assert "POST" in reply.header("Allow")
    put = server.request("PUT", "/translate", b"{}", {"Content-Type": "application/json"})
    assert put.status == 405 and isinstance(put.json()["error"], str)  # LibreTranslate's shape there
    error_of(server.request("DELETE", "/api/models"), 405, "method_not_allowed")


def test_internal_error_is_json_without_traceback(tiny_engine):
    """500: an app built in-process with one extra route that fails; the real handlers answer."""
    from mt.web import create_app
    from mt.settings import defaults

    app = create_app(None, tiny_engine, None)

    @app.get("/api/fail")
    def fail():
        raise RuntimeError("secret internal detail")

    reply = app.test_client().get("/api/fail")
    assert reply.status_code == 500
    assert reply.json == {"error": {"code": "internal_error",
                                    "message": "internal server error; the server log has the details"}}
    assert b"secret internal detail" not in reply.data and b"Traceback" not in reply.data
    assert app.debug is False


# -- LibreTranslate compatibility ---------------------------------------------------------------
def test_libretranslate_string_and_list(server):
    single = server.post_json("/translate", {"q": "Hà Nội là thủ đô của Việt Nam.", "source": "vi", "target": "en",
                                             "format": "text"})
    assert single.status == 200
    documented(single, libre_schemas.LibreResponse)
    assert isinstance(single.json()["translatedText"], str) and single.json()["translatedText"]
    assert "detectedLanguage" not in single.json()
    expected = server.post_json("/api/translate", {"text": "Hà Nội là thủ đô của Việt Nam."}).json()["translation"]
    assert single.json()["translatedText"] == expected

    batch = server.post_json("/translate", {"q": ["Xin chào.", "Tạm biệt.", ""], "source": "auto", "target": "en"})
    assert batch.status == 200
    data = documented(batch, libre_schemas.LibreResponse)
    assert isinstance(data["translatedText"], list) and len(data["translatedText"]) == 3
    assert data["translatedText"][2] == "" and all(data["translatedText"][:2])
    assert [item["language"] for item in data["detectedLanguage"]] == ["vi"] * 3  # detected (tests/test_web_faults.py)
    assert all(item["confidence"] > 80 for item in data["detectedLanguage"][:2])
    assert data["detectedLanguage"][2]["confidence"] == 0  # no letters: nothing to detect


def test_libretranslate_form_encoded(server):
    reply = server.post_form("/translate", {"q": "Xin chào thế giới.", "source": "auto", "target": "en"})
    assert reply.status == 200, reply.text
    data = documented(reply, libre_schemas.LibreResponse)
    assert data["translatedText"]
    assert data["detectedLanguage"] == {"confidence": 100, "language": "vi"}
    multipart = server.post_multipart("/translate", {"q": "Xin chào thế giới.", "source": "vi", "target": "en"})
    assert multipart.status == 200 and multipart.json()["translatedText"] == data["translatedText"]


@pytest.mark.parametrize("payload, fragment, code", [
    ({"q": "Xin chào.", "source": "vi", "target": "en", "format": "xml"}, "xml format is not supported",
     "unsupported_format"),
    ({"q": "Xin chào.", "source": "fr", "target": "en"}, "fr is not supported", "unsupported_language"),
    ({"q": "Xin chào.", "source": "vi", "target": "de"}, "de is not supported", "unsupported_language"),
    ({"source": "vi", "target": "en"}, "missing q", "invalid_field"),
    ({"q": [], "source": "vi", "target": "en"}, "missing q", "invalid_field"),
    ({"q": 42, "source": "vi", "target": "en"}, "q must be", "invalid_field"),
    ({"q": ["ok", 1], "source": "vi", "target": "en"}, "q must be", "invalid_field"),
    ({"q": "Xin chào.", "source": 3}, "source must be a string", "invalid_field"),
    ({"q": "Xin chào.", "beam": 0}, "beam", "invalid_field"),
])
def test_libretranslate_errors_use_its_shape(server, payload, fragment, code):
    message = libre_error_of(server.post_json("/translate", payload), 400, code)
    assert fragment in message


def test_libretranslate_content_types(server):
    reply = server.request("POST", "/translate", b"q=x", {"Content-Type": "text/csv"})
    libre_error_of(reply, 415, "unsupported_media_type")
    reply = server.request("POST", "/translate", b"{oops", {"Content-Type": "application/json"})
    libre_error_of(reply, 400, "invalid_json")


# -- text that is not valid Unicode ----------------------------------------------------------------
@pytest.mark.parametrize("path, body, field", [
    ("/api/translate", rb'{"text": "Xin ch\u00e0o \ud800."}', "text"),
    ("/api/translate", rb'{"text": "\udfff"}', "text"),
    ("/api/align", rb'{"vi": "T\u00f4i \ud800.", "en": "I."}', "vi"),
    ("/api/align", rb'{"vi": "T\u00f4i.", "en": "I \udbff."}', "en"),
    ("/download/tmx", rb'{"text": "x \ud800."}', "text"),
    ("/translate", rb'{"q": "x \ud800.", "source": "vi"}', "q"),
    ("/translate", rb'{"q": ["Xin ch\u00e0o.", "x \ud800."]}', "q[1]"),
])
def test_lone_surrogates_are_400_in_the_documented_shape(server, path, body, field):
    reply = server.request("POST", path, body, {"Content-Type": "application/json"})
    if path == "/translate":
        message = libre_error_of(reply, 400, "invalid_field")
    else:
        message = error_of(reply, 400, "invalid_field")["message"]
    assert message.startswith(f"{field} is not valid Unicode"), message
    assert "surrogate" in message
    assert server.post_json("/api/translate", {"text": "Xin chào."}).status == 200  # still serving


def test_align_over_http(server):
    reply = server.post_json("/api/align", {"vi": "Tôi đi học. Trời mưa to.", "en": "I go to school. It is raining hard."})
    assert reply.status == 200, reply.text
    data = documented(reply, schemas.AlignResponse)
    assert len(data["vi_sentences"]) == 2 and len(data["en_sentences"]) == 2
    assert sorted(i for link in data["links"] for i in link["vi"]) == [0, 1]
    error = error_of(server.post_json("/api/align", {"vi": "x", "en": "y", "lines": "yes"}), 400, "invalid_field")
    assert "lines" in error["message"]
    error_of(server.post_json("/api/align", {"vi": "x"}), 400, "invalid_field")


# -- the page over HTTP (the browser drives it in test_page.py) -------------------------------------
@needs_shared_data("seed")
def test_page_post_form_upload_and_escaping(server, seed_text):
    reply = server.post_form("/", {"text": seed_text})
    assert reply.status == 200
    assert reply.text.count('class="pair ') == 14
    assert 'data-kind="byline"' in reply.text and "badge-byline" in reply.text

    upload = server.post_multipart("/", {"text": ""}, {"file": ("article.txt", seed_text.encode("utf-8"))})
    assert upload.status == 200 and upload.text.count('class="pair ') == 14
    assert 'data-cached="true"' in upload.text and "badge-cached" in upload.text

    bad = server.post_multipart("/", {}, {"file": ("latin1.txt", "Tiếng Việt".encode("utf-16"))})
    assert bad.status == 400 and ("UTF-8" in bad.text or "binary" in bad.text)

    xss = server.post_form("/", {"text": XSS + " Xin chào."})
    assert xss.status == 200
    assert "<script>alert(1)</script>" not in xss.text and "<img src=x" not in xss.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in xss.text


def test_page_errors_are_pages(server):
    reply = server.post_form("/", {"text": "   "})
    assert reply.status == 400 and reply.header("Content-Type").startswith("text/html")
    assert "Paste a Vietnamese article" in reply.text
    reply = server.post_form("/", {"text": "Xin chào.", "model": "nope/nothing"})
    assert reply.status == 422 and "nope/nothing" in reply.text


@needs_shared_data("seed")
@pytest.mark.parametrize("fmt, filename, needle", [
    ("tmx", "hang-sputnik-nguon-tin-tu.tmx", '<tuv xml:lang="vi">'),  # named after the text's first words
    ("tsv", "hang-sputnik-nguon-tin-tu.tsv", "\t"),
    ("jsonl", "hang-sputnik-nguon-tin-tu.jsonl", '"start"'),
    ("txt", "hang-sputnik-nguon-tin-tu.en.txt", ""),
])
def test_downloads(server, seed_text, fmt, filename, needle):
    reply = server.post_multipart(f"/download/{fmt}", {"text": seed_text, "model": "", "beam": ""})
    assert reply.status == 200, reply.text
    assert reply.header("Content-Disposition") == f"attachment; filename=\"{filename}\"; filename*=UTF-8''{filename}"
    assert needle in reply.text
    if fmt == "jsonl":
        rows = [json.loads(line) for line in reply.text.splitlines()]
        assert len(rows) == 14 and all(seed_text[r["start"]:r["end"]] == r["source"] for r in rows)
    if fmt == "txt":
        api = server.post_json("/api/translate", {"text": seed_text}).json()
        assert reply.text == api["translation"] + "\n"
    as_json = server.post_json(f"/download/{fmt}", {"text": seed_text})
    assert as_json.status == 200 and as_json.body == reply.body


def test_a_download_without_text_is_empty_text(server):
    """JSON and form alike: no text is blank text (400 empty_text), as before the models were shared."""
    error_of(server.post_json("/download/txt", {}), 400, "empty_text")
    error_of(server.post_json("/download/txt", {"model": ""}), 400, "empty_text")


def test_download_unknown_format(server):
    error_of(server.post_json("/download/docx", {"text": "Xin chào."}), 404, "not_found")


# -- concurrency ---------------------------------------------------------------------------------
@needs_shared_data("seed")
def test_concurrent_requests_get_their_own_translation(nocache_server, seed_text):
    sentences = [pair["source"] for pair in nocache_server.post_json("/api/translate", {"text": seed_text}).json()["sentences"]
                 if pair["kind"] == "sentence"]
    texts = [" ".join(sentences[i:i + 2]) for i in range(0, 16, 2)][:8]
    texts = [text if text else f"Câu số {i}." for i, text in enumerate(texts)]
    assert len(set(texts)) == 8
    sequential = [nocache_server.post_json("/api/translate", {"text": text}).json() for text in texts]
    before = nocache_server.get("/readyz").json()["batching"]

    results: list = [None] * len(texts)
    barrier = threading.Barrier(len(texts))

    def worker(index: int) -> None:
        barrier.wait()
        results[index] = nocache_server.post_json("/api/translate", {"text": texts[index]})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for index, reply in enumerate(results):
        assert reply is not None and reply.status == 200
        data = reply.json()
        assert [p["source"] for p in data["sentences"]] == [p["source"] for p in sequential[index]["sentences"]]
        assert data["translation"] == sequential[index]["translation"], index
        assert not any(p["cached"] for p in data["sentences"])

    # one batching worker served them: fewer model calls than requests
    after = nocache_server.get("/readyz").json()["batching"]
    assert after["requests"] - before["requests"] == len(texts)
    assert after["sentences"] - before["sentences"] == sum(
        len({p["normalized"] for p in data["sentences"] if p["kind"] != "byline" and p["normalized"].strip()}) for data in sequential)
    assert after["batches"] - before["batches"] < len(texts), (before, after)
    assert after["queued_requests"] == 0 and after["running"]


# -- the model is unavailable ---------------------------------------------------------------------
def test_unavailable_model_server_still_serves(unavailable_server):
    assert unavailable_server.get("/healthz").status == 200
    ready = unavailable_server.get("/readyz")
    error = error_of(ready, 503, "model_unavailable")
    assert ready.json()["status"] == "unavailable"

    reply = unavailable_server.post_json("/api/translate", {"text": "Xin chào."})
    error = error_of(reply, 503, "model_unavailable")
    assert "mt download" in error["message"]

    libre = unavailable_server.post_json("/translate", {"q": "Xin chào.", "source": "vi", "target": "en"})
    assert libre.status == 503 and "not available" in libre.json()["error"]

    models = unavailable_server.get("/api/models").json()
    assert models["ready"] is False and models["error"]

    page = unavailable_server.get("/")
    assert page.status == 200
    assert "The translation model is not available" in page.text
    assert UNAVAILABLE_MODEL in page.text and "mt download" in page.text
    posted = unavailable_server.post_form("/", {"text": "Xin chào."})
    assert posted.status == 503 and "not available" in posted.text


# -- API keys and rate limit ----------------------------------------------------------------------
def test_api_keys(secured_server):
    s = secured_server
    assert s.get("/healthz").status == 200 and s.get("/readyz").status == 200
    page = s.get("/")
    assert page.status == 200 and 'name="api_key"' in page.text  # the page asks for a key

    missing = s.post_json("/api/translate", {"text": "Xin chào."})
    error_of(missing, 401, "api_key_required")
    assert missing.header("WWW-Authenticate")
    error_of(s.post_json("/api/translate", {"text": "Xin chào.", "api_key": "wrong"}), 403, "invalid_api_key")
    assert s.post_json("/api/translate", {"text": "Xin chào.", "api_key": API_KEY}).status == 200
    assert s.post_json("/api/translate", {"text": "Xin chào."}, {"Authorization": f"Bearer {API_KEY}"}).status == 200
    assert s.post_json("/api/translate", {"text": "Xin chào."}, {"X-API-Key": "second-key"}).status == 200
    assert s.post_json(f"/api/translate?api_key={API_KEY}", {"text": "Xin chào."}).status == 200  # as documented
    libre = s.post_form("/translate", {"q": "Xin chào.", "source": "vi", "target": "en", "api_key": API_KEY})
    assert libre.status == 200 and libre.json()["translatedText"]
    denied = s.post_form("/translate", {"q": "Xin chào.", "source": "vi", "target": "en"})
    assert denied.status == 401 and isinstance(denied.json()["error"], str)
    page_denied = s.post_form("/", {"text": "Xin chào."})
    assert page_denied.status == 401 and "API key" in page_denied.text
    # 10 translating requests so far: within the 12/minute budget


def test_rate_limit(secured_server):
    statuses = []
    for _ in range(RATE + 5):
        reply = secured_server.post_json("/api/translate", {"text": "Xin chào."}, {"X-API-Key": API_KEY})
        statuses.append(reply.status)
        if reply.status == 429:
            error_of(reply, 429, "rate_limited")
            assert reply.header("Retry-After")
            break
    assert statuses[-1] == 429, statuses
    assert secured_server.get("/healthz").status == 200  # health checks are never limited


# -- the command line ------------------------------------------------------------------------------
def run_server_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SERVER), *args], cwd=ROOT, env=clean_env(env),
                          capture_output=True, text=True, timeout=300)


def test_cli_help_and_bad_options(tmp_path):
    help_text = run_server_cli("--help").stdout
    for needle in ("--model", "--engine", "--host", "--port", "--cache", "--no-cache", "--max-chars",
                   "--api-keys", "--rate-limit", "127.0.0.1", "5000", "MT_MODEL", "MT_PORT",
                   "--batch-sentences", "--batch-wait-ms", "--no-batching", "MT_BATCH_SENTENCES", "MT_BATCH_WAIT_MS"):
        assert needle in help_text, needle
    missing = run_server_cli("--api-keys", str(tmp_path / "none.txt"), "--no-cache")
    assert missing.returncode == 2 and "--api-keys" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_server_cli("--rate-limit", "lots", "--no-cache")
    assert bad.returncode == 2 and "--rate-limit" in bad.stderr
    env_bad = run_server_cli("--no-cache", env={"MT_PORT": "eighty"})
    assert env_bad.returncode == 2 and "MT_PORT" in env_bad.stderr
    for option, value in (("--batch-sentences", "0"), ("--batch-wait-ms", "-1")):
        bad = run_server_cli(option, value, "--no-cache")
        assert bad.returncode == 2 and option in bad.stderr and "Traceback" not in bad.stderr
    env_bad = run_server_cli("--no-cache", env={"MT_BATCH_WAIT_MS": "soon"})
    assert env_bad.returncode == 2 and "MT_BATCH_WAIT_MS" in env_bad.stderr


def test_wsgi_app_for_gunicorn(tiny_model_dir, tmp_path):
    """``server:app`` is built from MT_* variables alone and loads the model once, on first use."""
    code = (
        "import server\n"
        "app = server.app\n"
        "assert app is server.app and app.debug is False\n"
        "client = app.test_client()\n"
        "assert client.get('/healthz').status_code == 200\n"
        "ready = client.get('/readyz')\n"
        "assert ready.status_code == 200, ready.data\n"
        "assert ready.json['batching']['max_sentences'] == 16, ready.json\n"
        "reply = client.post('/api/translate', json={'text': 'Xin chào.'})\n"
        "assert reply.status_code == 200 and reply.json['sentences'], reply.data\n"
        "print('max', app.config['MT_MAX_CHARS'])\n"
    )
    env = clean_env({"MT_MODEL": str(tiny_model_dir), "MT_CACHE": str(tmp_path / "c.sqlite"), "MT_MAX_CHARS": "5000",
                     "MT_BATCH_SENTENCES": "16"})
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "max 5000" in result.stdout


# -- word links and quality (issue 6) ---------------------------------------------------------------
@needs_shared_data("seed")
def test_word_links_and_quality_over_http(server, seed_text):
    """Every translated sentence carries its words, links and quality, in the API and in JSONL;
    a second request gets them from the cache (no model, no embedder)."""
    first = server.post_json("/api/translate", {"text": seed_text + "\n\nMột câu mới về tên_lửa ."}).json()
    again = server.post_json("/api/translate", {"text": seed_text + "\n\nMột câu mới về tên_lửa ."}).json()
    assert again["timings"]["links_sentences"] == 0 and again["timings"]["model_sentences"] == 0
    linked = 0
    for pair, repeat in zip(first["sentences"], again["sentences"]):
        assert {"src_words", "src_word_spans", "tgt_words", "tgt_word_spans", "alignment", "quality",
                "similarity", "flagged"} <= set(pair)
        for key in ("src_words", "src_word_spans", "tgt_words", "alignment", "quality", "flagged"):
            assert repeat[key] == pair[key], key
        if pair["kind"] == "byline":
            assert pair["alignment"] == pair["src_words"] == [] and pair["quality"] is None
            continue
        text = seed_text + "\n\nMột câu mới về tên_lửa ."
        assert [text[a:b] for a, b in pair["src_word_spans"]] == pair["src_words"]
        for v, e in pair["alignment"]:
            assert 0 <= v < len(pair["src_words"]) and 0 <= e < len(pair["tgt_words"])
        linked += bool(pair["alignment"])
        assert isinstance(pair["quality"], float) and pair["flagged"] is True  # the random model
    assert linked > 0
    assert "tên_lửa" in first["sentences"][-1]["src_words"]

    reply = server.post_multipart("/download/jsonl", {"text": seed_text, "model": "", "beam": ""})
    rows = [json.loads(line) for line in reply.text.splitlines()]
    assert all("alignment" in row and "src_word_spans" in row for row in rows)
    spec = server.get("/openapi.json").json()["components"]["schemas"]["Segment"]["properties"]
    assert spec["alignment"]["type"] == "array" and "flagged" in spec
