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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_regex(TSV_PATTERN))
def test_every_form_glossary_the_spec_allows_is_read(text):
    """The page's form field is declared with TSV_PATTERN: anything it allows is a readable glossary."""
    from mt.web.glossary_fields import tsv_entries

    found = tsv_entries(text)
    assert found is None or all(re.search(TERM_PATTERN, k) and re.search(TERM_PATTERN, v) for k, v in found.items())


def test_rules_key_changes_with_the_glossary():
    from mt.terms import DEFAULT_TERMS, NO_TERMS, TermRules

    assert rules_key(None) == rules_key(DEFAULT_TERMS) == ""
    keys = {rules_key(NO_TERMS), rules_key(TermRules({"a": "b"})), rules_key(TermRules({"a": "c"})),
            rules_key(TermRules({"a": "b"}, protect=False))}
    assert len(keys) == 4 and "" not in keys
    assert check_entries({"a ": " b"}) == {"a": "b"}
