"""The HTML report in a real headless Chromium: it loads without a console error, every
chart has drawn, it fits a phone, and names that look like markup stay text.

Chromium comes from the distribution (tests/chromium.py): nothing is downloaded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.report.html import render_html
from bot.results.model import Report
from tests.chromium import headless_chromium
from tests.report_sample import hostile_report, sample_report

CHARTS = ["days", "tiers", "migration", "tags", "sops"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium(1000, page_timeout=30) as driver:
        yield driver


def open_report(driver: Any, report: Report, folder: Path, width: int = 1000) -> Path:
    page = folder / f"report-{report.period.label}.html"
    page.write_text(render_html(report), encoding="utf-8")
    driver.set_window_size(width, 1200)
    driver.get_log("browser")  # start from an empty console
    driver.get(page.as_uri())
    assert driver.execute_script("return document.readyState") == "complete"
    return page


def severe(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: Any, path: Path, width: int) -> None:
    """The whole page, not only the window."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(height) + 150, 16000))
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_loads_without_errors_and_every_chart_draws(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    began = time.monotonic()
    open_report(browser, sample_report(), tmp_path)
    assert severe(browser) == []
    assert browser.title == "私域运营报表 2026-W48 · main"
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert [chart.get_attribute("data-chart") for chart in charts] == CHARTS
    for chart in charts:
        name = chart.get_attribute("data-chart")
        drawn = chart.find_elements(By.CSS_SELECTOR, "rect, line, text")
        assert len(drawn) >= 10, name
        box = browser.execute_script("const b = arguments[0].getBBox(); return [b.width, b.height];", chart)
        assert box[0] > 100 and box[1] > 50, (name, box)
        assert chart.size["width"] > 200 and chart.size["height"] > 50, (name, chart.size)
        assert chart.is_displayed(), name
    # every section is there, a chart's text reads as written
    sections = browser.find_elements(By.CSS_SELECTOR, "section[data-section]")
    assert len(sections) == 15
    funnel = browser.find_element(By.CSS_SELECTOR, 'svg[data-chart="tiers"]')
    assert "125 人 (100%)" in funnel.text
    screenshot(browser, tmp_path / "report.png", 1000)
    # the console check is not vacuous: an error on the page would have been seen
    browser.execute_script("console.error('probe')")
    assert [e for e in severe(browser) if "probe" in e["message"]]
    print(f"browser check in {time.monotonic() - began:.1f} s; screenshot {tmp_path / 'report.png'}")


def test_the_report_fits_a_phone(browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    open_report(browser, sample_report(), tmp_path, width=390)
    assert severe(browser) == []
    inner = browser.execute_script("return window.innerWidth")
    # the page itself never scrolls sideways; wide tables scroll inside their own box
    assert browser.execute_script("return document.documentElement.scrollWidth") <= inner
    for chart in browser.find_elements(By.CSS_SELECTOR, "svg.chart"):
        assert 0 < chart.size["width"] <= inner
    wide = browser.find_element(By.CSS_SELECTOR, "#sops .scroll")
    assert browser.execute_script("return arguments[0].scrollWidth > arguments[0].clientWidth", wide)
    screenshot(browser, tmp_path / "report-phone.png", 390)


def test_names_that_look_like_markup_stay_text(browser: Any, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    open_report(browser, hostile_report(), tmp_path)
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    assert severe(browser) == []  # no broken image, no script ran
    assert browser.execute_script("return document.querySelectorAll('script, img, b, i').length") == 0
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg")) == len(CHARTS)
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "<script>alert(1)</script>" in page
    assert "<b>粗体</b>" in page
    assert "群</td><img src=x onerror=alert(2)>" in page
    assert "KOC<i>" in browser.find_element(By.CSS_SELECTOR, 'svg[data-chart="tiers"]').text
    assert "</svg><script>aler…" in browser.find_element(By.CSS_SELECTOR, 'svg[data-chart="tags"]').text
