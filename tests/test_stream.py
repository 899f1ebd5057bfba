"""POST /api/translate/stream over real HTTP: the app on the real waitress server
(waitress, as in each server worker) on loopback, the real tiny Marian model through the real engine
and request queue, a real SQLite cache, multilingual-e5 for the quality marks; plus one run of the
whole ``server.py`` process. To see rows arrive before the last batch is done, deterministically,
the engine is wrapped in :class:`HeldEngine`: the real model translates, but every model call after
the first waits until the test releases it."""

from __future__ import annotations

import http.client
import json

import pytest

from mt.errors import ModelUnavailable
from mt.settings import defaults
from mt.web.app import create_app
from mt.web.stream import StreamEvent
from testkit.server_helpers import start_server
from testkit.shared_data import SEED, needs_shared_data
from stream_helpers import PATH, WAIT, HeldEngine, Live, Stream, long_article, wait_for


@pytest.fixture
def live(tiny_engine, tmp_path):
    """Build and serve an app around ``engine`` (default: the tiny engine, held after its first call)."""
    from mt.cache import open_cache

    started: list[Live] = []
    engines: list[HeldEngine] = []

    def serve(engine=None, cache=None, **options) -> Live:
        engine = engine if engine is not None else HeldEngine(tiny_engine)
        if isinstance(engine, HeldEngine):
            engines.append(engine)
        if isinstance(options.get("api_keys"), list):  # settings take a keys file
            keys = tmp_path / f"keys{len(started)}.txt"
            keys.write_text("\n".join(options["api_keys"]) + "\n", encoding="utf-8")
            options["api_keys"] = str(keys)
        app = create_app(defaults(**options), engine,
                         cache if cache is not None else open_cache(tmp_path / f"c{len(started)}.sqlite"))
        app.config.update(MT_STREAM_FIRST_BATCH=2, MT_STREAM_MAX_BATCH=16)
        started.append(Live(app))
        return started[-1]

    yield serve
    for engine in engines:
        engine.release.set()
    for server in started:
        server.close()


def validated(events: list[dict]) -> None:
    for event in events:
        StreamEvent.model_validate(event)  # every event is one the OpenAPI document declares


@needs_shared_data("iwslt15")
def test_rows_arrive_batch_by_batch_while_the_model_is_held(live, tiny_engine):
    engine = HeldEngine(tiny_engine)
    server = live(engine, no_batching=True)
    article = long_article()
    stream = server.post({"text": article})
    assert stream.status == 200 and stream.header("Content-Type").startswith("text/event-stream")
    assert stream.header("Cache-Control") == "no-store"

    segments = stream.until("segments")
    total = segments["total"]
    assert total >= 60 and segments["to_translate"] == total
    assert [s["index"] for s in segments["segments"]] == list(range(total))
    assert all(article[s["start"] : s["end"]] == s["source"] for s in segments["segments"])
    first = stream.until("rows")
    # the first model batch is small, and it is on the wire while the second one is still held
    assert len(first["rows"]) == 2 and first["done"] == 2 and first["total"] == total
    assert [row["index"] for row in first["rows"]] == [0, 1] and not any(row["cached"] for row in first["rows"])
    wait_for(lambda: len(engine.calls) == 2)
    assert engine.calls == [2, 8] and not engine.release.is_set()

    engine.release.set()
    events = stream.rest()
    validated(events)
    kinds = stream.kinds()
    assert kinds[0] == "segments" and kinds[-1] == "done" and "error" not in kinds
    assert stream.names == kinds  # the SSE event: line names the same event as the data
    rows = [event for event in events if event["event"] == "rows"]
    sizes = [len(event["rows"]) for event in rows]
    # 2, then fourfold up to the largest (16 here); a remainder under half a batch joins the last
    assert sizes[:3] == [2, 8, 16] and set(sizes[2:-1]) == {16} and 8 <= sizes[-1] < 24 and sum(sizes) == total
    assert [event["done"] for event in rows] == [sum(sizes[: n + 1]) for n in range(len(sizes))]
    assert engine.calls == sizes  # one model call per rows event
    # word links and quality after the last translation: nothing waits on them before
    assert kinds.index("links") > max(n for n, kind in enumerate(kinds) if kind == "rows")
    assert kinds.index("quality") > kinds.index("links")

    # the stream carries exactly what the one-shot JSON API answers
    done = events[-1]
    oneshot = stream_free_translation(server, article)
    assert done["translation"] == oneshot["translation"] and done["total"] == len(oneshot["sentences"])
    assert set(done["timings"]) >= {"segment_ms", "cache_ms", "model_ms", "model_sentences", "links_ms",
                                    "quality_ms", "total_ms"}
    assert done["timings"]["model_sentences"] == total and done["cache_hits"] == 0
    rebuilt = {s["index"]: {key: s[key] for key in ("index", "paragraph", "kind", "start", "end", "source",
                                                    "normalized")} for s in segments["segments"]}
    for event in events:
        if event["event"] in ("rows", "links", "quality"):
            for row in event["rows"]:
                rebuilt[row["index"]].update(row)
    for expected in oneshot["sentences"]:
        got = rebuilt[expected["index"]]
        for key in ("source", "start", "end", "kind", "paragraph", "translation", "src_words", "src_word_spans",
                    "tgt_words", "tgt_word_spans", "alignment", "quality", "similarity", "flagged"):
            assert got[key] == expected[key], (expected["index"], key)


def stream_free_translation(server: Live, text: str) -> dict:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    connection.request("POST", "/api/translate", body=json.dumps({"text": text}).encode(),
                       headers={"Content-Type": "application/json"})
    answer = json.loads(connection.getresponse().read())
    connection.close()
    return answer


@needs_shared_data("seed")
def test_cache_hits_come_at_once(live, tiny_engine):
    engine = HeldEngine(tiny_engine)
    server = live(engine)
    seed = SEED.read_text(encoding="utf-8")
    engine.release.set()
    first = server.post({"text": seed}).rest()
    assert first[-1]["event"] == "done" and first[-1]["cache_hits"] == 0
    calls = len(engine.calls)

    # all cached: one rows event with every segment, before any model call; links and scores too
    events = server.post({"text": seed}).rest()
    validated(events)
    assert [event["event"] for event in events] == ["segments", "rows", "links", "quality", "done"]
    rows = events[1]
    assert rows["done"] == rows["total"] == len(events[0]["segments"]) == 14
    assert sum(row["cached"] for row in rows["rows"]) == 13  # the byline passes through, not cached
    assert len(engine.calls) == calls and events[-1]["cache_hits"] == 13
    assert events[-1]["timings"]["model_sentences"] == 0
    assert events[-1]["translation"] == first[-1]["translation"]

    # partly cached: the cached rows (and their marks) are on the wire while the model is held
    known = {seg["normalized"] for seg in events[0]["segments"] if seg["kind"] != "byline"}
    engine.release.clear()
    engine.free_calls = len(engine.calls)  # from now on every model call waits
    extended = seed + "\n\nHôm nay trời đẹp. Chúng tôi đi dạo trong công viên. Mọi người đều vui vẻ."
    stream = server.post({"text": extended})
    segments = stream.until("segments")["segments"]
    hits = {seg["index"] for seg in segments if seg["normalized"] in known}
    new = {seg["index"] for seg in segments if seg["translate"]} - hits
    assert len(hits) == 13 and len(new) >= 3
    cached = stream.until("rows")
    assert {row["index"] for row in cached["rows"]} == hits and all(row["cached"] for row in cached["rows"])
    links = stream.until("links")
    quality = stream.until("quality")
    assert {row["index"] for row in links["rows"]} == hits and {row["index"] for row in quality["rows"]} == hits
    assert all(row["src_words"] and row["tgt_words"] for row in links["rows"])
    wait_for(lambda: len(engine.calls) == calls + 1)  # the new sentences' first batch: held
    assert not engine.release.is_set() and stream.kinds() == ["segments", "rows", "links", "quality"]
    engine.release.set()
    events = stream.rest()
    validated(events)
    fresh = [row for event in events[4:] if event["event"] == "rows" for row in event["rows"]]
    assert {row["index"] for row in fresh} == new and not any(row["cached"] for row in fresh)
    assert events[-1]["cache_hits"] == 13


@needs_shared_data("iwslt15")
def test_an_error_mid_stream_is_an_error_event(live, tiny_engine, caplog):
    server = live(HeldEngine(tiny_engine, fail_after=1), no_batching=True)
    stream = server.post({"text": long_article()})
    assert stream.status == 200
    events = stream.rest()  # the stream ends properly (http.client read it to its last chunk)
    validated(events)
    assert stream.kinds() == ["segments", "rows", "error"]
    assert events[-1] == {"event": "error", "error": {"code": "internal_error",
                                                      "message": "internal server error; the server log has the "
                                                                 "details"}}
    assert "the model crashed" in caplog.text  # the traceback went to the log, not to the client


@needs_shared_data("iwslt15")
def test_the_model_lost_mid_stream_says_what_to_do(live, tiny_engine):
    class Lost(HeldEngine):
        def translate(self, sentences, settings=None):
            if self.calls:
                raise ModelUnavailable("the model files are gone")
            return super().translate(sentences, settings)

    server = live(Lost(tiny_engine), no_batching=True)
    events = server.post({"text": long_article()}).rest()
    assert [event["event"] for event in events] == ["segments", "rows", "error"]
    assert events[-1]["error"]["code"] == "model_unavailable"
    assert "the model files are gone" in events[-1]["error"]["message"]


def test_same_checks_as_the_json_api(live, tiny_engine):
    server = live(max_chars=500)
    checks = [
        ({"text": "   "}, None, 400, "empty_text"),
        ({"text": 5}, None, 400, "invalid_field"),
        ({"text": "Xin chào.", "beam": 99}, None, 400, "invalid_field"),
        ({"text": "Xin chào \ud800."}, None, 400, "invalid_field"),
        ({"text": "Xin chào. " * 60}, None, 413, "text_too_long"),
        ({"text": "Xin chào.", "model": "no/such-model"}, None, 422, "unknown_model"),
        (None, b"[1, 2", 400, "invalid_json"),
    ]
    for payload, raw, status, code in checks:
        reply = server.post(payload, raw=raw)
        assert reply.status == status, (payload, raw)
        assert reply.header("Content-Type").startswith("application/json")
        assert reply.json()["error"]["code"] == code
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT)
    connection.request("POST", PATH, body=b"text=hi", headers={"Content-Type": "application/x-www-form-urlencoded"})
    reply = connection.getresponse()
    assert reply.status == 415 and json.loads(reply.read())["error"]["code"] == "unsupported_media_type"
    connection.close()


def test_api_keys_and_rate_limit(live):
    server = live(api_keys=["sesame"], rate_limit="3/minute")
    assert server.post({"text": "Xin chào."}).json()["error"]["code"] == "api_key_required"
    assert server.post({"text": "Xin chào."}, {"X-API-Key": "wrong"}).json()["error"]["code"] == "invalid_api_key"
    # keyless and wrong-key requests are not counted (#20): three keyed ones use the budget up
    for _ in range(3):
        ok = server.post({"text": "Xin chào.", "api_key": "sesame"})
        assert ok.status == 200 and ok.rest()[-1]["event"] == "done"
    limited = server.post({"text": "Xin chào."}, {"Authorization": "Bearer sesame"})
    assert limited.status == 429 and limited.json()["error"]["code"] == "rate_limited"


def test_no_model_answers_503_before_streaming(live):
    def loader():
        raise ModelUnavailable("no model files here")

    server = live(loader)
    reply = server.post({"text": "Xin chào."})
    assert reply.status == 503
    answer = reply.json()["error"]
    assert answer["code"] == "model_unavailable" and "no model files here" in answer["message"]


def test_openapi_documents_the_stream(live):
    server = live(api_keys=["k"], rate_limit="5/minute")
    spec = server.app.extensions["mt_openapi"]
    op = spec["paths"][PATH]["post"]
    # OpenAPI 3.1's event stream: each event an object whose data line is a JSON StreamEvent
    event = op["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["required"] == ["event", "data"]
    assert event["properties"]["data"]["contentMediaType"] == "application/json"
    assert event["properties"]["data"]["contentSchema"] == {"$ref": "#/components/schemas/StreamEvent"}
    assert op["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/TranslateRequest"}
    codes = {code for response in op["responses"].values() for code in response.get("x-error-codes", [])}
    assert codes >= {"empty_text", "invalid_field", "text_too_long", "unknown_model", "model_unavailable",
                     "api_key_required", "rate_limited", "internal_error"}
    schemas = spec["components"]["schemas"]
    kinds = {option["$ref"].rsplit("/", 1)[-1] for option in schemas["StreamEvent"]["oneOf"]}
    assert kinds == {"SegmentsEvent", "RowsEvent", "LinksEvent", "QualityEvent", "DoneEvent", "ErrorEvent"}
    assert schemas["StreamEvent"]["discriminator"]["propertyName"] == "event"
    assert op["security"]


@needs_shared_data("iwslt15")
def test_the_server_process_streams(tiny_model_dir, tmp_path):
    """``server.py`` as deployed (waitress, request queue, SQLite cache), batch sizes from the
    environment: one model call per sentence, each on the wire as it returns."""
    process = start_server(["--model", str(tiny_model_dir), "--cache", str(tmp_path / "c.sqlite")],
                           env_extra={"MT_STREAM_FIRST_BATCH": "1", "MT_STREAM_MAX_BATCH": "1"})
    try:
        connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=WAIT)
        article = long_article(20)
        connection.request("POST", PATH, body=json.dumps({"text": article}).encode(),
                           headers={"Content-Type": "application/json"})
        stream = Stream(connection, connection.getresponse())
        assert stream.status == 200
        events = stream.rest()
        validated(events)
        rows = [n for n, event in enumerate(events) if event["event"] == "rows"]
        assert len(rows) == events[0]["total"] >= 20
        assert [len(events[n]["rows"]) for n in rows] == [1] * len(rows)
        # a model call per sentence, each read as a separate arrival, spread over the calls' time:
        # not one buffered burst at the end
        spread = stream.arrived[rows[-1]] - stream.arrived[rows[0]]
        assert spread > 0.02
        assert events[-1]["event"] == "done"
        assert events[-1]["translation"] == process.post_json("/api/translate", {"text": article}).json()["translation"]
    finally:
        process.stop()
