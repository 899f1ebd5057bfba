"""Documents end to end: real files (seed article, TED talk) through the tiny model and the real
engine; structure compared element by element before and after, every text block changed, the
protected parts byte-identical."""

from __future__ import annotations

import io
import zipfile
from collections import Counter

import pytest
from testkit.document_fixtures import FENCE, NO_TRANSLATE, PRE, SCRIPT, STYLE, seed_docx, seed_html, seed_markdown, talk_srt
from testkit.shared_data import needs_shared_data

from mt.cache import open_cache
from mt.io.documents import translate_file


# --- HTML ---------------------------------------------------------------------------------------


def _elements(page: str):
    """Every element as a browser builds it (lexbor, HTML5): (tag, attributes) in document order."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(page)
    return [(node.tag, dict(node.attributes)) for node in tree.root.traverse() if not node.tag.startswith("-")]


def _texts(page: str, selector: str) -> list[str]:
    from selectolax.lexbor import LexborHTMLParser

    return [node.text() for node in LexborHTMLParser(page).css(selector)]


@pytest.fixture(scope="module")
def html_result(tiny_engine):
    source = seed_html()
    return source, translate_file(source.encode(), "seed.html", tiny_engine)


@needs_shared_data("seed")
def test_html_structure_kept_element_by_element(html_result):
    source, result = html_result
    output = result.data.decode("utf-8")
    before, after = _elements(source), _elements(output)
    assert [tag for tag, _ in before] == [tag for tag, _ in after]
    for (tag, attrs), (_, new_attrs) in zip(before, after):
        if tag == "html":
            assert new_attrs == {**attrs, "lang": "en"}
        else:
            assert new_attrs == attrs, tag  # hrefs (entities included), classes, titles untouched
    assert output.count('<a href="https://vnexpress.net/a?id=0&amp;x=1" title="Tin">') == 1


@needs_shared_data("seed")
def test_html_every_text_block_translated(html_result):
    source, result = html_result
    output = result.data.decode("utf-8")
    for selector in ("title", "h1", "li", "td", "p:not([translate])"):
        old, new = _texts(source, selector), _texts(output, selector)
        assert len(old) == len(new) > 0
        for a, b in zip(old, new):
            assert b.strip() and a != b, selector
    # inline markup carried: every <b> and <a> still holds English words
    assert all(text.strip() for text in _texts(output, "p b, p a"))
    assert len(_texts(output, "p b")) == len(_texts(source, "p b"))


@needs_shared_data("seed")
def test_html_protected_parts_byte_identical(html_result):
    _, result = html_result
    output = result.data.decode("utf-8")
    for part in (SCRIPT, STYLE, PRE, NO_TRANSLATE, "<code>tin@vnexpress.net</code>", "<!DOCTYPE html>",
                 '<meta charset="utf-8">'):
        assert output.count(part) == 1, part


@needs_shared_data("seed")
def test_html_blocks_carry_their_sentences(html_result):
    _, result = html_result
    document = result.document
    assert sum(len(block.pairs) for block in result.blocks) == len(document.sentences)
    for block in result.blocks:
        for pair in block.pairs:
            assert block.start <= pair.start < pair.end <= block.start + len(block.block.text)
            assert pair.src_word_spans  # word spans came along (links: where the model gave them)
    assert sum(bool(pair.alignment) for pair in document.sentences) > len(document.sentences) // 2
    aligned = result.aligned()
    assert len(aligned) == len(result.blocks) and aligned[0]["sentences"]


def test_malformed_html_parses_the_same_way_after(tiny_engine):
    source = ("<html><body><p>Một <b>hai ba <p>bốn năm</b> sáu <i>bảy <u>tám</i> chín</u>"
              "<div>mười <table><td>Xin chào bạn<td>Tạm biệt</table> hết &copy 2020 &amp; <br> cuối")
    output = translate_file(source.encode(), "bad.html", tiny_engine).data.decode()
    assert [tag for tag, _ in _elements(source)] == [tag for tag, _ in _elements(output)]
    assert "&copy 2020" not in output  # the text around it was translated


def test_html_fragment_without_html_tag(tiny_engine):
    source = "<p>Xin chào <em>các bạn</em> thân mến.</p>\n"
    output = translate_file(source.encode(), "frag.htm", tiny_engine).data.decode()
    assert output.startswith("<p>") and output.endswith("</p>\n") and output.count("<em>") == 1
    assert "lang=" not in output and "<html" not in output  # nothing added around a fragment


def test_html_short_last_cell_is_translated_not_a_byline(tiny_engine):
    """A document's blocks are not an article: a last table cell of capitalised words ("Tổng Cộng",
    Total) is text to translate, not a signature passed through as a byline; no cell is a title."""
    source = "<table><tr><td>Doanh thu năm nay tăng mạnh.</td></tr><tr><td>Tổng Cộng</td></tr></table>\n"
    result = translate_file(source.encode(), "table.html", tiny_engine)
    kinds = {pair.source: pair.kind for pair in result.document.sentences}
    assert kinds == {"Doanh thu năm nay tăng mạnh.": "sentence", "Tổng Cộng": "sentence"}
    assert "Tổng Cộng" not in result.data.decode()


# --- Markdown -----------------------------------------------------------------------------------


def _md_tokens(text: str):
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


@pytest.fixture(scope="module")
def markdown_result(tiny_engine):
    source = seed_markdown()
    return source, translate_file(source.encode(), "seed.md", tiny_engine)


@needs_shared_data("seed")
def test_markdown_structure_kept_token_by_token(markdown_result):
    source, result = markdown_result
    output = result.data.decode()
    before, after = _md_tokens(source), _md_tokens(output)
    assert [(t.type, t.tag, t.markup, t.info) for t in before] == [(t.type, t.tag, t.markup, t.info) for t in after]
    markup = ("em_open", "strong_open", "link_open", "code_inline", "image")

    def inline_markup(tokens):
        return Counter((c.type, c.attrs.get("href"), c.attrs.get("title"), c.content if c.type == "code_inline" else "")
                       for t in tokens if t.type == "inline" for c in t.children if c.type in markup)

    assert inline_markup(before) == inline_markup(after)  # same links (URLs, titles), code, emphasis


@needs_shared_data("seed")
def test_markdown_text_translated_code_untouched(markdown_result):
    source, result = markdown_result
    output = result.data.decode()
    assert output.count(FENCE) == 1
    before = [t.content for t in _md_tokens(source) if t.type == "inline"]
    after = [t.content for t in _md_tokens(output) if t.type == "inline"]
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert b.strip() and a != b
    assert output.count('](https://vnexpress.net/tin_(moi)?a=0 "Tin")') == 1
    assert "| Cột" not in output and "|---|---|" in output  # header cells translated, delimiter row kept


# --- DOCX ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def docx_result(tiny_engine):
    source = seed_docx()
    return source, translate_file(source, "seed.docx", tiny_engine)


@needs_shared_data("seed")
def test_docx_structure_and_formatting_kept(docx_result):
    import docx

    source, result = docx_result
    old, new = docx.Document(io.BytesIO(source)), docx.Document(io.BytesIO(result.data))
    assert [p.style.name for p in old.paragraphs] == [p.style.name for p in new.paragraphs]
    for a, b in zip(old.paragraphs, new.paragraphs):
        if a.text.strip():
            assert b.text.strip() and a.text != b.text
        assert any(r.bold for r in a.runs) == any(r.bold for r in b.runs)  # bold carried
        assert len(a.hyperlinks) == len(b.hyperlinks)
        for x, y in zip(a.hyperlinks, b.hyperlinks):
            assert x.address == y.address and y.text.strip()
    assert len(old.tables) == len(new.tables) == 1
    cells = [(c.text, d.text) for r, s in zip(old.tables[0].rows, new.tables[0].rows) for c, d in zip(r.cells, s.cells)]
    assert len(cells) == 4 and all(a != b and b.strip() for a, b in cells)
    for part in ("header", "footer"):
        a = getattr(old.sections[0], part).paragraphs[0].text
        b = getattr(new.sections[0], part).paragraphs[0].text
        assert b.strip() and a != b


@needs_shared_data("seed")
def test_docx_other_parts_byte_identical(docx_result):
    source, result = docx_result
    old, new = zipfile.ZipFile(io.BytesIO(source)), zipfile.ZipFile(io.BytesIO(result.data))
    assert old.namelist() == new.namelist()
    text_parts = {"word/document.xml", "word/header1.xml", "word/footer1.xml"}
    changed = {name for name in old.namelist() if old.read(name) != new.read(name)}
    assert changed == text_parts
    assert any(name.startswith("word/media/") for name in old.namelist())  # the image came back as it was


# --- SRT / WebVTT -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def srt_result(tiny_engine):
    source = talk_srt()
    return source, translate_file(source.encode(), "talk.srt", tiny_engine)


@needs_shared_data("iwslt15")
def test_srt_numbers_and_timings_identical(srt_result):
    import srt

    source, result = srt_result
    old, new = list(srt.parse(source)), list(srt.parse(result.data.decode()))
    assert [(c.index, c.start, c.end) for c in old] == [(c.index, c.start, c.end) for c in new]
    assert all(b.content.strip() and a.content != b.content for a, b in zip(old, new))
    timing_lines = [line for line in source.splitlines() if "-->" in line]
    assert timing_lines == [line for line in result.data.decode().splitlines() if "-->" in line]


@needs_shared_data("iwslt15")
def test_srt_sentence_across_cues_translated_once_and_spread(srt_result):
    import srt

    source, result = srt_result
    cues = list(srt.parse(result.data.decode()))
    sentences = [pair for pair in result.document.sentences if pair.translation]
    assert len(sentences) < len(cues)  # cues were joined into sentences before translating
    spread = " ".join(" ".join(cue.content.split()) for cue in cues).replace(" …", "").split()
    assert spread == " ".join(pair.translation for pair in sentences).split()  # nothing lost, order kept


def test_vtt_round_trip(tiny_engine):
    source = ("WEBVTT\n\nNOTE từ một bài nói\n\n1\n00:00:01.000 --> 00:00:03.000 align:start\nKhi tôi còn nhỏ, tôi nghĩ rằng\n\n"
              "2\n00:00:03.500 --> 00:00:05.000\nđất nước tôi là tốt nhất.\n")
    output = translate_file(source.encode(), "talk.vtt", tiny_engine).data.decode()
    assert output.startswith("WEBVTT\n\nNOTE từ một bài nói\n\n1\n00:00:01.000 --> 00:00:03.000 align:start\n")
    assert "\n2\n00:00:03.500 --> 00:00:05.000\n" in output
    assert "Khi tôi" not in output and "đất nước" not in output


# --- cache and plain text -----------------------------------------------------------------------


@needs_shared_data("seed")
def test_second_run_is_all_cache_hits(tiny_engine, tmp_path):
    cache = open_cache(tmp_path / "cache.sqlite")
    first = translate_file(seed_docx(), "a.docx", tiny_engine, cache)
    second = translate_file(seed_docx(), "a.docx", tiny_engine, cache)
    assert second.document.cache_hits == len([p for p in second.document.sentences if p.kind != "byline"])
    assert second.data == first.data or zipfile.ZipFile(io.BytesIO(second.data)).read("word/document.xml") == \
        zipfile.ZipFile(io.BytesIO(first.data)).read("word/document.xml")


def test_plain_text_is_the_article_path(tiny_engine):
    from mt.io.formats import english_text
    from mt.pipeline import translate_document

    text = "Xin chào các bạn.\nTôi tên là Lan.\n\nHà Nội là thủ đô."
    result = translate_file(text.encode(), "a.txt", tiny_engine)
    assert result.data.decode() == english_text(translate_document(text, tiny_engine, quality=False))
    assert result.name == "a.en.txt" and len(result.blocks) == 2
