"""XLIFF 1.2 (issue #23, mt/io/xliff.py): the aligned document out for CAT tools, post-edited pairs
back in; ``POST /download/xliff`` on a real server and ``mt translate --xliff`` as users run it.

No XLIFF schema file is available offline, so the structure is checked against the XLIFF 1.2
rules a CAT tool relies on (namespace and version, one <file> with its languages, <header>
before <body>, one <trans-unit> per sentence with a unique id, <source> and a <target> whose
state is one of the spec's values), parsed with lxml.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from mt.document import Document, SentencePair
from mt.errors import InputError
from mt.io import xliff
from mt.io.xliff import XLIFF_NS, read_xliff, write_xliff, write_xliff_pairs
from testkit.shared_data import ROOT

N = f"{{{XLIFF_NS}}}"
STATES = {"new", "needs-translation", "needs-adaptation", "needs-l10n", "needs-review-translation",
          "needs-review-adaptation", "needs-review-l10n", "translated", "signed-off", "final"}
KEY_TEXT = "Hà Nội là thủ đô của Việt Nam. Thành phố có hơn 8 triệu dân.\n\nTrời hôm nay mưa to."


def pair(index: int, source: str, translation: str, **fields) -> SentencePair:
    values = dict(index=index, paragraph=0, kind="sentence", start=0, end=len(source), source=source,
                  normalized=source, translation=translation, cached=False)
    values.update(fields)
    return SentencePair(**values)


def document(pairs: list[SentencePair]) -> Document:
    return Document(text="", model="tiny", sentences=pairs, translation="")


def units_of(data: bytes) -> list[etree._Element]:
    """The trans-units of an XLIFF 1.2 file, after checking its structure (module docstring)."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    assert root.tag == N + "xliff" and root.get("version") == "1.2"
    files = root.findall(N + "file")
    assert len(files) == 1
    file = files[0]
    assert file.get("source-language") == "vi" and file.get("target-language") == "en"
    assert file.get("datatype") == "plaintext" and file.get("original")
    children = [child.tag for child in file]
    assert children == [N + "header", N + "body"], children
    tool = file.find(f"{N}header/{N}tool")
    assert tool is not None and tool.get("tool-id") == "mt-vi-en"
    units = file.findall(f"{N}body/{N}trans-unit")
    assert len(units) == len(file.findall(f".//{N}trans-unit"))  # no unit elsewhere
    ids = [unit.get("id") for unit in units]
    assert all(ids) and len(set(ids)) == len(ids), ids
    for unit in units:
        tags = [child.tag for child in unit]
        assert tags[:2] == [N + "source", N + "target"], tags
        assert set(tags[2:]) <= {N + "note", N + "alt-trans"}
        assert tags[2:] == sorted(tags[2:], key=lambda tag: tag != N + "note")  # notes before alt-trans
        assert unit.find(N + "target").get("state") in STATES
        assert unit.get("approved") in ("yes", "no")
    return units


# XML 1.0 characters (no C0 controls but tab, line feed and carriage return, which lxml writes as
# &#13; so that it survives parsing; no U+FFFE/U+FFFF; no surrogates).
xml_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\ufffe\uffff",
                                 min_codepoint=0x09).filter(lambda ch: ch in "\t\n\r" or ord(ch) >= 0x20),
                   min_size=1, max_size=60).filter(str.strip)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(xml_text, xml_text, st.booleans()), max_size=12))
def test_write_then_read_gives_every_sentence_back(rows):
    pairs = [pair(i, source, target, origin="memory" if memory else "model")
             for i, (source, target, memory) in enumerate(rows)]
    data = write_xliff(document(pairs))
    units = units_of(data)
    assert [unit.get("id") for unit in units] == [str(i) for i in range(len(rows))]
    expected = [(source, target, "translated" if memory else "needs-review-translation")
                for source, target, memory in rows]
    assert read_xliff(data) == expected
    assert read_xliff(write_xliff_pairs((s, t) for s, t, _ in rows)) == [(s, t, "translated") for s, t, _ in rows]


def test_units_carry_notes_suggestions_and_skip_bylines():
    pairs = [
        pair(0, "Hà_Nội là thủ_đô .", "Hanoi is the capital.", normalized="Hà Nội là thủ đô.", confidence=0.71,
             quality=0.05, flagged=True, cached=True),
        pair(1, "Nguyễn Văn An", "Nguyễn Văn An", kind="byline"),
        pair(2, "Tôi đi học.", "I go to school.", origin="memory",
             suggestions=[{"source": "Tôi đi chơi.", "target": "I go out.", "score": 0.8}]),
        pair(3, "   ", ""),
    ]
    units = units_of(write_xliff(document(pairs), original="bài báo.txt"))
    assert [unit.get("id") for unit in units] == ["0", "2"]  # the byline and the blank segment get none
    first, second = units
    notes = [note.text for note in first.findall(N + "note")]
    assert notes == ["origin: machine translation (cached), needs review", "quality: 0.050 (flagged: low confidence)",
                     "decoder confidence: 0.710", "model input: Hà Nội là thủ đô."]
    assert first.get("approved") == "no" and first.find(N + "target").get("state") == "needs-review-translation"
    assert second.get("approved") == "yes" and second.find(N + "target").get("state") == "translated"
    alt = second.find(N + "alt-trans")
    assert alt.get("match-quality") == "80" and alt.find(N + "target").text == "I go out."
    assert alt.find(N + "source").text == "Tôi đi chơi."
    root = etree.fromstring(write_xliff(document(pairs), original="bài báo.txt"))
    assert root.find(N + "file").get("original") == "bài báo.txt"
    # alt-trans targets are suggestions, not the unit's translation
    assert read_xliff(write_xliff(document(pairs)))[1] == ("Tôi đi học.", "I go to school.", "translated")


def test_an_empty_document_is_a_valid_file_without_units():
    assert units_of(write_xliff(document([]))) == []
    assert read_xliff(write_xliff(document([]))) == []


CAT_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
 <file original="bai.txt" source-language="vi" target-language="en-US" datatype="plaintext">
  <body>
   <group id="p1">
    <trans-unit id="a"><source>Xin <g id="1">chào</g> bạn.</source>
     <target state="final">Hello <g id="1">there</g>, friend.</target></trans-unit>
    <trans-unit id="b" approved="yes"><source>Cảm ơn.</source><target>Thank you.</target></trans-unit>
   </group>
   <trans-unit id="c"><source>Chưa dịch.</source></trans-unit>
   <trans-unit id="d"><source>Trống.</source><target state="new"></target></trans-unit>
   <trans-unit id="e"><source>Cần xem.</source><target state="needs-review-translation">Needs a look.</target>
    <alt-trans><target>Not this.</target></alt-trans></trans-unit>
  </body>
 </file>
 <file original="two.txt" source-language="vi" datatype="plaintext"><body>
   <trans-unit id="f"><source>Hai.</source><target state="translated">Two.</target></trans-unit>
 </body></file>
</xliff>"""


def test_reads_what_cat_tools_write():
    """Inline codes read as their text; groups and several files; units without a target skipped;
    the state as written (an approved unit without one reads as translated)."""
    assert read_xliff(CAT_EXPORT.encode()) == [
        ("Xin chào bạn.", "Hello there, friend.", "final"),
        ("Cảm ơn.", "Thank you.", "translated"),
        ("Cần xem.", "Needs a look.", "needs-review-translation"),
        ("Hai.", "Two.", "translated"),
    ]
    v11 = CAT_EXPORT.replace("document:1.2", "document:1.1").replace('version="1.2"', 'version="1.1"')
    assert len(read_xliff(v11.encode())) == 4  # translate-toolkit's own default version


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE xliff [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"><file original="x" source-language="vi"
datatype="plaintext"><body><trans-unit id="1"><source>&c;</source><target>&c;</target></trans-unit></body></file></xliff>"""
EXTERNAL = b"""<?xml version="1.0"?><!DOCTYPE xliff [<!ENTITY e SYSTEM "file:///etc/passwd">]>
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"><file original="x" source-language="vi"
datatype="plaintext"><body><trans-unit id="1"><source>&e;</source><target>x</target></trans-unit></body></file></xliff>"""


@pytest.mark.parametrize("data, message", [
    (b"", "not well-formed"),
    (b"Hello\tXin chao\n", "not well-formed"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not well-formed"),
    (b"<html><body>hi</body></html>", "not an XLIFF file"),
    (b'<tmx version="1.4"><body/></tmx>', "not an XLIFF file"),
    (b'<xliff version="2.0" xmlns="urn:oasis:names:tc:xliff:document:2.0" srcLang="vi"><file id="f"/></xliff>',
     "XLIFF 2.0 is not supported"),
    (b'<xliff xmlns="urn:example:other"><file/></xliff>', "not XLIFF 1.x"),
    (b'<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2"></xliff>', "without a <file>"),
    (BOMB, "must not declare a DTD"),
    (EXTERNAL, "must not declare a DTD"),
    (b"<xliff>" * 300 + b"</xliff>" * 300, "not well-formed"),  # unclosed: no deep recursion either
])
def test_what_is_not_xliff_is_refused_in_one_clear_line(data, message):
    with pytest.raises(InputError, match=message) as caught:
        read_xliff(data, "upload.xlf")
    assert str(caught.value).startswith("upload.xlf: ") and "\n" not in str(caught.value)


def test_reading_is_bounded_in_size(monkeypatch):
    data = write_xliff_pairs([("Một.", "One.")] * 50)
    assert len(read_xliff(data)) == 50
    monkeypatch.setattr(xliff, "MAX_XLIFF_BYTES", len(data) - 1)
    with pytest.raises(InputError, match="at most"):
        read_xliff(data)


# -- the CLI and the server --------------------------------------------------------------------------
def run_mt(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "mt", *map(str, args)], capture_output=True, cwd=ROOT,
                          timeout=timeout, env={**__import__("os").environ, "HF_HUB_OFFLINE": "1",
                                                "PYTHONIOENCODING": "utf-8"})


def test_mt_translate_xliff_marks_memory_hits_translated(tiny_model_dir, tmp_path):
    """``mt memory import`` of a TMX, then ``mt translate --xliff -o``: the remembered sentence is a
    translated unit with the memory's English, the others model output needing review; the file
    imports back into the memory."""
    article = tmp_path / "bai.txt"
    article.write_text(KEY_TEXT, encoding="utf-8")
    both = run_mt("translate", article, "--model", tiny_model_dir, "--no-cache", "--xliff", "--jsonl")
    assert both.returncode != 0 and b"choose one" in both.stderr and b"Traceback" not in both.stderr
    tmx = tmp_path / "tm.tmx"
    tmx.write_text('<?xml version="1.0" encoding="UTF-8"?><tmx version="1.4"><header srclang="vi" datatype="plaintext" '
                   'segtype="sentence" adminlang="en" o-tmf="x" creationtool="x" creationtoolversion="1"/><body><tu>'
                   '<tuv xml:lang="vi"><seg>Trời hôm nay mưa to.</seg></tuv><tuv xml:lang="en"><seg>It is pouring today.'
                   '</seg></tuv></tu></body></tmx>', encoding="utf-8")
    cache = tmp_path / "c.sqlite"
    imported = run_mt("memory", "import", tmx, "--cache", cache)
    assert imported.returncode == 0, imported.stderr.decode()
    out = tmp_path / "bai.xlf"
    result = run_mt("translate", article, "--model", tiny_model_dir, "--cache", cache, "--xliff", "-o", out)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    data = out.read_bytes()
    units = units_of(data)
    assert etree.fromstring(data).find(N + "file").get("original") == "bai.txt"
    assert [unit.find(N + "source").text for unit in units] == [
        "Hà Nội là thủ đô của Việt Nam.", "Thành phố có hơn 8 triệu dân.", "Trời hôm nay mưa to."]
    read = read_xliff(data)
    assert read[2] == ("Trời hôm nay mưa to.", "It is pouring today.", "translated")
    assert [state for _, _, state in read[:2]] == ["needs-review-translation"] * 2
    assert all(unit.find(N + "note") is not None for unit in units)
    again = run_mt("memory", "import", out, "--cache", cache)  # confirmed units only (the memory hit)
    assert again.returncode == 0, again.stderr.decode()


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module()


def test_post_download_xliff_is_xliff_with_one_unit_per_sentence(server):
    aligned = server.post_json("/api/translate", {"text": KEY_TEXT}).json()["sentences"]
    reply = server.post_json("/download/xliff", {"text": KEY_TEXT})
    assert reply.status == 200, reply.body[:300]
    assert reply.header("Content-Type").startswith("application/x-xliff+xml")
    assert ".xlf" in reply.header("Content-Disposition")
    units = units_of(reply.body)
    assert [unit.get("id") for unit in units] == [str(s["index"]) for s in aligned]
    assert [(unit.find(N + "source").text, unit.find(N + "target").text) for unit in units] == [
        (s["source"], s["translation"]) for s in aligned]
    form = server.post_form("/download/xliff", {"text": KEY_TEXT, "name": "bài.txt"})
    assert form.status == 200
    assert etree.fromstring(form.body).find(N + "file").get("original") == "bài.txt"
    assert "b%C3%A0i.xlf" in form.header("Content-Disposition")
    assert len(units_of(form.body)) == len(aligned)
    assert server.post_json("/download/xliff", {"text": " "}).status == 400
