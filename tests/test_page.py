"""The page in headless Chromium (Debian's /usr/bin/chromium through Playwright), against the real
server process: submit the seed article, the aligned rows, pair highlighting on hover and
keyboard focus, a TMX download, phone width, an XSS attempt, and screenshots in test-output/."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from testkit.server_helpers import ROOT
from testkit.shared_data import SEED, needs_shared_data

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
OUTPUT = ROOT / "test-output"
XSS = "<script>alert(1)</script><img src=x onerror=alert(1)>"

if not CHROMIUM.exists():
    pytest.skip("/usr/bin/chromium is missing (apt-get install chromium; tools/setup.sh --test does it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the Playwright Python client is not installed")


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.problems = []  # console errors (a CSP violation shows up here) and uncaught exceptions
    page.on("console", lambda message: message.type == "error" and page.problems.append(message.text))
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


def submit(page, server, text: str) -> None:
    """Fill the form and submit: the script streams the result into the page (no navigation)."""
    page.goto(server.url + "/")
    page.fill("#text", text)
    page.click("#submit")
    page.wait_for_selector("#result[data-state='done']", timeout=120_000)


def classes(locator) -> list[str]:
    return (locator.get_attribute("class") or "").split()


@needs_shared_data("seed")
def test_seed_article_aligned_highlight_download(page, server):
    seed = SEED.read_text(encoding="utf-8")
    expected = server.post_json("/api/translate", {"text": seed}).json()["sentences"]
    submit(page, server, seed)

    rows = page.locator(".aligned .pair")
    assert rows.count() == 14
    assert page.locator(".aligned .pair[data-kind='byline']").count() == 1
    vi_texts = page.locator(".aligned .pair .cell.vi .text").all_inner_texts()
    en_texts = page.locator(".aligned .pair .cell.en .text").all_inner_texts()
    assert [t.strip() for t in vi_texts] == [p["source"].strip() for p in expected]
    assert [t.strip() for t in en_texts] == [p["translation"].strip() for p in expected]
    # the API call above filled the cache: every translated row says so
    cached = page.locator(".aligned .pair[data-cached='true']")
    assert cached.count() == 13 and page.locator(".badge-cached").count() == 13
    assert "13" in page.locator("#summary").inner_text()
    assert "ms" in page.locator("#dev-summary").text_content()  # developer details, folded away

    # hovering a Vietnamese cell highlights the pair: the row and both of its cells
    third = rows.nth(2)
    third.locator(".cell.vi").hover()
    assert "is-active" in classes(third)
    assert "is-active" in classes(third.locator(".cell.vi")) and "is-active" in classes(third.locator(".cell.en"))
    # hovering the English side of another row moves the highlight there
    rows.nth(4).locator(".cell.en").hover()
    assert "is-active" in classes(rows.nth(4).locator(".cell.vi"))
    assert "is-active" not in classes(third) and "is-active" not in classes(third.locator(".cell.en"))
    assert page.locator(".aligned .is-active.pair").count() == 1

    # keyboard: rows are focusable; focus highlights, ↓ moves to the next row
    page.mouse.move(5, 5)
    rows.nth(0).focus()
    assert "is-active" in classes(rows.nth(0).locator(".cell.en"))
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.index") == "1"
    assert "is-active" in classes(rows.nth(1)) and "is-active" not in classes(rows.nth(0))

    OUTPUT.mkdir(exist_ok=True)
    page.evaluate("document.activeElement.blur()")
    rows.nth(2).locator(".cell.vi").hover()
    assert "is-active" in classes(rows.nth(2))
    page.screenshot(path=str(OUTPUT / "page.png"), full_page=True)

    with page.expect_download() as download_info:
        page.click("button[data-format='tmx']")
    download = download_info.value
    assert download.suggested_filename == "hang-sputnik-nguon-tin-tu.tmx"  # named after the text
    tmx = Path(download.path()).read_text(encoding="utf-8")
    assert "<tu>" in tmx and 'xml:lang="vi"' in tmx and 'xml:lang="en"' in tmx
    assert tmx.count("<tu>") == 13
    assert page.problems == []


@needs_shared_data("seed")
def test_phone_width_stacks_columns(page, server):
    page.set_viewport_size({"width": 390, "height": 844})
    submit(page, server, SEED.read_text(encoding="utf-8"))
    row = page.locator(".aligned .pair").nth(1)
    vi, en = row.locator(".cell.vi").bounding_box(), row.locator(".cell.en").bounding_box()
    assert abs(vi["x"] - en["x"]) < 2 and en["y"] >= vi["y"] + vi["height"] - 1  # English under Vietnamese
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    OUTPUT.mkdir(exist_ok=True)
    page.locator(".result").scroll_into_view_if_needed()
    page.evaluate("document.querySelector('.result').scrollIntoView()")
    page.locator(".aligned .pair").first.locator(".cell.vi").hover()
    page.screenshot(path=str(OUTPUT / "page-phone.png"), full_page=False)
    assert page.problems == []


def test_xss_attempt_is_shown_as_text(page, server):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    submit(page, server, XSS + " Xin chào các bạn.")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator(".aligned img").count() == 0 and page.locator("main script").count() == 0
    shown = " ".join(page.locator(".aligned .cell.vi .text").all_inner_texts())
    assert "<script>alert(1)</script>" in shown and "<img src=x onerror=alert(1)>" in shown
    assert XSS in page.input_value("#text")  # echoed back into the form, as text


def test_upload_a_file(page, server, tmp_path):
    article = tmp_path / "bai-bao.txt"
    article.write_text("Hà Nội là thủ đô của Việt Nam.\n\nThành phố có hơn tám triệu dân.", encoding="utf-8")
    page.goto(server.url + "/")
    page.set_input_files("#file", str(article))
    assert "bai-bao.txt" in page.locator("#file-hint").inner_text()
    with page.expect_navigation():
        page.click("#submit")
    assert page.locator(".aligned .pair").count() == 2
    assert page.locator(".aligned .paragraph").count() == 2
    assert page.problems == []


FIRST_LINKED = """() => {
  for (const row of document.querySelectorAll('.aligned .pair')) {
    const links = JSON.parse(row.dataset.links);
    if (links.length) {
      const vi = links[0][0];
      return [row.dataset.index, vi, links.filter(l => l[0] === vi).map(l => l[1])];
    }
  }
  return null;
}"""


@needs_shared_data("seed")
def test_word_links_highlight_and_flags(page, server):
    seed = SEED.read_text(encoding="utf-8")
    submit(page, server, seed)
    rows = page.locator(".aligned .pair")
    # words as the user wrote them: the seed's word-segmented tên_lửa is one hoverable word
    vi_words = page.locator(".aligned .cell.vi .w").all_inner_texts()
    assert "tên_lửa" in vi_words and "tên" not in vi_words
    assert rows.nth(0).locator(".cell.vi .text").inner_text().startswith("Hãng Sputnik nguồn_tin từ")

    found = page.evaluate(FIRST_LINKED)
    assert found is not None  # even a random model's attention has argmax links
    index, vi, linked = found
    row = page.locator(f".aligned .pair[data-index='{index}']")
    word = row.locator(f".cell.vi .w[data-i='{vi}']")
    word.hover()
    assert "is-word" in classes(word)
    lit = row.locator(".cell.en .w.is-linked")
    assert lit.count() >= 1
    assert sorted(int(lit.nth(k).get_attribute("data-i")) for k in range(lit.count())) == sorted(set(linked))
    assert "is-active" in classes(row)  # the row highlight still works with words inside
    assert page.locator(".aligned .w.is-linked").count() == lit.count()  # nothing lit elsewhere

    # English -> Vietnamese
    row.locator(f".cell.en .w[data-i='{linked[0]}']").hover()
    assert row.locator(f".cell.vi .w.is-linked[data-i='{vi}']").count() == 1
    # leaving the table clears the word highlight
    page.mouse.move(2, 2)
    assert page.locator(".aligned .w.is-linked, .aligned .w.is-word").count() == 0

    # keyboard: → in a focused row walks its Vietnamese words
    row.focus()
    page.keyboard.press("ArrowRight")
    assert "is-word" in classes(row.locator(".cell.vi .w").first)
    page.keyboard.press("ArrowRight")
    assert "is-word" in classes(row.locator(".cell.vi .w").nth(1))
    assert "is-word" not in classes(row.locator(".cell.vi .w").first)

    # the random model's gibberish is flagged: every translated row shows the badge with its score
    assert page.locator(".aligned .pair.is-flagged").count() == 13
    badges = page.locator(".aligned .badge-flagged")
    assert badges.count() == 13 and "quality" in badges.first.get_attribute("title")
    assert page.locator(".aligned .pair[data-kind='byline'] .badge-flagged").count() == 0
    OUTPUT.mkdir(exist_ok=True)
    word.hover()
    page.screenshot(path=str(OUTPUT / "page-word-links.png"), full_page=False)
    assert page.problems == []


def test_word_spans_keep_user_text_inert(page, server):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    submit(page, server, XSS + " Xin chào các bạn.")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator(".aligned img").count() == 0 and page.locator("main script").count() == 0
    words = page.locator(".aligned .cell.vi .w").all_inner_texts()
    assert "<" in words and "script" in words  # the attack's characters are words, as text
    shown = page.locator(".aligned .cell.vi .text").first.inner_text()
    assert XSS in shown  # rebuilt from word spans, still the literal text
    page.locator(".aligned .cell.vi .w").nth(1).hover()  # hovering a word of the attack does nothing odd
    assert dialogs == [] and page.problems == []


# -- rows as they come: the page on a stream whose model calls the test holds -----------------
ROW_STATES = """() => {
  const rows = Array.from(document.querySelectorAll('.aligned .pair'));
  return {
    total: rows.length,
    translated: rows.filter(r => r.dataset.state === 'translated').length,
    pending: rows.filter(r => r.dataset.state === 'pending' && r.querySelector('.placeholder')).length,
    filled: rows.filter(r => r.querySelector('.cell.en .text').textContent.length > 0).length,
    scored: rows.filter(r => r.dataset.scored === 'true').length,
  };
}"""


@pytest.fixture
def held_server(tiny_engine, tmp_path):
    """The app on the real waitress server in this process; model calls after the first wait for
    ``held_server.engine.release`` (tests/stream_helpers.py)."""
    from mt.cache import open_cache
    from mt.web.app import create_app
    from mt.settings import defaults
    from stream_helpers import HeldEngine, Live

    servers = []

    def start(**engine_options):
        engine = HeldEngine(tiny_engine, **engine_options)
        app = create_app(defaults(no_batching=True), engine, open_cache(tmp_path / f"held{len(servers)}.sqlite"))
        app.config.update(MT_STREAM_FIRST_BATCH=2, MT_STREAM_MAX_BATCH=16)
        live = Live(app)
        live.engine = engine
        live.url = f"http://127.0.0.1:{live.port}"
        servers.append(live)
        return live

    yield start
    for live in servers:
        live.engine.release.set()
        live.close()


@needs_shared_data("iwslt15")
def test_long_article_fills_in_progressively(page, held_server):
    from stream_helpers import long_article, wait_for

    server = held_server()
    article = long_article()
    page.goto(server.url + "/")
    page.fill("#text", article)
    page.click("#submit")

    # the first model batch is on the page while the second is held: every row laid out, two filled
    page.wait_for_selector(".aligned .pair[data-state='translated']")
    wait_for(lambda: len(server.engine.calls) == 2)
    states = page.evaluate(ROW_STATES)
    total = states["total"]
    assert total >= 60
    assert states["translated"] == states["filled"] == 2 and states["pending"] == total - 2
    assert states["scored"] == 0  # quality marks come when ready, after the translations
    assert page.locator("#result").get_attribute("data-state") == "streaming"
    assert page.locator("#result").get_attribute("aria-busy") == "true"
    assert page.locator("#progress-text").inner_text() == f"2 of {total} segments translated"
    assert page.evaluate("[document.querySelector('#progress-bar').value, document.querySelector('#progress-bar').max]") == [2, total]
    assert page.locator(".downloads button[disabled]").count() == 5 and page.locator("#submit").is_disabled()
    first = page.locator(".aligned .pair").nth(0)
    assert first.locator(".cell.en .text").inner_text().strip() and first.locator(".placeholder").count() == 0
    assert page.locator(".aligned .pair").nth(total - 1).locator(".placeholder").is_visible()
    # the rows already there behave: hover highlights the pair
    first.locator(".cell.vi").hover()
    assert "is-active" in classes(first)
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / "page-streaming.png"), full_page=False)

    server.engine.release.set()
    page.wait_for_selector("#result[data-state='done']", timeout=120_000)
    states = page.evaluate(ROW_STATES)
    assert states == {"total": total, "translated": total, "pending": 0, "filled": total, "scored": total}
    assert page.locator(".placeholder").count() == 0 and page.locator("#progress.is-finished").count() == 1
    assert page.locator(".downloads button[disabled]").count() == 0 and not page.locator("#submit").is_disabled()
    # the streamed page shows what the one-shot API answers (now from the cache)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    connection.request("POST", "/api/translate", body=json.dumps({"text": article}).encode(),
                       headers={"Content-Type": "application/json"})
    answer = json.loads(connection.getresponse().read())
    connection.close()
    expected = answer["sentences"]
    en_texts = page.locator(".aligned .pair .cell.en .text").all_inner_texts()
    assert [t.strip() for t in en_texts] == [p["translation"].strip() for p in expected]
    assert page.locator(".aligned .pair.is-flagged").count() == sum(p["flagged"] for p in expected)
    qualities = page.evaluate("Array.from(document.querySelectorAll('.aligned .pair')).map(r => r.dataset.quality)")
    assert qualities == [f"{p['quality']:.3f}" for p in expected]
    assert page.locator(".aligned .cell.vi .w").count() == sum(len(p["src_words"]) for p in expected)
    assert page.locator(".full-text").text_content() == answer["translation"]
    assert f"{total} segments" in page.locator("#summary").inner_text()
    assert page.problems == []


@needs_shared_data("iwslt15")
def test_an_error_mid_stream_is_shown(page, held_server):
    from stream_helpers import long_article

    server = held_server(fail_after=1)
    page.goto(server.url + "/")
    page.fill("#text", long_article())
    page.click("#submit")
    page.wait_for_selector("#result[data-state='error']", timeout=120_000)
    notice = page.locator("#stream-error")
    assert notice.get_attribute("role") == "alert" and "internal server error" in notice.inner_text().lower()
    states = page.evaluate(ROW_STATES)
    assert states["translated"] == 2 and states["pending"] == states["total"] - 2
    assert page.locator(".aligned .pair[data-state='pending'] .placeholder").first.inner_text() == "not translated"
    assert not page.locator("#submit").is_disabled()  # the user can try again
    assert page.problems == []


def test_without_javascript_the_form_posts(browser, server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(server.url + "/")
        page.fill("#text", "Hà Nội là thủ đô của Việt Nam.\n\nThành phố có hơn tám triệu dân.")
        with page.expect_navigation():
            page.click("#submit")
        assert page.locator("#result").get_attribute("data-state") == "done"  # rendered by the server
        assert page.locator(".aligned .pair").count() == 2
        assert page.locator(".aligned .pair .cell.en .text").first.inner_text().strip()
        assert page.locator(".placeholder").count() == 0
    finally:
        context.close()
