"""The web page in a real browser: Debian's Chromium driven by Playwright, against a real server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from bench.formats import CHROMIUM_FLAGS
from qa.config import Settings
from tests.conftest import Server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path(os.environ.get("QA_CHROMIUM", "/usr/bin/chromium"))
SHOTS = Path(__file__).resolve().parent / "screenshots"
ARGS = list(CHROMIUM_FLAGS)  # the flags this machine's Chromium needs, as the PDF benchmark uses them


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, article_server: Server):
    context = browser.new_context(viewport={"width": 1100, "height": 900}, base_url=article_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def test_answer_is_highlighted_with_a_citation_link(page) -> None:
    page.goto("/")
    page.get_by_label("Your question").fill("Who developed GigaChat?")
    page.keyboard.press("Enter")
    mark = page.locator(".answer mark")
    mark.wait_for()
    assert "Gigachat model developed by Sberbank" in mark.inner_text()
    link = page.locator(".answer .meta a").first
    assert link.get_attribute("href").startswith("/view/russia-ai-task-force?start=")
    assert "Russia’s National AI Task Force" in link.inner_text()
    # the page lists the other passages the service cites (those relevant enough), each with its relevance
    cited = page.request.get("/ask?q=Who+developed+GigaChat%3F").json()["citations"]
    others = page.locator(".citations li")
    assert others.count() == len(cited) - 1
    for i in range(others.count()):
        assert f"relevance {round(cited[i + 1]['relevance'] * 100)}%" in others.nth(i).inner_text()
    assert page.locator(".answer .confidence").inner_text().startswith("Confidence ")
    short = page.locator(".answer mark strong").inner_text()  # the short answer, in bold
    assert short.startswith("Sberbank") and short in mark.inner_text()
    page.screenshot(path=str(SHOTS / "answer.png"), full_page=True)


def test_refusal_is_plain(page) -> None:
    page.goto("/")
    page.get_by_label("Your question").fill("How do I bake sourdough bread?")
    page.get_by_role("button", name="Ask", exact=True).click()
    refusal = page.locator(".refusal")
    refusal.wait_for()
    assert "No passage in the corpus answers this" in refusal.inner_text()
    assert page.locator("mark").count() == 0 and page.locator(".answer").count() == 0
    page.screenshot(path=str(SHOTS / "refusal.png"), full_page=True)


def test_document_view_highlights_and_scrolls_to_the_span(page, article_server: Server) -> None:
    import httpx

    page.goto("/")
    page.get_by_label("Your question").fill("Which countries are in the AI Alliance Network?")
    page.keyboard.press("Enter")
    page.locator(".answer mark").wait_for()
    page.locator(".answer .meta a").first.click()
    cited = page.locator("mark#cited")
    cited.wait_for()
    href = page.url
    start, end = (int(x.split("=")[1]) for x in href.split("?")[1].split("&"))
    text = httpx.get(article_server.url + "/documents/russia-ai-task-force").json()["text"]
    assert cited.inner_text() == text[start:end]
    # Markdown drawn, not shown raw: headings are headings, their "#" marks hidden, the text the same
    headings = page.locator("#doc-text .doc-heading")
    assert headings.count() >= 3 and "## " not in page.locator("#doc-text").inner_text()
    assert page.locator("#doc-text").evaluate("e => e.textContent") == text
    assert cited.evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
    )
    page.screenshot(path=str(SHOTS / "document.png"))


def test_keyboard_only_on_a_phone(browser, article_server: Server) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 740}, base_url=article_server.url, is_mobile=True
    )
    page = context.new_page()
    page.goto("/")
    suggestion = page.locator(".suggestions button").first
    suggestion.wait_for()
    page.keyboard.press("Tab")  # first focus: the question box, labelled
    assert page.evaluate("document.activeElement.id") == "question"
    assert page.evaluate("document.activeElement.labels[0].textContent") == "Your question"
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # the first suggestion, after the Ask button
    assert page.evaluate("document.activeElement.closest('.suggestions') !== null")
    page.keyboard.press("Enter")
    page.locator(".answer, .refusal").first.wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, "nothing overflows a narrow screen"
    page.screenshot(path=str(SHOTS / "phone.png"), full_page=True)
    context.close()


def test_api_docs_render_with_no_network(page, article_server: Server) -> None:
    """Swagger UI and ReDoc come from this server: every request the pages make stays on it."""
    elsewhere: list[str] = []

    def note(request) -> None:  # ReDoc's worker is a blob of this page; its logo an inline image
        if not request.url.startswith((article_server.url, "blob:" + article_server.url, "data:")):
            elsewhere.append(request.url)

    page.on("request", note)
    page.goto("/docs")
    page.locator(".opblock-summary-path", has_text="/ask").first.wait_for()
    page.screenshot(path=str(SHOTS / "docs.png"))
    page.goto("/redoc")
    page.get_by_text("Answer with the best sentence").first.wait_for()
    # ReDoc's bundle asks for its "powered by" logo from its CDN; the CSP blocks it and the page
    # renders without it. Nothing else leaves the server.
    assert [url for url in elsewhere if not url.startswith("https://cdn.redoc.ly/")] == []


def test_the_question_is_in_the_address_back_works_and_an_empty_one_clears(page) -> None:
    page.goto("/?q=" + quote("Who developed GigaChat?"))
    page.locator(".answer mark").wait_for()
    assert page.get_by_label("Your question").input_value() == "Who developed GigaChat?"
    page.get_by_label("Your question").fill("How do I bake sourdough bread?")
    page.keyboard.press("Enter")
    page.locator(".refusal").wait_for()
    assert "q=How+do+I+bake+sourdough+bread%3F" in page.url  # shareable
    page.go_back()
    page.locator(".answer mark").wait_for()
    assert page.get_by_label("Your question").input_value() == "Who developed GigaChat?"
    page.get_by_label("Your question").fill("   ")
    page.keyboard.press("Enter")
    page.locator(".error").wait_for()
    assert page.locator(".answer").count() == 0  # no stale answer under an empty box
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"


def test_asking_within_one_document(browser, built_settings: Settings) -> None:
    server = Server(built_settings, env={"QA_ABSTAIN_SIMILARITY": "0.0", "QA_ABSTAIN_COVERAGE": "0.0"})
    try:
        server.wait_ready()
        context = browser.new_context(base_url=server.url)
        page = context.new_page()
        page.goto("/")
        page.locator("#scope option[value=bees]").wait_for(state="attached")
        page.get_by_label("Ask within").select_option("bees")
        page.get_by_label("Your question").fill("When did the Shinkansen open?")
        page.keyboard.press("Enter")
        page.locator(".answer").wait_for()
        links = page.locator(".meta a[href^='/view/']")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert hrefs and all(h.startswith("/view/bees?") for h in hrefs)
        assert "doc=bees" in page.url
        page.reload()  # the address carries the scope too
        page.locator(".answer").wait_for()
        assert page.get_by_label("Ask within").input_value() == "bees"
        context.close()
    finally:
        server.stop()


def test_on_a_phone_the_answer_is_brought_into_view_and_the_suggestions_make_way(
    browser, article_server: Server
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, base_url=article_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto("/")
        page.locator("#suggestions-section button").first.wait_for()
        page.get_by_label("Your question").fill("Who developed GigaChat?")
        page.keyboard.press("Enter")
        mark = page.locator(".answer mark")
        mark.wait_for()
        box = mark.bounding_box()
        assert box is not None and 0 <= box["y"] < 844, box  # on screen without scrolling by hand
        assert page.locator("#suggestions-section").is_hidden()
        page.screenshot(path=str(SHOTS / "answer-390.png"))
    finally:
        context.close()


def test_the_previous_answer_is_cleared_while_the_next_question_loads(page) -> None:
    import time

    page.goto("/")
    page.get_by_label("Your question").fill("Who developed GigaChat?")
    page.keyboard.press("Enter")
    page.locator(".answer mark").wait_for()

    def slowly(route) -> None:
        time.sleep(1.0)
        route.continue_()

    page.route("**/ask", slowly)
    page.get_by_label("Your question").fill("How do I bake sourdough bread?")
    page.keyboard.press("Enter")
    page.locator(".loading").wait_for()
    assert page.locator(".answer").count() == 0  # never the old answer under the new question
    page.locator(".refusal").wait_for()


def test_what_is_typed_or_asked_while_the_page_loads_is_kept(page) -> None:
    held: list = []
    page.route("**/documents*", lambda route: held.append(route))  # the list arrives when let through
    listed = page.locator("#scope option").nth(1)  # a document beside "all documents"

    page.goto("/")
    page.get_by_label("Your question").fill("Who developed GigaChat?")
    held.pop().continue_()
    listed.wait_for(state="attached")
    assert page.get_by_label("Your question").input_value() == "Who developed GigaChat?"

    asks: list[str] = []
    page.on("request", lambda request: asks.append(request.url) if request.url.endswith("/ask") else None)
    page.goto("/")
    page.get_by_label("Your question").fill("Who developed GigaChat?")
    page.keyboard.press("Enter")
    page.locator(".answer mark").wait_for()
    held.pop().continue_()
    listed.wait_for(state="attached")
    page.locator(".answer mark").wait_for()
    assert len(asks) == 1  # asked once, not again when the list arrives


def test_dark_mode_follows_the_reader_preference(browser, article_server: Server) -> None:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=article_server.url, color_scheme="dark"
    )
    page = context.new_page()
    try:
        page.goto("/?q=Who+developed+GigaChat%3F")
        page.locator(".answer mark").wait_for()
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        card = page.evaluate("getComputedStyle(document.querySelector('.answer')).backgroundColor")
        assert background == "rgb(20, 24, 28)" and card == "rgb(29, 35, 41)", (background, card)
        page.screenshot(path=str(SHOTS / "answer-dark-1280.png"))
    finally:
        context.close()


def test_an_over_long_question_gets_a_plain_message(page) -> None:
    page.goto("/?q=" + "x" * 1001)
    error = page.locator(".error")
    error.wait_for()
    assert error.inner_text() == "Questions can be at most 1,000 characters long: shorten it and ask again."


def test_copy_link_copies_the_address_that_asks_the_question_again(browser, article_server: Server) -> None:
    context = browser.new_context(base_url=article_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=article_server.url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto("/")
        page.get_by_label("Your question").fill("Who developed GigaChat?")
        page.keyboard.press("Enter")
        page.locator(".answer mark").wait_for()
        button = page.get_by_role("button", name="Copy link")
        button.click()
        page.get_by_role("button", name="Link copied").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.url and "q=Who+developed+GigaChat" in copied
        # the copied address, opened afresh, asks the question again
        other = context.new_page()
        other.goto(copied)
        other.locator(".answer mark").wait_for()
        assert "Gigachat model developed by Sberbank" in other.locator(".answer mark").inner_text()
    finally:
        context.close()
