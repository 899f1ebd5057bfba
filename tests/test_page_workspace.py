"""The page as a translator's workspace, in headless Chromium against the real server process
(launch as in tests/test_page.py): a row edited in place goes to the translation memory and
comes back from it after a reload (word-segmented input too), a sentence one word away shows it
as a suggestion, an alternative is taken with the keyboard, copy buttons, the normalised
Vietnamese, glossary terms marked on both sides, an uploaded document's flags, labels and
download names, errors in words; screenshots at desktop and phone widths in test-output/."""

from __future__ import annotations

from pathlib import Path

import pytest

# test_page's module-scoped fixtures (one server, one Chromium per module) and its skips
from test_page import OUTPUT, browser, server, sync_api  # noqa: F401
from testkit.shared_data import SEED, needs_shared_data

PLAIN = "Hà Nội là thủ đô của Việt Nam.\n\nThành phố có hơn tám triệu dân."
SEGMENTED = "Hà_Nội là thủ_đô của Việt_Nam .\n\nThành_phố có hơn tám triệu dân ."  # the same, word-segmented
NEAR = "Hà Nội là thủ đô của nước Việt Nam."  # one word more than the first sentence
EDITED = "Hanoi is the capital of Vietnam (edited)."
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    page = context.new_page()
    page.problems = []  # console errors and uncaught exceptions
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


def submit(page, server, text: str, reload: bool = True) -> None:
    if reload:
        page.goto(server.url + "/")
    page.fill("#text", text)
    page.click("#submit")
    page.wait_for_selector("#result[data-state='done']", timeout=120_000)


def row(page, index: int):
    return page.locator(f".aligned .pair[data-index='{index}']")


def english(page, index: int) -> str:
    return row(page, index).locator(".cell.en .text").inner_text().strip()


def test_edit_reload_memory_suggestion_download(page, server):
    submit(page, server, PLAIN)
    first = row(page, 0)
    model_english = english(page, 0)
    assert first.get_attribute("data-origin") == "model"

    # keyboard first: focus the row, Enter opens the editor, Esc puts the translation back
    first.focus()
    page.keyboard.press("Enter")
    editor = first.locator("textarea.editor")
    assert editor.is_visible() and editor.evaluate("node => node === document.activeElement")
    assert "Enter saves" in editor.get_attribute("aria-label")
    page.keyboard.type(" xyz")
    page.keyboard.press("Escape")
    assert first.locator("textarea.editor").count() == 0 and english(page, 0) == model_english
    assert page.evaluate("document.activeElement.dataset.index") == "0"

    # type, Enter: saved to the memory, marked as edited
    page.keyboard.press("Enter")
    editor.fill(EDITED)
    editor.press("Enter")
    page.wait_for_selector(".aligned .pair[data-index='0'][data-edited='true']")
    assert english(page, 0) == EDITED
    assert first.locator(".badge-edited").is_visible()
    assert EDITED in page.locator(".full-text").text_content()

    # ↓ in the editor saves and moves on to the next row's editor
    assert first.locator("textarea.editor").count() == 0
    first.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowDown")
    assert row(page, 1).locator("textarea.editor").evaluate("node => node === document.activeElement")
    page.keyboard.press("Escape")

    # reload, translate again: the row comes from the memory; the word-segmented text finds it too
    page.reload()
    submit(page, server, SEGMENTED, reload=False)
    assert row(page, 0).get_attribute("data-origin") == "memory"
    assert english(page, 0) == EDITED
    assert row(page, 0).locator(".badge-memory").is_visible()
    assert row(page, 1).get_attribute("data-origin") == "model"
    assert page.locator("[data-memory-hits]").inner_text() == "1"

    # downloads include the edit (the download translates through the memory)
    with page.expect_download() as info:
        page.click("button[data-format='tsv']")
    assert info.value.suggested_filename.endswith(".tsv")
    assert EDITED in Path(info.value.path()).read_text(encoding="utf-8")
    with page.expect_download() as info:
        page.click("button[data-format='xliff']")
    assert info.value.suggested_filename == "ha-noi-la-thu-do.xlf"  # named after the text
    xliff = Path(info.value.path()).read_text(encoding="utf-8")
    assert xliff.count("<trans-unit") == 2 and EDITED in xliff

    # a sentence one word away: the edit is a suggestion, with its score; key 1 takes it
    submit(page, server, NEAR)
    near = row(page, 0)
    assert near.get_attribute("data-origin") == "model"
    choice = near.locator(".choice[data-kind='memory']").first
    assert choice.is_visible() and EDITED in choice.inner_text()
    score = int(choice.locator(".choice-label").inner_text().split("%")[0])
    assert 75 <= score < 100
    near.focus()
    page.keyboard.press("1")
    page.wait_for_selector(".aligned .pair[data-index='0'][data-edited='true']")
    assert english(page, 0) == EDITED
    assert page.problems == []


def test_alternative_taken_with_the_keyboard_and_copy(page, server):
    submit(page, server, "Thời tiết hôm nay rất đẹp.\n\nChúng tôi đi dạo trong công viên.")
    second = row(page, 1)
    before = english(page, 1)
    second.focus()
    page.keyboard.press("a")
    alternative = second.locator(".choice[data-kind='alternative']").first
    alternative.wait_for(timeout=60_000)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "workspace-alternatives.png"), full_page=False)
    taken = alternative.locator(".choice-text").inner_text()
    assert taken.strip() and taken.strip() != before
    key = alternative.locator(".choice-key").inner_text()
    second.focus()
    page.keyboard.press(key)
    page.wait_for_selector(".aligned .pair[data-index='1'][data-edited='true']")
    assert english(page, 1) == taken.strip()
    assert page.evaluate("document.activeElement.dataset.index") == "1"

    # copy: the row's button, the key C, and the whole English
    second.locator("button[data-action='copy']").click()
    page.wait_for_selector(".aligned .pair[data-index='1'] .row-message:text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == taken.strip()
    page.evaluate("navigator.clipboard.writeText('')")
    row(page, 0).focus()
    page.keyboard.press("c")
    page.wait_for_selector(".aligned .pair[data-index='0'] .row-message:text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == english(page, 0)
    page.click("#copy-all")
    page.wait_for_selector("#copy-status:text('copied')")
    assert page.evaluate("navigator.clipboard.readText()") == english(page, 0) + "\n\n" + taken.strip()

    # the editor open, at desktop and phone widths
    row(page, 0).focus()
    page.keyboard.press("Enter")
    page.screenshot(path=str(OUTPUT / "workspace-editing.png"), full_page=False)
    page.set_viewport_size(PHONE)
    row(page, 0).scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(OUTPUT / "workspace-editing-phone.png"), full_page=False)
    assert page.problems == []


@needs_shared_data("seed")
def test_normalised_toggle_terms_and_screenshots(page, server):
    seed = SEED.read_text(encoding="utf-8")
    submit(page, server, seed)
    first = row(page, 0).locator(".cell.vi .text")
    written = first.inner_text()
    assert "nguồn_tin" in written
    page.check("#vi-normalized")
    shown = first.inner_text()
    assert "_" not in shown and "nguồn tin" in shown
    assert not any(" " + mark in shown for mark in ".,")  # no space before punctuation
    assert first.locator(".w").count() > 0  # still linked words
    page.uncheck("#vi-normalized")
    assert first.inner_text() == written

    # protected spans (numbers, foreign names) marked on both sides of the same row
    marked = page.locator(".aligned .pair.has-terms").first
    assert marked.locator(".cell.vi .w.is-term").count() >= 1
    assert marked.locator(".cell.en .w.is-term").count() >= 1
    assert marked.locator(".cell.vi .w.is-term").first.get_attribute("title")

    # developer details folded away; the model menu without the local path
    assert not page.locator("#dev-summary").is_visible()
    assert "/" not in page.locator("#model option").first.inner_text()

    OUTPUT.mkdir(exist_ok=True)
    page.check("#vi-normalized")
    row(page, 2).focus()
    row(page, 2).evaluate("node => node.scrollIntoView({block: 'center'})")
    page.screenshot(path=str(OUTPUT / "workspace-desktop.png"), full_page=False)
    page.set_viewport_size(PHONE)
    row(page, 2).focus()
    row(page, 2).evaluate("node => node.scrollIntoView({block: 'center'})")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(OUTPUT / "workspace-phone.png"), full_page=False)
    assert page.problems == []


def test_pasted_glossary_terms_on_both_sides(page, server):
    page.goto(server.url + "/")
    page.click("#glossary-box summary")
    page.fill("#glossary", "vietnamese\tenglish\nthủ đô\tcapital city\n")
    assert "1 term" in page.locator("#glossary-state").inner_text()
    submit(page, server, "Hà_Nội là thủ_đô của Việt_Nam .", reload=False)
    first = row(page, 0)
    assert "capital city" in english(page, 0)
    assert first.locator(".cell.vi .w.is-term").all_inner_texts() == ["thủ_đô"]
    assert "capital" in " ".join(first.locator(".cell.en .w.is-term").all_inner_texts())
    # a glossary line without a Tab is refused in words, before anything is sent
    page.fill("#glossary", "thủ đô capital")
    page.click("#submit")
    assert "no Tab" in page.locator("#form-error").inner_text()
    assert page.problems == []


def test_stored_glossary_chosen_from_the_menu(page, server):
    answer = server.post_json("/api/glossaries", {"name": "Cities", "entries": {"thành phố": "municipality"}})
    assert answer.status in (200, 201)
    page.goto(server.url + "/")
    page.click("#glossary-box summary")
    page.wait_for_selector("#glossary_id option:text('Cities')", state="attached")
    page.select_option("#glossary_id", label=page.locator("#glossary_id option:text('Cities')").inner_text())
    assert "Cities" in page.locator("#glossary-state").inner_text()
    submit(page, server, "Thành phố này rất đông người.", reload=False)
    assert "municipality" in english(page, 0)
    assert row(page, 0).locator(".cell.vi .w.is-term").count() >= 1
    assert page.problems == []


PHASES = """() => {
  window.mtSeen = [];
  new MutationObserver(records => records.forEach(record => {
    if (record.target.id === 'progress-text' && record.addedNodes.length) {
      window.mtSeen.push([record.addedNodes[0].data, document.getElementById('submit').disabled]);
    }
  })).observe(document.body, {childList: true, subtree: true});
}"""


def test_says_what_is_still_running(page, server):
    page.goto(server.url + "/")
    page.evaluate(PHASES)
    submit(page, server, "Tôi thích đọc sách vào buổi tối.\n\nAnh ấy làm việc ở bệnh viện gần nhà.", reload=False)
    seen = page.evaluate("window.mtSeen")
    texts = [text for text, _ in seen]
    assert any("linking words" in text for text in texts) and any("scoring quality" in text for text in texts)
    # the button is free again once every row has its English, while quality is still scored
    assert [disabled for text, disabled in seen if "scoring quality" in text] == [False]
    assert texts[-1] == "All 2 segments translated"
    assert page.locator("#submit").inner_text() == "Translate"


def test_uploaded_document_flags_labels_names(page, server, tmp_path):
    report = tmp_path / "bao-cao.html"
    report.write_text(
        "<html><body><h1>Báo cáo năm</h1><p>Công ty đã tăng doanh thu trong năm nay.</p>"
        "<table><tr><td>Hà Nội</td><td>Tăng trưởng mạnh</td></tr><tr><td>Đà Nẵng</td><td>Ổn định</td></tr></table>"
        "<p>Kết quả được công bố hôm qua.</p></body></html>", encoding="utf-8")
    page.goto(server.url + "/")
    page.set_input_files("#file", str(report))
    with page.expect_navigation():
        page.click("#submit")
    rows = page.locator(".aligned .pair")
    assert rows.count() >= 6
    assert page.locator(".aligned .badge-title").count() == 0  # table cells are not titles
    assert page.locator(".aligned .pair.is-flagged").count() >= 1  # scored, as pasted text is
    assert page.locator("a[download='bao-cao.en.html']").count() == 1
    OUTPUT.mkdir(exist_ok=True)
    page.locator(".result").scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT / "workspace-document.png"), full_page=False)
    with page.expect_download() as info:
        page.click("button[data-format='tmx']")
    assert info.value.suggested_filename == "bao-cao.tmx"
    with page.expect_download() as info:
        page.click("button[data-format='txt']")
    assert info.value.suggested_filename == "bao-cao.en.txt"
    # the server-rendered rows are a workspace too: a table cell edited and saved
    cell = page.locator(".aligned .pair").nth(2)
    cell.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("Control+a")
    page.keyboard.type("Hanoi")
    page.keyboard.press("Enter")
    page.wait_for_selector(".aligned .pair[data-edited='true']")
    assert cell.locator(".cell.en .text").inner_text() == "Hanoi"
    assert "Hanoi" in page.locator(".full-text").text_content()
    assert page.problems == []


def test_errors_in_words(page, server):
    page.goto(server.url + "/")
    page.fill("#text", "   ")
    with page.expect_navigation():
        page.click("#submit")
    notice = page.locator("#form-error").inner_text()
    assert "Could not translate." in notice and "(400)" not in notice and "Paste" in notice


def test_a_keyed_server_gets_the_key_from_the_form(browser, serve, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("page-secret-key\n", encoding="utf-8")
    keyed = serve("--api-keys", keys)
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    try:
        page.goto(keyed.url + "/")
        page.click("#glossary-box summary")
        assert "API key" in page.locator("#glossary-id-hint").inner_text()  # not asked without it
        page.fill("#api_key", "page-secret-key")
        page.fill("#text", "Con mèo ngủ trên ghế.")
        page.click("#submit")
        page.wait_for_selector("#result[data-state='done']", timeout=120_000)
        first = row(page, 0)
        first.focus()
        page.keyboard.press("a")  # POST /api/alternatives with the key
        first.locator(".choice[data-kind='alternative']").first.wait_for(timeout=60_000)
        page.keyboard.press("Enter")
        page.keyboard.press("Control+a")
        page.keyboard.type("The cat sleeps on the chair.")
        page.keyboard.press("Enter")  # POST /api/memory with the key
        page.wait_for_selector(".aligned .pair[data-index='0'][data-edited='true']")
        assert problems == []
    finally:
        context.close()


def test_without_javascript_a_pasted_glossary_is_posted(browser, server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.fill("#text", "Hà_Nội là thủ_đô của Việt_Nam .")
        page.click("#glossary-box summary")
        page.fill("#glossary", "thủ đô\tchief city")
        with page.expect_navigation():
            page.click("#submit")
        assert "chief city" in page.locator(".aligned .pair .cell.en .text").first.inner_text()
        assert page.locator("#glossary-box").get_attribute("open") is not None  # kept, as posted
        assert page.input_value("#glossary") == "thủ đô\tchief city"
        assert page.locator(".downloads input[name='glossary']").get_attribute("value") == "thủ đô\tchief city"
        assert page.locator(".view-tools").is_hidden()  # script-only tools stay hidden
    finally:
        context.close()
