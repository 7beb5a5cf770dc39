"""The daemon on a real wechaty gateway (Node, mock puppet) over gRPC: login and sync,
inbound messages, outbox sends, friend requests, reconnects, identities, several accounts."""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.delivery.outbox import PlannedMessage, enqueue, recipient_ref, sop_key
from bot.policies import Origin
from bot.store import Database
from bot.store.models import Account, Contact, ContactEvent, InboundMessage, Room, RoomMember, WechatIdentity
from bot.wechat.transport import ConnectError
from bot.wechat.types import Image, LinkCard, ScanRequired, Text
from bot.wechat.wechaty_transport import WechatyTransport
from tests.gateway.harness import Gateway
from tests.support import T0, TestBot, make_settings, plan, sqlite_database
from tests.waiting import wait_for

pytestmark = pytest.mark.gateway


def account_toml(gateway: Gateway, account_id: str = "main", **extra: Any) -> str:
    lines = [
        "[[accounts]]",
        f'id = "{account_id}"',
        'transport = "wechaty"',
        f'endpoint = "{gateway.endpoint}"',
    ]
    values = {"health_interval": 0.5, "reconnect_max": 1.0} | extra
    lines += [f"{key} = {value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


class WechatyBot:
    """The testbot, on a wechaty transport connected to `gateway`."""

    def __init__(self, gateway: Gateway, folder: Path, database: Database, **account: Any) -> None:
        self.gateway = gateway
        settings = make_settings(
            folder / "project", account_toml(gateway, **account) + "[delivery]\njitter = 0\n"
        )
        os.environ["SOPBOT_TOKEN_MAIN"] = gateway.token
        self.clock = FrozenClock(T0)
        self.transport = WechatyTransport(settings.accounts[0], settings, self.clock, database=database)
        self.bot = TestBot(settings, database, self.clock, transport=self.transport)  # type: ignore[arg-type]
        self.database = database
        self.since = gateway.health()["seq"]

    def start(self) -> WechatyBot:
        self.bot.start()
        return self

    def close(self) -> None:
        self.bot.close()

    def contact_id(self, wxid: str) -> int:
        return self.bot.contact(wxid).id

    def room_id(self, room_wxid: str) -> int:
        with self.database.session(read_only=True) as s:
            return s.execute(select(Room.id).where(Room.room_wxid == room_wxid)).scalar_one()

    def plan_room(self, room_wxid: str, text: str) -> None:
        room_id = self.room_id(room_wxid)
        message = PlannedMessage(
            key=sop_key("group", "notice", "2026-11-24", recipient_ref(room_id=room_id)),
            account_id="main",
            origin=Origin.SOP,
            parts=[Text(text)],
            not_before=T0,
            room_id=room_id,
        )
        with self.database.session() as session:
            enqueue(session, [message], T0)

    def deliver(self) -> int:
        """Step the delivery worker, moving the frozen clock through pacing waits."""
        sent = 0
        for _ in range(200):
            result = self.bot.run(self.bot.worker.step("main"))
            sent += result.sent
            if result.paced:
                self.clock.advance(timedelta(seconds=result.wait))
                continue
            if not result.active:
                break
        return sent

    def sent(self, **query: Any) -> list[dict[str, Any]]:
        return self.gateway.sent(since=self.since, **query)

    def rows(self, model: type) -> list[Any]:
        with self.database.session(read_only=True) as s:
            return list(s.execute(select(model)).scalars())


@pytest.fixture
def wbot(gateway: Gateway, tmp_path: Path) -> Iterator[WechatyBot]:
    with sqlite_database(tmp_path) as db:
        bot = WechatyBot(gateway, tmp_path, db).start()
        try:
            yield bot
        finally:
            bot.close()


@pytest.fixture
def own_gateway(gateway_available: None) -> Iterator[Gateway]:
    running = Gateway().start()
    try:
        yield running
    finally:
        running.terminate()


def test_login_syncs_contacts_rooms_and_members(wbot: WechatyBot) -> None:
    with wbot.database.session(read_only=True) as s:
        account = s.get(Account, "main")
        assert (account.status, account.self_name, account.self_wxid) == (
            "online",
            "运营小助手",
            "wxid_sopbot",
        )
    expected = {c["id"] for c in wbot.gateway.contacts() if not c["self"]}
    assert {c.wxid for c in wbot.bot.contacts()} >= expected
    rooms = {r.room_wxid: r.topic for r in wbot.rows(Room)}
    assert rooms["r_vip@chatroom"] == "VIP客户群" and rooms["r_newbie@chatroom"] == "新手交流群"
    members = {
        (m.member_wxid) for m in wbot.rows(RoomMember) if m.room_id == wbot.room_id("r_newbie@chatroom")
    }
    assert members == {"wxid_liuyang", "wxid_chenjing", "wxid_zhaolei"}
    zhang = wbot.bot.contact("wxid_zhangwei")
    assert (zhang.name, zhang.is_friend) == ("张伟", True)


def test_inbound_one_to_one_and_group_messages_are_stored(wbot: WechatyBot) -> None:
    wbot.gateway.post("/say", **{"from": "wxid_wangfang", "text": "上新了吗？"})
    wbot.gateway.post("/say", **{"from": "wxid_lina", "text": "@运营小助手 有券吗", "room": "r_vip@chatroom",
                                 "mentions": ["wxid_sopbot"]})  # fmt: skip
    wbot.gateway.post("/say", **{"from": "wxid_lina", "text": "https://shop.example/p/1", "type": "Url"})
    wbot.gateway.post(
        "/say", **{"from": "wxid_lina", "text": "", "type": "Attachment", "filename": "订单.xlsx"}
    )
    rows = wait_for(lambda: len(wbot.rows(InboundMessage)) >= 4 and wbot.rows(InboundMessage), what="4 rows")
    got = [(r.text, r.kind, r.room_id is not None) for r in sorted(rows, key=lambda r: r.id)]
    assert got == [
        ("上新了吗？", "text", False),
        ("@运营小助手 有券吗", "text", True),
        ("https://shop.example/p/1", "link", False),
        ("订单.xlsx", "file", False),
    ]


def test_outbox_rows_arrive_at_the_gateway_for_a_contact_and_a_room(wbot: WechatyBot) -> None:
    assert plan(wbot.database, [wbot.contact_id("wxid_zhangwei")], text="今日精选：羊绒围巾") == 1
    wbot.plan_room("r_vip@chatroom", "本周会员日：全场九折")
    assert wbot.deliver() == 2
    texts = [(r["to"], r["isRoom"], r["text"]) for r in wbot.sent(kind="text")]
    assert texts == [
        ("wxid_zhangwei", False, "今日精选：羊绒围巾"),
        ("r_vip@chatroom", True, "本周会员日：全场九折"),
    ]
    assert wbot.deliver() == 0  # nothing twice


def test_image_and_link_card_are_sent(wbot: WechatyBot) -> None:
    target = wbot.bot.run(
        wbot.transport.send(_contact("wxid_lina"), Image("https://cdn.example/a/scarf.jpg"))
    )
    assert target.msg_id
    card = LinkCard("羊绒围巾", "https://shop.example/p/1", "新品 8 折", "https://cdn.example/t.jpg")
    wbot.bot.run(wbot.transport.send(_contact("wxid_lina"), card))
    files = wbot.sent(kind="file")
    assert [(f["to"], f["name"]) for f in files] == [("wxid_lina", "scarf.jpg")]
    urls = wbot.sent(kind="url")
    assert (
        urls[0]["payload"]["title"] == "羊绒围巾" and urls[0]["payload"]["url"] == "https://shop.example/p/1"
    )


def test_alias_is_set_in_wechat(wbot: WechatyBot) -> None:
    wbot.bot.run(wbot.transport.set_alias("wxid_chenjing", "陈静-VIP"))
    assert [(a["contactId"], a["alias"]) for a in wbot.sent(kind="alias")] == [("wxid_chenjing", "陈静-VIP")]


def test_a_friend_request_is_accepted_and_recorded_with_its_hello(wbot: WechatyBot) -> None:
    stranger = f"wxid_fr_{uuid.uuid4().hex[:6]}"
    wbot.gateway.post(
        "/friendship", **{"from": stranger, "name": "乔悦", "hello": "小红书上看到你们家的面霜"}
    )
    accepted = wait_for(lambda: wbot.sent(kind="friendshipAccept"), what="friendshipAccept")
    assert accepted[0]["contactId"] == stranger
    events = wait_for(
        lambda: [e for e in wbot.rows(ContactEvent) if e.kind == "friend_added" and e.detail != "sync"],
        what="event",
    )  # the friends found at the login sync have their own (sync) events
    assert (events[0].detail, events[0].ref) == ("request", "hello:小红书上看到你们家的面霜")
    newcomer = wbot.bot.contact(stranger)
    assert newcomer.is_friend and newcomer.name == "乔悦"


def test_a_qr_scan_is_shown_and_saved(wbot: WechatyBot, capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[Any] = []
    wbot.bot.daemon.accounts["main"].pipeline.observe(
        lambda event: seen.append(event) if isinstance(event, ScanRequired) else None
    )
    wbot.gateway.post("/scan", qrcode="https://login.weixin.qq.com/l/sopbot-test", status=2)
    wait_for(lambda: seen, what="ScanRequired")
    assert (seen[0].qrcode, seen[0].status) == ("https://login.weixin.qq.com/l/sopbot-test", "waiting")
    assert wbot.transport.qr_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "█" in capsys.readouterr().err


def test_gateway_killed_and_restarted_reconnects_and_sends_the_queue_once(
    own_gateway: Gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.wechat.wechaty")
    with sqlite_database(tmp_path) as db:
        wbot = WechatyBot(own_gateway, tmp_path, db).start()
        try:
            plan(db, [wbot.contact_id("wxid_zhangwei")], text="第一条", step="a")
            assert wbot.deliver() == 1
            own_gateway.kill()
            wait_for(lambda: not wbot.transport.online, what="offline")
            plan(db, [wbot.contact_id("wxid_wangfang")], text="断线时排队", step="b")
            wbot.plan_room("r_vip@chatroom", "群里也排队")
            assert wbot.deliver() == 0  # disconnected: the rows wait in the outbox
            own_gateway.start()  # same ports, a fresh gateway process, ready when this returns
            tries_when_back = wbot.transport.reconnect_attempts
            wait_for(lambda: wbot.transport.reconnects and wbot.transport.online, what="back online")
            # Our backoff (capped at reconnect_max = 1 s), not the library's fixed 60 s: every
            # wait between tries was at most reconnect_max, and the transport was back on the
            # first few tries after the gateway was, however slow the machine.
            waits = [float(m) for m in re.findall(r"next try in ([0-9.]+)s", caplog.text)]
            assert waits and max(waits) <= 1.0, waits
            assert wbot.transport.reconnect_attempts - tries_when_back <= 3
            assert wbot.deliver() == 2
            assert wbot.deliver() == 0
            texts = [(r["to"], r["text"]) for r in own_gateway.sent(kind="text")]
            assert texts == [("wxid_wangfang", "断线时排队"), ("r_vip@chatroom", "群里也排队")]
        finally:
            wbot.close()


def test_a_reconnect_that_dies_right_after_logging_in_leaves_the_account_offline(
    own_gateway: Gateway, tmp_path: Path
) -> None:
    # A reconnect attempt logs in, then watches the new stream for health_interval (2 s here)
    # before it counts as connected. The gateway is killed inside that window: the account
    # must not be left "online" on a dead connection (it used to be, until the next restart).
    with sqlite_database(tmp_path) as db:
        wbot = WechatyBot(own_gateway, tmp_path, db, health_interval=2.0).start()
        try:
            for cycle in range(3):
                own_gateway.kill()
                wait_for(lambda: not wbot.transport.online, what=f"offline after kill {cycle}")
                logins = wbot.transport.login_count
                own_gateway.start()
                wait_for(
                    lambda logins=logins: wbot.transport.login_count > logins, what="the reconnect's login"
                )
                own_gateway.kill()  # inside the attempt's 2 s check
                wait_for(lambda: not wbot.transport.online, what="offline again")
                reconnects = wbot.transport.reconnects
                own_gateway.start()
                wait_for(lambda seen=reconnects: wbot.transport.reconnects > seen, what="a reconnect")
                wait_for(lambda: wbot.transport.online, what="back online")
        finally:
            wbot.close()


def test_a_hung_gateway_is_detected_by_the_health_check(own_gateway: Gateway, tmp_path: Path) -> None:
    import signal

    with sqlite_database(tmp_path) as db:
        wbot = WechatyBot(own_gateway, tmp_path, db).start()
        try:
            assert own_gateway.process is not None
            own_gateway.process.send_signal(signal.SIGSTOP)
            try:
                wait_for(lambda: not wbot.transport.online, what="offline after a missed ping")
            finally:
                own_gateway.process.send_signal(signal.SIGCONT)
            wait_for(lambda: wbot.transport.online, what="back online")
        finally:
            wbot.close()


def test_a_contact_keeps_its_identity_when_the_puppet_changes_its_id(wbot: WechatyBot) -> None:
    gateway = wbot.gateway
    keep, lose = f"wxid_keep_{uuid.uuid4().hex[:6]}", f"wxid_lose_{uuid.uuid4().hex[:6]}"
    gateway.post("/contact", id=keep, name="老客户", weixin=f"handle_{keep}")
    gateway.post("/contact", id=lose, name="无名氏", weixin="")
    _relogin(wbot)
    before = {c.wxid: c.id for c in wbot.bot.contacts()}
    gateway.post("/contact-reid", id=keep, newId=keep + "_v2")
    gateway.post("/contact-reid", id=lose, newId=lose + "_v2")
    _relogin(wbot)
    after = {c.wxid: c.id for c in wbot.bot.contacts()}
    assert keep + "_v2" not in after and after[keep] == before[keep]  # matched on 微信号
    assert lose + "_v2" in after  # no stable field: a new person (documented)
    identities = {i.puppet_id: (i.canonical_wxid, i.matched_by) for i in wbot.rows(WechatIdentity)}
    assert identities[keep + "_v2"] == (keep, "weixin")
    # inbound from the new id lands on the old contact; sends go to the new id
    gateway.post("/say", **{"from": keep + "_v2", "text": "我换手机了"})
    rows = wait_for(lambda: [m for m in wbot.rows(InboundMessage) if m.text == "我换手机了"], what="message")
    assert rows[0].contact_id == before[keep]
    plan(wbot.database, [before[keep]], text="欢迎回来", step="reid")
    assert wbot.deliver() == 1
    assert [r["to"] for r in wbot.sent(kind="text")][-1] == keep + "_v2"


def test_wrong_token_is_one_line(gateway: Gateway, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "project", account_toml(gateway))
    os.environ["SOPBOT_TOKEN_MAIN"] = "not-the-token"
    transport = WechatyTransport(settings.accounts[0], settings, FrozenClock(T0))
    with sqlite_database(tmp_path) as db, pytest.raises(ConnectError) as caught:
        TestBot(settings, db, FrozenClock(T0), transport=transport).start()  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"account main: the gateway at {gateway.endpoint} refused the token in SOPBOT_TOKEN_MAIN (wrong token?)"
    )


def test_two_accounts_on_two_gateways(gateway: Gateway, own_gateway: Gateway, tmp_path: Path) -> None:
    from bot.daemon import Daemon
    from tests.test_transport_contract import LoopThread

    text = account_toml(gateway, "main") + account_toml(own_gateway, "shop2")
    settings: Settings = make_settings(tmp_path / "project", text)
    os.environ["SOPBOT_TOKEN_MAIN"], os.environ["SOPBOT_TOKEN_SHOP2"] = gateway.token, own_gateway.token
    loop = LoopThread()
    with sqlite_database(tmp_path) as db:
        daemon = Daemon(settings, database=db, clock=FrozenClock(T0), autoplay=False, background=False)
        loop.run(daemon.start())
        try:
            for runtime in daemon.accounts.values():  # the logins' contact syncs
                loop.run(runtime.pipeline.drained())
            with db.session(read_only=True) as s:
                statuses = {a.id: a.status for a in s.execute(select(Account)).scalars()}
                per_account = {
                    a: {c.wxid for c in s.execute(select(Contact).where(Contact.account_id == a)).scalars()}
                    for a in ("main", "shop2")
                }
            assert statuses == {"main": "online", "shop2": "online"}
            assert "wxid_zhangwei" in per_account["main"] and "wxid_zhangwei" in per_account["shop2"]
            since_main = gateway.health()["seq"]
            main, shop2 = daemon.accounts["main"].transport, daemon.accounts["shop2"].transport
            loop.run(main.send(_contact("wxid_zhangwei"), Text("来自主号")))
            loop.run(shop2.send(_contact("wxid_zhangwei"), Text("来自二号")))
            assert [r["text"] for r in gateway.sent(since=since_main, kind="text")] == ["来自主号"]
            assert [r["text"] for r in own_gateway.sent(kind="text")] == ["来自二号"]
            own_gateway.post("/say", **{"from": "wxid_lina", "text": "二号收到"})
            wait_for(lambda: _inbound_accounts(db) == {"shop2"}, what="inbound on shop2 only")
        finally:
            loop.run(daemon.stop())
            loop.close()


# -- helpers ------------------------------------------------------------------------------


def _contact(wxid: str) -> Any:
    from bot.wechat.types import Target

    return Target.contact(wxid)


def _inbound_accounts(db: Database) -> set[str]:
    with db.session(read_only=True) as s:
        return {m.account_id for m in s.execute(select(InboundMessage)).scalars()}


def _relogin(wbot: WechatyBot) -> None:
    """The WeChat account logs out and in again on the same connection: a fresh login sync."""
    logins = _count_logins(wbot)
    wbot.gateway.post("/logout")
    wbot.gateway.post("/login")
    wait_for(lambda: _count_logins(wbot) > logins, what="a new login")
    wait_for(lambda: wbot.transport.online, what="online")
    wbot.bot.settle()  # the login's contact sync


def _count_logins(wbot: WechatyBot) -> int:
    return wbot.transport.login_count


def test_the_gateway_answers_health_pings_during_a_large_fan_out(
    own_gateway: Gateway, tmp_path: Path
) -> None:
    """The event loop never waits on the database: while one SOP step fans out to 30,000
    contacts and the delivery worker drains the outbox, the transport's health pings (one a
    second, each given a second to be answered) keep being answered."""
    import asyncio
    import textwrap

    from sqlalchemy import insert

    from bot.sop.authoring.loader import load_sop_set
    from bot.sop.runtime.ledger import RunDecision
    from bot.sop.runtime.occurrences import execute

    sop_dir = tmp_path / "fanout"
    (sop_dir / "sop").mkdir(parents=True)
    (sop_dir / "templates" / "default").mkdir(parents=True)
    (sop_dir / "sop" / "blast.yaml").write_text(
        textwrap.dedent("""
            id: blast
            name: 大促
            steps:
              - id: all
                daily: "10:00"
                template: blast
        """),
        encoding="utf-8",
    )
    (sop_dir / "templates" / "default" / "blast.j2").write_text(
        "{{ contact.display_name }}，双12 会员价", encoding="utf-8"
    )
    with sqlite_database(tmp_path) as db:
        wbot = WechatyBot(own_gateway, tmp_path, db, health_interval=1.0).start()
        try:
            with db.session() as s:
                s.execute(
                    insert(Contact),
                    [{"account_id": "main", "wxid": f"wxid_fan_{n}", "name": f"客户{n}", "is_friend": True,
                      "tier": "basic", "blocked": False, "opted_out": False} for n in range(30_000)],
                )  # fmt: skip
            sopset = load_sop_set(sop_dir / "sop", sop_dir / "templates", wbot.bot.settings.tz)
            sop = sopset.sops["blast"]
            transport = wbot.transport
            answered, missed, reconnects = (
                transport.answered_pings,
                transport.missed_pings,
                transport.reconnects,
            )

            async def fan_out_while_draining() -> tuple[int, int]:
                work = asyncio.ensure_future(
                    asyncio.to_thread(execute, db, sopset, sop, sop.steps[0], T0, RunDecision.RAN, T0)
                )
                steps = 0
                while not work.done():
                    await wbot.bot.worker.step("main")  # sends to the gateway (unknown ids: skipped)
                    steps += 1
                    await asyncio.sleep(0)
                return (await work).planned, steps

            planned, steps = wbot.bot.run(fan_out_while_draining())
            assert planned >= 30_000 and steps > 0
            assert transport.missed_pings == missed and transport.reconnects == reconnects
            assert transport.answered_pings - answered >= 2, "no ping was answered during the fan-out"
            assert transport.online
        finally:
            wbot.close()
