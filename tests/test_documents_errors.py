"""Bad documents get a clear DocumentError (an InputError, with a code for the API), bounded in
time, before any model work: nothing here needs the model."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from testkit.document_fixtures import seed_docx
from testkit.shared_data import needs_shared_data

from mt.errors import InputError
from mt.io.blocks import DocumentError
from mt.io.documents import SUPPORTED_EXTENSIONS, format_for, translate_file, translated_name


def _refused(data: bytes, name: str, engine=None, **options) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        translate_file(data, name, engine, **options)
    assert isinstance(caught.value, InputError)
    assert name in str(caught.value) or "input" in str(caught.value)
    return caught.value


def test_docx_that_is_not_a_zip():
    error = _refused("Xin chào, đây không phải DOCX".encode(), "report.docx")
    assert "not a DOCX" in str(error)


@needs_shared_data("seed")
def test_docx_broken_zip():
    data = seed_docx()
    error = _refused(data[: len(data) // 2], "cut.docx")
    assert "zip" in str(error)


def test_zip_without_word_document():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "xin chào")
    assert "not a Word document" in str(_refused(buffer.getvalue(), "other.docx"))


def test_zip_bomb_refused_before_unpacking():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (60 * 1024 * 1024))  # 60 MiB of zeros: ~1000x
    assert len(buffer.getvalue()) < 200_000
    started = time.perf_counter()
    error = _refused(buffer.getvalue(), "bomb.docx")
    assert "zip bomb" in str(error) and time.perf_counter() - started < 1.0


def test_html_of_200k_tags_refused_in_bounded_time():
    data = ("<html><body>" + "<b>x</b>" * 200_000 + "</body></html>").encode()
    started = time.perf_counter()
    error = _refused(data, "huge.html")
    assert "tags" in str(error) and time.perf_counter() - started < 10


@pytest.mark.parametrize(
    "text, words",
    [
        ("1\n00:00:01,000 --> garbage\nXin chào\n", "not a valid SRT"),
        ("1\n00:00:05,000 --> 00:00:01,000\nXin chào\n", "ends (00:00:01,000) before it starts"),
    ],
)
def test_srt_with_broken_timings(text, words):
    assert words in str(_refused(text.encode(), "talk.srt"))


def test_vtt_without_header():
    assert "WebVTT" in str(_refused(b"00:00:01.000 --> 00:00:02.000\nXin chao\n", "talk.vtt"))


def test_file_over_the_size_cap():
    error = _refused(b"<p>" + "Xin chào. ".encode() * 100 + b"</p>", "big.html", max_bytes=100)
    assert error.code == "file_too_large" and "limit is 100 bytes" in str(error)


def test_text_over_the_character_cap():
    error = _refused(("<p>" + "Xin chào. " * 100 + "</p>").encode(), "long.html", max_chars=50)
    assert error.code == "file_too_large"


def test_unsupported_extension_has_its_code():
    error = _refused(b"%PDF-1.4", "paper.pdf")
    assert error.code == "unsupported_format" and ".docx" in str(error) and "'.pdf'" in str(error)


def test_not_utf8():
    assert "UTF-8" in str(_refused("<p>Xin chào</p>".encode("utf-16"), "page.html"))
    assert "UTF-8" in str(_refused("# Chào".encode("cp1258"), "notes.md"))


def test_format_by_extension_and_content_type():
    assert format_for("A.HTM").name == "html"
    assert format_for("x", "text/markdown; charset=utf-8").name == "markdown"
    assert format_for(None, "application/vnd.openxmlformats-officedocument.wordprocessingml.document").name == "docx"
    assert {".txt", ".md", ".html", ".htm", ".docx", ".srt", ".vtt"} <= set(SUPPORTED_EXTENSIONS)
    assert translated_name("báo cáo.docx") == "báo cáo.en.docx"
