"""Acceptance: a scripted person climbs basic → prospect → customer → repeat → koc in the
sandbox through real signals, and `sopbot contact` shows every step with its evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FrozenClock
from bot.signals.service import SignalsUpkeep
from bot.wechat.types import ContactInfo
from tests.signals_kit import HEADER, EventTap, cli, running_bot
from tests.support import TestBot
from tests.test_webhook import SECRET, post

QIAO, YE = "wxid_new_qiao", "wxid_new_ye"


@pytest.fixture
def hookbot(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestBot]:
    monkeypatch.setenv("SOPBOT_WEBHOOK_SECRET", SECRET.decode())
    with running_bot(tmp_path / "project", clock, "[webhook]\nenabled = true\nport = 0\n") as bot:
        yield bot


def upkeep(bot: TestBot) -> SignalsUpkeep:
    return bot.daemon.services.upkeep


def webhook_order(bot: TestBot, order_id: str, wxid: str, amount: str, at: str) -> None:
    body = {"order_id": order_id, "wxid": wxid, "amount": amount, "ordered_at": at,
            "items": [{"name": "修护精华", "category": "护肤", "qty": 1}]}  # fmt: skip
    assert post(bot, json.dumps(body, ensure_ascii=False).encode())[0] == 200
    bot.settle()  # the reactions to the order (tag mirror, lifecycle steps)


def test_a_person_climbs_the_whole_ladder_and_contact_shows_every_step(
    hookbot: TestBot, clock: FrozenClock, tmp_path: Path
) -> None:
    bot = hookbot
    tap = EventTap(bot)
    settings = bot.settings

    bot.request_friend(QIAO, "乔悦", "你好，小红书上看到你们家的面霜")
    assert bot.contact(QIAO).tier == "basic"

    clock.advance(timedelta(hours=1))
    bot.say(QIAO, "这款面霜多少钱？")
    assert bot.contact(QIAO).tier == "prospect"

    clock.advance(timedelta(days=1))
    csv = tmp_path / "orders.csv"
    local = clock.now().astimezone(settings.tz).strftime("%Y-%m-%d %H:%M:%S")
    csv.write_bytes((HEADER + f"C2001,{QIAO},,299.00,已付款,{local},修护面霜,护肤,1,否,是,\n").encode("gbk"))
    code, output = cli(settings, "import-orders", str(csv))
    assert code == 0, output
    assert bot.run(upkeep(bot).relay()) > 0  # the daemon publishes what the import recorded
    bot.settle()
    assert bot.contact(QIAO).tier == "customer"

    clock.advance(timedelta(days=10))
    webhook_order(bot, "W3001", QIAO, "459.00", clock.now().isoformat())
    assert bot.contact(QIAO).tier == "repeat"

    clock.advance(timedelta(days=1))
    bot.invite("10001@chatroom", [ContactInfo(YE, "叶子", is_friend=False)], QIAO)
    assert bot.contact(QIAO).tier == "repeat"  # an invite alone is not a success
    clock.advance(timedelta(days=2))
    webhook_order(bot, "W3002", YE, "199.00", clock.now().isoformat())
    qiao = bot.contact(QIAO)
    assert qiao.tier == "koc"

    tiers = [detail for kind, detail in tap.kinds(qiao.id) if kind == "tier_changed"]
    assert tiers == ["prospect", "customer", "repeat", "koc"]
    assert ("referral_converted", "room_invite") in tap.kinds(qiao.id)
    assert "品牌KOC" in bot.transport.contact(QIAO).tags  # mirrored to WeChat

    code, shown = cli(settings, "contact", "乔悦")
    assert code == 0, shown
    for step in (
        "基础用户 → 未购会员  消息「这款面霜多少钱？」",
        "未购会员 → 已购会员  订单 C2001",
        "已购会员 → 复购会员  订单 W3001",
        "复购会员 → 品牌KOC  订单 W3002",
        "推荐 1 人成交",
        "带来 叶子  via room_invite",
        "成交 W3002",
        "购买意向",
        "「这款面霜多少钱？」",
        "C2001",
        "首单",
        "referral_converted",
    ):
        assert step in shown, step

    code, listing = cli(settings, "contacts", "--where", "tier >= repeat and tag:复购客户")
    assert code == 0 and "乔悦" in listing and "叶子" not in listing
    code, listing = cli(settings, "contacts", "--tier", "已购会员")
    assert code == 0 and "叶子" in listing


def test_contacts_where_points_at_the_bad_token(hookbot: TestBot) -> None:
    code, output = cli(hookbot.settings, "contacts", "--where", "tier >= costumer")
    assert code == 2 and "column" in output and "customer" in output
    assert cli(hookbot.settings, "contact", "没有这个人")[0] == 1
