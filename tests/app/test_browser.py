"""A real browser on the served app: Debian's Chromium (``/usr/bin/chromium``, installed by
``make browser``) driven headless by Playwright, which downloads no browser of its own. Types a query,
sees images; clicks one, sees images like it; searches code, sees highlighted cards. Screenshots go
to ``test-artifacts/app/``.
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
