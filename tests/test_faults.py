"""Fault suite for the cache under the real pipeline and the real tiny model: a corrupt or
truncated cache file, a read-only and a full file system (real tmpfs mounts, as root), and two
processes writing one cache file at once. Each time the translation goes on, with one warning."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import warnings
from pathlib import Path

import pytest

from mounts import remount_read_only, tmpfs
from mt.cache import CacheWarning, NullCache, open_cache
from mt.pipeline import translate_document

TEXT = ("Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ đẹp.\n\n"
        "Giá xăng tăng mạnh trong tuần này. Người dân lo lắng về chi phí đi lại.")


def article(tag: str, count: int) -> str:
    return " ".join(f"Câu {tag} số {i} nói về thời tiết và kinh tế." for i in range(count))


def run(text: str, engine, cache) -> tuple[list[str], list[bool], list[warnings.WarningMessage]]:
    """Translate through ``cache`` (a cache, or a path opened here); the CacheWarnings seen."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if isinstance(cache, Path):
            cache = open_cache(cache)
        document = translate_document(text, engine, cache, links=False, quality=False)
    return ([p.translation for p in document.sentences], [p.cached for p in document.sentences],
            [w for w in caught if issubclass(w.category, CacheWarning)])


@pytest.fixture(scope="module")
def expected(tiny_engine):
    return run(TEXT, tiny_engine, NullCache())[0]


def test_corrupt_cache_file(tiny_engine, expected, tmp_path):
    path = tmp_path / "cache.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(16_000))
    translations, cached, caught = run(TEXT, tiny_engine, path)
    assert translations == expected and not any(cached)
    assert len(caught) == 1 and "damaged" in str(caught[0].message)


def test_truncated_cache_file(tiny_engine, expected, tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = open_cache(path)
    cache.put_many("filler", [(f"câu {i}", "x" * 200) for i in range(2000)])
    run(TEXT, tiny_engine, cache)
    cache.close()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size // 3)
    translations, _, caught = run(TEXT, tiny_engine, path)
    assert translations == expected
    assert len(caught) == 1 and "damaged" in str(caught[0].message)


def test_cache_on_a_read_only_file_system(tiny_engine, expected, tmp_path):
    with tmpfs(tmp_path / "mnt") as mount:
        path = mount / "cache.sqlite"
        first = open_cache(path)
        assert run(TEXT, tiny_engine, first)[2] == []
        first.close()
        remount_read_only(mount)
        translations, cached, caught = run(TEXT, tiny_engine, path)
        assert translations == expected and all(cached)  # served from the read-only file
        assert len(caught) == 1 and "read-only" in str(caught[0].message)
        # a new cache file cannot be created there at all: no cache, translation goes on
        translations, cached, caught = run(TEXT, tiny_engine, mount / "new.sqlite")
        assert translations == expected and not any(cached) and len(caught) == 1


def test_cache_on_a_full_file_system(tiny_engine, tmp_path):
    with tmpfs(tmp_path / "mnt", size="1m") as mount:
        cache = open_cache(mount / "cache.sqlite")
        with open(mount / "filler", "wb") as filler:  # leave a few pages free
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        os.truncate(mount / "filler", max(0, (mount / "filler").stat().st_size - 8 * 1024))
        text = article("đầy", 200)
        translations, cached, caught = run(text, tiny_engine, cache)
        assert translations == run(text, tiny_engine, NullCache())[0]
        assert 1 <= len(caught) <= 2 and all("full" in str(w.message) or "I/O" in str(w.message)
                                             for w in caught), [str(w.message) for w in caught]
        os.remove(mount / "filler")  # space again: the cache stores and serves
        run(text, tiny_engine, cache)
        assert all(run(text, tiny_engine, cache)[1])


def _translate_in_child(path: str, tag: str, queue) -> None:
    """A forked child: the parent's loaded tiny engine, a cache connection of its own."""
    cache = open_cache(path)
    out = []
    for text in (article(tag, 40), article("chung", 40)):  # its own article, one shared
        document = translate_document(text, _ENGINE, cache, links=False, quality=False)
        out.append([p.translation for p in document.sentences])
    cache.close()
    queue.put((tag, out))


_ENGINE = None


def test_two_processes_write_one_cache_file(tiny_engine, tmp_path):
    global _ENGINE
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs fork to hand the loaded tiny engine to the children")
    _ENGINE = tiny_engine
    path = tmp_path / "cache.sqlite"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_translate_in_child, args=(str(path), tag, queue))
                for tag in ("một", "hai")]
    for child in children:
        child.start()
    results = dict(queue.get(timeout=600) for _ in children)
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    assert results["một"][1] == results["hai"][1]  # the shared article, translated alike
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT COUNT(*) FROM entries JOIN namespaces ON namespaces.id = entries.ns "
                            "WHERE namespaces.name NOT LIKE '%|confidence'").fetchone()[0]  # translations
    conn.close()
    assert rows == 3 * 40  # two own articles and one shared, each sentence once
    translations, cached, caught = run(article("một", 40), tiny_engine, path)
    assert all(cached) and translations == results["một"][0] and caught == []
