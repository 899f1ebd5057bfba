"""mt.cache against real SQLite files: threads, processes, eviction, and every way the file can
go bad (the cache must then warn once and step aside, never raise)."""

import multiprocessing
import os
import sqlite3
import stat
import threading
import time
import warnings
from pathlib import Path

import pytest

from mounts import remount_read_only, tmpfs
from mt.cache import (
    SCHEMA_VERSION,
    CacheWarning,
    NullCache,
    SentenceCache,
    default_cache_path,
    open_cache,
)

NS = "Helsinki-NLP/opus-mt-vi-en@rev1|ct2-int8|beam=4,a=1.5,b=10"
NS_OTHER = "Helsinki-NLP/opus-mt-vi-en@rev1|ct2-int8|beam=1,a=1.5,b=10"
VI = [
    "Tôi yêu Hà Nội.",
    "Hôm nay trời đẹp quá!",
    "Thủ tướng đã phát biểu tại hội nghị.",
]
EN = ["I love Hanoi.", "The weather is so nice today!", "The prime minister spoke at the conference."]

no_cache_warnings = pytest.mark.filterwarnings("error::mt.cache.CacheWarning")


def pairs(prefix: str, count: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"{prefix} câu số {i}.", f"{prefix} sentence {i}.") for i in range(start, start + count)]


def raw_count(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]


@pytest.fixture
def cache(tmp_path):
    with open_cache(tmp_path / "cache.sqlite") as opened:
        yield opened


def writes_blocked(path: Path) -> bool:
    """chmod does not stop root (or CAP_DAC_OVERRIDE): find out honestly by trying."""
    try:
        with open(path, "ab"):
            return False
    except PermissionError:
        return True


# ---------------------------------------------------------------- basic behaviour


@no_cache_warnings
def test_round_trip(cache):
    assert cache.get_many(NS, VI) == {}
    cache.put_many(NS, list(zip(VI, EN)))
    assert cache.get_many(NS, VI) == dict(zip(VI, EN))
    assert cache.get_many(NS, [VI[1], "chưa dịch"]) == {VI[1]: EN[1]}
    cache.put_many(NS, [(VI[0], "I really love Hanoi.")])  # a re-translation replaces
    assert cache.get_many(NS, [VI[0]]) == {VI[0]: "I really love Hanoi."}
    cache.put_many(NS, [])
    assert cache.get_many(NS, []) == {}
    assert isinstance(cache, SentenceCache) and cache.path.name == "cache.sqlite"


@no_cache_warnings
def test_namespaces_isolate(cache):
    cache.put_many(NS, [(VI[0], "beam four")])
    cache.put_many(NS_OTHER, [(VI[0], "greedy")])
    assert cache.get_many(NS, [VI[0]]) == {VI[0]: "beam four"}
    assert cache.get_many(NS_OTHER, [VI[0]]) == {VI[0]: "greedy"}
    assert cache.get_many("another/model@rev", [VI[0]]) == {}
    # No ambiguity in how namespace and source are joined.
    cache.put_many("a\0b", [("c", "one")])
    assert cache.get_many("a", ["b\0c"]) == {}
    assert cache.stats()["namespaces"] == {NS: 1, NS_OTHER: 1, "a\0b": 1}


@no_cache_warnings
def test_unicode_round_trips_exactly(cache):
    texts = [
        "Việt Nam — đất nước hình chữ S.",
        "Hoà bình, thuỷ lợi",  # old-style tone placement is a different key from the new one
        "Hòa bình, thủy lợi",
        "Tie\u0302\u0301ng Vie\u0323\u0302t",  # decomposed (NFD) stays as given
        "emoji 🇻🇳👍 and CJK 漢字, RTL עברית",
        "tab\tnew\nline and NUL\0inside",
        "",
    ]
    cache.put_many(NS, [(t, f"<{t}>") for t in texts])
    assert cache.get_many(NS, texts) == {t: f"<{t}>" for t in texts}
    assert len(cache.get_many(NS, ["Hoà bình, thuỷ lợi", "Hòa bình, thủy lợi"])) == 2

    # Text SQLite cannot store (lone surrogates) is skipped, never an error.
    cache.put_many(NS, [("bad \udcff source", "x"), ("good", "bad \ud800 translation"), ("ok", "fine")])
    assert cache.get_many(NS, ["bad \udcff source", "good", "ok"]) == {"ok": "fine"}


@no_cache_warnings
def test_get_many_2000_keys_is_chunked(cache):
    data = pairs("khóa", 2000)
    cache.put_many(NS, data)
    sources = [s for s, _ in data] + [f"thiếu {i}" for i in range(700)]
    found = cache.get_many(NS, sources)
    assert found == dict(data)
    stats = cache.stats()
    assert stats["entries"] == 2000 and stats["hits"] == 2000 and stats["misses"] == 700


@no_cache_warnings
def test_lru_eviction_keeps_recently_used(tmp_path):
    cache = open_cache(tmp_path / "lru.sqlite", max_entries=10)
    for source, translation in pairs("s", 10):  # s0 oldest ... s9 newest
        cache.put_many(NS, [(source, translation)])
    recently = [s for s, _ in pairs("s", 3)]
    assert len(cache.get_many(NS, recently)) == 3  # s0..s2 are now the most recently used
    cache.put_many(NS, pairs("s", 1, start=10))  # 11 > 10: evict down to 9
    remaining = cache.get_many(NS, [s for s, _ in pairs("s", 11)])
    assert set(remaining) == {s for s, _ in pairs("s", 11)} - {"s câu số 3.", "s câu số 4."}
    assert cache.stats()["entries"] == 9

    # A large batch stays bounded too.
    cache.put_many(NS_OTHER, pairs("big", 50))
    assert cache.stats()["entries"] <= 10
    cache.close()


@no_cache_warnings
def test_max_entries_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MT_CACHE_MAX_ENTRIES", "5")
    cache = open_cache(tmp_path / "env.sqlite")
    assert cache.max_entries == 5
    cache.put_many(NS, pairs("e", 8))
    assert cache.stats()["entries"] <= 5
    assert open_cache(tmp_path / "env.sqlite", max_entries=7).max_entries == 7


def test_bad_max_entries_environment_is_one_error_naming_it(tmp_path, monkeypatch):
    from mt.errors import ConfigError

    monkeypatch.setenv("MT_CACHE_MAX_ENTRIES", "lots")
    with pytest.raises(ConfigError, match=r"^MT_CACHE_MAX_ENTRIES: must be a whole number of at least 1, not 'lots'$"):
        open_cache(tmp_path / "env.sqlite")
    monkeypatch.delenv("MT_CACHE_MAX_ENTRIES")
    with pytest.raises(ValueError):
        open_cache(tmp_path / "env.sqlite", max_entries=0)


@no_cache_warnings
def test_hits_on_newest_rows_do_not_write(cache):
    """Reads stay reads: touching only happens when a hit is not already the newest row."""
    cache.put_many(NS, pairs("old", 3))
    cache.put_many(NS, pairs("new", 3))
    with sqlite3.connect(cache.path) as observer:
        version = observer.execute("PRAGMA data_version").fetchone()[0]
        assert len(cache.get_many(NS, [s for s, _ in pairs("new", 3)])) == 3
        assert observer.execute("PRAGMA data_version").fetchone()[0] == version
        assert len(cache.get_many(NS, [s for s, _ in pairs("old", 3)])) == 3
        assert observer.execute("PRAGMA data_version").fetchone()[0] != version


@no_cache_warnings
def test_stats_counts(cache):
    cache.put_many(NS, pairs("a", 4))
    cache.put_many(NS_OTHER, pairs("b", 2))
    cache.get_many(NS, [s for s, _ in pairs("a", 6)])  # 4 hits, 2 misses
    cache.get_many(NS_OTHER, ["x", "x", "y"])  # duplicates count once: 2 misses
    stats = cache.stats()
    assert stats["enabled"] and stats["writable"] and stats["error"] is None
    assert stats["path"] == str(cache.path)
    assert stats["entries"] == 6
    assert stats["namespaces"] == {NS: 4, NS_OTHER: 2}
    assert stats["hits"] == 4 and stats["misses"] == 4
    assert stats["max_entries"] == 1_000_000
    assert stats["bytes"] > 0 and stats["schema_version"] == SCHEMA_VERSION


@no_cache_warnings
def test_hits_and_misses_are_counted_per_file(tmp_path):
    """`mt cache stats` runs in a process of its own: it reads the counts every process saved."""
    path = tmp_path / "cache.sqlite"
    first = open_cache(path)
    first.put_many(NS, pairs("a", 4))
    first.get_many(NS, [s for s, _ in pairs("a", 6)])  # 4 hits, 2 misses
    first.close()  # saved on close
    second = open_cache(path)
    second.get_many(NS, [s for s, _ in pairs("a", 1)])  # 1 hit, not saved yet
    stats_process = multiprocessing.get_context("spawn").Pool(1)
    try:
        other = stats_process.apply(_stats_of, (str(path),))
    finally:
        stats_process.close()
        stats_process.join()
    assert (other["hits"], other["misses"]) == (4, 2)
    assert (second.stats()["hits"], second.stats()["misses"]) == (5, 2)  # stats() saves its own
    second.close()
    assert (open_cache(path).stats()["hits"], open_cache(path).stats()["misses"]) == (5, 2)


def _stats_of(path: str) -> dict:
    return open_cache(path).stats()


@no_cache_warnings
def test_clear_reports_sentences_not_links_or_quality(cache):
    cache.put_many(NS, pairs("a", 13))
    cache.put_many(NS + "|links", [(f'["{s}", "{t}"]', "{}") for s, t in pairs("a", 13)])
    cache.put_many(NS + "|quality:e5-small:1", [(f'["{s}", "{t}"]', "{}") for s, t in pairs("a", 13)])
    cache.put_many(NS + "|confidence", [(f'["{s}", "{t}"]', "0.5") for s, t in pairs("a", 13)])
    cache.get_many(NS, ["a câu số 0."])
    stats = cache.stats()
    assert stats["entries"] == 52
    assert stats["kinds"] == {"sentences": 13, "links": 13, "quality": 13, "confidence": 13}
    assert cache.clear() == 13
    stats = cache.stats()
    assert stats["entries"] == 0 and stats["hits"] == 0 and stats["kinds"]["sentences"] == 0


@no_cache_warnings
def test_clear(cache):
    cache.put_many(NS, pairs("a", 30))
    cache.put_many(NS_OTHER, pairs("b", 20))
    assert cache.clear() == 50
    assert cache.get_many(NS, [s for s, _ in pairs("a", 30)]) == {}
    assert cache.stats()["entries"] == 0 and cache.stats()["namespaces"] == {}
    assert cache.clear() == 0
    cache.put_many(NS, pairs("c", 2))  # still usable afterwards
    assert len(cache.get_many(NS, [s for s, _ in pairs("c", 2)])) == 2


@no_cache_warnings
def test_persists_across_reopen(tmp_path):
    path = tmp_path / "deep" / "er" / "cache.sqlite"  # parents are created
    first = open_cache(path)
    first.put_many(NS, list(zip(VI, EN)))
    first.close()
    assert first.get_many(NS, VI) == {}  # closed: behaves like no cache
    first.put_many(NS, [("after", "close")])
    second = open_cache(path)
    assert second.get_many(NS, VI) == dict(zip(VI, EN))
    assert second.get_many(NS, ["after"]) == {}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        rows = conn.execute(
            "SELECT n.name, e.source, e.translation FROM entries e JOIN namespaces n ON n.id = e.ns"
        ).fetchall()
    assert sorted(rows) == sorted((NS, v, e) for v, e in zip(VI, EN))  # inspectable by hand
    second.close()


def test_default_cache_path(monkeypatch, tmp_path):
    monkeypatch.setenv("MT_CACHE", str(tmp_path / "explicit.sqlite"))
    assert default_cache_path() == tmp_path / "explicit.sqlite"
    monkeypatch.delenv("MT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_path() == tmp_path / "xdg" / "mt-vi-en" / "translations.sqlite"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / ".cache" / "mt-vi-en" / "translations.sqlite"
    monkeypatch.setenv("MT_CACHE", str(tmp_path / "via-env.sqlite"))
    cache = open_cache()
    assert cache.path == tmp_path / "via-env.sqlite"
    cache.put_many(NS, [("a", "b")])
    assert (tmp_path / "via-env.sqlite").exists()


# ---------------------------------------------------------------- concurrency


def _process_worker(path: str, me: str, other: str, barrier) -> None:
    """One batch process: writes its 500 entries in batches while reading the other's."""
    warnings.simplefilter("error", CacheWarning)  # any degradation fails the test
    cache = open_cache(path)
    barrier.wait()
    mine, theirs = pairs(me, 500), [s for s, _ in pairs(other, 500)]
    seen = 0
    for start in range(0, 500, 20):
        cache.put_many(NS, mine[start:start + 20])
        seen = max(seen, len(cache.get_many(NS, theirs)))
        assert cache.get_many(NS, [s for s, _ in mine[:start + 20]]) == dict(mine[:start + 20])
    cache.close()


@pytest.mark.timeout(120)
def test_two_processes_write_and_read_concurrently(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    context = multiprocessing.get_context("spawn")  # independent interpreters, like two CLI runs
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_process_worker, args=(path, "P1", "P2", barrier)),
        context.Process(target=_process_worker, args=(path, "P2", "P1", barrier)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(100)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        cache = open_cache(path)
        expected = dict(pairs("P1", 500) + pairs("P2", 500))
        assert cache.get_many(NS, list(expected)) == expected
        assert cache.stats()["entries"] == 1000


def _forked_child(cache: SentenceCache) -> None:
    warnings.simplefilter("error", CacheWarning)
    assert cache.get_many(NS, [VI[0]]) == {VI[0]: EN[0]}
    cache.put_many(NS, [("from child", "written by the child")])


@no_cache_warnings
@pytest.mark.timeout(60)
def test_instance_inherited_through_fork(cache):
    """A forked worker must not reuse the parent's SQLite connection (SQLite forbids it)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    cache.put_many(NS, [(VI[0], EN[0])])
    child = multiprocessing.get_context("fork").Process(target=_forked_child, args=(cache,))
    child.start()
    child.join(50)
    assert child.exitcode == 0
    assert cache.get_many(NS, ["from child", VI[0]]) == {"from child": "written by the child", VI[0]: EN[0]}


def _forked_child_of_busy_cache(cache: SentenceCache) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.get_many(NS, [VI[0]]) == {}
        cache.put_many(NS, [("from child", "never stored")])
        assert cache.stats()["error"].startswith("forked")
    assert [w.category for w in caught] == [CacheWarning]


@no_cache_warnings
@pytest.mark.timeout(60)
def test_fork_while_another_thread_uses_the_cache(cache):
    """The connection in use cannot be closed before the fork, so the child's copy steps aside."""
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    cache.put_many(NS, [(VI[0], EN[0])])
    in_use, release = threading.Event(), threading.Event()

    def hold_connection() -> None:
        with cache._using():  # what a thread mid-query looks like
            in_use.set()
            release.wait(30)

    holder = threading.Thread(target=hold_connection)
    holder.start()
    in_use.wait(10)
    try:
        child = multiprocessing.get_context("fork").Process(target=_forked_child_of_busy_cache, args=(cache,))
        child.start()
        child.join(50)
    finally:
        release.set()
        holder.join(10)
    assert child.exitcode == 0
    assert cache.get_many(NS, [VI[0], "from child"]) == {VI[0]: EN[0]}  # the parent is unaffected


@no_cache_warnings
@pytest.mark.timeout(120)
@pytest.mark.parametrize("max_entries", [None, 300])
def test_eight_threads_share_one_cache(tmp_path, max_entries):
    cache = open_cache(tmp_path / "threads.sqlite", max_entries=max_entries)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(index: int) -> None:
        try:
            start.wait()
            mine = pairs(f"T{index}", 200)
            others = [s for j in range(8) if j != index for s, _ in pairs(f"T{j}", 200)]
            for offset in range(0, 200, 25):
                cache.put_many(NS, mine[offset:offset + 25])
                cache.put_many(NS_OTHER, [("chung", f"shared by {index}")])
                found = cache.get_many(NS, [s for s, _ in mine[offset:offset + 25]])
                if max_entries is None:
                    assert found == dict(mine[offset:offset + 25])
                cache.get_many(NS, others)
                cache.stats()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(100)
    assert not errors, errors
    everything = {s: t for i in range(8) for s, t in pairs(f"T{i}", 200)}
    if max_entries is None:
        assert cache.get_many(NS, list(everything)) == everything
        assert cache.stats()["entries"] == 1601
    else:
        assert cache.stats()["entries"] <= max_entries
    assert cache.get_many(NS_OTHER, ["chung"])["chung"].startswith("shared by ")
    cache.close()


# ---------------------------------------------------------------- degrading, never failing


def assert_behaves_like_no_cache(cache) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # warned once already: no more
        cache.put_many(NS, list(zip(VI, EN)))
        assert cache.get_many(NS, VI) == {}
        assert cache.clear() == 0
        stats = cache.stats()
        assert stats["enabled"] is False and stats["entries"] == 0 and stats["error"]


def test_corrupt_file_before_opening(tmp_path):
    path = tmp_path / "cache.sqlite"
    garbage = os.urandom(64 * 1024)
    path.write_bytes(garbage)
    with pytest.warns(CacheWarning, match="damaged"):
        cache = open_cache(path)
    assert_behaves_like_no_cache(cache)
    assert path.read_bytes() == garbage  # never "repaired" behind the user's back


def test_corrupt_file_after_opening(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = open_cache(path)
    cache.put_many(NS, pairs("a", 200))
    assert len(cache.get_many(NS, [s for s, _ in pairs("a", 200)])) == 200
    # Move everything into the main file, then overwrite it while the cache holds it open.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path.write_bytes(os.urandom(path.stat().st_size))
    with pytest.warns(CacheWarning, match="damaged"):
        assert cache.get_many(NS, [s for s, _ in pairs("a", 200)]) == {}
    assert_behaves_like_no_cache(cache)


def test_truncated_file_after_opening(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = open_cache(path)
    cache.put_many(NS, pairs("a", 500))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with open(path, "r+b") as handle:
        handle.truncate(8192)  # header intact, most pages gone
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cache.get_many(NS, [s for s, _ in pairs("a", 500)])  # must not raise
        cache.put_many(NS, pairs("b", 500))
        cache.stats()
    assert all(issubclass(w.category, CacheWarning) for w in caught)


def test_foreign_sqlite_database_is_left_alone(tmp_path):
    path = tmp_path / "someone-elses.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
    conn.close()
    before = path.read_bytes()
    with pytest.warns(CacheWarning, match="does not belong"):
        cache = open_cache(path)
    assert_behaves_like_no_cache(cache)
    cache.close()
    assert path.read_bytes() == before


def test_newer_schema_is_left_alone_older_is_rebuilt(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = open_cache(path)
    cache.put_many(NS, [(VI[0], EN[0])])
    cache.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.warns(CacheWarning, match="newer version"):
        newer = open_cache(path)
    assert_behaves_like_no_cache(newer)
    newer.close()

    with sqlite3.connect(path) as conn:  # an older layout of ours (application_id kept)
        conn.execute("DROP TABLE entries")
        conn.execute("CREATE TABLE entries (old_layout TEXT)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    conn.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        rebuilt = open_cache(path)
        rebuilt.put_many(NS, [(VI[1], EN[1])])
        assert rebuilt.get_many(NS, VI) == {VI[1]: EN[1]}


def test_unwritable_directory(tmp_path):
    # Works as root too: nothing can be created under /proc, and a file cannot be a directory.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for path in (Path("/proc/mt-cache-test/cache.sqlite"), blocker / "cache.sqlite"):
        with pytest.warns(CacheWarning, match="cannot be created or opened"):
            cache = open_cache(path)
        assert isinstance(cache, SentenceCache) and cache.path == path
        assert_behaves_like_no_cache(cache)


def check_read_only_cache(path: Path) -> None:
    """An existing cache we cannot write serves its hits, warns once and stores nothing."""
    with pytest.warns(CacheWarning, match="read-only"):
        readonly = open_cache(path)
        assert readonly.get_many(NS, VI) == dict(zip(VI, EN))
        readonly.put_many(NS, [("mới", "new")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)  # once is enough
        readonly.put_many(NS, [("mới nữa", "newer")])
        assert readonly.get_many(NS, ["mới", VI[0]]) == {VI[0]: EN[0]}
        stats = readonly.stats()
        assert stats["enabled"] and stats["writable"] is False and stats["entries"] == 3
        assert stats["hits"] >= 4 and readonly.clear() == 0
    readonly.close()


def fill(path: Path) -> None:
    cache = open_cache(path)
    cache.put_many(NS, list(zip(VI, EN)))
    cache.close()


def test_read_only_file_still_serves_hits(tmp_path):
    path = tmp_path / "cache.sqlite"
    fill(path)
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # 0444
    try:
        if not writes_blocked(path):
            pytest.skip("running with privileges that ignore file permissions (root); "
                        "test_cache_on_a_read_only_mount_serves_hits covers root")
        check_read_only_cache(path)
    finally:
        path.chmod(0o644)


def test_cache_on_a_read_only_mount_serves_hits(tmp_path):
    """A read-only file system stops root too: SQLite cannot create the WAL index there, so the
    file is opened through a read-only URI (here immutable=1) and serves hits."""
    with tmpfs(tmp_path / "mnt") as mount:
        fill(mount / "cache.sqlite")
        remount_read_only(mount)
        check_read_only_cache(mount / "cache.sqlite")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheWarning)
            assert "immutable=1" in open_cache(mount / "cache.sqlite").stats()["error"]


def test_read_only_uri_opens_without_writing(tmp_path):
    """The mode=ro URI (tried before immutable=1) reads a cache and refuses every write."""
    from mt.cache.sqlite_support import read_only_uri

    path = tmp_path / "cache.sqlite"
    fill(path)
    conn = sqlite3.connect(read_only_uri(path, "ro"), uri=True)
    assert conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] == 3
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("DELETE FROM entries")
    conn.close()


def test_read_only_directory(tmp_path):
    directory = tmp_path / "locked"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        if not writes_blocked(directory / "probe"):
            pytest.skip("running with privileges that ignore directory permissions (root); "
                        "see test_unwritable_directory for the case that works as root")
        with pytest.warns(CacheWarning):
            cache = open_cache(directory / "cache.sqlite")
        assert_behaves_like_no_cache(cache)
    finally:
        directory.chmod(0o755)


@pytest.mark.timeout(60)
def test_lock_held_past_timeout_skips_the_call(tmp_path):
    path = tmp_path / "cache.sqlite"
    cache = SentenceCache(path, timeout=0.2)
    cache.put_many(NS, [(VI[0], EN[0])])
    cache.put_many(NS, [(VI[1], EN[1])])
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process mid-write, for too long
    try:
        started = time.monotonic()
        with pytest.warns(CacheWarning, match="lock"):
            cache.put_many(NS, [(VI[2], EN[2])])
        assert time.monotonic() - started < 5
        with warnings.catch_warnings():
            warnings.simplefilter("error", CacheWarning)
            # WAL: readers are not blocked by a writer; the LRU touch is skipped quietly.
            assert cache.get_many(NS, VI) == {VI[0]: EN[0], VI[1]: EN[1]}
            cache.put_many(NS, [(VI[2], EN[2])])  # second time: no second warning
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    cache.put_many(NS, [(VI[2], EN[2])])  # the lock is gone: the cache works again
    assert cache.get_many(NS, VI) == dict(zip(VI, EN))


def test_disk_full_skips_the_write(tmp_path):
    cache = open_cache(tmp_path / "cache.sqlite")
    cache.put_many(NS, [(VI[0], EN[0])])
    # A real SQLITE_FULL: cap this thread's connection at the pages it already has.
    conn = cache._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.warns(CacheWarning, match="full"):
        cache.put_many(NS, [(f"câu dài {i} " + "chữ " * 200, "long") for i in range(200)])
    assert cache.get_many(NS, [VI[0], "câu dài 0 "]) == {VI[0]: EN[0]}
    conn.execute("PRAGMA max_page_count = 1073741823")
    cache.put_many(NS, [(VI[1], EN[1])])  # space again: writes resume
    assert cache.get_many(NS, [VI[1]]) == {VI[1]: EN[1]}


# ---------------------------------------------------------------- NullCache


@no_cache_warnings
def test_null_cache_api(tmp_path):
    null = open_cache(tmp_path / "never-created.sqlite", disabled=True)
    assert isinstance(null, NullCache)
    null.put_many(NS, list(zip(VI, EN)))
    assert null.get_many(NS, VI) == {}
    assert null.clear() == 0
    stats = null.stats()
    assert stats["enabled"] is False and stats["error"] == "disabled"
    assert stats["entries"] == 0 and stats["misses"] == 3 and stats["hits"] == 0
    assert set(stats) <= set(open_cache(tmp_path / "real.sqlite").stats())  # the real one's keys
    with null as same:
        assert same is null
    null.close()
    assert not (tmp_path / "never-created.sqlite").exists()
