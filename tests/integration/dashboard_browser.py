"""Driving the dashboard in a real browser: Debian's `chromium` (`make test` installs it),
through Playwright. Shared by the browser tests and the screenshot script."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

# Generous: a page waits on a real worker, on a machine the whole suite shares.
TIMEOUT_MS = 30_000
expect.set_options(timeout=TIMEOUT_MS)


def launch(playwright: Playwright) -> Browser:
    """Debian's chromium; a missing one fails the test (never a skip)."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on the PATH: `make test` installs it (apt-get install chromium)")
    # As root (CI, containers) chromium refuses to start with its sandbox on.
    return playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])


def sign_in(page: Page, base_url: str, key: str, hash_: str = "#/workflows") -> None:
    """Open the dashboard at `hash_` and sign in with `key` as a person would."""
    page.goto(f"{base_url}/{hash_}")
    page.fill("#credential", key)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")
