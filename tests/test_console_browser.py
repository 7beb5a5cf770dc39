"""The console in a real headless Chromium against a real `sopbot run` on the sandbox WeChat:
log in, search contacts with an expression, open one, preview an SOP for a tier, pause and
resume an account (the database changes), check an orders file then import it, switch to
English, read it on a 390-px phone; no console error anywhere, and names that look like
markup stay text.

Chromium and its driver come from the distribution, as for the report's browser tests
(tests/test_report_browser.py: without them the tests are skipped with the reason, except in
CI, where that is a failure). Screenshots go to each test's temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.store.models import DeliveryPause, Order
from tests.chromium import headless_chromium
from tests.test_cli import sopbot
from tests.test_console_security import HOSTILE_NAME, TOKEN, Running, run_daemon
from tests.test_report_browser import screenshot, severe
from tests.waiting import wait_for

pytestmark = pytest.mark.browser

PHONE = 390


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with run_daemon(tmp_path_factory.mktemp("console-browser")) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with headless_chromium(1100) as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(chromium: Any, daemon: Running) -> Any:
    """Logged in to the daemon's console (after a wrong token was refused)."""
    from selenium.webdriver.common.by import By

    chromium.get(f"http://127.0.0.1:{daemon.port}/")
    assert "/login" in chromium.current_url
    chromium.find_element(By.ID, "token").send_keys("not the token at all")
    click(chromium, chromium.find_element(By.CSS_SELECTOR, "section.login button"))
    assert "令牌不对" in chromium.find_element(By.CSS_SELECTOR, "p.problem").text
    chromium.find_element(By.ID, "token").send_keys(TOKEN)
    click(chromium, chromium.find_element(By.CSS_SELECTOR, "section.login button"))
    assert chromium.find_element(By.TAG_NAME, "h1").text == "仪表盘"
    assert chromium.current_url == f"http://127.0.0.1:{daemon.port}/"
    chromium.get_log("browser")  # the 401 of the wrong token is the one expected network error
    return chromium


def visit(driver: Any, daemon: Running, path: str) -> None:
    driver.get(f"http://127.0.0.1:{daemon.port}{path}")
    assert driver.execute_script("return document.readyState") == "complete"


def click(driver: Any, element: Any) -> None:
    """Click what loads another page, and wait until that page has replaced this one."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced() -> bool:
        try:
            old.tag_name  # noqa: B018
        except StaleElementReferenceException:
            return driver.execute_script("return document.readyState") == "complete"
        return False

    wait_for(replaced, what="the next page")


def no_errors(driver: Any) -> None:
    assert severe(driver) == []


def test_search_contacts_with_an_expression_and_open_one(
    browser: Any, daemon: Running, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    visit(browser, daemon, "/contacts")
    field = browser.find_element(By.CSS_SELECTOR, 'input[name="where"]')
    field.send_keys("tier >= repeat and not tag:免打扰")
    click(browser, browser.find_element(By.CSS_SELECTOR, "#contact-search button"))
    names = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#contact-list td.name a")]
    cli = sopbot(daemon.folder, "contacts", "--where", "tier >= repeat and not tag:免打扰")
    assert cli.returncode == 0, cli.stderr
    assert names and all(name in cli.stdout for name in names)
    assert f"共 {len(names)} 位" in browser.find_element(By.CSS_SELECTOR, "p.count").text
    screenshot(browser, tmp_path / "contacts.png", 1100)
    no_errors(browser)
    click(browser, browser.find_element(By.LINK_TEXT, names[0]))
    assert browser.find_element(By.CSS_SELECTOR, "h1.contact-name").text.startswith(names[0])
    assert browser.find_element(By.ID, "tags").is_displayed()
    screenshot(browser, tmp_path / "contact.png", 1100)
    no_errors(browser)
    # a wrong expression says where it is wrong
    visit(browser, daemon, "/contacts?where=tier%20%3E%3D%20gold")
    assert "unknown tier" in browser.find_element(By.CSS_SELECTOR, "div.problem").text
    no_errors(browser)


def test_preview_an_sop_for_a_tier(browser: Any, daemon: Running, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    visit(browser, daemon, "/sops")
    click(
        browser, browser.find_element(By.CSS_SELECTOR, '#sop-member_day a[href="/sops/member_day/preview"]')
    )
    form = browser.find_element(By.ID, "preview-form")
    date = form.find_element(By.NAME, "date")
    browser.execute_script("arguments[0].value = '2026-12-18'", date)
    Select(form.find_element(By.NAME, "tier")).select_by_visible_text("复购会员")
    click(browser, form.find_element(By.CSS_SELECTOR, "button"))
    messages = browser.find_elements(By.CSS_SELECTOR, "article.message")
    assert [m.get_attribute("data-step") for m in messages] == ["day", "last_call"]
    assert "会员日" in messages[0].find_element(By.CSS_SELECTOR, ".text").text
    assert "复购会员" in messages[0].find_element(By.TAG_NAME, "h2").text
    screenshot(browser, tmp_path / "preview.png", 1100)
    no_errors(browser)


def test_pause_and_resume_an_account(browser: Any, daemon: Running, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    def paused() -> list[tuple[str, str, str]]:
        database = daemon.database()
        try:
            with database.session(read_only=True) as session:
                rows = session.execute(
                    select(DeliveryPause.scope, DeliveryPause.reason, DeliveryPause.paused_by)
                )
                return [tuple(row) for row in rows]  # type: ignore[misc]
        finally:
            database.dispose()

    assert paused() == []
    visit(browser, daemon, "/")
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="main"]')
    row.find_element(By.NAME, "reason").send_keys("双12前检查文案")
    click(browser, row.find_element(By.CSS_SELECTOR, "button.warn"))
    assert "已暂停账号 main" in browser.find_element(By.CSS_SELECTOR, "p.notice").text
    assert paused() == [("main", "双12前检查文案", "console")]
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-account="main"]')
    assert "双12前检查文案" in row.text
    screenshot(browser, tmp_path / "paused.png", 1100)
    click(browser, row.find_element(By.XPATH, ".//button[text()='恢复发送']"))
    assert "已恢复账号 main" in browser.find_element(By.CSS_SELECTOR, "p.notice").text
    assert paused() == []
    no_errors(browser)


def test_check_an_orders_file_then_import_it(browser: Any, daemon: Running, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    def stored() -> int:
        database = daemon.database()
        try:
            with database.session(read_only=True) as session:
                query = select(func.count()).select_from(Order).where(Order.order_id.in_(("B1", "B2")))
                return int(session.execute(query).scalar_one())
        finally:
            database.dispose()

    orders = tmp_path / "有赞订单.csv"
    orders.write_text(
        "订单号,微信号,实付金额,下单时间,订单状态\n"
        "B1,wxid_chen_jing,128,2026-11-20 10:00,已付款\n"
        "B2,wxid_chen_jing,-5,2026-11-21 10:00,已付款\n",
        encoding="utf-8",
    )
    visit(browser, daemon, "/import")
    browser.find_element(By.CSS_SELECTOR, 'input[name="kind"][value="orders"]').click()
    browser.find_element(By.CSS_SELECTOR, 'input[name="file"]').send_keys(str(orders))
    click(browser, browser.find_element(By.CSS_SELECTOR, "#upload-form button"))
    assert "还没有保存任何内容" in browser.find_element(By.ID, "dry-run-note").text
    assert "1 个有效订单，共读取 2 行，1 行有问题" in browser.find_element(By.ID, "dry-run-summary").text
    assert "有赞订单.csv:3:" in browser.find_element(By.CSS_SELECTOR, "div.problem").text
    assert stored() == 0  # the dry run stored nothing
    screenshot(browser, tmp_path / "dry-run.png", 1100)
    no_errors(browser)
    click(browser, browser.find_element(By.CSS_SELECTOR, "#import-form button"))
    assert "1 new" in browser.find_element(By.ID, "import-done").text
    assert stored() == 1
    no_errors(browser)


def test_names_that_look_like_markup_stay_text_and_run_nothing(browser: Any, daemon: Running) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    visit(browser, daemon, "/contacts?q=%3Cscript%3E")
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    link = browser.find_element(By.CSS_SELECTOR, "#contact-list td.name a")
    assert link.text == HOSTILE_NAME
    click(browser, link)
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    body = browser.find_element(By.TAG_NAME, "body").text
    assert HOSTILE_NAME in body
    assert "<img src=x onerror=alert(2)>在吗" in body
    assert "</textarea><script>alert(3)</script>今日精选" in body
    scripts = browser.execute_script("return [...document.scripts].map(s => s.src)")
    assert len(scripts) == 1 and scripts[0].split("?")[0].endswith("/static/console.js"), scripts
    assert browser.execute_script("return document.querySelectorAll('img, b, i, textarea').length") == 0
    no_errors(browser)


def test_switch_to_english(browser: Any, daemon: Running) -> None:
    from selenium.webdriver.common.by import By

    visit(browser, daemon, "/contacts")
    click(browser, browser.find_element(By.CSS_SELECTOR, "a[data-lang-switch]"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "Contacts"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    visit(browser, daemon, "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Dashboard"
    click(browser, browser.find_element(By.CSS_SELECTOR, "a[data-lang-switch]"))
    assert browser.find_element(By.TAG_NAME, "h1").text == "仪表盘"
    no_errors(browser)


@pytest.mark.parametrize(
    "path",
    ["/", "/contacts", "/contacts?q=%3Cscript%3E", "/sops", "/sops/calendar?month=2026-12",
     "/sops/member_day/preview?date=2026-12-18", "/outbox", "/outbox/1", "/contacts/1", "/import"],
)  # fmt: skip
def test_every_page_fits_a_phone(browser: Any, daemon: Running, tmp_path: Path, path: str) -> None:
    browser.set_window_size(PHONE, 900)
    try:
        visit(browser, daemon, path)
        if path == "/":
            wait_for(
                lambda: (
                    browser.execute_script("return document.getElementById('charts').dataset.pending") == "0"
                ),
                what="the dashboard's charts",
            )
        inner = browser.execute_script("return window.innerWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= inner, path
        screenshot(browser, tmp_path / "phone.png", PHONE)
        no_errors(browser)
    finally:
        browser.set_window_size(1100, 1200)


def test_the_console_check_is_not_vacuous(browser: Any, daemon: Running) -> None:
    """An error on a page would have been seen: the same check sees one made on purpose."""
    visit(browser, daemon, "/")
    browser.execute_script("console.error('probe')")
    assert [entry for entry in severe(browser) if "probe" in entry["message"]]
