"""A real browser for tests: Debian's chromium (scripts/bootstrap.sh installs it), driven headless
through Playwright, which needs no browser download of its own when given this one."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def chromium_binary() -> str:
    """The system chromium's path."""
    binary = shutil.which("chromium")
    if binary is None:
        raise RuntimeError("chromium is not installed: run bash scripts/bootstrap.sh")
    return binary


@asynccontextmanager
async def browser_page(width: int = 1100, height: int = 600, **options: Any) -> AsyncIterator[Any]:
    """A fresh page (a Playwright `Page`) in a headless chromium that is closed afterwards; `options` go to
    Playwright's `new_page` (`bypass_csp=True` lets a test inject its checkers into a strict page)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_binary(),
                                                   args=["--no-sandbox", "--disable-gpu"])
        try:
            yield await browser.new_page(viewport={"width": width, "height": height}, **options)
        finally:
            await browser.close()
