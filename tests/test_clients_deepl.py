"""DeepL's official Python client (``deepl`` from PyPI) against a real server on a loopback port.

Every call of ``deepl.Translator`` that a Vietnamese→English server can honour is made as a user
would make it (``server_url`` pointing at us); calls it cannot honour (German, a PDF, a wrong key,
past the character limit) must fail as the client's own exceptions, never as a crash or a hang.
One server with API keys, a character limit and two worker processes (the shared stores must make
them agree) serves the whole module.
"""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest

from testkit.document_fixtures import seed_docx, seed_html
from testkit.shared_data import needs_shared_data

deepl = pytest.importorskip("deepl")

KEY = "deepl-test-key"
LIMIT = 20_000  # characters a month (--deepl-character-limit)
TERM = "Zanzibarovia"  # an English rendering no model would produce by itself


@pytest.fixture(scope="module")
def server(serve_module, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    keys.write_text(f"{KEY}\n", encoding="utf-8")
    # two worker processes: counts, glossaries and documents must agree whichever one answers
    return serve_module("--api-keys", keys, "--deepl-character-limit", LIMIT, "--workers", 2)


@pytest.fixture(scope="module")
def translator(server):
    client = deepl.Translator(KEY, server_url=server.url)
    yield client
    client.close()


def test_translate_one_text_detects_vietnamese(translator):
    result = translator.translate_text("Xin chào thế giới. Tôi là sinh viên.", target_lang="EN-US")
    assert isinstance(result, deepl.TextResult)
    assert result.detected_source_lang == "VI"
    assert result.text.strip() and result.text != "Xin chào thế giới. Tôi là sinh viên."
    assert result.billed_characters == len("Xin chào thế giới. Tôi là sinh viên.")


def test_translate_a_list_with_source_vi_and_british_english(translator):
    texts = ["Hôm nay trời đẹp.", "Chúng tôi đi học.", "Hôm nay trời đẹp."]
    results = translator.translate_text(texts, source_lang="VI", target_lang="EN-GB")
    assert [result.detected_source_lang for result in results] == ["VI", "VI", "VI"]
    assert all(result.text.strip() for result in results)
    assert results[0].text == results[2].text  # the same sentence, the same translation


def test_english_text_comes_back_as_it_is(translator):
    result = translator.translate_text("This sentence is already English.", target_lang="en-us")
    assert result.detected_source_lang == "EN"
    assert result.text == "This sentence is already English."


def test_options_the_client_sends_are_accepted(translator):
    result = translator.translate_text("Xin chào.\nTạm biệt.", source_lang="vi", target_lang="EN-US",
                                       split_sentences="nonewlines", preserve_formatting=True,
                                       formality="prefer_less", context="Một cuộc trò chuyện.")
    assert result.text.strip()


def test_html_tag_handling_keeps_the_markup(translator):
    source = '<p>Tôi sống ở <b>Hà Nội</b> với <a href="https://example.org/">gia đình</a>.</p>'
    result = translator.translate_text(source, source_lang="VI", target_lang="EN-US", tag_handling="html")
    text = result.text
    assert text.startswith("<p>") and text.endswith("</p>")
    assert "<b>" in text and "</b>" in text and '<a href="https://example.org/">' in text
    assert "Tôi sống" not in text


def test_xml_tag_handling_keeps_the_markup(translator):
    source = "<doc><title>Tin tức</title><s>Tôi sống ở Hà Nội.</s></doc>"
    result = translator.translate_text(source, target_lang="EN-GB", tag_handling="xml")
    assert result.text.startswith("<doc>") and result.text.endswith("</doc>")
    assert "<s>" in result.text and "</s>" in result.text and "Tôi sống" not in result.text
    kept = translator.translate_text('<doc>Tôi sống ở <x id="1">Hà Nội đẹp</x> với gia đình.</doc>',
                                     target_lang="EN-US", tag_handling="xml", ignore_tags=["x"])
    assert '<x id="1">Hà Nội đẹp</x>' in kept.text and "gia đình" not in kept.text
    source = '<?xml version="1.0"?><doc><![CDATA[giữ <b>nguyên</b>]]><Item n="1">Tôi đi học.</Item></doc>'
    data = translator.translate_text(source, target_lang="EN-US", tag_handling="xml")
    assert data.text.startswith('<?xml version="1.0"?><doc><![CDATA[giữ <b>nguyên</b>]]><Item n="1">')
    assert "Tôi đi học" not in data.text


def test_languages(translator):
    assert [(language.code, language.name) for language in translator.get_source_languages()] == [("VI", "Vietnamese")]
    targets = {language.code: language for language in translator.get_target_languages()}
    assert {"EN-US", "EN-GB"} <= set(targets)
    assert targets["EN-US"].supports_formality is False
    pairs = translator.get_glossary_languages()
    assert [(pair.source_lang, pair.target_lang) for pair in pairs] == [("vi", "en")]


def test_unsupported_languages_are_the_clients_exception(translator):
    with pytest.raises(deepl.DeepLException) as caught:
        translator.translate_text("Xin chào.", target_lang="DE")
    assert caught.value.http_status_code == 400 and "target_lang" in str(caught.value)
    with pytest.raises(deepl.DeepLException) as caught:
        translator.translate_text("Bonjour.", source_lang="FR", target_lang="EN-US")
    assert caught.value.http_status_code == 400
    with pytest.raises(deepl.DeepLException) as caught:
        translator.create_glossary("de", "VI", "DE", {"xin chào": "hallo"})
    assert caught.value.http_status_code == 400
    with pytest.raises(deepl.DeepLException, match="formality"):  # English has no formal register
        translator.translate_text("Xin chào.", target_lang="EN-US", formality="more")


def test_what_this_server_has_not_is_the_clients_exception(server):
    """DeepLClient's v2/write and v3 calls (rephrasing, multilingual glossaries, style rules,
    translation memories): 404 in DeepL's shape, the client's exception."""
    client = deepl.DeepLClient(KEY, server_url=server.url)
    calls = [lambda: client.rephrase_text("Hello.", target_lang="EN-US"), client.list_multilingual_glossaries,
             client.get_all_style_rules, client.list_translation_memories]
    for call in calls:
        with pytest.raises(deepl.DeepLException) as caught:
            call()
        assert caught.value.http_status_code == 404


def test_a_wrong_key_is_an_authorization_error(server):
    stranger = deepl.Translator("not-a-key", server_url=server.url)
    with pytest.raises(deepl.AuthorizationException):
        stranger.translate_text("Xin chào.", target_lang="EN-US")
    with pytest.raises(deepl.AuthorizationException):
        stranger.get_usage()


def test_glossary_life_cycle(translator):
    entries = {"Hà Nội": TERM, "sinh viên": "undergraduate"}
    glossary = translator.create_glossary("Tin tức", "VI", "EN", entries)
    assert glossary.ready and glossary.entry_count == 2
    assert (glossary.source_lang, glossary.target_lang) == ("VI", "EN")
    assert glossary.glossary_id in [item.glossary_id for item in translator.list_glossaries()]
    again = translator.get_glossary(glossary.glossary_id)
    assert again.name == "Tin tức" and again.creation_time == glossary.creation_time
    assert translator.get_glossary_entries(glossary) == entries

    result = translator.translate_text("Tôi sống ở Hà Nội.", source_lang="VI", target_lang="EN-US",
                                       glossary=glossary)
    assert TERM in result.text
    html = translator.translate_text("<p>Tôi sống ở <b>Hà Nội</b>.</p>", source_lang="VI", target_lang="EN-US",
                                     glossary=glossary.glossary_id, tag_handling="html")
    assert TERM in html.text and html.text.startswith("<p>")
    via_helper = translator.translate_text_with_glossary("Hà Nội đẹp lắm.", glossary)
    assert TERM in via_helper.text
    out = io.BytesIO()
    translator.translate_document(b"<p>T\xc3\xb4i s\xe1\xbb\x91ng \xe1\xbb\x9f H\xc3\xa0 N\xe1\xbb\x99i.</p>", out,
                                  source_lang="VI", target_lang="EN-US", glossary=glossary, filename="a.html")
    assert TERM in out.getvalue().decode("utf-8")

    second = translator.create_glossary("Địa danh", "VI", "EN", {"Sài Gòn": "Saigonopolis"})
    both = translator.translate_text("Tôi sống ở Hà Nội và Sài Gòn.", source_lang="VI", target_lang="EN-US",
                                     glossary_ids=[glossary, second.glossary_id])
    assert TERM in both.text and "Saigonopolis" in both.text
    translator.delete_glossary(second)

    translator.delete_glossary(glossary)
    with pytest.raises(deepl.GlossaryNotFoundException):
        translator.get_glossary(glossary.glossary_id)
    with pytest.raises(deepl.GlossaryNotFoundException):
        translator.delete_glossary(glossary.glossary_id)
    with pytest.raises(deepl.DeepLException):
        translator.translate_text("Hà Nội.", source_lang="VI", target_lang="EN-US", glossary=glossary.glossary_id)


def test_glossary_from_deepl_csv(translator):
    csv_data = "Hà Nội,Hanoi,vi,en\nsinh viên,student,vi,en\n"
    glossary = translator.create_glossary_from_csv("csv", "vi", "en", csv_data)
    try:
        assert glossary.entry_count == 2
        assert translator.get_glossary_entries(glossary.glossary_id) == {"Hà Nội": "Hanoi", "sinh viên": "student"}
    finally:
        translator.delete_glossary(glossary)


@needs_shared_data("seed")
def test_translate_html_document(translator, tmp_path):
    source = tmp_path / "bai-bao.html"
    source.write_text(seed_html(), encoding="utf-8")
    output = tmp_path / "bai-bao.en.html"
    status = translator.translate_document_from_filepath(source, output, target_lang="EN-US")
    assert status.done and status.billed_characters > 100
    english = output.read_text(encoding="utf-8")
    assert english.count("<p>") == seed_html().count("<p>") and "<table>" in english
    assert english != seed_html() and 'lang="en"' in english


@needs_shared_data("seed")
def test_translate_docx_document(translator):
    out = io.BytesIO()
    status = translator.translate_document(io.BytesIO(seed_docx()), out, target_lang="EN-GB", filename="bao-cao.docx")
    assert status.done
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    assert archive.testzip() is None
    original = zipfile.ZipFile(io.BytesIO(seed_docx())).read("word/document.xml")
    assert archive.read("word/document.xml") != original


def test_document_steps_and_refusals(translator):
    handle = translator.translate_document_upload(b"Xin ch\xc3\xa0o c\xc3\xa1c b\xe1\xba\xa1n.", target_lang="EN-US",
                                                  filename="note.txt")
    status = translator.translate_document_wait_until_done(handle)
    assert status.ok and status.done
    response = translator.translate_document_download(handle)
    assert response.content.strip()
    with pytest.raises(deepl.DeepLException):
        translator.translate_document(io.BytesIO(b"%PDF-1.4"), io.BytesIO(), target_lang="EN-US", filename="a.pdf")
    with pytest.raises(deepl.AuthorizationException):  # a wrong document_key
        translator.translate_document_get_status(deepl.DocumentHandle(handle.document_id, "0" * 64))
    with pytest.raises(deepl.DeepLException) as caught:  # an unknown document
        translator.translate_document_get_status(deepl.DocumentHandle("f" * 32, handle.document_key))
    assert caught.value.http_status_code == 404
    with pytest.raises(deepl.DocumentTranslationException, match="output_format"):  # no conversions
        translator.translate_document(b"Xin chao.", io.BytesIO(), target_lang="EN-US",
                                      filename="note.txt", output_format="pdf")


def test_usage_counts_and_the_limit_is_456(translator):
    before = translator.get_usage()
    assert before.character.valid and before.character.limit == LIMIT
    assert before.character.count > 0  # the earlier tests' characters, counted in the shared store
    translator.translate_text("Cảm ơn.", target_lang="EN-US")
    assert translator.get_usage().character.count == before.character.count + len("Cảm ơn.")
    with pytest.raises(deepl.QuotaExceededException):
        translator.translate_text("Xin chào. " * (LIMIT // 10 + 1), target_lang="EN-US")


def test_thousands_of_ignore_tags_cost_no_more_than_a_few(server):
    """ignore_tags as one comma-separated string of 12,000 names (a regex of as many alternatives
    took seconds to compile, once per distinct list); names match in any case."""
    import time

    auth = {"Authorization": f"DeepL-Auth-Key {KEY}"}
    names = ",".join([f"{'t' * 60}{n}" for n in range(12_000)] + ["Keep"])
    started = time.perf_counter()
    reply = server.post_json("/v2/translate", {
        "text": ['<doc>Tôi sống ở <keep id="1">Hà Nội đẹp</keep> với gia đình.</doc>'], "target_lang": "EN-US",
        "tag_handling": "xml", "ignore_tags": names}, headers=auth)
    assert reply.status == 200, reply.text
    text = reply.json()["translations"][0]["text"]
    assert '<keep id="1">Hà Nội đẹp</keep>' in text and "gia đình" not in text
    assert time.perf_counter() - started < 1.5


def test_raw_http_shapes(server, translator):
    """What a hand-written DeepL client sees: DeepL's JSON shapes, its error shape and statuses."""
    auth = {"Authorization": f"DeepL-Auth-Key {KEY}"}
    reply = server.post_form("/v2/translate", [("text", "Xin chào."), ("text", "Tạm biệt."), ("target_lang", "EN-GB")],
                             headers=auth)
    assert reply.status == 200, reply.text
    rows = reply.json()["translations"]
    assert len(rows) == 2 and set(rows[0]) == {"detected_source_language", "text", "billed_characters"}
    reply = server.post_json("/v2/translate", {"text": ["Xin chào."], "target_lang": "EN-US"})
    assert reply.status == 403 and set(reply.json()) == {"message"}  # no key: DeepL's 403
    reply = server.post_json("/v2/translate", {"text": ["x" * 100_001], "target_lang": "EN-US"}, headers=auth)
    assert reply.status == 413 and reply.json()["message"] and reply.header("x-error-code") == "text_too_long"
    reply = server.request("POST", "/v2/translate", b"text=x", {**auth, "Content-Type": "text/plain"})
    assert reply.status == 415 and "message" in reply.json()
    reply = server.get("/v2/nothing-here", headers=auth)
    assert reply.status == 404 and "message" in reply.json()
    reply = server.get("/v2/languages?type=target", headers=auth)
    assert [row["language"] for row in reply.json()] == ["EN", "EN-US", "EN-GB"]
    glossary = translator.create_glossary("raw", "VI", "EN", {"Hà Nội": "Hanoi"})
    try:
        reply = server.get(f"/v2/glossaries/{glossary.glossary_id}/entries", headers=auth)
        assert reply.header("content-type").startswith("text/tab-separated-values") and reply.text == "Hà Nội\tHanoi"
    finally:
        translator.delete_glossary(glossary)


# -- the shared store behind /v2/usage and /v2/document, without a server -----------------------------
def add_from_another_process(location: str, run_dir: str, count: int) -> None:
    from mt.cache import open_cache
    from mt.cache.usage import open_usage_store

    with open_cache(location) as cache:
        open_usage_store(cache, run_dir).add_characters(count)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_usage_store_is_shared_by_processes(backend, tmp_path):
    import multiprocessing

    from mt.cache import open_cache
    from mt.cache.usage import open_usage_store, period

    redis_server = None
    if backend == "redis":
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed")
        from testkit.redis_helpers import RedisServer

        redis_server = RedisServer(tmp_path / "redis").start()
        location = redis_server.url
    else:
        location = str(tmp_path / "cache.sqlite")
    try:
        with open_cache(location) as cache:
            store = open_usage_store(cache, str(tmp_path / "run"))
            assert type(store).__name__ == ("RedisUsageStore" if backend == "redis" else "SQLiteUsageStore")
            store.add_characters(10)
            context = multiprocessing.get_context("spawn")
            workers = [context.Process(target=add_from_another_process, args=(location, str(tmp_path / "run"), 5))
                       for _ in range(2)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(60)
            assert [worker.exitcode for worker in workers] == [0, 0]
            assert store.characters() == 20
            assert store.characters(now=0) == 0 and period(0) == "1970-01"  # another month counts from zero
            store.put_job("job", {"status": "done", "key": "k"})
            assert open_usage_store(cache, str(tmp_path / "run")).get_job("job") == {"status": "done", "key": "k"}
            assert store.get_job("other") is None
    finally:
        if redis_server is not None:
            redis_server.stop()
