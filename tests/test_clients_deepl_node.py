"""DeepL's official Node client (``deepl-node`` from npm, installed by ``tools/setup.sh --test`` into
.npm-clients) against a real server on a loopback port.

tests/deepl_client.js makes every call of ``deepl.Translator`` once (texts, markup, languages,
glossaries, documents, usage) and reports each outcome as JSON; the assertions are here. Calls
the server cannot honour must fail as the client's own error classes (DeepLError and its
subclasses), never as a crash.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from testkit.document_fixtures import seed_docx, seed_html
from testkit.shared_data import SEED

ROOT = Path(__file__).resolve().parents[1]
MODULES = ROOT / ".npm-clients" / "node_modules"
NODE = shutil.which("node")
KEY = "deepl-node-test-key"
LIMIT = 20_000
TERM = "Zanzibarovia"

pytestmark = pytest.mark.skipif(NODE is None or not (MODULES / "deepl-node").is_dir(),
                                reason="node or deepl-node missing (tools/setup.sh --test installs deepl-node)")


@pytest.fixture(scope="module")
def report(serve_module, tmp_path_factory):
    """Runs the Node script once against one server; its JSON report, by step."""
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    server = serve_module("--api-keys", keys, "--deepl-character-limit", LIMIT)
    folder = tmp_path_factory.mktemp("documents")
    if SEED.exists():
        (folder / "page.html").write_text(seed_html(), encoding="utf-8")
        (folder / "report.docx").write_bytes(seed_docx())
    run = subprocess.run([NODE, str(ROOT / "tests" / "deepl_client.js"), server.url, KEY, str(LIMIT), str(folder)],
                         capture_output=True, text=True, encoding="utf-8", timeout=600,
                         env={**os.environ, "NODE_PATH": str(MODULES)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    steps = json.loads(run.stdout)
    steps["_folder"] = folder
    return steps


def value(report, name):
    step = report[name]
    assert step["ok"], f"{name}: {step}"
    return step["value"]


def refused(report, name, *classes):
    step = report[name]
    assert not step["ok"], f"{name} should have failed: {step}"
    assert step["error"] in classes, step
    return step["message"]


def test_texts(report):
    one = value(report, "translate_one")
    assert one["detectedSourceLang"] == "vi" and one["text"].strip()
    assert one["billedCharacters"] == len("Xin chào thế giới. Tôi là sinh viên.")
    many = value(report, "translate_list")
    assert [item["detectedSourceLang"] for item in many] == ["vi", "vi", "vi"]
    assert many[0]["text"] == many[2]["text"] and many[0]["text"].strip()
    english = value(report, "english")
    assert english["detectedSourceLang"] == "en" and english["text"] == "This sentence is already English."
    assert value(report, "options")["text"].strip()


def test_markup_is_kept(report):
    html = value(report, "html")["text"]
    assert html.startswith("<p>") and html.endswith("</p>") and "<b>" in html and "</b>" in html
    assert '<a href="https://example.org/">' in html and "Tôi sống" not in html
    xml = value(report, "xml")["text"]
    assert xml.startswith("<doc>") and xml.endswith("</doc>") and "<s>" in xml and "Tôi sống" not in xml
    kept = value(report, "ignore_tags")["text"]
    assert '<x id="1">Hà Nội đẹp</x>' in kept and "gia đình" not in kept


def test_languages(report):
    assert [(item["code"], item["name"]) for item in value(report, "source_languages")] == [("vi", "Vietnamese")]
    targets = {item["code"]: item for item in value(report, "target_languages")}
    assert {"en-US", "en-GB"} <= set(targets) and targets["en-US"]["supportsFormality"] is False
    assert value(report, "glossary_pairs") == [{"sourceLang": "vi", "targetLang": "en"}]


def test_refusals_are_the_clients_errors(report):
    assert "target_lang" in refused(report, "unsupported_target", "DeepLError")
    assert "source_lang" in refused(report, "unsupported_source", "DeepLError")
    refused(report, "wrong_key", "AuthorizationError")
    refused(report, "glossary_unsupported_pair", "DeepLError")
    refused(report, "document_pdf", "DocumentTranslationError")


def test_glossaries(report):
    created = value(report, "glossary_create")
    assert created["ready"] and created["entryCount"] == 2 and created["name"] == "Tin tức"
    assert (created["sourceLang"], created["targetLang"]) == ("vi", "en")
    assert created["glossaryId"] in [item["glossaryId"] for item in value(report, "glossary_list")]
    assert value(report, "glossary_get") == created
    assert value(report, "glossary_entries") == {"Hà Nội": TERM, "sinh viên": "undergraduate"}
    assert TERM in value(report, "glossary_translate")["text"]
    assert report["glossary_delete"]["ok"], report["glossary_delete"]
    refused(report, "glossary_get_deleted", "GlossaryNotFoundError")
    assert value(report, "glossary_csv") == {"Hà Nội": "Hanoi"}


@pytest.mark.skipif(not SEED.exists(), reason="the shared seed article is missing")
def test_documents(report):
    page = value(report, "document_page.html")
    assert page["done"] and page["billedCharacters"] > 100
    english = Path(page["output"]).read_text(encoding="utf-8")
    assert english.count("<p>") == seed_html().count("<p>") and english != seed_html()
    docx = value(report, "document_report.docx")
    assert docx["done"]
    with zipfile.ZipFile(docx["output"]) as archive:
        assert archive.testzip() is None
        assert archive.read("word/document.xml") != zipfile.ZipFile(
            report["_folder"] / "report.docx").read("word/document.xml")
    steps = value(report, "document_steps")
    assert steps["done"] and steps["text"].strip()


def test_usage_and_quota(report):
    before, after = value(report, "usage_before"), value(report, "usage_count")
    assert before["limit"] == LIMIT and before["count"] > 0
    assert after["count"] == before["count"] + len("Cảm ơn.")
    refused(report, "quota", "QuotaExceededError")
