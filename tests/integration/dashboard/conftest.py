"""A real browser for the dashboard's tests (dashboard_browser.py): one per test module, a fresh
tab, with nobody signed in, per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_browser import TIMEOUT_MS, launch
from playwright.sync_api import Browser, Page, Playwright, sync_playwright


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Playwright's sync API runs an event loop on this thread until it stops: kept for the
    # whole session, it broke every asyncio test collected after the dashboard's.
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = launch(playwright)
    yield launched
    launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()
