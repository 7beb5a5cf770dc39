"""Conversation signals end to end: the testbot says things, the rules tag, reply, opt out."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.delivery.outbox import reply_key
from bot.store.models import Contact, ContactEvent, ContactTag, RuleHit, Tag
from bot.wechat.types import MessageReceived
from tests.signals_kit import EventTap, running_bot
from tests.support import TestBot, outbox_rows

LIN = "wxid_lin_xiaoyu"


@pytest.fixture
def sigbot(tmp_path: Path, clock: FrozenClock) -> Iterator[TestBot]:
    with running_bot(tmp_path / "project", clock) as bot:
        yield bot


def tag_rows(bot: TestBot, wxid: str) -> dict[str, ContactTag]:
    with bot.database.session(read_only=True) as session:
        rows = session.execute(
            select(ContactTag, Tag.name)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .join(Contact, Contact.id == ContactTag.contact_id)
            .where(Contact.wxid == wxid)
        ).all()
    return {name: row for row, name in rows}


def test_deal_questions_twice_in_30_days_make_a_promotion_lover(sigbot: TestBot, clock: FrozenClock) -> None:
    sigbot.say(LIN, "有优惠吗？")
    assert "活动喜好型" not in sigbot.contact(LIN).tags
    clock.advance(timedelta(days=3))
    message = sigbot.say(LIN, "会员日打几折呀")
    tag = tag_rows(sigbot, LIN)["活动喜好型"]
    assert tag.source == "rule"
    assert tag.evidence is not None and "会员日打几折呀" in tag.evidence and "第 2 次" in tag.evidence
    assert tag.evidence_ref == f"msg:{message.msg_id}"
    replies = [row for row in outbox_rows(sigbot.database) if row.key.startswith("reply:deal_seeker")]
    assert len(replies) == 1
    assert replies[0].key == reply_key("deal_seeker", "main", message.msg_id)


def test_hits_outside_the_window_do_not_add_up(sigbot: TestBot, clock: FrozenClock) -> None:
    sigbot.say(LIN, "有优惠吗？")
    clock.advance(timedelta(days=31))
    sigbot.say(LIN, "满减还有吗")
    assert "活动喜好型" not in sigbot.contact(LIN).tags


def test_purchase_intent_tags_for_seven_days_and_replies_with_the_link(
    sigbot: TestBot, clock: FrozenClock
) -> None:
    message = sigbot.say(LIN, "这款多少钱？")
    assert tag_rows(sigbot, LIN)["购买意向"].expires_at == message.sent_at + timedelta(days=7)
    [row] = outbox_rows(sigbot.database)
    assert (row.origin, row.category, row.state) == ("reply", "reply", "planned")
    assert row.key == reply_key("purchase_intent", "main", message.msg_id)
    assert row.payload[0]["text"].startswith("林小雨您好")
    assert row.payload[1]["type"] == "link"
    sigbot.say(LIN, "链接发我一下")  # within the 12h cooldown: no second reply
    assert len(outbox_rows(sigbot.database)) == 1
    clock.advance(timedelta(days=8))
    sigbot.publish(sigbot.daemon.services.upkeep.engine.sweep())
    assert "购买意向" not in sigbot.contact(LIN).tags


def test_new_arrival_words_do_not_misfire_on_happy_new_year(sigbot: TestBot) -> None:
    sigbot.say(LIN, "马上新年了，提前祝你新年快乐")
    assert "新品关注型" not in sigbot.contact(LIN).tags
    sigbot.say(LIN, "什么时候上新呀")
    assert "新品关注型" in sigbot.contact(LIN).tags


def test_opt_out_and_back_in(sigbot: TestBot) -> None:
    tap = EventTap(sigbot)
    sigbot.say(LIN, "我不想退订")  # a sentence, not the command
    assert not sigbot.contact(LIN).opted_out
    sigbot.say(LIN, "TD")
    row = sigbot.contact(LIN)
    assert row.opted_out and "免打扰" in row.tags
    sigbot.say(LIN, "订阅")
    row = sigbot.contact(LIN)
    assert not row.opted_out and "免打扰" not in row.tags
    kinds = [kind for kind, _ in tap.kinds(row.id)]
    assert kinds.index("opted_out") < kinds.index("opted_in")
    assert ("tag_added", "免打扰") in tap.kinds(row.id) and ("tag_removed", "免打扰") in tap.kinds(row.id)
    confirmations = [r.key.split(":")[1] for r in outbox_rows(sigbot.database)]
    assert confirmations == ["opt_out", "opt_in"]
    with sigbot.database.session(read_only=True) as session:
        stored = (
            session.execute(select(ContactEvent.kind).where(ContactEvent.contact_id == row.id))
            .scalars()
            .all()
        )
    assert "opted_out" in stored and "opted_in" in stored


def test_a_redelivered_message_counts_once(sigbot: TestBot) -> None:
    message = sigbot.say(LIN, "有优惠吗？")
    sigbot.run(sigbot.transport._emit(MessageReceived("main", message)))
    with sigbot.database.session(read_only=True) as session:
        hits = session.execute(select(RuleHit).where(RuleHit.rule_id == "deal_seeker")).scalars().all()
    assert len(hits) == 1
    assert "活动喜好型" not in sigbot.contact(LIN).tags


def test_a_group_reply_goes_to_the_group_and_mentions_the_asker(sigbot: TestBot) -> None:
    message = sigbot.say("wxid_guo_mei", "这周会员日有什么活动", room="10002@chatroom")
    rows = {r.key.split(":")[1]: r for r in outbox_rows(sigbot.database)}
    member_day = rows["vip_member_day"]
    assert member_day.room_id is not None and member_day.contact_id is None
    assert member_day.payload[0]["mentions"] == ["wxid_guo_mei"]
    assert member_day.key == reply_key("vip_member_day", "main", message.msg_id)
    # the same words in the basic group: no VIP answer
    sigbot.say("wxid_lin_xiaoyu", "会员日是哪天", room="10001@chatroom")
    assert sum(1 for r in outbox_rows(sigbot.database) if r.key.startswith("reply:vip_member_day")) == 1


def test_talking_makes_a_basic_contact_a_prospect_and_mirrors_the_tier(sigbot: TestBot) -> None:
    tap = EventTap(sigbot)
    sigbot.say(LIN, "在吗？")
    row = sigbot.contact(LIN)
    assert row.tier == "prospect"
    assert ("tier_changed", "prospect") in tap.kinds(row.id)
    assert "未购会员" in sigbot.transport.contact(LIN).tags


def test_a_referral_code_in_a_friend_request_converts_when_the_newcomer_buys(sigbot: TestBot) -> None:
    from bot.orders.model import OrderIn
    from bot.signals import referrals

    wang = sigbot.contact("wxid_wang_fang")
    with sigbot.database.session() as session:
        code = referrals.code_for(session, wang.id, sigbot.clock.now())
    tap = EventTap(sigbot)
    sigbot.request_friend("wxid_new_fang", "方琳", f"王芳推荐我加你的～ 推荐码：{code.lower()}")
    order = OrderIn.model_validate(
        {"order_id": "R1", "wxid": "wxid_new_fang", "amount": 128, "ordered_at": sigbot.clock.now()}
    )
    report = sigbot.daemon.services.upkeep.engine.ingest_orders([order], source="webhook")
    sigbot.publish(report.events)
    assert ("referral_converted", "code") in tap.kinds(wang.id)


def test_a_reply_older_than_its_maximum_age_is_skipped_after_a_restart(tmp_path: Path, clock: FrozenClock) -> None:
    """A reply planned before a stop still goes out after a restart within `reply_max_age`
    (30 minutes by default), and is skipped, with the reason, after it."""
    from bot.config.settings import load_settings
    from tests.support import sqlite_database

    folder = tmp_path / "project"
    with running_bot(folder, clock) as bot:
        bot.say(LIN, "这款多少钱？")  # planned, then the daemon stops before sending it
        bot.say("wxid_zhou_hao", "这款多少钱？")
    settings = load_settings(folder / "settings.toml")
    with sqlite_database(folder) as db:
        clock.advance(timedelta(minutes=20))
        bot = TestBot(settings, db, clock).start()
        try:
            [first] = [r for r in outbox_rows(db) if r.state == "planned"][:1]
            bot.run(bot.worker.step("main"))  # one send (paced): within the 30 minutes
            clock.advance(timedelta(minutes=11))
            bot.deliver(max_wait=timedelta(0))
        finally:
            bot.close()
        states = sorted((r.state, (r.reason or "")[:7]) for r in outbox_rows(db))
    assert states == [("sent", ""), ("skipped", "expired")], states
    assert first.expires_at is not None
