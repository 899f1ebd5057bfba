"""LibreTranslate's real Python clients against a real server on 127.0.0.1 (tiny model).

``libretranslatepy`` (urllib, form bodies) and ``libretranslate-aio`` (httpx, async and sync) are
pointed at our server: every call they expose works, and the calls a Vietnamese→English server
cannot honour fail the way each client reports errors (urllib's HTTPError with LibreTranslate's
``{"error": "..."}`` body; libretranslate-aio's typed exceptions by status).
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.parse

import httpx
import pytest
from libretranslate_aio import (AsyncLibreTranslate, BadRequestError, ForbiddenError, LibreTranslate,
                                LibreTranslateError, RateLimitError)
from libretranslatepy import LibreTranslateAPI

KEY = "libre-client-key-0123456789"
MAX_CHARS = 5000
ARTICLE = "Hà Nội là thủ đô của Việt Nam. Thành phố có nhiều hồ đẹp."
HTML = ('<p class="lead">Hà Nội là <b>thủ đô</b> của <a href="/vn">Việt Nam</a>.</p>'
        "<p>Trời hôm nay đẹp.</p>")
TAG = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
def server(serve_module):
    """Suggestions on, no keys."""
    return serve_module("--suggestions", "--max-chars", str(MAX_CHARS))


@pytest.fixture(scope="module")
def keyed(serve_module, tmp_path_factory):
    """API keys on, suggestions off (the default)."""
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"# clients\n{KEY}\n", encoding="utf-8")
    return serve_module("--api-keys", keys)


def run(coroutine):
    return asyncio.run(coroutine)


async def with_client(url: str, call, api_key: str | None = None):
    async with AsyncLibreTranslate(url, api_key=api_key, timeout=120) as client:
        return await call(client)


def our_translation(server, text: str) -> str:
    reply = server.post_json("/api/translate", {"text": text})
    assert reply.status == 200, reply.text
    return reply.json()["translation"]


def http_error(call) -> tuple[int, dict]:
    with pytest.raises(urllib.error.HTTPError) as caught:
        call()
    return caught.value.code, json.loads(caught.value.read())


# -- libretranslatepy ------------------------------------------------------------------------------
def test_libretranslatepy_calls(server):
    client = LibreTranslateAPI(server.url)
    assert client.translate(ARTICLE, "vi", "en", timeout=120) == our_translation(server, ARTICLE)
    assert client.translate(ARTICLE, "auto", "en", timeout=120) == our_translation(server, ARTICLE)
    assert client.translate("Good morning, how are you today?", "auto", "en") == "Good morning, how are you today?"
    detected = client.detect(ARTICLE)
    assert detected[0]["language"] == "vi" and 50 <= detected[0]["confidence"] <= 100
    assert client.detect("The weather is lovely in the spring.")[0]["language"] == "en"
    languages = client.languages()  # a GET with an empty form body
    assert {entry["code"]: entry["targets"] for entry in languages} == {"vi": ["en"], "en": []}
    assert all(entry["name"] for entry in languages)


def test_libretranslatepy_refusals(server):
    client = LibreTranslateAPI(server.url)
    status, body = http_error(lambda: client.translate(ARTICLE, "vi", "de"))  # its own default target is es
    assert status == 400 and body == {"error": "de is not supported (this server translates vi to en)"}
    status, body = http_error(lambda: client.translate(ARTICLE))  # en → es
    assert status == 400 and "en is not supported" in body["error"]
    status, body = http_error(lambda: client.translate("", "vi", "en"))
    assert status == 400 and body["error"] == "Invalid request: missing q parameter"
    status, body = http_error(lambda: client.detect(""))
    assert status == 400 and body["error"] == "Invalid request: missing q parameter"
    status, body = http_error(lambda: client.translate("x" * (MAX_CHARS + 1), "vi", "en"))
    assert status == 413 and str(MAX_CHARS) in body["error"].replace(",", "")


def test_libretranslatepy_api_key(keyed):
    client = LibreTranslateAPI(keyed.url, api_key=KEY)
    assert client.translate(ARTICLE, "vi", "en", timeout=120) == our_translation_keyed(keyed, ARTICLE)
    assert client.detect(ARTICLE)[0]["language"] == "vi"
    assert [entry["code"] for entry in client.languages()] == ["en", "vi"]  # api_key in a GET's form body
    assert [entry["code"] for entry in LibreTranslateAPI(keyed.url).languages()] == ["en", "vi"]  # open
    status, body = http_error(lambda: LibreTranslateAPI(keyed.url, api_key="wrong").translate(ARTICLE, "vi", "en"))
    assert status == 403 and body == {"error": "the API key is not valid"}
    status, body = http_error(lambda: LibreTranslateAPI(keyed.url).detect(ARTICLE))
    assert status == 401 and "API key" in body["error"]


def our_translation_keyed(server, text: str) -> str:
    reply = server.post_json("/api/translate", {"text": text}, {"X-API-Key": KEY})
    assert reply.status == 200, reply.text
    return reply.json()["translation"]


# -- libretranslate-aio ----------------------------------------------------------------------------
def test_aio_translate_text_list_and_detection(server):
    async def calls(client):
        return (await client.translate(ARTICLE, "vi", "en"),
                await client.translate([ARTICLE, "Good morning to you all.", ""], "auto", "en"))

    single, batch = run(with_client(server.url, calls))
    assert single.translated_text == our_translation(server, ARTICLE)
    assert single.detected_language is None and single.alternatives is None  # only when asked for
    assert batch.translated_text == [our_translation(server, ARTICLE), "Good morning to you all.", ""]
    languages = [found.language for found in batch.detected_language]
    assert languages == ["vi", "en", "vi"]
    assert 50 <= batch.detected_language[0].confidence <= 100


def test_aio_html_keeps_markup(server):
    async def calls(client):
        return (await client.translate(HTML, "vi", "en", format="html"),
                await client.translate([HTML, "<p>Good <b>morning</b> to you all.</p>"], "auto", "en", format="html"))

    single, batch = run(with_client(server.url, calls))
    english = single.translated_text
    assert TAG.findall(english) == TAG.findall(HTML)  # every tag and attribute, in order
    assert TAG.sub("", english) != TAG.sub("", HTML)
    document = server.post_multipart("/api/translate_file", {}, {"file": ("q.html", HTML.encode())})
    assert document.status == 200 and english == document.text  # the document path itself
    assert batch.translated_text == [english, "<p>Good <b>morning</b> to you all.</p>"]
    assert [found.language for found in batch.detected_language] == ["vi", "en"]


def test_aio_alternatives(server):
    async def calls(client):
        return (await client.translate("Hà Nội là thủ đô của Việt Nam.", "vi", "en", alternatives=3),
                await client.translate([ARTICLE, "Good morning to you all."], "auto", "en", alternatives=2),
                await client.translate(HTML, "vi", "en", format="html", alternatives=2))

    single, batch, html = run(with_client(server.url, calls))
    assert single.translated_text == our_translation(server, "Hà Nội là thủ đô của Việt Nam.")
    assert 1 <= len(single.alternatives) <= 3 and single.translated_text not in single.alternatives
    assert len(set(single.alternatives)) == len(single.alternatives) and all(single.alternatives)
    first, untranslated = batch.alternatives
    assert 1 <= len(first) <= 2 and batch.translated_text[0] not in first
    assert untranslated == []  # English text is answered unchanged: nothing to choose from
    # whole-text alternatives of a two-sentence text keep its shape: two sentences, one space apart
    assert all(alternative.count(" ") >= 1 for alternative in first)
    assert html.alternatives == []  # as LibreTranslate: none for html


def test_aio_detect_languages_settings_health(server):
    async def calls(client):
        return (await client.detect(ARTICLE), await client.detect("The weather is lovely in the spring."),
                await client.languages(), await client.frontend_settings(), await client.health())

    vi, en, languages, settings, healthy = run(with_client(server.url, calls))
    assert vi[0].language == "vi" and vi[0].confidence >= 50
    assert en[0].language == "en" and en[0].confidence >= 50
    assert {language.code: language.targets for language in languages} == {"vi": ["en"], "en": []}
    assert settings.char_limit == MAX_CHARS and settings.api_keys is False and settings.key_required is False
    assert settings.suggestions is True and settings.frontend_timeout == 500
    assert {".html", ".docx", ".md", ".srt", ".vtt", ".txt"} <= set(settings.supported_files_format)
    assert (settings.language.source.code, settings.language.target.code) == ("vi", "en")
    assert healthy is True


def test_aio_translate_file(server, tmp_path):
    page = tmp_path / "trang.html"
    page.write_text(HTML, encoding="utf-8")

    async def calls(client):
        return await client.translate_file(page, "vi", "en")

    result = run(with_client(server.url, calls))
    assert result.translated_file_url.startswith(server.url + "/download_file/")
    download = httpx.get(result.translated_file_url, timeout=60)
    assert download.status_code == 200 and TAG.findall(download.text) == TAG.findall(HTML)
    assert download.text == server.post_multipart("/api/translate_file", {}, {"file": ("q.html", HTML.encode())}).text


def test_aio_suggest_goes_into_the_memory(server):
    sentence, better = "Con mèo đang ngủ trên chiếc ghế cũ.", "The cat is asleep on the old chair."
    two = "Con chó chạy ra vườn. Nó sủa rất to."

    async def calls(client):
        before = await client.translate(sentence, "vi", "en")
        accepted = await client.suggest(sentence, better, "vi", "en")
        pair = await client.suggest(two, "The dog runs into the garden. It barks loudly.", "vi", "en")
        return before, accepted, pair, await client.translate([sentence, two, "Nó sủa rất to."], "vi", "en")

    before, accepted, pair, after = run(with_client(server.url, calls))
    assert accepted is True and pair is True and before.translated_text != better
    # the memory outranks the model and its cache, sentence by sentence
    assert after.translated_text == [better, "The dog runs into the garden. It barks loudly.", "It barks loudly."]
    search = server.get("/api/memory?q=" + urllib.parse.quote(sentence))
    assert search.status == 200, search.text
    assert any(row["origin"] == "suggested" and row["target"] == better for row in search.json()["hits"])


def test_aio_refusals(server):
    async def expect(error, call):
        async with AsyncLibreTranslate(server.url, timeout=120) as client:
            with pytest.raises(error) as caught:
                await call(client)
        return caught.value

    async def all_refusals(tmp_pdf):
        return [
            await expect(BadRequestError, lambda c: c.translate(ARTICLE, "vi", "de")),
            await expect(BadRequestError, lambda c: c.translate(ARTICLE, "fr", "en")),
            await expect(BadRequestError, lambda c: c.translate(ARTICLE, "vi", "en", format="markdown")),
            await expect(BadRequestError, lambda c: c.translate(ARTICLE, "vi", "en", alternatives=9)),
            await expect(BadRequestError, lambda c: c.suggest("Xin chào.", "Hallo.", "vi", "de")),
            await expect(BadRequestError, lambda c: c.suggest("Xin chào.", "   ", "vi", "en")),
            await expect(BadRequestError, lambda c: c.translate_file(tmp_pdf, "vi", "en")),
            await expect(LibreTranslateError, lambda c: c.translate("x" * (MAX_CHARS + 1), "vi", "en")),
        ]

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "paper.pdf"
        pdf.write_bytes(b"%PDF-1.4 not ours")
        refusals = run(all_refusals(pdf))
    messages = [error.message for error in refusals]
    assert messages[0] == "de is not supported (this server translates vi to en)"
    assert messages[1] == "fr is not supported (this server translates vi to en)"
    assert messages[2] == "markdown format is not supported (text or html)"
    assert "alternatives parameter must be an integer from 0 to 8" in messages[3]
    assert messages[4] == "de is not supported (this server translates vi to en)"
    assert messages[5] == "Invalid request: missing s parameter"
    assert ".pdf" in messages[6]
    assert refusals[7].status_code == 413 and str(MAX_CHARS) in messages[7].replace(",", "")
    assert all(error.status_code == 400 for error in refusals[:7])


def test_aio_api_key(keyed, tmp_path):
    page = tmp_path / "bai.md"
    page.write_text("# Hà Nội\n\nHà Nội là thủ đô của Việt Nam.\n", encoding="utf-8")

    async def calls(client):
        return (await client.translate(ARTICLE, "vi", "en"), await client.detect(ARTICLE),
                await client.translate_file(page, "vi", "en"), await client.languages(),
                await client.frontend_settings())

    translated, detected, document, languages, settings = run(with_client(keyed.url, calls, api_key=KEY))
    assert translated.translated_text == our_translation_keyed(keyed, ARTICLE)
    assert detected[0].language == "vi" and "/download_file/" in document.translated_file_url
    assert [language.code for language in languages] == ["en", "vi"]
    assert settings.api_keys is True and settings.key_required is True and settings.suggestions is False

    async def refused(api_key, call):
        async with AsyncLibreTranslate(keyed.url, api_key=api_key, timeout=60) as client:
            with pytest.raises(LibreTranslateError) as caught:
                await call(client)
        return caught.value

    wrong = run(refused("wrong", lambda c: c.translate(ARTICLE, "vi", "en")))
    assert isinstance(wrong, ForbiddenError) and wrong.message == "the API key is not valid"
    missing = run(refused(None, lambda c: c.detect(ARTICLE)))
    assert missing.status_code == 401 and "API key" in missing.message
    disabled = run(refused(KEY, lambda c: c.suggest("Xin chào.", "Hello.", "vi", "en")))
    assert isinstance(disabled, ForbiddenError) and disabled.message == "Suggestions are disabled on this server."


def test_aio_sync_client(keyed):
    with LibreTranslate(keyed.url, api_key=KEY, timeout=120) as client:
        assert client.translate(ARTICLE, "vi", "en").translated_text == our_translation_keyed(keyed, ARTICLE)
        assert client.health() is True
        assert [language.code for language in client.languages()] == ["en", "vi"]


def test_aio_rate_limit(serve):
    limited = serve("--rate-limit", "2/minute", "--no-cache")

    async def calls(client):
        await client.translate("Xin chào.", "vi", "en")
        await client.detect("Xin chào.")
        with pytest.raises(RateLimitError) as caught:
            await client.translate("Xin chào.", "vi", "en")
        return caught.value, await client.languages(), await client.health()  # not counted, as in LibreTranslate

    refused, languages, healthy = run(with_client(limited.url, calls))
    assert refused.status_code == 429 and "rate limit" in refused.message
    assert len(languages) == 2 and healthy is True


def test_json_bodies_and_key_places(server, keyed):
    """What JavaScript clients send (JSON bodies), and the key where LibreTranslate reads it: the JSON
    body, the form, or the query."""
    detected = server.post_json("/detect", {"q": ARTICLE})
    assert detected.status == 200 and detected.json()[0]["language"] == "vi"
    suggested = server.post_json("/suggest", {"q": "Bà ấy đọc sách mỗi tối.", "s": "She reads every evening.",
                                              "source": "vi", "target": "en"})
    assert suggested.status == 200 and suggested.json() == {"success": True}
    missing = server.post_json("/suggest", {"q": "Bà ấy đọc sách.", "source": "vi", "target": "en"})
    assert missing.status == 400 and missing.json() == {"error": "Invalid request: missing s parameter"}
    assert missing.header("X-Error-Code") == "invalid_field"
    assert keyed.post_json("/detect", {"q": ARTICLE, "api_key": KEY}).status == 200
    assert keyed.post_form(f"/detect?api_key={KEY}", {"q": ARTICLE}).status == 200
    refused = keyed.post_json("/translate", {"q": ARTICLE, "source": "vi", "target": "en", "api_key": "nope"})
    assert refused.status == 403 and refused.json() == {"error": "the API key is not valid"}
    assert refused.header("X-Error-Code") == "invalid_api_key"
    disabled = keyed.post_json("/suggest", {"q": "Xin chào.", "s": "Hello.", "source": "vi", "target": "en",
                                            "api_key": KEY})
    assert disabled.status == 403 and disabled.header("X-Error-Code") == "suggestions_disabled"
