"""Real documents for the document-format tests and benchmark, built from the shared data.

The text is real: the seed news article (../shared/data/seed) and IWSLT'15 TED talks
(CC BY-NC-ND 3.0), read in place; only the wrapping (HTML page, Markdown file, DOCX, SRT) is built.
"""

from __future__ import annotations

import datetime
import html
import io
import struct
import zlib

from testkit.shared_data import SEED, iwslt_talks

from mt.text.segment import split_sentences


def seed_paragraphs() -> list[list[str]]:
    """The seed article's sentences (the byline left out), in paragraphs of three."""
    text = SEED.read_text(encoding="utf-8")
    sentences = [s.text for s in split_sentences(text) if s.kind != "byline"]
    return [sentences[n : n + 3] for n in range(0, len(sentences), 3)]


SCRIPT = '<script>var note = "<p>không dịch</p>" && 1 < 2;</script>'
STYLE = "<style>p > b { color: #c00 }</style>"
PRE = "<pre>giữ &lt;nguyên&gt; &amp; y_hệt\n  thụt lề</pre>"
NO_TRANSLATE = '<p translate="no">Tên riêng &copy; không dịch</p>'


def seed_html() -> str:
    """The seed article as a page: title, headline, paragraphs with inline links and bold words,
    a list, a table, and protected parts (script, style, pre, translate="no")."""
    paragraphs = seed_paragraphs()
    body = []
    for n, sentences in enumerate(paragraphs):
        words = html.escape(" ".join(sentences), quote=False).split(" ")
        if len(words) > 8:
            words[2] = f'<a href="https://vnexpress.net/a?id={n}&amp;x=1" title="Tin">{words[2]} {words[3]}</a>'
            del words[3]
            words[5] = f"<b>{words[5]}</b>"
        body.append("<p>" + " ".join(words) + "</p>")
    first = html.escape(paragraphs[0][0], quote=False)
    return (
        "<!DOCTYPE html>\n<html lang=\"vi\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{first}</title>\n{STYLE}\n{SCRIPT}\n</head>\n<body>\n"
        f"<h1 class=\"title\">{first}</h1>\n"
        + "\n".join(body)
        + f"\n{PRE}\n{NO_TRANSLATE}\n"
        "<ul><li>Giá xăng dầu tăng mạnh trong tháng này.</li><li>Học sinh được nghỉ hè từ đầu tháng sáu.</li></ul>\n"
        "<table><tr><td>Bệnh viện đã tiếp nhận hàng trăm bệnh nhân mỗi ngày.</td>"
        "<td>Chúng tôi sẽ tổ chức hội nghị vào tuần tới.</td></tr></table>\n"
        "<p>Liên hệ: <code>tin@vnexpress.net</code> hoặc gọi cho chúng tôi vào buổi sáng.</p>\n"
        "</body>\n</html>\n"
    )


FENCE = "```python\nprint(\"không dịch\")  # *giữ nguyên*\n```"


def seed_markdown() -> str:
    paragraphs = seed_paragraphs()
    lines = [f"# {paragraphs[0][0]}", ""]
    for n, sentences in enumerate(paragraphs[1:3]):
        words = " ".join(sentences).split(" ")
        alpha = [i for i, word in enumerate(words) if word[0].isalpha()]
        words[alpha[1]] = f"**{words[alpha[1]]}**"
        words[alpha[4]] = f"[{words[alpha[4]]}](https://vnexpress.net/tin_(moi)?a={n} \"Tin\")"
        words[alpha[7]] = f"`{words[alpha[7]]}`"
        lines += [" ".join(words), ""]
    lines += [
        "## Giá xăng dầu tăng mạnh trong tháng này", "",
        "- Học sinh được nghỉ hè từ *đầu tháng sáu*.",
        "- Bệnh viện đã tiếp nhận hàng trăm bệnh nhân mỗi ngày.", "",
        "> Chúng tôi sẽ tổ chức hội nghị",
        "> vào tuần tới.", "",
        FENCE, "",
        "| Cột một | Cột hai |", "|---|---|",
        "| Mẹ tôi nấu phở rất ngon. | Văn hoá truyền thống cần được bảo tồn. |", "",
        " ".join(paragraphs[3]), "",
    ]
    return "\n".join(lines)


def tiny_png() -> bytes:
    """A valid 2x2 PNG (for the DOCX image that must come back byte-identical)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def add_hyperlink(paragraph, text: str, url: str):
    """python-docx has no hyperlink API: the standard w:hyperlink with an external relation."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml.ns import qn
    from docx.oxml.shared import OxmlElement

    rid = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), rid)
    run = OxmlElement("w:r")
    props = OxmlElement("w:rPr")
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    props.append(underline)
    run.append(props)
    t = OxmlElement("w:t")
    t.text = text
    run.append(t)
    link.append(run)
    paragraph._p.append(link)
    return rid


def seed_docx(pages: int = 1) -> bytes:
    """The seed article as a Word file: header, footer, heading, bold runs, a hyperlink, a table,
    an image; ``pages`` repeats the body (the benchmark's 200-page document)."""
    import docx
    from docx.shared import Inches

    paragraphs = seed_paragraphs()
    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "Báo cáo tin tức của tòa soạn trong tháng mười hai."
    section.footer.paragraphs[0].text = "Tài liệu lưu hành nội bộ của công ty."
    for page in range(pages):
        document.add_heading(paragraphs[0][0], level=1)
        for sentences in paragraphs[1:]:
            words = " ".join(sentences).split(" ")
            paragraph = document.add_paragraph(" ".join(words[:3]) + " ")
            paragraph.add_run(" ".join(words[3:5])).bold = True
            paragraph.add_run(" " + " ".join(words[5:9]) + " ")
            add_hyperlink(paragraph, " ".join(words[9:11]), "https://vnexpress.net/tin-tuc")
            paragraph.add_run(" " + " ".join(words[11:]))
        table = document.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "Giá xăng dầu tăng mạnh trong tháng này."
        table.cell(0, 1).text = "Học sinh được nghỉ hè từ đầu tháng sáu."
        table.cell(1, 0).text = "Bệnh viện đã tiếp nhận hàng trăm bệnh nhân mỗi ngày."
        table.cell(1, 1).text = "Chúng tôi sẽ tổ chức hội nghị vào tuần tới."
        if page == 0:
            document.add_picture(io.BytesIO(tiny_png()), width=Inches(0.5))
        if pages > 1:
            document.add_page_break()
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def talk_srt(lines: int = 24, split: str = "tst2013") -> str:
    """The first lines of a real TED talk as subtitles, each line cut in two cues, so that
    sentences run across cues as they do in real subtitles."""
    import srt

    talk = iwslt_talks(split)[0][:lines]
    cues, clock = [], 0.0
    for line in talk:
        words = line.split()
        half = max(1, len(words) // 2)
        for piece in (" ".join(words[:half]), " ".join(words[half:])):
            if piece:
                start = datetime.timedelta(seconds=round(clock, 3))
                cues.append(srt.Subtitle(len(cues) + 1, start, start + datetime.timedelta(seconds=1.8), piece))
                clock += 2.1
    return srt.compose(cues)
