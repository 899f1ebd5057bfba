"""`mt batch` under faults (issue #11): full and read-only file systems (real tmpfs mounts),
engine errors, odd directory entries, two runs on the same folders, streaming, file modes.

Real processes and files and the real tiny model throughout; the tmpfs tests need root (CI
runs as root) and skip with the reason where mounting is impossible.
"""

import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from testkit.shared_data import ROOT, iwslt_talks, needs_shared_data

from mt.io.batch_safety import claim_path, walk_inputs, InputFile, Rejected
from mt.io.folder_batch import translate_folder


def run_mt(*args, timeout=600):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, "-m", "mt", *map(str, args)], capture_output=True, cwd=ROOT,
                          env=env, timeout=timeout)


def start_mt(*args):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    return subprocess.Popen([sys.executable, "-m", "mt", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_articles(folder: Path, count: int, lines: int = 3) -> list[Path]:
    """``count`` articles of ``lines`` real Vietnamese TED sentences each (IWSLT15 dev2010)."""
    talks = iwslt_talks("dev2010")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        talk = talks[number % len(talks)]
        start = (number // len(talks)) * lines
        path = folder / f"talk{number:02d}.txt"
        path.write_text(" ".join(talk[start : start + lines]) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def done_names(out_dir: Path) -> set[str]:
    return {path.name[: -len(".en.txt")] for path in out_dir.rglob("*.en.txt")}


def assert_complete(out_dir: Path, names) -> None:
    """Each named article has all three outputs, whole (the JSONL parses, the TMX is closed)."""
    for name in names:
        records = [json.loads(line) for line in (out_dir / f"{name}.jsonl").read_text().splitlines()]
        assert records and all(record["translation"] for record in records)
        assert (out_dir / f"{name}.tmx").read_text().endswith("</tmx>\n")
    assert not list(out_dir.rglob("*.part")), "a half-written file was left behind"
    assert not list(out_dir.rglob(".*.claim")), "a claim outlived its run"


def summary_counts(stderr: str) -> dict[str, int]:
    line = next(line for line in stderr.splitlines() if line.startswith("files: "))
    return {key: int(value) for value, key in re.findall(r"(\d+) (translated|already done|failed|being)", line)}


@contextmanager
def tmpfs(path: Path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True, capture_output=True)


@needs_shared_data("iwslt15")
def test_full_file_system_names_failed_articles_and_resumes(tiny_model_dir, tmp_path):
    in_dir, cache = tmp_path / "in", tmp_path / "c.sqlite"
    make_articles(in_dir, 10)
    with tmpfs(tmp_path / "out", "64k") as out_dir:  # 3 files per article, 4 KiB pages: 5 articles at most
        first = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--cache", cache, "--quiet")
        stderr = first.stderr.decode()
        assert first.returncode == 1, stderr
        assert "Traceback" not in stderr
        counts = summary_counts(stderr)
        assert counts["failed"] >= 1 and counts["translated"] + counts["failed"] == 10, stderr
        assert "No space left on device" in stderr
        finished = done_names(out_dir)
        assert len(finished) == counts["translated"]
        for name in {f"talk{n:02d}" for n in range(10)} - finished:
            assert f"failed: {name}.txt: cannot write" in stderr
            assert not list(out_dir.glob(f"{name}.*")), "partial outputs of a failed article stay behind"
        assert_complete(out_dir, finished)

        remount(out_dir, "size=8m")
        again = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--cache", cache, "--quiet")
        assert again.returncode == 0, again.stderr.decode()
        assert summary_counts(again.stderr.decode())["already done"] == len(finished)
        assert_complete(out_dir, {f"talk{n:02d}" for n in range(10)})


@needs_shared_data("iwslt15")
def test_read_only_output_folder_fails_each_article_cleanly(tiny_model_dir, tmp_path):
    in_dir = tmp_path / "in"
    make_articles(in_dir, 3)
    with tmpfs(tmp_path / "out", "1m") as out_dir:
        remount(out_dir, "ro")
        result = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--no-cache", "--quiet")
        stderr = result.stderr.decode()
        assert result.returncode == 1, stderr
        assert "Traceback" not in stderr
        assert summary_counts(stderr) == {"translated": 0, "already done": 0, "failed": 3}
        assert stderr.count("Read-only file system") == 3
        assert all(f"failed: talk{n:02d}.txt" in stderr for n in range(3))


@needs_shared_data("iwslt15")
def test_output_folder_equal_to_or_containing_input_is_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "articles"
    make_articles(folder, 1)
    for out_dir in (folder, tmp_path, folder / ".."):
        result = run_mt("batch", folder, out_dir, "--model", tiny_model_dir, "--no-cache", "--quiet")
        stderr = result.stderr.decode()
        assert result.returncode == 2, stderr
        assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("mt: error: ")
        assert "output folder" in stderr
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["talk00.txt"]
    # the supported layout: OUT_DIR inside IN_DIR (its outputs are left out of the listing)
    inside = run_mt("batch", folder, folder / "en", "--model", tiny_model_dir, "--no-cache", "--quiet")
    assert inside.returncode == 0, inside.stderr.decode()
    assert summary_counts(inside.stderr.decode())["translated"] == 1


def odd_entries(in_dir: Path, outside: Path) -> None:
    """A good article, a link inside IN_DIR, and every kind of entry that must not be read."""
    make_articles(in_dir, 1)
    (in_dir / "real").mkdir()
    (in_dir / "real" / "kept.txt").write_text("Xin chào các bạn.\n", encoding="utf-8")
    (in_dir / "inside-link.txt").symlink_to(in_dir / "real" / "kept.txt")
    outside.write_text("Bí mật ở ngoài thư mục.\n", encoding="utf-8")
    (in_dir / "outside-link.txt").symlink_to(outside)
    (in_dir / "dangling.txt").symlink_to(in_dir / "gone.txt")
    (in_dir / "loop.txt").symlink_to(in_dir / "loop.txt")
    os.mkfifo(in_dir / "pipe.txt")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(in_dir / "sock.txt"))
    server.close()
    (in_dir / "linked-folder").symlink_to(in_dir / "real", target_is_directory=True)
    (in_dir / "notes.bin").write_bytes(b"\x00\x01")  # not an article's extension: not listed
    if os.geteuid() == 0:
        os.mknod(in_dir / "device.txt", 0o600 | 0o020000, os.makedev(1, 3))  # like /dev/null


@needs_shared_data("iwslt15")
def test_listing_reads_only_regular_files_inside_the_input_folder(tmp_path):
    in_dir = tmp_path / "in"
    odd_entries(in_dir, tmp_path / "secret.txt")
    listed = {entry.name: entry for entry in walk_inputs(in_dir, tmp_path / "out", (".txt",))}
    read = {name for name, entry in listed.items() if isinstance(entry, InputFile)}
    assert read == {"talk00.txt", "real/kept.txt", "inside-link.txt"}
    assert listed["inside-link.txt"].path == (in_dir / "real" / "kept.txt").resolve()
    reasons = {name: entry.reason for name, entry in listed.items() if isinstance(entry, Rejected)}
    assert "outside the input folder" in reasons["outside-link.txt"]
    assert "dangling" in reasons["dangling.txt"] and "dangling" in reasons["loop.txt"]
    assert "a FIFO" in reasons["pipe.txt"] and "a socket" in reasons["sock.txt"]
    if os.geteuid() == 0:
        assert "a device" in reasons["device.txt"]
    assert list(listed) == sorted(listed), "sorted path order"


@needs_shared_data("iwslt15")
def test_batch_reports_odd_entries_and_never_blocks_on_a_fifo(tiny_model_dir, tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    odd_entries(in_dir, tmp_path / "secret.txt")
    result = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--no-cache", "--quiet", timeout=300)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    for name in ("outside-link.txt", "dangling.txt", "loop.txt", "pipe.txt", "sock.txt"):
        assert f"failed: {name}: " in stderr
    assert summary_counts(stderr)["translated"] == 3
    assert (out_dir / "inside-link.en.txt").exists() and (out_dir / "real" / "kept.en.txt").exists()
    assert not (out_dir / "outside-link.jsonl").exists()
    assert "Bí mật" not in "".join(p.read_text() for p in out_dir.rglob("*.jsonl"))


@needs_shared_data("iwslt15")
def test_two_runs_on_the_same_folders_translate_each_article_once(tiny_model_dir, tmp_path):
    in_dir, out_dir, cache = tmp_path / "in", tmp_path / "out", tmp_path / "c.sqlite"
    make_articles(in_dir, 12, lines=12)
    args = ("batch", in_dir, out_dir, "--model", tiny_model_dir, "--cache", cache, "--quiet")
    first = start_mt(*args)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(out_dir.glob(".*.claim")) and first.poll() is None:
        time.sleep(0.02)
    second = start_mt(*args)  # starts while the first is mid-run
    outcomes = [(process.wait(timeout=600), process.stderr.read().decode()) for process in (first, second)]
    for code, stderr in outcomes:
        assert code == 0, stderr
    counts = [summary_counts(stderr) for _, stderr in outcomes]
    assert sum(c["translated"] for c in counts) == 12, outcomes
    assert_complete(out_dir, {f"talk{n:02d}" for n in range(12)})


@needs_shared_data("iwslt15")
def test_live_claim_is_left_alone_and_a_dead_ones_is_taken_over(tiny_engine, tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_articles(in_dir, 3)
    out_dir.mkdir()
    holder = (  # another "run": holds talk00's claim as mt batch would, until killed
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(600)")
    live = subprocess.Popen([sys.executable, "-c", holder, str(claim_path(out_dir / "talk00"))],
                            stdout=subprocess.PIPE)
    dead = subprocess.Popen([sys.executable, "-c", holder, str(claim_path(out_dir / "talk01"))],
                            stdout=subprocess.PIPE)
    try:
        assert live.stdout.readline() == b"held\n" and dead.stdout.readline() == b"held\n"
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        summary = translate_folder(in_dir, out_dir, tiny_engine, None, progress=False)
        assert (summary.translated, summary.claimed, summary.failed) == (2, 1, [])
        assert "1 being translated by another run" in summary.describe()
        assert done_names(out_dir) == {"talk01", "talk02"}
        assert claim_path(out_dir / "talk00").exists() and not claim_path(out_dir / "talk01").exists()
    finally:
        live.kill()
        live.wait()
    summary = translate_folder(in_dir, out_dir, tiny_engine, None, progress=False)
    assert (summary.translated, summary.skipped, summary.claimed) == (1, 2, 0)


class FailingEngine:
    """The real tiny engine, except that any batch holding the word ``SỰ_CỐ`` raises, as a model
    runtime error (out of memory, a CUDA fault) would."""

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def translate(self, sentences, settings=None):
        if any("SỰ_CỐ" in sentence for sentence in sentences):
            raise RuntimeError("model runtime failed")
        return self.engine.translate(sentences, settings)


@needs_shared_data("iwslt15")
def test_engine_error_names_the_article_and_the_run_goes_on(tiny_engine, tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_articles(in_dir, 2)
    (in_dir / "bad.txt").write_text("Câu này gây SỰ_CỐ cho mô hình.\n", encoding="utf-8")
    summary = translate_folder(in_dir, out_dir, FailingEngine(tiny_engine), None, progress=False)
    assert summary.translated == 2
    assert summary.failed == [("bad.txt", "RuntimeError: model runtime failed")]
    assert done_names(out_dir) == {"talk00", "talk01"} and not list(out_dir.glob("bad*"))


@needs_shared_data("iwslt15")
def test_outputs_honour_the_umask(tiny_engine, tmp_path):
    make_articles(tmp_path / "in", 1)
    previous = os.umask(0o027)
    try:
        translate_folder(tmp_path / "in", tmp_path / "out", tiny_engine, None, progress=False)
    finally:
        os.umask(previous)
    modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "out").iterdir()}
    assert modes == {"talk00.jsonl": 0o640, "talk00.tmx": 0o640, "talk00.en.txt": 0o640, "talk00.meta": 0o640}


class EditingEngine(FailingEngine):
    """The real tiny engine; on its first call it rewrites the folder's last article, as a user
    could while a long run is under way."""

    def __init__(self, engine, last: Path):
        super().__init__(engine)
        self.last, self.edited = last, False

    def translate(self, sentences, settings=None):
        if not self.edited:
            self.last.write_text("Bài này đã được sửa trong khi chạy.\n", encoding="utf-8")
            self.edited = True
        return self.engine.translate(sentences, settings)


@needs_shared_data("iwslt15")
def test_folder_is_streamed_and_each_article_segmented_once(tiny_engine, tmp_path, monkeypatch):
    """An article is read when its turn comes (the last one, edited after the run began, is
    translated as edited) and segmented once (by the pipeline; no counting pass)."""
    import mt.pipeline

    calls = []
    real_split = mt.pipeline.split_sentences
    monkeypatch.setattr(mt.pipeline, "split_sentences", lambda text, *more: calls.append(1) or real_split(text, *more))
    paths = make_articles(tmp_path / "in", 5)
    summary = translate_folder(tmp_path / "in", tmp_path / "out", EditingEngine(tiny_engine, paths[-1]), None,
                               progress=False)
    assert summary.translated == 5 and len(calls) == 5
    last = [json.loads(line) for line in (tmp_path / "out" / "talk04.jsonl").read_text().splitlines()]
    assert [record["source"] for record in last] == ["Bài này đã được sửa trong khi chạy."]


def test_two_inputs_with_one_output_name_are_not_overwritten(tiny_engine, tmp_path):
    """a.html and a.txt would both write a.jsonl and a.tmx: the second is named, never overwrites."""
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    in_dir.mkdir()
    (in_dir / "a.txt").write_text("Xin chào các bạn.\n", encoding="utf-8")
    (in_dir / "a.html").write_text("<p>Hôm nay trời đẹp.</p>", encoding="utf-8")
    summary = translate_folder(in_dir, out_dir, tiny_engine, None, progress=False)
    assert summary.translated == 1
    assert [name for name, _ in summary.failed] == ["a.txt"]
    assert "would overwrite those of a.html" in summary.failed[0][1]
    assert (out_dir / "a.en.html").exists() and not (out_dir / "a.en.txt").exists()
    records = [json.loads(line) for line in (out_dir / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert records and "trời" in records[0]["source"]


def corpus_of_talks(path: Path, count: int) -> list[str]:
    """A corpus .jsonl of ``count`` lines of real Vietnamese TED sentences (IWSLT15 dev2010)."""
    texts = [path.read_text(encoding="utf-8").strip() for path in make_articles(path.parent / "talks", count)]
    path.write_text("".join(json.dumps({"id": f"talk{n:02d}", "text": text}, ensure_ascii=False) + "\n"
                            for n, text in enumerate(texts)), encoding="utf-8")
    return texts


class CorpusEditingEngine(FailingEngine):
    """The real tiny engine; on its first call it rewrites the corpus's last line (to a longer
    text), as a user could while a long run is under way, and it notes how many corpus texts
    had been read at each call."""

    def __init__(self, engine, corpus: Path, reads: list, new_last: str):
        super().__init__(engine)
        self.corpus, self.reads, self.new_last = corpus, reads, new_last
        self.reads_at_call: list[int] = []

    def translate(self, sentences, settings=None):
        if not self.reads_at_call:
            lines = self.corpus.read_text(encoding="utf-8").splitlines(keepends=True)
            lines[-1] = self.new_last
            self.corpus.write_text("".join(lines), encoding="utf-8")
        self.reads_at_call.append(len(self.reads))
        return self.engine.translate(sentences, settings)


@needs_shared_data("iwslt15")
def test_corpus_is_streamed_and_each_line_read_when_its_turn_comes(tiny_engine, tmp_path, monkeypatch):
    """No whole-corpus read: the listing keeps offsets, the i-th text is read only after the
    (i-1)-th is translated, each segmented once, and the last line (edited to a longer one after
    the run began) is translated as edited."""
    import mt.io.folder_batch
    import mt.pipeline

    corpus = tmp_path / "corpus.jsonl"
    corpus_of_talks(corpus, 5)
    reads, real_read = [], mt.io.folder_batch.read_corpus_text
    monkeypatch.setattr(mt.io.folder_batch, "read_corpus_text",
                        lambda *args: reads.append(args[1].name) or real_read(*args))
    splits, real_split = [], mt.pipeline.split_sentences
    monkeypatch.setattr(mt.pipeline, "split_sentences", lambda text, *more: splits.append(1) or real_split(text, *more))
    edited = "Bài này đã được sửa trong khi chạy, và dài hơn nhiều so với dòng cũ của nó."
    engine = CorpusEditingEngine(tiny_engine, corpus, reads,
                                 json.dumps({"id": "talk04", "text": edited}, ensure_ascii=False) + "\n")
    summary = translate_folder(corpus, tmp_path / "out", engine, None, progress=False)
    assert (summary.translated, summary.failed) == (5, [])
    assert reads == [f"talk{n:02d}" for n in range(5)] and len(splits) == 5
    assert sorted(set(engine.reads_at_call)) == [1, 2, 3, 4, 5]  # one text read ahead of the engine, never more
    assert engine.reads_at_call == sorted(engine.reads_at_call)
    last = [json.loads(line) for line in (tmp_path / "out" / "talk04.jsonl").read_text().splitlines()]
    assert [record["source"] for record in last] == [edited]


@needs_shared_data("iwslt15")
def test_corpus_changed_under_the_run_is_named_not_misread(tiny_engine, tmp_path):
    """An earlier line grown since the listing shifts every later offset: those lines are named
    (the corpus changed), never translated from the wrong bytes or under the wrong id."""
    corpus = tmp_path / "corpus.jsonl"
    texts = corpus_of_talks(corpus, 3)

    class GrowingFirstLine(FailingEngine):
        grown = False

        def translate(self, sentences, settings=None):
            if not self.grown:
                lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
                lines[0] = json.dumps({"id": "talk00", "text": texts[0] + " Thêm một câu."}, ensure_ascii=False) + "\n"
                corpus.write_text("".join(lines), encoding="utf-8")
                self.grown = True
            return self.engine.translate(sentences, settings)

    summary = translate_folder(corpus, tmp_path / "out", GrowingFirstLine(tiny_engine), None, progress=False)
    assert summary.translated == 1
    # the lazy listing, reading on past its old end, meets the grown tail (bytes cut mid-line) as a line
    # of its own: named too
    assert [name for name, _ in summary.failed] == ["talk01", "talk02", "corpus.jsonl:4"]
    assert all(reason.startswith("the corpus changed since it was listed") for _, reason in summary.failed[:2])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "talk00.en.txt", "talk00.jsonl", "talk00.meta", "talk00.tmx"]
    # rerun: picks them up, and talk00 too: its line changed since it was translated (its marker's hash)
    again = translate_folder(corpus, tmp_path / "out", tiny_engine, None, progress=False)
    assert (again.translated, again.skipped, again.failed) == (3, 0, [])


def test_corpus_faults_are_named_by_line_and_done_lines_skipped(tiny_engine, tmp_path):
    corpus = tmp_path / "c.jsonl"
    lines = [json.dumps({"id": "x/one", "text": "Xin chào các bạn."}, ensure_ascii=False).encode(), b"[1, 2]",
             json.dumps({"id": "x/one", "text": "lặp"}).encode(), json.dumps({"id": "/etc/passwd", "text": "x"}).encode(),
             b'{"id": "two", "text": "\xc3"}', b"   ", json.dumps({"id": 3, "text": "Hôm nay trời đẹp."}).encode()]
    corpus.write_bytes(b"\r\n".join(lines) + b"\r\n")
    first = translate_folder(corpus, tmp_path / "out", tiny_engine, None, progress=False)
    expected = [("c.jsonl:2", 'expected {"id": ..., "text": "..."}'),
                ("c.jsonl:3", "\"id\" 'x/one' repeats an earlier line"),
                ("c.jsonl:4", "\"id\" '/etc/passwd' is not a safe relative file name"),
                ("c.jsonl:5", "not valid UTF-8 (byte 23)")]
    assert (first.translated, first.skipped, first.failed) == (2, 0, expected)
    again = translate_folder(corpus, tmp_path / "out", tiny_engine, None, progress=False)
    assert (again.translated, again.skipped, again.failed) == (0, 2, expected)
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.jsonl")) == [
        "3.jsonl", "x/one.jsonl"]


# -- bounded cost per request (#20): one bad line fails alone; done means "made from this source" --

def test_deep_json_fails_alone_and_long_or_unencodable_ids_get_safe_names(tiny_engine, tmp_path):
    """A 100k-deep JSON line (RecursionError in json.loads) and a deep "meta" field fail alone,
    named by line; an id of 300 characters (over NAME_MAX with its suffixes) and one holding a
    lone surrogate are translated under a shortened name (prefix~hash), the same on every run;
    a folder file whose outputs would be too long is shortened the same way."""
    corpus = tmp_path / "c.jsonl"
    deep = 100_000
    lines = [json.dumps({"id": "first", "text": "Xin chào các bạn."}, ensure_ascii=False),
             json.dumps({"id": "x" * 300, "text": "Hôm nay trời đẹp."}, ensure_ascii=False),
             "[" * deep + "]" * deep,
             '{"id": "meta", "text": "Câu.", "meta": ' + "[" * deep + "]" * deep + "}",
             '{"id": "odd\\ud800", "text": "Tôi đi học."}',
             json.dumps({"id": "last", "text": "Cảm ơn."}, ensure_ascii=False)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    first = translate_folder(corpus, out, tiny_engine, None, progress=False)
    expected = [("c.jsonl:3", "not a JSON object (nested too deeply)"),
                ("c.jsonl:4", "not a JSON object (nested too deeply)")]
    assert (first.translated, first.failed) == (4, expected)
    names = sorted(p.name for p in out.glob("*.en.txt"))
    assert "first.en.txt" in names and "last.en.txt" in names  # ids that worked before keep their names
    long_name = next(name for name in names if name.startswith("xxxx"))
    assert re.fullmatch(r"x+~[0-9a-f]{16}\.en\.txt", long_name) and len(long_name) <= 255 - 15
    assert any(re.fullmatch(r"odd\?~[0-9a-f]{16}\.en\.txt", name) for name in names), names
    again = translate_folder(corpus, out, tiny_engine, None, progress=False)
    assert (again.translated, again.skipped, again.failed) == (0, 4, expected)

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / ("y" * 251 + ".txt")).write_text("Xin chào.\n", encoding="utf-8")  # a legal 255-byte name
    (folder / "z.txt").write_text("Tạm biệt.\n", encoding="utf-8")
    summary = translate_folder(folder, tmp_path / "out2", tiny_engine, None, progress=False)
    assert (summary.translated, summary.failed) == (2, [])
    assert any(re.fullmatch(r"y+~[0-9a-f]{16}\.en\.txt", p.name) for p in (tmp_path / "out2").iterdir())


@needs_shared_data("iwslt15")
def test_changed_source_model_or_settings_translates_again_and_force_redoes_all(tiny_engine, tmp_path):
    """Done = outputs present and NAME.meta naming the same source hash and model: an article
    edited in place (same size, one letter changed) is translated again, an unchanged one is
    skipped; other decoding settings redo all; --force redoes all with its sentences from cache."""
    import dataclasses

    from mt.cache import open_cache

    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    paths = make_articles(in_dir, 3)
    cache = open_cache(tmp_path / "c.sqlite")
    first = translate_folder(in_dir, out_dir, tiny_engine, cache, progress=False)
    assert (first.translated, first.skipped) == (3, 0)
    marker = json.loads((out_dir / "talk01.meta").read_text())
    assert marker["source_bytes"] == paths[1].stat().st_size and len(marker["source_sha256"]) == 64

    text = paths[1].read_text(encoding="utf-8")
    edited = text.replace("a", "o", 1) if "a" in text else "O" + text[1:]
    assert edited != text and len(edited.encode()) == len(text.encode())
    paths[1].write_text(edited, encoding="utf-8")
    again = translate_folder(in_dir, out_dir, tiny_engine, cache, progress=False)
    assert (again.translated, again.skipped, again.failed) == (1, 2, [])
    records = [json.loads(line) for line in (out_dir / "talk01.jsonl").read_text().splitlines()]
    assert " ".join(record["source"] for record in records) == edited.strip()

    other = dataclasses.replace(tiny_engine.settings, beam=tiny_engine.settings.beam + 1)
    changed = translate_folder(in_dir, out_dir, tiny_engine, cache, settings=other, progress=False)
    assert (changed.translated, changed.skipped) == (3, 0)
    assert (translate_folder(in_dir, out_dir, tiny_engine, cache, settings=other, progress=False).skipped) == 3

    forced = translate_folder(in_dir, out_dir, tiny_engine, cache, settings=other, progress=False, force=True)
    assert (forced.translated, forced.skipped) == (3, 0)
    assert forced.sentences and forced.cache_hits == forced.sentences  # the cache still serves them

    corpus = tmp_path / "c.jsonl"
    corpus_of_talks(corpus, 2)
    assert translate_folder(corpus, tmp_path / "cout", tiny_engine, cache, progress=False).translated == 2
    lines = corpus.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = json.dumps({"id": "talk00", "text": "Một câu mới."}, ensure_ascii=False) + "\n"
    corpus.write_text("".join(lines), encoding="utf-8")
    rerun = translate_folder(corpus, tmp_path / "cout", tiny_engine, cache, progress=False)
    assert (rerun.translated, rerun.skipped) == (1, 1)


@needs_shared_data("iwslt15")
def test_failure_lines_print_names_escaped_one_line_each(tiny_engine, tmp_path):
    in_dir = tmp_path / "in"
    make_articles(in_dir, 1)
    odd = "bad\nname\x1b[31m\u202e.txt"
    (in_dir / odd).write_bytes(b"\xff\xfe not UTF-8")
    summary = translate_folder(in_dir, tmp_path / "out", tiny_engine, None, progress=False)
    report = summary.describe()
    assert summary.translated == 1 and len(summary.failed) == 1
    assert len(report.splitlines()) == 2  # the counts, then one line for the failure
    assert "failed: bad\\nname\\x1b[31m\\u202e.txt: " in report
    assert "\x1b" not in report and "\u202e" not in report
