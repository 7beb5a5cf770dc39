"""The console's pages and actions against a real `sopbot run` on the sandbox WeChat, over a
real socket: each page shows what the matching command shows (`sopbot contact`, `preview`,
`plan`, `check`, `outbox`), and each action changes the database as its command does."""

from __future__ import annotations

import html
import re
import secrets
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from bot.store.models import Contact, ContactEvent, ContactTag, Order, OutboxMessage, Tag, TierChange
from tests.test_cli import sopbot
from tests.test_console_security import Client, Running, run_daemon
from tests.waiting import wait_for

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with run_daemon(tmp_path_factory.mktemp("console-pages")) as running:
        yield running


@pytest.fixture(scope="module")
def client(daemon: Running) -> Client:
    operator = daemon.client()
    assert operator.login().status == 303
    return operator


def contact_id(daemon: Running, wxid: str) -> int:
    database = daemon.database()
    try:
        with database.session(read_only=True) as session:
            return int(session.execute(select(Contact.id).where(Contact.wxid == wxid)).scalar_one())
    finally:
        database.dispose()


def texts(body: str, css_class: str) -> list[str]:
    """The unescaped text of every `<div class="CSS_CLASS">` (messages are plain text in them)."""
    return [
        html.unescape(found) for found in re.findall(rf'<div class="{css_class}">(.*?)</div>', body, re.S)
    ]


def multipart(fields: dict[str, str], name: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "----sopbot" + secrets.token_hex(8)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        for key, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n".encode()
        + data
        + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(client: Client, kind: str, filename: str, data: bytes) -> str:
    body, content_type = multipart({"csrf": client.csrf(), "kind": kind}, "file", filename, data)
    answer = client.request("/import", body, {"Content-Type": content_type})
    assert answer.status == 200, answer.body[:500]
    return answer.body


# -- dashboard --------------------------------------------------------------------------------


def test_the_dashboard_shows_accounts_queue_next_sends_quiet_hours_and_the_charts(
    daemon: Running, client: Client
) -> None:
    page = client.get("/")
    assert page.status == 200
    row = re.search(r'<tr data-account="main">(.*?)</tr>', page.body, re.S)
    assert row is not None and "在线" in row.group(1)  # online, as the daemon wrote it
    assert 'action="/accounts/main/pause"' in row.group(1)
    assert re.search(r'<td class="num" data-label="排队">\d+</td>', row.group(1))  # queue depth
    assert "接下来的SOP发送" in page.body and "/preview?date=" in page.body  # the next SOP sends
    assert "免打扰时段" in page.body and "22:00-08:00" in page.body
    charts = wait_for(lambda: (a := client.get("/dashboard/charts")).status == 200 and a, what="the charts")
    assert charts.body.count('<svg class="chart"') >= 3
    assert 'data-chart="days"' in charts.body and 'data-chart="tiers"' in charts.body
    again = client.get("/")
    assert 'data-pending="0"' in again.body and 'data-chart="tiers"' in again.body


# -- one contact -------------------------------------------------------------------------------


def test_a_contact_page_shows_tier_history_tags_orders_and_the_conversation_both_ways(
    daemon: Running, client: Client
) -> None:
    hostile = contact_id(daemon, "wxid_hostile")
    database = daemon.database()
    try:
        with database.session() as session:
            tag_id = session.execute(select(Tag.id).where(Tag.name == "活动喜好型")).scalar()
            if tag_id is None:
                tag = Tag(name="活动喜好型")
                session.add(tag)
                session.flush()
                tag_id = tag.id
            session.add(
                ContactTag(contact_id=hostile, tag_id=tag_id, source="rule", evidence="「有优惠吗」（活动喜好型：优惠）",
                           evidence_ref="msg:hostile-1", added_at=NOW)
            )  # fmt: skip
            session.add(
                TierChange(
                    contact_id=hostile, from_tier="basic", to_tier="customer", cause="首单 A9", changed_at=NOW
                )
            )
            session.add(Order(order_id="A9", contact_id=hostile, amount_cents=19900, ordered_at=NOW, source="csv",
                              items=[{"name": "羊绒围巾", "qty": 1}]))  # fmt: skip
    finally:
        database.dispose()
    page = client.get(f"/contacts/{hostile}")
    assert page.status == 200
    body = page.body
    for shown in (
        "活动喜好型",
        "「有优惠吗」（活动喜好型：优惠）",
        "msg:hostile-1",
        "首单 A9",
        "A9",
        "¥199.00",
        "羊绒围巾×1",
    ):
        assert html.escape(shown, quote=False) in body, shown
    said = texts(body, "text")
    assert "<img src=x onerror=alert(2)>在吗" in said  # what they said
    assert "</textarea><script>alert(3)</script>今日精选" in said  # what we sent
    assert "daily/pick" in body  # ... and from which SOP step
    # the same facts `sopbot contact` prints
    cli = sopbot(daemon.folder, "contact", "wxid_hostile")
    assert cli.returncode == 0, cli.stderr
    assert "首单 A9" in cli.stdout and "活动喜好型" in cli.stdout


def test_opting_a_contact_out_and_back_in(daemon: Running, client: Client) -> None:
    who = contact_id(daemon, "wxid_chen_jing")

    def state() -> tuple[bool, list[tuple[str, str | None]]]:
        database = daemon.database()
        try:
            with database.session(read_only=True) as session:
                opted = bool(session.execute(select(Contact.opted_out).where(Contact.id == who)).scalar_one())
                events = session.execute(
                    select(ContactEvent.kind, ContactEvent.ref)
                    .where(ContactEvent.contact_id == who, ContactEvent.kind.in_(("opted_out", "opted_in")))
                    .order_by(ContactEvent.id)
                ).all()
                return opted, [(kind, ref) for kind, ref in events]
        finally:
            database.dispose()

    assert state() == (False, [])
    token = client.csrf()
    answer = client.post(f"/contacts/{who}/opt-out", {"csrf": token})
    assert answer.status == 303 and answer.location == f"/contacts/{who}?notice=opted_out"
    assert state() == (True, [("opted_out", "console")])
    page = client.get(answer.location)
    assert "已设为退订" in page.body and f'action="/contacts/{who}/opt-in"' in page.body
    assert client.post(f"/contacts/{who}/opt-out", {"csrf": token}).location.endswith("notice=unchanged")
    assert client.post(f"/contacts/{who}/opt-in", {"csrf": token}).status == 303
    assert state() == (False, [("opted_out", "console"), ("opted_in", "console")])
    assert client.post("/contacts/999999/opt-out", {"csrf": token}).status == 404


# -- SOPs --------------------------------------------------------------------------------------


def test_a_preview_for_a_tier_is_what_sopbot_preview_prints(daemon: Running, client: Client) -> None:
    page = client.get("/sops/member_day/preview?date=2026-12-18&tier=repeat")
    assert page.status == 200
    shown = texts(page.body, "text")
    assert len(shown) == 2, page.body[:1000]  # 会员日当天 and 最后3小时
    cli = sopbot(daemon.folder, "preview", "member_day", "--date", "2026-12-18", "--tier", "repeat")
    assert cli.returncode == 0, cli.stderr
    for text in shown:
        assert text in cli.stdout
    assert "复购会员" in page.body
    # for a contact, and for a day no step fires (every step shown as it would read)
    who = contact_id(daemon, "wxid_chen_jing")
    mine = client.get(f"/sops/welcome/preview?date=2026-12-18&contact={who}")
    assert mine.status == 200 and "陈静" in mine.body and texts(mine.body, "text")
    assert "friend_added 之后 1d 10:00" in mine.body  # when each lifecycle step sends
    winback = client.get("/sops/winback/preview?date=2026-12-18&tier=customer")
    assert winback.status == 200 and "沉默 14 天后" in winback.body, winback.body[:1000]
    cli = sopbot(daemon.folder, "preview", "winback", "--date", "2026-12-18", "--tier", "customer")
    assert "· after 14 silent days ·" in cli.stdout and "· after 60 silent days ·" in cli.stdout
    groups = client.get(
        "/sops/daily_pick/preview?date=2026-12-03&group_type=" + urllib.parse.quote("精英会员群")
    )
    assert groups.status == 200 and "精英会员群" in groups.body and texts(groups.body, "text")
    assert client.get("/sops/no_such_sop/preview").status == 404


def test_the_month_calendar_is_the_plan(daemon: Running, client: Client) -> None:
    page = client.get("/sops/calendar?month=2026-12&counts=1")
    assert page.status == 200
    shown: set[tuple[str, str]] = set()
    for day, cell in re.findall(r'data-day="([\d-]+)">(.*?)\n  </div>', page.body, re.S):
        shown |= {(day, entry) for entry in re.findall(r'data-entry="([^"]+)"', cell)}
    cli = sopbot(daemon.folder, "plan", "--from", "2026-12-01", "--days", "31")
    assert cli.returncode == 0, cli.stderr
    planned: set[tuple[str, str]] = set()
    day = ""
    for line in cli.stdout.splitlines():
        if re.match(r"\d{4}-\d{2}-\d{2} ", line):
            day = line[:10]
        elif found := re.match(r"  (\d{2}:\d{2})  (\S+)  ", line):
            planned.add((day, f"{found.group(1)} {found.group(2)}"))
    assert planned and shown == planned
    assert "双12" in page.body


def test_the_check_page_lists_every_problem_with_file_and_line(daemon: Running, client: Client) -> None:
    broken = daemon.folder / "sop" / "broken.yaml"
    broken.write_text(
        "id: broken\nname: 坏的\nsteps:\n  - id: a\n    daily: '25:00'\n    template: hello\n", "utf-8"
    )
    try:
        cli = sopbot(daemon.folder, "check")
        assert cli.returncode == 1
        problems = [line for line in cli.stdout.splitlines() if line.startswith("sop/broken.yaml:")]
        assert problems, cli.stdout
        page = client.get("/sops/check")
        assert page.status == 200
        for problem in problems:
            assert str(escape(problem)) in page.body
        listing = client.get("/sops")
        assert str(escape(problems[0])) in listing.body
        assert "daily_pick" in listing.body  # the daemon's running set is still listed
    finally:
        broken.unlink()
    assert wait_for(lambda: "没有问题" in client.get("/sops/check").body, what="the check to pass again")


# -- outbox ------------------------------------------------------------------------------------


def test_the_outbox_filters_and_shows_a_message_in_full(daemon: Running, client: Client) -> None:
    skipped = client.get("/outbox?state=skipped&sop=daily")
    assert skipped.status == 200
    ids = re.findall(r'<a href="/outbox/(\d+)">', skipped.body)
    assert ids
    assert "&lt;i&gt;opted out&lt;/i&gt;" in skipped.body
    assert re.findall(r'<a href="/outbox/(\d+)">', client.get("/outbox?state=sent&sop=daily").body) == []
    assert re.findall(r'<a href="/outbox/(\d+)">', client.get("/outbox?sop=daily&to=2026-11-01").body) == []
    hostile = contact_id(daemon, "wxid_hostile")
    assert re.findall(r'<a href="/outbox/(\d+)">', client.get(f"/outbox?contact={hostile}").body) == ids
    row = client.get(f"/outbox/{ids[0]}")
    assert row.status == 200
    assert texts(row.body, "text message-text") == ["</textarea><script>alert(3)</script>今日精选"]
    database = daemon.database()
    try:
        with database.session(read_only=True) as session:
            key = session.execute(
                select(OutboxMessage.key).where(OutboxMessage.id == int(ids[0]))
            ).scalar_one()
    finally:
        database.dispose()
    assert f"<code>{escape(key)}</code>" in row.body
    assert '<a href="/sops#sop-daily">daily</a>/pick @ 2026-11-24T10:00' in row.body
    assert "&lt;i&gt;opted out&lt;/i&gt;" in row.body
    assert client.get("/outbox/99999999").status == 404


# -- uploads -----------------------------------------------------------------------------------

ORDERS = (
    "订单号,微信号,实付金额,下单时间,订单状态\n"
    "C1,wxid_chen_jing,99,2026-11-20 10:00,已付款\n"
    "C2,wxid_chen_jing,九十九,2026-11-21 10:00,已付款\n"
).encode()


def orders_stored(daemon: Running) -> int:
    database = daemon.database()
    try:
        with database.session(read_only=True) as session:
            return int(
                session.execute(
                    select(func.count()).select_from(Order).where(Order.order_id.in_(("C1", "C2")))
                ).scalar_one()
            )
    finally:
        database.dispose()


def test_an_orders_file_is_checked_first_then_imported(daemon: Running, client: Client) -> None:
    page = upload(client, "orders", "../../shop/orders.csv", ORDERS)
    assert "这是试运行" in page
    assert "1 个有效订单，共读取 2 行，1 行有问题" in page
    assert "orders.csv:3: " in page and "shop/" not in page  # the file's own name, with the line
    assert orders_stored(daemon) == 0
    cli = sopbot(
        daemon.folder, "import-orders", "--dry-run", str(_write(daemon.folder / "orders.csv", ORDERS))
    )
    assert "orders.csv:3: " in cli.stderr  # the same problem, as the command names it
    upload_id = re.search(r'action="/import/([^"]+)"', page)
    assert upload_id is not None
    done = client.post(f"/import/{upload_id.group(1)}", {"csrf": client.csrf()})
    assert done.status == 200 and 'id="import-done"' in done.body and "1 new" in done.body
    assert orders_stored(daemon) == 1
    again = client.post(f"/import/{upload_id.group(1)}", {"csrf": client.csrf()})
    assert "这个文件已经导入过了" in again.body and orders_stored(daemon) == 1
    other = Client(daemon.port)
    other.login()
    assert other.post(f"/import/{upload_id.group(1)}", {"csrf": other.csrf()}).status == 410  # not theirs


def test_a_contacts_file_is_checked_first_then_imported(daemon: Running, client: Client) -> None:
    data = "微信号,城市,会员卡号\nwxid_zhou_hao,杭州,A-1\nwxid_zhou_hao,,\n".encode()
    page = upload(client, "contacts", "people.csv", data)
    assert "这是试运行" in page and "会员卡号" in page
    who = contact_id(daemon, "wxid_zhou_hao")

    def city() -> str | None:
        database = daemon.database()
        try:
            with database.session(read_only=True) as session:
                return session.execute(select(Contact.city).where(Contact.id == who)).scalar_one()
        finally:
            database.dispose()

    before = city()
    assert before != "杭州"
    upload_id = re.search(r'action="/import/([^"]+)"', page)
    assert upload_id is not None
    done = client.post(f"/import/{upload_id.group(1)}", {"csrf": client.csrf()})
    assert done.status == 200 and 'id="import-done"' in done.body
    assert city() == "杭州"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- language ----------------------------------------------------------------------------------


def test_the_pages_switch_to_english_and_stay_so(daemon: Running) -> None:
    client = daemon.client()
    client.login()
    assert "仪表盘" in client.get("/").body
    english = client.get("/contacts?lang=en")
    assert english.status == 200 and "Contacts" in english.body and 'lang="en"' in english.body
    assert "姓名 / 备注 / wxid" not in english.body
    assert "Dashboard" in client.get("/").body  # the cookie keeps the choice
    back = client.get("/?lang=zh")
    assert "仪表盘" in back.body
    link = re.search(
        r'href="([^"]+)" data-lang-switch', client.get("/contacts?q=" + urllib.parse.quote("陈")).body
    )
    assert link is not None and html.unescape(link.group(1)) == "?q=%E9%99%88&lang=en"  # this page, its query


# -- the retention brake and its alerts ---------------------------------------------------------


def test_a_braked_sop_and_the_loss_alerts_show_and_the_sop_resumes(daemon: Running, client: Client) -> None:
    from bot.store.models import Alert, SopBrake

    database = daemon.database()
    try:
        with database.session() as session:
            session.add(
                SopBrake(sop_id="member_day", state="paused", reason="删粉率 2.5%（5/200）", tripped_at=NOW)
            )
            session.add(
                Alert(key="console-test", kind="account_day", account_id="main", count=21, threshold=20,
                      message="<b>账号 main 今日删粉 21 人</b>", created_at=NOW, window_start=NOW, window_end=NOW)
            )  # fmt: skip
    finally:
        database.dispose()

    def state() -> tuple[str, str | None]:
        database = daemon.database()
        try:
            with database.session(read_only=True) as session:
                row = session.get(SopBrake, "member_day")
                assert row is not None
                return row.state, row.resumed_by
        finally:
            database.dispose()

    dashboard = client.get("/")
    assert "&lt;b&gt;账号 main 今日删粉 21 人&lt;/b&gt;" in dashboard.body and "<b>账号" not in dashboard.body
    assert "删粉率 2.5%（5/200）" in dashboard.body
    listing = client.get("/sops")
    section = re.search(r'<section class="sop" id="sop-member_day">(.*?)</section>', listing.body, re.S)
    assert section is not None and "已刹车" in section.group(1)
    assert 'action="/sops/member_day/resume"' in section.group(1)
    assert client.post("/sops/member_day/resume", {}).status == 403 and state() == ("paused", None)
    answer = client.post("/sops/member_day/resume", {"csrf": client.csrf()})
    assert answer.status == 303 and answer.location == "/sops?notice=sop_resumed&sop=member_day"
    assert state() == ("resumed", "console")
    assert "已解除 member_day 的刹车" in client.get(answer.location).body
    again = client.post("/sops/member_day/resume", {"csrf": client.csrf()})
    assert again.location == "/sops?notice=sop_not_braked&sop=member_day"
