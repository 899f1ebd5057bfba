"""`mt batch --ray` on a real local Ray instance (in-process, 2 CPUs): byte-identical to the local
batch, resumable, corpus .jsonl input, unreadable inputs named and skipped."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest

from mt.cache import open_cache
from mt.errors import ConfigError
from mt.io.folder_batch import translate_folder
from mt.io.ray_batch import translate_with_ray

ARTICLES = {
    "a.txt": "Tôi yêu Hà Nội. Hôm nay trời đẹp quá!\n\nThủ tướng đã phát biểu tại hội nghị.\n",
    "sub/b.txt": "Giá xăng tăng mạnh trong tuần này.\nNgười dân lo lắng về kinh tế.\n",
    "c.txt": "Đội bóng đá Việt Nam đã thắng trận đấu.\n",
}


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")  # installed with the [test] extra; never skipped in CI
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def local_batch(source, out_dir, engine):
    return translate_folder(source, out_dir, engine, open_cache(disabled=True), progress=False)


def ray_batch(source, out_dir, model_dir, **options):
    return translate_with_ray(source, out_dir, model=str(model_dir), engine="transformers",
                              no_cache=True, progress=False, **options)


@pytest.mark.timeout(300)
def test_folder_on_ray_is_byte_identical_and_names_unreadable_files(local_ray, tiny_model_dir, tiny_engine, tmp_path):
    source = tmp_path / "in"
    for name, text in ARTICLES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text, encoding="utf-8")
    (source / "binary.txt").write_bytes(b"\x00\x01PNG\x00")
    (tmp_path / "outside.txt").write_text("Bên ngoài.", encoding="utf-8")
    os.symlink(tmp_path / "outside.txt", source / "link.txt")  # named at the listing, never read
    os.mkfifo(source / "pipe.txt")  # would block a reader: named, never opened
    expected = local_batch(source, tmp_path / "local", tiny_engine)
    assert [name for name, _ in expected.failed] == ["binary.txt", "link.txt", "pipe.txt"]

    summary = ray_batch(source, tmp_path / "ray", tiny_model_dir, workers=2, threads=1)
    assert summary.failed == expected.failed  # named, skipped; the CLI exits 1 on it
    assert (summary.translated, summary.sentences) == (3, expected.sentences)
    assert tree(tmp_path / "ray") == tree(tmp_path / "local")
    assert set(tree(tmp_path / "ray")) == {f"{stem}{suffix}" for stem in ("a", "sub/b", "c")
                                          for suffix in (".jsonl", ".tmx", ".en.txt", ".meta")}
    assert not list((tmp_path / "ray").rglob(".*.part"))  # atomic writes left no temporary files
    assert not list((tmp_path / "ray").rglob(".*.claim"))  # per-article claims released


@pytest.mark.timeout(300)
def test_a_failing_article_is_named_and_the_others_go_on(local_ray, tiny_model_dir, tmp_path):
    source = tmp_path / "in"
    for name, text in ARTICLES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("a file where the folder sub/ must go")  # an OSError in the worker, even as root
    summary = ray_batch(source, out, tiny_model_dir, workers=1, threads=1)
    assert summary.translated == 2
    assert [name for name, _ in summary.failed] == ["sub/b.txt"]
    assert "Traceback" not in summary.failed[0][1] and summary.failed[0][1]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["a.jsonl", "a.tmx", "a.en.txt", "a.meta", "c.jsonl", "c.tmx", "c.en.txt", "c.meta", "sub"])


def test_the_driver_lists_corpus_offsets_not_texts(tmp_path):
    from mt.io.folder_batch import BatchSummary, load_corpus_line
    from mt.io.corpus import CorpusLine
    from mt.io.ray_batch import list_work

    corpus = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": f"n{i}", "text": f"Câu số {i}.\r\nDòng hai."}, ensure_ascii=False) for i in range(5)]
    corpus.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines[:3]).encode() + b"\n\xff\n" + "\n".join(lines[3:]).encode()
                       + b"\n")
    summary = BatchSummary()
    items = list_work(corpus, tmp_path / "out", summary)
    assert [item["name"] for item in items] == ["n0", "n1", "n2", "n3", "n4"]
    assert all(set(item) == {"index", "name", "path", "offset", "length", "stem", "size"} for item in items)
    assert summary.failed == [("corpus.jsonl:4", "not valid UTF-8 (byte 0)")]
    articles = [load_corpus_line(corpus, CorpusLine(item["name"], item["stem"], item["offset"], item["length"]),
                                 tmp_path / "out") for item in items]
    assert [a.text for a in articles] == [f"Câu số {i}.\nDòng hai." for i in range(5)]
    assert articles[4].stem == str(tmp_path / "out" / "n4")


@pytest.mark.timeout(300)
def test_corpus_jsonl_locally_and_on_ray_resumes(local_ray, tiny_model_dir, tiny_engine, tmp_path):
    """Bad JSON, a repeated id, an unsafe id, a line that is not UTF-8 and done lines: the same
    summary and the same files locally and on Ray (one corpus reader, mt.io.corpus)."""
    corpus = tmp_path / "corpus.jsonl"
    lines = [json.dumps({"id": name.removesuffix(".txt"), "text": text}, ensure_ascii=False).encode()
             for name, text in ARTICLES.items()]
    lines[1:1] = [b"{not json", json.dumps({"id": "a", "text": "lặp lại"}).encode(),
                  json.dumps({"id": "../up", "text": "x"}).encode(), b"",
                  json.dumps({"id": 7, "text": "Bảy.\r\nTám."}).encode(), b'{"id": "latin1", "text": "caf\xe9"}']
    corpus.write_bytes(b"\n".join(lines) + b"\n")

    local = local_batch(corpus, tmp_path / "local", tiny_engine)
    assert local.translated == 4
    assert [name for name, _ in local.failed] == ["corpus.jsonl:2", "corpus.jsonl:3", "corpus.jsonl:4",
                                                  "corpus.jsonl:7"]
    assert "repeats" in local.failed[1][1] and "safe" in local.failed[2][1]
    assert local.failed[3][1] == "not valid UTF-8 (byte 29)"  # named alone; the other lines go on
    folder = tmp_path / "folder"  # a corpus line gives the same files as the same text in a file
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.txt").write_text(ARTICLES["sub/b.txt"], encoding="utf-8")
    local_batch(folder, tmp_path / "from-folder", tiny_engine)
    assert tree(tmp_path / "from-folder") == {k: v for k, v in tree(tmp_path / "local").items() if k.startswith("sub/")}

    def resumed_copy(out):  # two articles already done by an earlier (killed) run
        for stem in ("a", "7"):
            for suffix in (".jsonl", ".tmx", ".en.txt", ".meta"):  # .meta: the record that says done
                (out / f"{stem}{suffix}").parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp_path / "local" / f"{stem}{suffix}", out / f"{stem}{suffix}")
        return out

    local_resumed = local_batch(corpus, resumed_copy(tmp_path / "local-resumed"), tiny_engine)
    summary = ray_batch(corpus, resumed_copy(tmp_path / "ray"), tiny_model_dir, workers=1, threads=1)
    assert (summary.translated, summary.skipped) == (local_resumed.translated, local_resumed.skipped) == (2, 2)
    assert summary.failed == local_resumed.failed == local.failed
    assert tree(tmp_path / "ray") == tree(tmp_path / "local-resumed") == tree(tmp_path / "local")
    again = ray_batch(corpus, tmp_path / "ray", tiny_model_dir)  # nothing left: Ray is not even needed
    assert (again.translated, again.skipped) == (0, 4)


def test_missing_extras_name_the_install_command(monkeypatch, tmp_path):
    (tmp_path / "in").mkdir()
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the [ray] extra sees
    with pytest.raises(ConfigError, match=r"pip install 'mt-vi-en\[ray\]'"):
        translate_with_ray(tmp_path / "in", tmp_path / "out")
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ConfigError, match=r"pip install 'mt-vi-en\[redis\]'"):
        open_cache("redis://127.0.0.1:1/0")


@pytest.mark.timeout(300)
def test_mt_batch_ray_command_starts_and_stops_its_own_ray(tiny_model_dir, tmp_path):
    import subprocess

    from testkit.server_helpers import ROOT, clean_env

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "x/one", "text": ARTICLES["a.txt"]}, ensure_ascii=False) + "\n{broken\n",
                      encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mt", "batch", str(corpus), str(tmp_path / "out"), "--model", str(tiny_model_dir),
         "--engine", "transformers", "--no-cache", "--quiet", "--ray", "--workers", "1", "--threads", "1"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=280)
    assert result.returncode == 1, result.stderr  # one unreadable line: named, skipped, exit 1
    assert "files: 1 translated, 0 already done, 1 failed" in result.stderr
    assert "failed: corpus.jsonl:2: not a JSON object" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "out" / "x").iterdir()) == ["one.en.txt", "one.jsonl", "one.meta", "one.tmx"]
