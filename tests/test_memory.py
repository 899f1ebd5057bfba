"""The translation memory (#23): its key, its two stores (SQLite file, real redis-server), its
files (TMX, TSV, XLIFF), ``mt memory`` and ``/api/memory`` on real servers with the tiny model.

Done when: an entry stored plainly through POST /api/memory is used for the same sentence typed
word-segmented (``origin: "memory"``, the entry's English, word links from the forced pass); a
sentence one word away gets it as a suggestion scoring in [0.75, 1); ``mt memory import`` of a
TMX is used by ``mt translate``, and ``mt memory export`` gives it back.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from mt.cache import NullCache, open_cache
from mt.cache.memory import (MemoryEntry, MemoryFull, SQLiteMemory, memory_key, memory_of, memory_path)
from mt.errors import InputError
from mt.io.formats import alignment_tmx, tmx_header, tmx_unit, TMX_FOOTER
from mt.io.tm_files import read_memory_file, read_tmx, read_tsv, write_tmx, write_tsv, write_xliff
from mt.text.normalize import is_word_segmented, normalize
from testkit.redis_helpers import RedisServer
from testkit.shared_data import ROOT, SHARED, needs_shared_data

PLAIN = "Nguồn tin cho biết vụ phóng tên lửa từ sân bay vũ trụ Baikonur đã thành công tốt đẹp."
SEGMENTED = "Nguồn_tin cho biết vụ phóng tên_lửa từ sân_bay vũ_trụ Baikonur đã thành_công tốt_đẹp ."
NEAR = "Nguồn tin cho biết vụ phóng tên lửa từ sân bay vũ trụ Plesetsk đã thành công tốt đẹp."
ENGLISH = "Sources said the rocket launch from the Baikonur cosmodrome was a complete success."
KEY = "memory-test-key"
VTB = SHARED / "segmentation" / "vtb.jsonl"


# -- the key -------------------------------------------------------------------------------------
def test_key_is_one_for_plain_segmented_and_either_tone_style():
    assert memory_key(SEGMENTED) == memory_key(PLAIN) == memory_key(memory_key(PLAIN))
    for tone in ("old", "new"):  # what the pipeline passes: normalised for the engine's tone
        assert memory_key(normalize(SEGMENTED, tone=tone).text) == memory_key(PLAIN)
    assert memory_key("Ông ấy đã hoà giải.") == memory_key("Ông ấy đã hòa giải.")
    assert memory_key("Hà Nội , ngày 5 .") == memory_key("Hà Nội, ngày 5.")
    assert memory_key(PLAIN) != memory_key(NEAR)


@needs_shared_data("segmentation")
def test_key_agrees_on_every_sentence_of_the_vtb_renderings():
    """Each gold sentence of UD Vietnamese-VTB (CC BY-SA 4.0), written plainly and word-segmented or
    spaced: the pipeline's normalised text of the latter (either tone style) keys as the former."""
    checked = 0
    for line in VTB.read_text(encoding="utf-8").splitlines():
        doc = json.loads(line)
        for rendering in ("wordseg", "spaced"):
            other = doc[rendering]
            segmented = is_word_segmented(other["text"])
            for (a, b), (c, d) in zip(doc["plain"]["spans"], other["spans"]):
                plain, typed = doc["plain"]["text"][a:b], other["text"][c:d]
                key = memory_key(plain)
                assert memory_key(key) == key
                for tone in ("old", "new"):
                    assert memory_key(normalize(typed, tone=tone, word_segmented=segmented).text) == key, (plain, typed)
                checked += 1
    assert checked > 6000


# -- the stores ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "redis"])
def two_memories(request, tmp_path):
    """Two memory objects on one store, as two worker processes or replicas hold them."""
    if request.param == "sqlite":
        yield SQLiteMemory(tmp_path / "c.sqlite.memory"), SQLiteMemory(tmp_path / "c.sqlite.memory")
        return
    server = request.getfixturevalue("redis_server")
    prefix = f"t{time.monotonic_ns()}:"
    caches = [open_cache(f"{server.url}?prefix={prefix}") for _ in range(2)]
    yield memory_of(caches[0]), memory_of(caches[1])
    for cache in caches:
        cache.close()


def test_store_shared_replaced_searched_and_deleted(two_memories):
    one, two = two_memories
    assert one.exact([PLAIN]) == {} and two.suggest([NEAR]) == {}
    [first] = one.add([MemoryEntry(PLAIN, "A first English.", "imported", "space")])
    assert two.exact([normalize(SEGMENTED).text]) == {normalize(SEGMENTED).text: "A first English."}
    [second] = two.add([MemoryEntry(SEGMENTED, ENGLISH, "edited")])  # same key: the correction wins
    assert second != first
    assert one.exact([PLAIN, "Câu khác hẳn."]) == {PLAIN: ENGLISH}
    [(near, found)] = one.suggest([NEAR]).items()
    assert near == NEAR and len(found) == 1
    assert found[0]["source"] == SEGMENTED and found[0]["target"] == ENGLISH and 0.75 <= found[0]["score"] < 1
    hits = two.search(PLAIN)
    assert [hit["id"] for hit in hits] == [second] and hits[0]["score"] == 1.0 and hits[0]["origin"] == "edited"
    assert [hit["score"] < 1 for hit in two.search(NEAR)] == [True]
    assert [entry.id for entry in one.entries()] == [second] and one.stats()["entries"] == 1
    assert not one.delete(first) and two.delete(second)
    assert one.exact([PLAIN]) == {} and one.suggest([NEAR]) == {} and two.search(NEAR) == []


def test_store_bounds_are_clear_refusals(two_memories):
    one, two = two_memories
    one.max_entries = 2
    one.add([MemoryEntry("Câu một ở đây.", "One."), MemoryEntry("Câu hai ở đây.", "Two.")])
    with pytest.raises(MemoryFull, match="at most 2"):
        one.add([MemoryEntry("Câu ba ở đây.", "Three.")])
    one.add([MemoryEntry("Câu một ở đây.", "One, corrected.")])  # a replacement takes no room
    assert two.exact(["Câu một ở đây."]) == {"Câu một ở đây.": "One, corrected."}
    for bad, words in ((MemoryEntry(" ", "x"), "source is empty"), (MemoryEntry("x", "y" * 5000), "4,000"),
                       (MemoryEntry("x", "y", "guessed"), "origin")):
        with pytest.raises(InputError, match=words):
            one.add([bad])
    assert two.stats()["entries"] == 2


def test_the_keys_bytes_are_bounded_across_processes(two_memories):
    """Every worker holds every key in its fuzzy index: the store bounds the keys' UTF-8 bytes (a
    replacement keeps its key and takes no room; a delete gives its key's bytes back)."""
    one, two = two_memories
    first, second = "Câu một ở đây.", "Câu hai ở chỗ kia."
    size = len(memory_key(first).encode("utf-8"))
    one.max_key_bytes = two.max_key_bytes = size + len(memory_key(second).encode("utf-8")) - 1
    [kept] = one.add([MemoryEntry(first, "One.")])
    with pytest.raises(MemoryFull, match=f"{size:,} bytes of at most"):
        two.add([MemoryEntry(second, "Two.")])
    two.add([MemoryEntry(first, "One, corrected.")])  # the same key: no room taken
    assert one.exact([first]) == {first: "One, corrected."} and one.stats()["max_key_bytes"] == one.max_key_bytes
    [replaced] = [entry.id for entry in one.entries()]
    assert one.delete(replaced) and not one.delete(kept)
    two.add([MemoryEntry(second, "Two.")])  # the freed bytes are seen by the other process
    assert [entry.target for entry in one.entries()] == ["Two."]


def _writer(path: str, worker: int) -> None:
    memory = SQLiteMemory(path)
    for batch in range(20):
        memory.add([MemoryEntry(f"Người {worker} viết câu số {batch * 10 + i}.", f"Line {i}.") for i in range(10)])


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    import multiprocessing

    path = str(tmp_path / "m.memory")
    SQLiteMemory(path).add([MemoryEntry("Câu đầu tiên.", "First.")])
    workers = [multiprocessing.get_context("spawn").Process(target=_writer, args=(path, n)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    memory = SQLiteMemory(path)
    assert memory.stats()["entries"] == 401 and len(memory.suggest(["Người 1 viết câu số 77!"])) == 1


def test_memory_of_null_cache_memoised_and_no_file_from_lookups(tmp_path):
    assert memory_of(NullCache()) is None
    cache = open_cache(tmp_path / "c.sqlite")
    memory = memory_of(cache)
    assert memory is memory_of(cache) and memory.location == str(memory_path(tmp_path / "c.sqlite"))
    assert memory.exact([PLAIN]) == {} and memory.suggest([NEAR]) == {} and memory.search(PLAIN) == []
    assert not memory_path(tmp_path / "c.sqlite").exists()


def test_redis_cache_clear_leaves_the_memory(redis_server):
    cache = open_cache(f"{redis_server.url}?prefix=clear{time.monotonic_ns()}:")
    memory_of(cache).add([MemoryEntry(PLAIN, ENGLISH)])
    cache.put_many("ns", [("a", "b")])
    cache.clear()
    assert memory_of(cache).exact([PLAIN]) == {PLAIN: ENGLISH}
    cache.close()


def test_a_store_that_is_gone_skips_lookups_and_refuses_writes(tmp_path):
    from mt.cache.memory import MemoryUnavailable

    server = RedisServer(tmp_path / "redis").start()
    cache = open_cache(server.url)
    memory = memory_of(cache)
    memory.add([MemoryEntry(PLAIN, ENGLISH)])
    assert memory.exact([PLAIN]) == {PLAIN: ENGLISH}
    server.kill()
    try:
        assert memory.exact([PLAIN]) == {} and memory.suggest([NEAR]) == {} and memory.search(PLAIN) == []
        with pytest.raises(MemoryUnavailable, match="cannot be used"):
            memory.add([MemoryEntry(NEAR, ENGLISH)])
    finally:
        cache.close()


def test_fuzzy_lookup_of_10k_entries_is_bounded(tmp_path):
    """10,000 entries of a few shapes; the newest 2,000 of a compatible length are compared."""
    memory = SQLiteMemory(tmp_path / "m.memory")
    words = "một hai ba bốn năm sáu bảy tám chín mười người nhà nước công ty thành phố".split()
    entries = [MemoryEntry(" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(8 + i % 9)) + f" số {i}.",
                           f"Sentence {i}.") for i in range(10_000)]
    for start in range(0, len(entries), 1000):
        memory.add(entries[start:start + 1000])
    queries = [entry.source.replace("số", "mã") for entry in entries[-100:]]
    memory.suggest(queries[:1])  # the index loads once per process
    started = time.perf_counter()
    found = memory.suggest(queries)
    elapsed = time.perf_counter() - started
    print(f"fuzzy lookup, 10,000 entries: {elapsed * 1000 / len(queries):.2f} ms per sentence")
    assert len(found) == len(queries) and all(0.75 <= s["score"] < 1 for hits in found.values() for s in hits)
    assert elapsed < 10  # about 2 ms per sentence on a quiet core; generous for two shared ones


# -- files -----------------------------------------------------------------------------------------
clean_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=60).map(
    str.strip).filter(bool)
pairs = st.lists(st.tuples(clean_text, clean_text), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(pairs, st.sampled_from([None, "dự án"]))
def test_tmx_round_trip(found, project):
    entries = [MemoryEntry(source, target, "edited", project, None, 1_700_000_000.0) for source, target in found]
    back = read_tmx(write_tmx(entries)).entries
    assert [(e.source, e.target, e.project) for e in back] == [(s, t, project) for s, t in found]


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_tsv_and_xliff_round_trip(found):
    entries = [MemoryEntry(source, target) for source, target in found]
    assert [(e.source, e.target) for e in read_tsv(write_tsv(entries)).entries] == found
    assert [(e.source, e.target) for e in read_memory_file(write_xliff(entries), "m.xliff").entries] == found


def test_files_from_cat_tools_and_from_mt_align():
    foreign = ('<?xml version="1.0"?><tmx version="1.4"><header srclang="en-US"/><body>'
               '<tu><tuv xml:lang="en-US"><seg>Hi <bpt i="1">&lt;b&gt;</bpt>there<ept i="1">&lt;/b&gt;</ept></seg></tuv>'
               '<tuv xml:lang="vi-VN"><seg>Chào bạn</seg></tuv></tu>'
               '<tu><tuv xml:lang="vi"><seg>Chỉ một bên</seg></tuv></tu></body></tmx>').encode()
    read = read_tmx(foreign)
    assert [(e.source, e.target) for e in read.entries] == [("Chào bạn", "Hi there")] and sum(read.skipped.values()) == 1
    ours = (tmx_header("sentence-alignment") + tmx_unit("Tôi đi học.", "I go to school.") + TMX_FOOTER).encode()
    assert [(e.source, e.target) for e in read_tmx(ours).entries] == [("Tôi đi học.", "I go to school.")]
    tsv = read_tsv("vi\ten\nTôi đi học.\tI go to school.\t0.912\n\nMột bên\t\n".encode())
    assert [(e.source, e.target) for e in tsv.entries] == [("Tôi đi học.", "I go to school.")] and tsv.skipped
    with pytest.raises(InputError, match="not a TMX"):
        read_tmx(b"<html/>")
    with pytest.raises(InputError, match=r"\.tmx, \.tsv or \.xliff"):
        read_memory_file(b"", "m.docx")
    assert callable(alignment_tmx)


def test_xliff_import_leaves_unreviewed_units_out():
    data = ('<?xml version="1.0"?><xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">'
            '<file original="a" source-language="vi" target-language="en" datatype="plaintext"><body>'
            '<trans-unit id="1"><source>Câu một.</source><target state="needs-review-translation">One.</target></trans-unit>'
            '<trans-unit id="2"><source>Câu hai.</source><target state="final">Two.</target></trans-unit>'
            '</body></file></xliff>').encode()
    assert [e.source for e in read_memory_file(data, "a.xlf").entries] == ["Câu hai."]
    assert [e.source for e in read_memory_file(data, "a.xlf", unreviewed=True).entries] == ["Câu một.", "Câu hai."]


# -- the command line ------------------------------------------------------------------------------
def run_mt(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mt", *map(str, args)], capture_output=True, cwd=ROOT,
                          timeout=timeout, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def test_mt_memory_import_translate_export(tiny_model_dir, tmp_path):
    cache = tmp_path / "c.sqlite"
    tmx = tmp_path / "human.tmx"  # as `mt align --tmx` writes it
    tmx.write_text(tmx_header("sentence-alignment") + tmx_unit(PLAIN, ENGLISH) + TMX_FOOTER, encoding="utf-8")
    imported = run_mt("memory", "import", tmx, "--cache", cache, "--project", "launches")
    assert imported.returncode == 0 and "imported 1 entry" in imported.stdout.decode(), imported.stderr.decode()
    article = tmp_path / "article.txt"
    article.write_text(SEGMENTED + " Trời hôm nay đẹp .", encoding="utf-8")
    translated = run_mt("translate", article, "--model", tiny_model_dir, "--cache", cache, "--jsonl")
    assert translated.returncode == 0, translated.stderr.decode()
    first, second = [json.loads(line) for line in translated.stdout.decode().splitlines()]
    assert first["origin"] == "memory" and first["translation"] == ENGLISH and first["alignment"]
    assert second["origin"] == "model"
    for name in ("back.tmx", "back.tsv"):  # XLIFF export: the same writer as test_tsv_and_xliff_round_trip
        exported = run_mt("memory", "export", tmp_path / name, "--cache", cache)
        assert exported.returncode == 0, exported.stderr.decode()
        back = read_memory_file((tmp_path / name).read_bytes(), name).entries
        assert [(e.source, e.target) for e in back] == [(PLAIN, ENGLISH)]
    assert read_tmx((tmp_path / "back.tmx").read_bytes()).entries[0].project == "launches"
    stats = json.loads(run_mt("memory", "stats", "--cache", cache).stdout)
    assert stats["entries"] == 1 and stats["origins"]["imported"] == 1 and stats["projects"] == ["launches"]
    refused = run_mt("memory", "import", tmp_path / "x.csv", "--cache", cache)
    assert refused.returncode == 2 and refused.stderr.decode().startswith("mt: error:")

    # found by search (exact first, then fuzzy, each with its id), then deleted by id
    found = run_mt("memory", "search", NEAR, "--cache", cache)
    assert found.returncode == 0, found.stderr.decode()
    [hit] = [json.loads(line) for line in found.stdout.decode().splitlines()]
    assert hit["target"] == ENGLISH and 0.75 <= hit["score"] < 1 and hit["id"]
    gone = run_mt("memory", "delete", hit["id"], "nosuchid", "--cache", cache)
    assert gone.returncode == 1 and "deleted 1 entry" in gone.stdout.decode()
    assert "no entry with id 'nosuchid'" in gone.stderr.decode()
    assert json.loads(run_mt("memory", "stats", "--cache", cache).stdout)["entries"] == 0
    assert run_mt("memory", "search", PLAIN, "--cache", cache).stdout == b""
    bad = run_mt("memory", "search", PLAIN, "--limit", "500", "--cache", cache)
    assert bad.returncode == 2 and "from 1 to 100" in bad.stderr.decode()


# -- the API on real servers sharing one cache -------------------------------------------------------
@pytest.fixture(scope="module")
def servers(serve_module, tmp_path_factory):
    """Three servers on one cache file: memory on with API keys, read-only, off."""
    folder = tmp_path_factory.mktemp("memory-servers")
    keys = folder / "keys.txt"
    keys.write_text(KEY + "\n", encoding="utf-8")
    cache = folder / "c.sqlite"
    return {"on": serve_module("--cache", cache, "--api-keys", keys),
            "read-only": serve_module("--cache", cache, "--memory", "read-only"),
            "off": serve_module("--cache", cache, "--memory", "off")}


def keyed(extra: dict | None = None) -> dict:
    return {"X-API-Key": KEY, **(extra or {})}


def sentences(server, text: str, headers: dict | None = None) -> list[dict]:
    reply = server.post_json("/api/translate", {"text": text}, headers)
    assert reply.status == 200, reply.text
    return reply.json()["sentences"]


def test_done_when_through_the_api(servers):
    on, read_only, off = servers["on"], servers["read-only"], servers["off"]
    assert on.post_json("/api/memory", {"entries": [{"source": PLAIN, "target": ENGLISH}]}).status == 401
    added = on.post_json("/api/memory", {"entries": [{"source": PLAIN, "target": ENGLISH, "project": "launches"}]},
                         keyed())
    assert added.status == 201, added.text
    [entry_id] = added.json()["ids"]
    for server, headers in ((on, keyed()), (read_only, None)):  # the second server shares the store
        [sentence] = sentences(server, SEGMENTED, headers)
        assert sentence["origin"] == "memory" and sentence["translation"] == ENGLISH and not sentence["cached"]
        assert sentence["alignment"] and sentence["tgt_words"]  # linked by the engine's forced pass
        [near] = sentences(server, NEAR, headers)
        assert near["origin"] == "model"
        [suggestion] = near["suggestions"]
        assert suggestion["target"] == ENGLISH and suggestion["source"] == PLAIN and 0.75 <= suggestion["score"] < 1
    streamed = read_only.post_json("/api/translate/stream", {"text": SEGMENTED + " " + NEAR})
    payloads = [json.loads(line[6:]) for line in streamed.text.splitlines() if line.startswith("data: ")]
    rows = {row["index"]: row for event in payloads if event["event"] == "rows" for row in event["rows"]}
    assert rows[0]["origin"] == "memory" and rows[0]["translation"] == ENGLISH
    assert rows[1]["origin"] == "model" and rows[1]["suggestions"][0]["target"] == ENGLISH
    libre = read_only.post_json("/translate", {"q": [SEGMENTED, PLAIN], "source": "vi", "target": "en"})
    assert libre.json()["translatedText"] == [ENGLISH, ENGLISH], libre.text
    hits = read_only.get("/api/memory?q=" + __import__("urllib.parse").parse.quote(SEGMENTED)).json()["hits"]
    assert [(hit["id"], hit["score"], hit["project"], hit["origin"]) for hit in hits] == [
        (entry_id, 1.0, "launches", "edited")]
    [sentence] = sentences(off, SEGMENTED)
    assert sentence["origin"] == "model" and sentence["suggestions"] == []
    assert off.get("/api/memory?q=x").json()["error"]["code"] == "memory_off"


def test_read_only_off_and_errors(servers):
    on, read_only, off = servers["on"], servers["read-only"], servers["off"]
    body = {"entries": [{"source": "Câu thử.", "target": "A try."}]}
    refused = read_only.post_json("/api/memory", body)
    assert refused.status == 403 and refused.json()["error"]["code"] == "memory_read_only"
    assert read_only.request("DELETE", "/api/memory/0123456789abcdef").status == 403
    assert off.post_json("/api/memory", body).status == 404
    assert on.request("DELETE", "/api/memory/0123456789abcdef", headers=keyed()).json()["error"]["code"] == \
        "memory_entry_not_found"
    assert on.get("/api/memory", keyed()).json()["error"]["code"] == "invalid_field"
    for bad in ({"entries": []}, {"entries": [{"source": "x"}]}, {"entries": [{"source": "x", "target": "y",
                                                                                "origin": "model"}]}):
        assert on.post_json("/api/memory", bad, keyed()).status == 400
    assert on.post_json("/api/memory", {"entries": [{"source": " ", "target": "y"}]}, keyed()).status == 400


def test_delete_reaches_the_other_server(servers):
    on, read_only = servers["on"], servers["read-only"]
    source = "Hội nghị thượng đỉnh về biến đổi khí hậu sẽ được tổ chức tại Hà Nội vào tháng sau."
    [entry_id] = on.post_json("/api/memory", {"entries": [{"source": source, "target": "A summit.",
                                                           "origin": "imported"}]}, keyed()).json()["ids"]
    assert sentences(read_only, source)[0]["origin"] == "memory"
    deleted = on.request("DELETE", f"/api/memory/{entry_id}", headers=keyed())
    assert deleted.status == 200 and deleted.json() == {"id": entry_id, "deleted": True}
    [again] = sentences(read_only, source)
    assert again["origin"] == "model" and again["translation"] != "A summit."
    near = source.replace("Hà Nội", "Đà Nẵng")
    assert sentences(read_only, near)[0]["suggestions"] == []


def test_mt_eval_scores_the_model_not_the_memory(tiny_model_dir, tmp_path, capsys):
    """A memory holding the references would score 100: mt eval never looks the memory up."""
    from mt.cli import main

    cache = tmp_path / "c.sqlite"
    SQLiteMemory(memory_path(cache)).add([MemoryEntry(PLAIN, ENGLISH)])
    (tmp_path / "src.txt").write_text(PLAIN + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text(ENGLISH + "\n", encoding="utf-8")
    assert main([str(arg) for arg in ("eval", "--src", tmp_path / "src.txt", "--ref", tmp_path / "ref.txt", "--model",
                                      tiny_model_dir, "--engine", "transformers", "--cache", cache, "--out",
                                      tmp_path / "out")]) == 0
    assert (tmp_path / "out").is_dir()
    hypotheses = "".join(path.read_text(encoding="utf-8") for path in (tmp_path / "out").glob("*.hyp.txt"))
    assert hypotheses and ENGLISH not in hypotheses
