"""Debian's headless Chromium for the browser tests, driven by selenium.

Chromium and its driver come from the distribution (`apt-get install chromium
chromium-driver`; `.ci/run` installs them); selenium is given both paths, so Selenium
Manager never runs and nothing is downloaded. Without them the tests are skipped with the
reason, except in CI, where that is a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium_reason() -> str | None:
    """None when the browser tests can run, else why not."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


@contextmanager
def headless_chromium(width: int, height: int = 1200, *, page_timeout: float = 60) -> Iterator[Any]:
    """A selenium driver of a headless Chromium window `width` × `height`, keeping the
    browser's console log."""
    reason = chromium_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        # the driver's path given: Selenium Manager is skipped; were it ever asked, offline
        patch.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(page_timeout)
        try:
            yield driver
        finally:
            driver.quit()
