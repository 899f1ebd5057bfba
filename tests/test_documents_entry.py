"""Documents through the entry points: `mt translate FILE -o OUT`, `mt batch`, and a real server
on 127.0.0.1 (POST /api/translate_file, LibreTranslate's /translate_file + /download_file, the page)."""

from __future__ import annotations

import io
import zipfile

import pytest
from testkit.document_fixtures import seed_docx, seed_html, seed_markdown, talk_srt
from testkit.shared_data import needs_shared_data

from mt.cli import main
from mt.io.folder_batch import translate_folder


def _cli(tiny_model_dir, *args) -> int:
    return main(["translate", *args, "--model", str(tiny_model_dir), "--engine", "transformers", "--no-cache"])


@needs_shared_data("seed")
def test_cli_translates_a_document_to_a_file(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "bai.html"
    source.write_text(seed_html(), encoding="utf-8")
    assert _cli(tiny_model_dir, str(source), "-o", str(tmp_path / "out.html")) == 0
    output = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in output and output.count("<p>") == seed_html().count("<p>")
    docx_in = tmp_path / "bao-cao.docx"
    docx_in.write_bytes(seed_docx())
    assert _cli(tiny_model_dir, str(docx_in), "-o", str(tmp_path / "bao-cao.en.docx")) == 0
    assert zipfile.ZipFile(tmp_path / "bao-cao.en.docx").namelist() == zipfile.ZipFile(docx_in).namelist()
    capsys.readouterr()
    assert _cli(tiny_model_dir, str(docx_in), "--jsonl") == 0  # the aligned segments of a document
    assert capsys.readouterr().out.count('"translation"') > 5


def test_cli_bad_document_is_one_line(tiny_model_dir, tmp_path, capsys):
    bad = tmp_path / "hong.docx"
    bad.write_bytes(b"not a zip at all")
    assert _cli(tiny_model_dir, str(bad), "-o", str(tmp_path / "x.docx")) == 2
    err = capsys.readouterr().err
    assert err.startswith("mt: error: hong.docx: not a DOCX") and "Traceback" not in err
    assert not (tmp_path / "x.docx").exists()


def test_cli_text_paths_unchanged(tiny_model_dir, tmp_path, capsys, monkeypatch):
    article = tmp_path / "bai.text"  # not a document extension: plain text, as always
    article.write_text("Xin chào các bạn.", encoding="utf-8")
    assert _cli(tiny_model_dir, str(article)) == 0
    english = capsys.readouterr().out
    assert english.strip()
    assert _cli(tiny_model_dir, str(article), "-o", str(tmp_path / "en.txt")) == 0
    assert (tmp_path / "en.txt").read_text(encoding="utf-8") == english


@needs_shared_data("seed")
@needs_shared_data("iwslt15")
def test_batch_picks_every_format_and_names_bad_files(tiny_engine, tmp_path):
    source, out = tmp_path / "in", tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("Xin chào các bạn.", encoding="utf-8")
    (source / "b.md").write_text(seed_markdown(), encoding="utf-8")
    (source / "sub" / "c.docx").write_bytes(seed_docx())
    (source / "d.srt").write_text(talk_srt(6), encoding="utf-8")
    (source / "bad.docx").write_bytes(b"PK broken")
    (source / "notes.pdf").write_bytes(b"%PDF")  # not supported: not picked
    summary = translate_folder(source, out, tiny_engine, None, progress=False)
    assert summary.translated == 4 and [name for name, _ in summary.failed] == ["bad.docx"]
    assert "not a valid DOCX" in summary.failed[0][1]
    for stem, ext in (("a", ".txt"), ("b", ".md"), ("sub/c", ".docx"), ("d", ".srt")):
        for suffix in (".jsonl", ".tmx", ".en" + ext):
            assert (out / (stem + suffix)).is_file(), stem + suffix
    assert zipfile.ZipFile(out / "sub" / "c.en.docx").testzip() is None
    again = translate_folder(source, out, tiny_engine, None, progress=False)
    assert again.skipped == 4 and again.translated == 0


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("--no-cache", "--max-body-bytes", "4000000")


@needs_shared_data("seed")
def test_api_translate_file_answers_the_file(server):
    reply = server.post_multipart("/api/translate_file", {}, {"file": ("bao-cao.docx", seed_docx())})
    assert reply.status == 200, reply.text
    assert reply.header("content-type").startswith("application/vnd.openxmlformats-officedocument")
    assert "bao-cao.en.docx" in reply.header("content-disposition")
    assert zipfile.ZipFile(io.BytesIO(reply.body)).testzip() is None


@needs_shared_data("iwslt15")
def test_api_translate_file_aligned_json(server):
    reply = server.post_multipart("/api/translate_file?aligned=1", {}, {"file": ("talk.srt", talk_srt(6).encode())})
    assert reply.status == 200, reply.text
    body = reply.json()
    assert body["format"] == "srt" and body["name"] == "talk.en.srt" and body["blocks"]
    block = body["blocks"][0]
    assert block["source"] and block["translation"] and block["sentences"][0]["src_word_spans"]
    from mt.web.files import AlignedFile

    AlignedFile.model_validate(body)  # the declared schema, no undeclared field


def test_api_translate_file_errors(server):
    reply = server.post_multipart("/api/translate_file", {}, {"file": ("paper.pdf", b"%PDF-1.4")})
    assert reply.status == 400 and reply.json()["error"]["code"] == "unsupported_format"
    reply = server.post_multipart("/api/translate_file", {}, {"file": ("x.docx", b"PK not really")})
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_input"
    reply = server.post_multipart("/api/translate_file", {"beam": "99"}, {"file": ("a.md", b"# Xin chao")})
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_field"
    reply = server.post_json("/api/translate_file", {"text": "x"})
    assert reply.status == 415


@needs_shared_data("seed")
def test_libre_translate_file_and_download(server):
    reply = server.post_multipart("/translate_file", {"source": "vi", "target": "en"},
                                  {"file": ("trang.html", seed_html().encode())})
    assert reply.status == 200, reply.text
    url = reply.json()["translatedFileUrl"]
    assert url.startswith(server.url + "/download_file/") and url.endswith(".trang.en.html")
    token = url.rsplit("/", 1)[1].split(".")[0]
    assert len(token) >= 32  # unguessable
    download = server.get(url[len(server.url):])
    assert download.status == 200 and b'<html lang="en">' in download.body
    assert server.get("/download_file/" + "x" * 32 + ".trang.en.html").status == 404
    refused = server.post_multipart("/translate_file", {"source": "fr", "target": "en"},
                                    {"file": ("a.md", b"# Xin chao")})
    assert refused.status == 400 and refused.json() == {"error": refused.json()["error"]}
    assert refused.header("x-error-code") == "unsupported_language"


@needs_shared_data("seed")
def test_page_upload_shows_blocks_and_offers_the_file(server):
    reply = server.post_multipart("/", {}, {"file": ("bai.md", seed_markdown().encode())})
    assert reply.status == 200, reply.text[:500]
    page = reply.text
    assert 'class="aligned"' in page and "bai.en.md" in page
    link = page.split('href="/download_file/', 1)[1].split('"', 1)[0]
    assert server.get("/download_file/" + link).status == 200


def test_openapi_declares_the_file_routes(server):
    paths = server.get("/openapi.json").json()["paths"]
    assert {"/api/translate_file", "/translate_file", "/download_file/{name}"} <= set(paths)
    assert "multipart/form-data" in paths["/api/translate_file"]["post"]["requestBody"]["content"]
