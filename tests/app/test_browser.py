"""A real browser on the served app: Debian's Chromium (``/usr/bin/chromium``, installed by
``make browser``) driven headless by Playwright, which downloads no browser of its own. Types a query,
sees images; clicks one, sees images like it; searches code, sees highlighted cards; subtracts a term;
rates a result and evaluates the index on that feedback in the Indexes tab. Screenshots go to
``test-artifacts/app/``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mmssl.data.paths import PROJECT_ROOT

pytestmark = pytest.mark.browser
CHROMIUM = os.environ.get("MMSSL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "app"


@pytest.fixture(scope="module")
def page(running_app):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Python playwright is not installed: run `make browser` (pip playwright + apt chromium)")
    if not Path(CHROMIUM).is_file() and not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        page.goto(running_app, wait_until="load")
        page.wait_for_selector("#image-query", timeout=30_000)
        yield page
        browser.close()


def _search(page, box: str, text: str) -> None:
    field = page.locator(f"#{box} textarea, #{box} input").first
    field.fill(text)
    field.press("Enter")


def test_text_query_shows_images_and_a_click_searches_by_image(page):
    _search(page, "image-query", "grinning face")
    page.wait_for_selector("#image-results img", timeout=20_000)
    page.wait_for_function("document.querySelector('#image-status').innerText.includes('results in')",
                           timeout=20_000)
    images = page.locator("#image-results img")
    assert images.count() >= 10
    assert page.locator("#image-results").inner_text().count("·") >= 10  # captions with scores
    page.screenshot(path=str(ARTIFACTS / "images.png"), full_page=True)

    images.first.click()
    page.wait_for_function("document.querySelector('#image-status').innerText.includes('Images like')",
                           timeout=20_000)
    assert page.locator("#image-results img").count() >= 10
    page.screenshot(path=str(ARTIFACTS / "images-like-clicked.png"), full_page=True)

    _search(page, "image-query", "   ")
    page.wait_for_function("document.querySelector('#image-status').innerText.includes('Type what you are')",
                           timeout=20_000)
    assert not page.errors, page.errors


def test_code_tab_shows_highlighted_cards(page):
    page.get_by_role("tab", name="Code").click()
    _search(page, "code-query", "split a string into shell words")
    page.wait_for_selector("#code-results .mmssl-card", timeout=20_000)
    cards = page.locator("#code-results .mmssl-card")
    assert cards.count() == 10
    first = cards.first.inner_text()
    assert ".py:" in first and "def " in first  # path:line and the signature / source
    assert page.locator("#code-results .mmssl-card pre span[style*='color']").count() > 10  # Pygments colours
    assert "results in" in page.locator("#code-status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "code.png"), full_page=True)
    assert not page.errors, page.errors


def _wait_for_text(page, selector: str, text: str, timeout: int = 30_000) -> None:
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout)


def _search_and_wait(page, box: str, text: str, status: str, expect: str) -> None:
    """Search, then wait until the status line is a new one that contains ``expect`` (the tests share one
    page, so the previous search's results and status are still there when this one starts)."""
    old = page.locator(status).inner_text()
    _search(page, box, text)
    page.wait_for_function("([s, old, t]) => { const now = document.querySelector(s)?.innerText || '';"
                           " return now !== old && now.includes(t); }", arg=[status, old, expect], timeout=30_000)


def test_query_arithmetic_ranks_and_says_what_it_searched(page):
    page.get_by_role("tab", name="Images").click()
    _search_and_wait(page, "image-query", "face -smiling", "#image-status", "Searched for")
    assert page.locator("#image-results img").count() >= 10
    status = page.locator("#image-status").inner_text()
    assert "face" in status and "smiling" in status
    page.screenshot(path=str(ARTIFACTS / "query-arithmetic.png"), full_page=True)
    # only a subtraction: a message, not a traceback
    _search_and_wait(page, "image-query", "-smiling", "#image-status", "smiling")
    assert "Traceback" not in page.locator("#image-status").inner_text()
    assert not page.errors, page.errors


def test_a_vote_is_saved_and_the_indexes_tab_evaluates_it(page, app_root):
    feedback = app_root["indexes"] / "emoji.feedback.jsonl"
    feedback.unlink(missing_ok=True)
    try:
        page.get_by_role("tab", name="Images").click()
        _search_and_wait(page, "image-query", "grinning face", "#image-status", "results in")
        # as a user would: the chooser shows the top result before the vote
        page.wait_for_function("(document.querySelector('#image-rate-choice input')?.value || '').startsWith('1. ')",
                               timeout=30_000)
        page.locator("#image-rate-up").click()
        _wait_for_text(page, "#image-rate-status", "Saved 👍")
        assert feedback.is_file() and "grinning face" in feedback.read_text()

        page.get_by_role("tab", name="Indexes").click()
        page.locator("#eval-index input").first.fill("emoji")
        page.locator("#eval-index input").first.press("Enter")
        page.locator("#eval-run").click()  # nothing pasted: the index's feedback is evaluated
        _wait_for_text(page, "#eval-status", "MRR")
        assert "1 queries" in page.locator("#eval-status").inner_text()
        _wait_for_text(page, "#eval-table", "random")  # the model's row and the baselines'
        _wait_for_text(page, "#eval-chart", "random")
        assert "BM25" in page.locator("#eval-table").inner_text()
        page.screenshot(path=str(ARTIFACTS / "evaluate-feedback.png"), full_page=True)
    finally:
        feedback.unlink(missing_ok=True)
    assert not page.errors, page.errors


def test_near_duplicates_fold_and_more_results_appends_a_page(page):
    page.get_by_role("tab", name="Images").click()
    _search_and_wait(page, "image-query", "waving hand", "#image-status", "12 results")
    assert page.locator("#image-results img").count() == 12
    _wait_for_text(page, "#image-results", "similar")  # "waving hand · 0.31 · +5 similar"
    # the versions folded into a result, as a user opens them: the box, then a result in its chooser
    page.locator("#image-similar-box button").first.click()
    choice = page.locator("#image-similar-choice input").first
    choice.click()
    page.get_by_role("option").filter(has_text="similar").first.click()
    page.wait_for_selector("#image-similar img", timeout=30_000)
    assert "similar" in choice.input_value()
    assert page.locator("#image-similar img").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "near-duplicates.png"), full_page=True)

    more = page.locator("#image-more")
    more.wait_for(state="visible", timeout=30_000)
    old = page.locator("#image-status").inner_text()
    more.click()
    page.wait_for_function("([s, old]) => { const now = document.querySelector(s)?.innerText || '';"
                           " return now !== old && now.includes('Results 13–24 added'); }",
                           arg=["#image-status", old], timeout=30_000)
    page.wait_for_function("document.querySelectorAll('#image-results img').length === 24", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "more-results.png"), full_page=True)

    page.locator("#image-collapse input").uncheck()  # every version in its own slot
    _search_and_wait(page, "image-query", "waving hand", "#image-status", "12 results")
    page.wait_for_function("!document.querySelector('#image-results').innerText.includes('similar')", timeout=30_000)
    assert not page.errors, page.errors


def test_code_more_results_appends_a_page(page):
    page.get_by_role("tab", name="Code").click()
    _search_and_wait(page, "code-query", "read a file and return its lines", "#code-status", "10 results")
    more = page.locator("#code-more")
    more.wait_for(state="visible", timeout=30_000)
    more.click()
    _wait_for_text(page, "#code-status", "Results 11–20 added")
    page.wait_for_function("document.querySelectorAll('#code-results .mmssl-card').length === 20", timeout=30_000)
    assert page.locator("#code-results .mmssl-card").nth(10).get_attribute("data-rank") == "11"
    page.screenshot(path=str(ARTIFACTS / "code-more-results.png"), full_page=True)
    assert not page.errors, page.errors


def test_a_typed_path_glob_filters_the_code_results(page):
    """The glob typed as a user types it, then Enter in the glob box; several globs in a row, each one applied.

    The search always reads the typed glob: the status line shows before the result cards are re-rendered
    (0.1-0.8 s later, measured), so a test that reads the cards when the status changes reads the previous
    search's cards. Wait, as a user would, until the cards show the glob's files."""
    from fnmatch import fnmatch

    page.get_by_role("tab", name="Code").click()
    glob_box = page.locator("#code-path-glob textarea, #code-path-glob input").first
    query_box = page.locator("#code-query textarea, #code-query input").first
    query_box.fill("split a string into pieces")
    for glob, word in (("*textwrap*", "textwrap"), ("*shlex*", "shlex"), ("*fnmatch*", "fnmatch")):
        old = page.locator("#code-status").inner_text()
        glob_box.fill("")
        glob_box.press_sequentially(glob)
        glob_box.press("Enter")
        page.wait_for_function("([s, old]) => { const now = document.querySelector(s)?.innerText || '';"
                               " return now !== old && now.includes('results in'); }", arg=["#code-status", old],
                               timeout=30_000)
        page.wait_for_function("(word) => { const c = [...document.querySelectorAll('#code-results .mmssl-loc code')];"
                               " return c.length > 0 && c.every(e => e.innerText.includes(word)); }", arg=word,
                               timeout=30_000)
        locations = page.locator("#code-results .mmssl-loc code").all_inner_texts()
        assert locations and all(fnmatch(text.split(":")[0], glob) for text in locations), (glob, locations)
        assert all(word in text for text in locations)
    page.screenshot(path=str(ARTIFACTS / "code-path-glob.png"), full_page=True)
    glob_box.fill("")
    assert not page.errors, page.errors
