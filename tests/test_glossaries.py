"""Glossaries (#22): the shared store (SQLite, Redis), glossary files (TSV/CSV), and the whole way
through a real server on the tiny random-weight model (whose English keeps nothing by itself):
inline and stored glossaries, the stream, documents, the page, `mt translate --glossary`, the cache
staying term-independent, and a glossary created through one server used through another.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from mt.cache import NullCache, open_cache
from mt.cache.glossaries import (MAX_ENTRIES, MAX_TERM_CHARS, TERM_PATTERN, TSV_PATTERN, GlossaryLimit, InvalidGlossary,
                                 RedisGlossaryStore, SQLiteGlossaryStore, check_entries, open_glossary_store)
from mt.errors import InputError
from mt.terms.glossary_file import read_glossary, read_glossary_file, rules_key, to_tsv
from testkit.redis_helpers import REDIS_SERVER, RedisServer
from testkit.server_helpers import ROOT, clean_env

# -- the store ----------------------------------------------------------------------------------


def test_sqlite_store_is_shared_by_two_instances_on_one_file(tmp_path):
    one, two = SQLiteGlossaryStore(tmp_path / "g.sqlite"), SQLiteGlossaryStore(tmp_path / "g.sqlite")
    made = one.create(" space ", {" tên lửa ": "rocket ", "vệ tinh": "satellite"})
    assert made.name == "space" and made.entries == {"tên lửa": "rocket", "vệ tinh": "satellite"}
    seen = two.get(made.id)
    assert seen == made
    assert [(g.id, g.name, g.entry_count, g.entries) for g in two.list()] == [(made.id, "space", 2, {})]
    assert two.delete(made.id) and one.get(made.id) is None and not one.delete(made.id)
    assert one.list() == []


def test_sqlite_store_is_bounded(tmp_path):
    store = SQLiteGlossaryStore(tmp_path / "g.sqlite", max_glossaries=2, max_bytes=10_000)
    first = store.create("a", {"một": "one"})
    store.create("b", {"hai": "two"})
    with pytest.raises(GlossaryLimit, match="maximum of 2 glossaries; delete one first"):
        store.create("c", {"ba": "three"})
    store.delete(first.id)
    with pytest.raises(GlossaryLimit, match="over 10,000 bytes"):
        store.create("big", {f"từ {n}": "x" * 150 for n in range(100)})
    assert len(store.list()) == 1


@pytest.mark.parametrize("entries, message", [
    ({"": "x"}, "is empty"), ({"a": "  "}, "is empty"), ({"a\tb": "x"}, "tab or line break"),
    ({"a": "x\ny"}, "line break"), ({"a": "x" * (MAX_TERM_CHARS + 1)}, f"at most {MAX_TERM_CHARS}"),
    ({"a": 3}, "must be text"), ({str(n): "x" for n in range(MAX_ENTRIES + 1)}, f"at most {MAX_ENTRIES:,}"),
    (["a", "b"], "must be an object"), ({"\ud800": "x"}, "lone surrogate"),
])
def test_bad_entries_are_refused_with_the_reason(tmp_path, entries, message):
    with pytest.raises(InvalidGlossary, match=message):
        SQLiteGlossaryStore(tmp_path / "g.sqlite").create("n", entries)


def test_bad_names_are_refused(tmp_path):
    store = SQLiteGlossaryStore(tmp_path / "g.sqlite")
    for name in ("", "   ", "a\nb", "x" * 201, None):
        with pytest.raises(InvalidGlossary, match="name"):
            store.create(name, {"a": "b"})


@pytest.mark.skipif(not __import__("os").path.exists(REDIS_SERVER), reason="redis-server is not installed")
def test_redis_store_is_shared_and_bounded(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        with open_cache(server.url) as cache:
            store = open_glossary_store(cache, tmp_path / "run")
            assert isinstance(store, RedisGlossaryStore)
            other = RedisGlossaryStore(server.client(), cache.prefix, max_glossaries=2)
            made = store.create("space", {"tên lửa": "rocket"})
            assert other.get(made.id) == made
            assert [g.entry_count for g in other.list()] == [1]
            assert server.client().keys(f"{cache.prefix}glossaries:*")  # under the cache's prefix
            other.create("b", {"hai": "two"})
            with pytest.raises(GlossaryLimit):
                other.create("c", {"ba": "three"})
            assert len(store.list()) == 2  # the refused one left nothing behind
            assert other.delete(made.id) and store.get(made.id) is None and not store.delete(made.id)
            assert int(server.client().get(f"{cache.prefix}glossaries:bytes")) == len('{"hai":"two"}')
    finally:
        server.stop()


def test_store_sits_beside_the_cache_file_or_in_the_run_folder(tmp_path):
    with open_cache(tmp_path / "c.sqlite") as cache:
        store = open_glossary_store(cache, tmp_path / "run")
        assert store.path == tmp_path / "c.sqlite.glossaries"
    assert open_glossary_store(NullCache(), tmp_path / "run").path == tmp_path / "run" / "glossaries.sqlite"


# -- glossary files -----------------------------------------------------------------------------
@pytest.mark.parametrize("data, expected", [
    ("tên lửa\trocket\nvệ tinh\tsatellite\n", {"tên lửa": "rocket", "vệ tinh": "satellite"}),
    ("Vietnamese\tEnglish\r\ntên lửa\trocket\r\n\r\n", {"tên lửa": "rocket"}),  # header, CRLF, blank line
    ("\ufeffvi,en\ntên lửa,\"rocket, big\"\n", {"tên lửa": "rocket, big"}),  # BOM, CSV quotes
    ('"tên ""lửa"""\trocket\t\t\n', {'tên "lửa"': "rocket"}),  # TSV quotes, trailing empty cells
    ("tên lửa,rocket,vi,en\n", {"tên lửa": "rocket"}),  # DeepL's four-column CSV
    ("a\tx\na\ty\n", {"a": "y"}),  # a later duplicate wins
    ("\ufeffsource,target\nx,y".encode("utf-8"), {"x": "y"}),
])
def test_glossary_files_are_read(data, expected):
    assert read_glossary(data) == expected


@pytest.mark.parametrize("data, message", [
    ("a\tb\tc\n", "line 1: 3 column"), ("ok\tfine\nlonely\n", "line 2: 1 column"), ("\tx\n", "line 1: the Vietnamese is empty"),
    ('a,"b\n', "not valid CSV"), (b"\xff\xfe", "not UTF-8"), ("vi\ten\n", "no entries"), ("", "no entries"),
    ("a\t" + "x" * 300, "line 1: the English has 300"), ("a,b\x00c\n", "control character"),
])
def test_bad_glossary_files_name_the_line(data, message):
    with pytest.raises(InputError, match=message):
        read_glossary(data, "g.tsv")


def test_glossary_file_on_disk(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("tên lửa,rocket\n", encoding="utf-8")
    assert read_glossary_file(path) == {"tên lửa": "rocket"}
    with pytest.raises(InputError, match="cannot read the glossary"):
        read_glossary_file(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="is a folder"):
        read_glossary_file(tmp_path)


TERMS = st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1,
                max_size=30).map(str.strip).filter(lambda term: term and '"' not in term[:1] + term[-1:])
HEADERS = {"vi", "en", "source", "target", "term", "english", "vietnamese", "translation", "src", "tgt"}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(TERMS, TERMS, min_size=1, max_size=8), st.sampled_from(["tsv", "csv"]),
       st.booleans(), st.booleans())
def test_glossary_round_trip(entries, kind, header, bom):
    entries = {key: value for key, value in entries.items() if "\t" not in key + value}
    if not entries or (not header and next(iter(entries)).lower() in HEADERS):
        return
    if kind == "tsv":
        text = ("vi\ten\n" if header else "") + to_tsv(entries)
    else:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerows(([("source", "target")] if header else []) + list(entries.items()))
        text = out.getvalue()
    data = (("\ufeff" if bom else "") + text).encode("utf-8")
    assert read_glossary(data) == entries


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.from_regex(TSV_PATTERN))
def test_every_form_glossary_the_spec_allows_is_read(text):
    """The page's form field is declared with TSV_PATTERN: anything it allows is a readable glossary."""
    from mt.web.glossary_fields import tsv_entries

    found = tsv_entries(text)
    assert found is None or all(re.search(TERM_PATTERN, k) and re.search(TERM_PATTERN, v) for k, v in found.items())


def test_a_form_glossary_nested_too_deep_for_json_is_refused_as_a_bad_glossary():
    """'{"a": [[[...]]]}' deeper than the JSON decoder's stack raised RecursionError (a 500)."""
    from pydantic_core import PydanticCustomError

    from mt.web.glossary_fields import tsv_entries

    with pytest.raises(PydanticCustomError, match="Vietnamese<TAB>English"):
        tsv_entries('{"a": ' + "[" * 50_000 + "]" * 50_000 + "}")


def test_rules_key_changes_with_the_glossary():
    from mt.terms import DEFAULT_TERMS, NO_TERMS, TermRules

    assert rules_key(None) == rules_key(DEFAULT_TERMS) == ""
    keys = {rules_key(NO_TERMS), rules_key(TermRules({"a": "b"})), rules_key(TermRules({"a": "c"})),
            rules_key(TermRules({"a": "b"}, protect=False))}
    assert len(keys) == 4 and "" not in keys
    assert check_entries({"a ": " b"}) == {"a": "b"}


# -- end to end: real servers on the tiny model ------------------------------------------------
TEXT = "Nga phóng tên lửa lên vũ trụ. Vệ tinh bay quanh Trái Đất."
GLOSSARY = {"tên lửa": "rocket", "vệ tinh": "satellite"}


@pytest.fixture(scope="module")
def servers(serve_module, tmp_path_factory):
    """Two servers on one cache file, started side by side: a glossary made through one is seen by the other."""
    from concurrent.futures import ThreadPoolExecutor

    cache = tmp_path_factory.mktemp("shared") / "c.sqlite"
    with ThreadPoolExecutor(2) as pool:
        return tuple(pool.map(lambda _: serve_module("--cache", cache), range(2)))


def sse_events(body: bytes) -> list[dict]:
    return [json.loads(line[5:]) for line in body.decode("utf-8").splitlines() if line.startswith("data:")]


def has_terms(sentences: list[dict], english: str) -> bool:
    return any(use["english"] == english and use["kind"] == "glossary" for pair in sentences for use in pair["terms"])


def test_inline_glossary_after_a_plain_request_comes_from_the_cache(servers):
    server = servers[0]
    text = "Nhà máy sản xuất tên lửa ở Baikonur. Vệ tinh mới đã sẵn sàng."
    plain = server.post_json("/api/translate", {"text": text})
    assert plain.status == 200, plain.text
    terms = server.post_json("/api/translate", {"text": text, "glossary": GLOSSARY})
    assert terms.status == 200, terms.text
    answer = terms.json()
    assert all(pair["cached"] for pair in answer["sentences"])  # the cache keeps the model's own English
    first, second = answer["sentences"]
    assert "rocket" in first["translation"] and "satellite" in second["translation"]
    assert has_terms([first], "rocket") and has_terms([second], "satellite")
    again = server.post_json("/api/translate", {"text": text, "protect": False})
    assert again.json()["translation"] != answer["translation"]  # one sentence, two glossaries: two answers


def test_stored_glossary_is_seen_by_another_server_and_deleted(servers):
    one, two = servers
    made = one.post_json("/api/glossaries", {"name": "space", "entries": GLOSSARY})
    assert made.status == 201, made.text
    glossary_id = made.json()["glossary_id"]
    assert made.json()["entry_count"] == 2 and made.header("Location") == f"/api/glossaries/{glossary_id}"
    listed = two.get("/api/glossaries").json()["glossaries"]
    assert {"glossary_id": glossary_id, "name": "space", "entry_count": 2} in [
        {key: row[key] for key in ("glossary_id", "name", "entry_count")} for row in listed]
    assert two.get(f"/api/glossaries/{glossary_id}").json()["entries"] == GLOSSARY
    used = two.post_json("/api/translate", {"text": TEXT, "glossary_id": glossary_id})
    assert used.status == 200, used.text
    assert "rocket" in used.json()["translation"] and "satellite" in used.json()["translation"]
    # the id's entries with the request's own on top
    both = two.post_json("/api/translate", {"text": TEXT, "glossary_id": glossary_id, "glossary": {"vệ tinh": "moon"}})
    assert "rocket" in both.json()["translation"] and "moon" in both.json()["translation"]
    deleted = one.request("DELETE", f"/api/glossaries/{glossary_id}")
    assert deleted.status == 200 and deleted.json() == {"glossary_id": glossary_id, "deleted": True}
    assert two.get(f"/api/glossaries/{glossary_id}").status == 404
    gone = two.post_json("/api/translate", {"text": TEXT, "glossary_id": glossary_id})
    assert gone.status == 404 and gone.json()["error"]["code"] == "glossary_not_found"
    assert one.request("DELETE", f"/api/glossaries/{glossary_id}").status == 404


def test_bad_glossaries_are_400(servers):
    server = servers[0]
    for body in ({"text": TEXT, "glossary": {"tên lửa": ""}}, {"text": TEXT, "glossary": ["tên lửa"]},
                 {"text": TEXT, "glossary": {"a\tb": "x"}}, {"text": TEXT, "protect": "no"}):
        reply = server.post_json("/api/translate", body)
        assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_field", reply.text
    reply = server.post_json("/api/glossaries", {"name": "x", "entries": {"": "y"}})
    assert reply.status == 400 and "empty" in reply.json()["error"]["message"]
    reply = server.post_json("/api/glossaries", {"name": "x"})
    assert reply.status == 400 and "entries is required" in reply.json()["error"]["message"]


def test_stream_with_a_glossary(servers):
    reply = servers[1].post_json("/api/translate/stream", {"text": TEXT, "glossary": GLOSSARY})
    assert reply.status == 200, reply.text
    events = sse_events(reply.body)
    done = events[-1]
    assert done["event"] == "done" and "rocket" in done["translation"] and "satellite" in done["translation"]
    links = [row for event in events if event["event"] == "links" for row in event["rows"]]
    assert has_terms(links, "rocket")


def test_documents_keep_their_markup_and_get_the_terms(servers):
    server = servers[0]
    html = "<html><body><p>Nga phóng <b>tên lửa</b> lên vũ trụ.</p><p>Vệ tinh bay quanh <i>Trái Đất</i>.</p></body></html>"
    reply = server.post_multipart("/api/translate_file", {"glossary": "vi\ten\ntên lửa\trocket\nvệ tinh\tsatellite\n"},
                                  {"file": ("space.html", html.encode("utf-8"))})
    assert reply.status == 200, reply.text
    assert "<b>" in reply.text and "<i>" in reply.text and "rocket" in reply.text and "satellite" in reply.text
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_paragraph("Nga phóng tên lửa lên vũ trụ.")
    data = io.BytesIO()
    document.save(data)
    made = server.post_json("/api/glossaries", {"name": "docx", "entries": GLOSSARY}).json()["glossary_id"]
    reply = server.post_multipart("/api/translate_file", {"glossary_id": made},
                                  {"file": ("space.docx", data.getvalue())})
    assert reply.status == 200, reply.text
    english = "\n".join(p.text for p in docx.Document(io.BytesIO(reply.body)).paragraphs)
    assert "rocket" in english


def test_the_page_and_its_downloads_take_a_glossary(servers):
    server = servers[0]
    page = server.post_form("/", {"text": TEXT, "glossary": "tên lửa\trocket\nvệ tinh\tsatellite"})
    assert page.status == 200 and "rocket" in page.text, page.text[-2000:]
    download = server.post_form("/download/txt", {"text": TEXT, "glossary": json.dumps(GLOSSARY)})
    assert download.status == 200 and "rocket" in download.text and "satellite" in download.text
    bad = server.post_form("/", {"text": TEXT, "glossary": "tên lửa rocket"})
    assert bad.status == 400 and "Vietnamese&lt;TAB&gt;English" in bad.text
    deep = server.post_form("/", {"text": TEXT, "glossary": '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}"})
    assert deep.status == 400 and "Vietnamese&lt;TAB&gt;English" in deep.text  # JSON too deep to decode: a 500 before


def test_mt_translate_with_a_glossary_file(tiny_model_dir, tmp_path):
    article, glossary = tmp_path / "a.txt", tmp_path / "g.csv"
    article.write_text(TEXT, encoding="utf-8")
    glossary.write_text("Vietnamese,English\ntên lửa,rocket\nvệ tinh,satellite\n", encoding="utf-8")
    command = [sys.executable, "-m", "mt", "translate", str(article), "--model", str(tiny_model_dir),
               "--engine", "transformers", "--no-cache"]
    run = subprocess.run(command + ["--glossary", str(glossary)], capture_output=True, text=True, cwd=ROOT,
                         env=clean_env(), timeout=300)
    assert run.returncode == 0, run.stderr
    assert "rocket" in run.stdout and "satellite" in run.stdout
    glossary.write_text("tên lửa\trocket\textra\n", encoding="utf-8")
    bad = subprocess.run(command + ["--glossary", str(glossary), "--no-protect"], capture_output=True, text=True,
                         cwd=ROOT, env=clean_env(), timeout=300)
    assert bad.returncode == 2 and "line 1: 3 column" in bad.stderr and "Traceback" not in bad.stderr
    batch = subprocess.run([sys.executable, "-m", "mt", "batch", str(tmp_path), str(tmp_path / "out"), "--glossary",
                            str(tmp_path / "none.tsv")], capture_output=True, text=True, cwd=ROOT, env=clean_env(),
                           timeout=300)
    assert batch.returncode == 2 and "cannot read the glossary" in batch.stderr and "Traceback" not in batch.stderr


def test_glossary_routes_need_a_key_when_keys_are_on(tiny_engine, tmp_path):
    from mt.settings import defaults
    from mt.web.app import create_app

    keys = tmp_path / "keys.txt"
    keys.write_text("k1\n", encoding="utf-8")
    app = create_app(defaults(no_batching=True, api_keys=str(keys)), tiny_engine, open_cache(tmp_path / "c.sqlite"),
                     run_dir=str(tmp_path / "run"))
    client = app.test_client()
    body = {"name": "n", "entries": GLOSSARY}
    assert client.post("/api/glossaries", json=body).status_code == 401
    assert client.get("/api/glossaries").status_code == 401  # a glossary is a client's data: reads too
    assert client.post("/api/glossaries", json=body, headers={"X-API-Key": "bad"}).status_code == 403
    made = client.post("/api/glossaries", json=body, headers={"X-API-Key": "k1"})
    assert made.status_code == 201
    glossary_id = made.get_json()["glossary_id"]
    assert client.delete(f"/api/glossaries/{glossary_id}").status_code == 401
    assert client.get(f"/api/glossaries/{glossary_id}", headers={"Authorization": "Bearer k1"}).status_code == 200
    spec = app.extensions["mt_openapi"]["paths"]
    assert {"get", "post"} <= set(spec["/api/glossaries"]) and {"get", "delete"} <= set(spec["/api/glossaries/{glossary_id}"])


def test_batch_with_a_glossary_translates_again_when_the_glossary_changes(tiny_engine, tmp_path):
    import pickle

    from mt.io.folder_batch import translate_folder
    from mt.terms import TermRules

    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    (source / "a.txt").write_text(TEXT, encoding="utf-8")
    (source / "b.html").write_text("<p>Nga phóng <b>tên lửa</b>.</p>", encoding="utf-8")
    terms = TermRules(glossary=GLOSSARY)
    assert pickle.loads(pickle.dumps(terms)) == terms  # what a Ray actor receives
    with open_cache(tmp_path / "c.sqlite") as cache:
        first = translate_folder(source, out, tiny_engine, cache, progress=False, terms=terms)
        assert first.translated == 2 and not first.failed
        assert "rocket" in (out / "a.en.txt").read_text(encoding="utf-8")
        assert "rocket" in (out / "b.en.html").read_text(encoding="utf-8")
        assert translate_folder(source, out, tiny_engine, cache, progress=False, terms=terms).skipped == 2
        other = translate_folder(source, out, tiny_engine, cache, progress=False,
                                 terms=TermRules(glossary={"tên lửa": "missile"}))
        assert other.translated == 2 and other.cache_hits == other.sentences  # no re-translation by the model
        assert "missile" in (out / "a.en.txt").read_text(encoding="utf-8")


def test_a_full_store_is_409_and_an_unreachable_one_503(tiny_engine, tmp_path):
    from mt.settings import defaults
    from mt.web.app import create_app

    app = create_app(defaults(no_batching=True), tiny_engine, open_cache(tmp_path / "c.sqlite"),
                     run_dir=str(tmp_path / "run"))
    app.extensions["mt_glossaries"] = SQLiteGlossaryStore(tmp_path / "small.sqlite", max_glossaries=1)
    client = app.test_client()
    assert client.post("/api/glossaries", json={"name": "a", "entries": GLOSSARY}).status_code == 201
    full = client.post("/api/glossaries", json={"name": "b", "entries": GLOSSARY})
    assert full.status_code == 409 and full.get_json()["error"]["code"] == "glossary_limit"
    if not __import__("os").path.exists(REDIS_SERVER):
        return
    server = RedisServer(tmp_path / "redis").start()
    try:
        cache = open_cache(server.url, timeout=0.5)
        app.extensions["mt_glossaries"] = open_glossary_store(cache, tmp_path / "run")
        made = client.post("/api/glossaries", json={"name": "r", "entries": GLOSSARY}).get_json()["glossary_id"]
        server.stop()
        for reply in (client.get("/api/glossaries"), client.post("/api/translate", json={"text": TEXT, "glossary_id": made})):
            assert reply.status_code == 503 and reply.get_json()["error"]["code"] == "server_busy", reply.get_json()
    finally:
        server.stop()


def test_a_stored_glossarys_rules_are_built_once_per_glossary():
    """Stored glossaries never change, so their TermRules (whose index costs ~0.1 s for 5,000
    entries) are kept by (id, created, protect); a glossary made again under the same id is new."""
    from mt.cache.glossaries import Glossary
    from mt.web.glossary_api import stored_rules

    first = Glossary("g1", "space", {"tên lửa": "rocket"}, 1.0)
    assert stored_rules(first, True) is stored_rules(first, True)
    assert stored_rules(first, False) is not stored_rules(first, True) and not stored_rules(first, False).protect
    assert dict(stored_rules(Glossary("g1", "space", {"vệ tinh": "satellite"}, 2.0), True).glossary) == {
        "vệ tinh": "satellite"}
