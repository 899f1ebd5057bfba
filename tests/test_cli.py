"""The `mt` command as users run it: real subprocesses, real files, the tiny model."""

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from testkit.server_helpers import MT_SERVE_COMMAND
from testkit.shared_data import ROOT, SEED, iwslt_talks, needs_shared_data

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def run_mt(*args, stdin=None, env_extra=None, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONIOENCODING="utf-8")
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "mt", *map(str, args)],
        input=stdin, capture_output=True, cwd=ROOT, env=env, timeout=timeout,
    )


@needs_shared_data("seed")
def test_segment_seed_jsonl():
    result = run_mt("segment", SEED, "--jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.decode().splitlines()]
    text = SEED.read_text(encoding="utf-8")
    assert len(records) == 14
    assert records[-1]["kind"] == "byline"
    assert all(text[r["start"] : r["end"]] == r["text"] for r in records)


def test_segment_stdin_plain_lines():
    result = run_mt("segment", "-", stdin="Câu một. Câu hai!".encode())
    assert result.returncode == 0
    assert result.stdout.decode().splitlines() == ["Câu một.", "Câu hai!"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("Tiếng Việt".encode("utf-8")[:-1] + b"\xe1\xba", "not valid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ],
)
def test_bad_input_files_get_one_clear_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    result = run_mt("segment", path)
    assert result.returncode == 2
    assert message in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_missing_file_is_reported():
    result = run_mt("translate", "/nonexistent/article.txt", "--no-cache")
    assert result.returncode == 2
    assert "no such file" in result.stderr.decode()


def test_unwritable_output_is_one_line_not_a_traceback(tiny_model_dir, tmp_path):
    """An OSError the user can fix (here: /proc takes no files) is one line and exit 1."""
    article = tmp_path / "a.txt"
    article.write_text("Xin chào các bạn.", encoding="utf-8")
    result = run_mt("translate", article, "--model", tiny_model_dir, "--no-cache", "-o", "/proc/mt-out.txt")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "Traceback" not in err and err.startswith("mt: error:") and err.count("\n") == 1


@needs_shared_data("seed")
def test_translate_text_and_jsonl(tiny_model_dir, tmp_path):
    cache = tmp_path / "c.sqlite"
    first = run_mt("translate", SEED, "--model", tiny_model_dir, "--cache", cache, "--jsonl")
    assert first.returncode == 0, first.stderr.decode()
    records = [json.loads(line) for line in first.stdout.decode().splitlines()]
    assert len(records) == 14 and not any(r["cached"] for r in records)
    second = run_mt("translate", SEED, "--model", tiny_model_dir, "--cache", cache, "--jsonl")
    again = [json.loads(line) for line in second.stdout.decode().splitlines()]
    assert all(r["cached"] for r in again if r["kind"] != "byline")
    plain = run_mt("translate", SEED, "--model", tiny_model_dir, "--cache", cache)
    assert plain.stdout.decode().strip().endswith("Đan Nguyên")

    stats = json.loads(run_mt("cache", "stats", "--cache", cache).stdout)
    translations = [count for name, count in stats["namespaces"].items()
                    if "|links" not in name and "|quality" not in name and "|confidence" not in name]
    assert translations == [13], stats["namespaces"]  # one model/settings namespace, 13 sentences
    cleared = run_mt("cache", "clear", "--cache", cache)
    assert stats["hits"] >= 26 and stats["misses"] >= 13  # counted per cache file (#11)
    assert "removed 13 cached sentences (and 13 word-link and 13 quality entries)" in cleared.stdout.decode()
    assert json.loads(run_mt("cache", "stats", "--cache", cache).stdout)["entries"] == 0


@needs_shared_data("seed")
def test_unknown_model_is_a_clear_error(tmp_path):
    result = run_mt("translate", SEED, "--model", "nobody/no-such-model", "--no-cache")
    assert result.returncode == 2
    assert "nobody/no-such-model" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def make_articles(folder: Path, count: int, lines: int = 12) -> list[Path]:
    talks = iwslt_talks("dev2010")
    paths = []
    for number in range(count):
        talk = talks[number % len(talks)]
        start = (number // len(talks)) * lines
        body = " ".join(talk[start : start + lines])
        path = folder / ("sub" if number % 2 else "") / f"talk{number:02d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def check_outputs(in_dir: Path, out_dir: Path) -> dict[str, list[str]]:
    """Every article has its three outputs, consistent with each other; returns translations."""
    translations = {}
    for article in sorted(in_dir.rglob("*.txt")):
        stem = out_dir / article.relative_to(in_dir).with_suffix("")
        records = [json.loads(l) for l in stem.with_name(stem.name + ".jsonl").read_text().splitlines()]
        text = article.read_text(encoding="utf-8")
        assert all(text[r["start"] : r["end"]] == r["source"] for r in records)
        english = stem.with_name(stem.name + ".en.txt").read_text(encoding="utf-8")
        assert english.strip() == " ".join(r["translation"] for r in records)
        tmx = ET.parse(stem.with_name(stem.name + ".tmx"))
        units = tmx.getroot().findall("./body/tu")
        assert len(units) == sum(1 for r in records if r["kind"] != "byline")
        assert [tuv.get(XML_LANG) for tuv in units[0]] == ["vi", "en"]
        translations[str(article.relative_to(in_dir))] = [r["translation"] for r in records]
    assert not list(out_dir.rglob("*.part")), "a half-written file was left behind"
    return translations


@needs_shared_data("iwslt15")
def test_batch_writes_all_formats_and_skips_done(tiny_model_dir, tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_articles(in_dir, 3)
    result = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--cache", tmp_path / "c.sqlite")
    assert result.returncode == 0, result.stderr.decode()
    assert "3 translated" in result.stderr.decode()
    check_outputs(in_dir, out_dir)
    again = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--cache", tmp_path / "c.sqlite")
    assert "0 translated, 3 already done" in again.stderr.decode()


@needs_shared_data("iwslt15")
def test_batch_reports_unreadable_file_and_finishes_others(tiny_model_dir, tmp_path):
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    make_articles(in_dir, 2)
    (in_dir / "broken.txt").write_bytes("Tiếng Việt".encode("cp1258", errors="replace") + b"\xff\xfe")
    result = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--no-cache", "--quiet")
    assert result.returncode == 1
    assert "broken.txt" in result.stderr.decode() and "UTF-8" in result.stderr.decode()
    assert (out_dir / "talk00.en.txt").exists() and (out_dir / "sub" / "talk01.en.txt").exists()
    assert not (out_dir / "broken.en.txt").exists()


@needs_shared_data("iwslt15")
def test_batch_killed_midway_resumes_without_duplicates(tiny_model_dir, tmp_path):
    in_dir, out_dir, cache = tmp_path / "in", tmp_path / "out", tmp_path / "c.sqlite"
    make_articles(in_dir, 12, lines=12)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "mt", "batch", str(in_dir), str(out_dir),
         "--model", str(tiny_model_dir), "--cache", str(cache), "--quiet"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 240
    # an article is done once its marker is written, after its outputs: the kill can land between
    # an article's .en.txt and its marker, and that article is then rightly translated again
    while time.monotonic() < deadline and len(list(out_dir.rglob("*.meta"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = len(list(out_dir.rglob("*.meta")))
    assert 2 <= finished_before < 12, "the kill should land mid-run"

    result = run_mt("batch", in_dir, out_dir, "--model", tiny_model_dir, "--cache", cache)
    assert result.returncode == 0, result.stderr.decode()
    assert f"{finished_before} already done" in result.stderr.decode()
    resumed = check_outputs(in_dir, out_dir)
    assert len(resumed) == 12
    assert len(list(out_dir.rglob("*.en.txt"))) == 12

    fresh_dir = tmp_path / "fresh"
    run_mt("batch", in_dir, fresh_dir, "--model", tiny_model_dir, "--no-cache", "--quiet")
    assert check_outputs(in_dir, fresh_dir) == resumed
    assert not list(out_dir.rglob(".*.claim")), "the killed run's claim was not taken over"
    # every output equals the uninterrupted run's, apart from `cached` (#11)
    resumed_files = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*") if p.is_file())
    assert resumed_files == sorted(p.relative_to(fresh_dir) for p in fresh_dir.rglob("*") if p.is_file())
    for relative in resumed_files:
        ours, theirs = (out_dir / relative).read_text(), (fresh_dir / relative).read_text()
        if relative.suffix == ".jsonl":
            ours, theirs = ([{k: v for k, v in json.loads(line).items() if k != "cached"}
                             for line in text.splitlines()] for text in (ours, theirs))
        assert ours == theirs, relative


def test_mt_serve_help_has_the_server_options():
    result = run_mt("serve", "--help")
    assert result.returncode == 0, result.stderr.decode()
    help_text = result.stdout.decode()
    assert help_text.startswith("usage: mt serve")
    for needle in ("--model", "--engine", "--host", "--port", "--cache", "--no-cache", "--max-chars", "--api-keys",
                   "--rate-limit", "--batch-sentences", "--no-batching", "MT_PORT"):
        assert needle in help_text, needle
    assert "serve" in run_mt("--help").stdout.decode()
    bad = run_mt("serve", "--threads", "0", "--no-cache")
    assert bad.returncode == 2 and "mt serve: error: --threads" in bad.stderr.decode()


def test_mt_serve_answers_healthz(serve):
    server = serve("--no-cache", command=MT_SERVE_COMMAND)
    assert server.get("/healthz").json() == {"status": "ok"}
    assert server.get("/readyz").json()["status"] == "ready"
    reply = server.post_json("/api/translate", {"text": "Xin chào."})
    assert reply.status == 200 and reply.json()["sentences"]
    server.stop()
    assert server.process.returncode is not None


@needs_shared_data("seed")
def test_translate_docx_without_output_is_refused_before_any_work(tiny_model_dir, tmp_path):
    """A binary document is never written to standard output unless asked for (-o -): exit 2,
    one line, checked before the model loads (a missing model is not what is reported)."""
    from testkit.document_fixtures import seed_docx

    path = tmp_path / "x.docx"
    path.write_bytes(seed_docx())
    refused = run_mt("translate", path, "--model", tmp_path / "no-such-model")
    stderr = refused.stderr.decode()
    assert refused.returncode == 2 and refused.stdout == b""
    assert len(stderr.strip().splitlines()) == 1 and "pass -o OUT" in stderr and "Traceback" not in stderr
    asked = run_mt("translate", path, "-o", "-", "--model", tiny_model_dir, "--no-cache")
    assert asked.returncode == 0, asked.stderr.decode()
    assert asked.stdout[:2] == b"PK"  # the translated .docx (a zip), as requested


def test_batch_bad_lines_fail_alone_changed_sources_redone_and_names_escaped(tiny_model_dir, tmp_path):
    """The whole CLI path of #20: a 100k-deep line and a 300-character id never abort the run
    (exit 1, the bad line named by number, the others translated); a re-run skips what is
    current and translates an edited line; --force translates all; an input named with a
    newline and an escape sequence is reported on one line, escaped."""
    corpus, out = tmp_path / "c.jsonl", tmp_path / "out"
    good = [{"id": "a", "text": "Xin chào các bạn."}, {"id": "b" * 300, "text": "Hôm nay trời đẹp."}]
    lines = [json.dumps(good[0], ensure_ascii=False), "[" * 100_000 + "]" * 100_000,
             json.dumps(good[1], ensure_ascii=False)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = ("--model", tiny_model_dir, "--cache", tmp_path / "c.sqlite", "--quiet")
    first = run_mt("batch", corpus, out, *options)
    stderr = first.stderr.decode()
    assert first.returncode == 1 and "Traceback" not in stderr, stderr
    assert "files: 2 translated, 0 already done, 1 failed" in stderr
    assert "failed: c.jsonl:2: not a JSON object (nested too deeply)" in stderr
    assert (out / "a.en.txt").exists() and len(list(out.glob("bbbb*~*.en.txt"))) == 1

    lines[0] = json.dumps({"id": "a", "text": "Tạm biệt các bạn."}, ensure_ascii=False)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    again = run_mt("batch", corpus, out, *options)
    assert "files: 1 translated, 1 already done, 1 failed" in again.stderr.decode()
    assert "Tạm biệt" in (out / "a.jsonl").read_text(encoding="utf-8")
    forced = run_mt("batch", corpus, out, *options, "--force")
    assert "files: 2 translated, 0 already done, 1 failed" in forced.stderr.decode()

    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "ok.txt").write_text("Xin chào.\n", encoding="utf-8")
    (in_dir / "evil\n\x1b[2Jname.txt").write_bytes(b"\xff not UTF-8")
    odd = run_mt("batch", in_dir, tmp_path / "out2", *options)
    report = odd.stderr.decode()
    assert odd.returncode == 1 and "\x1b" not in report
    failures = [line for line in report.splitlines() if "failed: " in line]
    assert len(failures) == 1 and failures[0].startswith("  failed: evil\\n\\x1b[2Jname.txt: not valid UTF-8")
