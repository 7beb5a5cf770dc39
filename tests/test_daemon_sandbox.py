"""The daemon on the sandbox WeChat: what arrives is stored, as a conversation reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.clock import FrozenClock
from bot.store.models import Account, ContactEvent, InboundMessage, Room, RoomMember
from bot.wechat.types import ContactInfo
from tests.support import T0, TestBot, make_settings, sqlite_database


def test_login_syncs_the_demo_population(testbot: TestBot) -> None:
    contacts = testbot.contacts()
    assert len(contacts) == 20
    tiers = {
        tier: sum(1 for c in contacts if c.tier == tier)
        for tier in ("basic", "prospect", "customer", "repeat", "koc")
    }
    assert tiers == {"basic": 4, "prospect": 4, "customer": 4, "repeat": 4, "koc": 4}
    with testbot.database.session(read_only=True) as s:
        account = s.get(Account, "main")
        assert (account.status, account.self_name, account.last_login_at) == ("online", "小美 | 品牌导购", T0)
        topics = sorted(r.topic for r in s.execute(select(Room)).scalars())
        assert topics == [
            "【分销群】小美推广大使",
            "【基础客户群】小美好物分享1群",
            "【精英会员群】小美VIP会员专享",
        ]
        assert len(s.execute(select(RoomMember)).scalars().all()) == 9 + 8 + 4


def test_a_chat_line_is_stored_with_its_room(testbot: TestBot) -> None:
    testbot.clock.advance(timedelta(minutes=5))
    testbot.say("wxid_wang_fang", "上新了吗？", room="10002@chatroom")
    testbot.say("wxid_zhou_hao", "在吗？")
    with testbot.database.session(read_only=True) as s:
        rows = s.execute(select(InboundMessage).order_by(InboundMessage.id)).scalars().all()
        assert [(m.text, m.room_id is not None) for m in rows] == [("上新了吗？", True), ("在吗？", False)]
    assert testbot.contact("wxid_wang_fang").last_message_at == T0 + timedelta(minutes=5)


def test_a_friend_request_is_accepted_and_the_new_friend_recorded(testbot: TestBot) -> None:
    testbot.request_friend("wxid_new_qiao", "乔悦", "小红书上看到你们家的面霜")
    newcomer = testbot.contact("wxid_new_qiao")
    assert newcomer.is_friend and newcomer.tier == "basic"
    with testbot.database.session(read_only=True) as s:
        events = s.execute(select(ContactEvent).where(ContactEvent.contact_id == newcomer.id)).scalars().all()
        assert [(e.kind, e.detail, e.ref) for e in events] == [
            ("friend_added", "request", "hello:小红书上看到你们家的面霜")  # the source; the greeting
        ]


def test_a_room_join_remembers_who_invited_whom(testbot: TestBot) -> None:
    testbot.invite(
        "10001@chatroom", [ContactInfo("wxid_new_fang", "方琳", is_friend=False)], "wxid_wang_fang"
    )
    with testbot.database.session(read_only=True) as s:
        member = s.execute(select(RoomMember).where(RoomMember.member_wxid == "wxid_new_fang")).scalar_one()
        assert (member.inviter_wxid, member.joined_at) == ("wxid_wang_fang", T0)
        event = s.execute(select(ContactEvent).where(ContactEvent.kind == "joined_group")).scalar_one()
        assert (event.kind, event.ref) == ("joined_group", "wxid_wang_fang")
    assert testbot.contact("wxid_new_fang").is_friend is False
    # the same join told again (the sandbox replays its script after a restart; a gateway may
    # redeliver): no second joined_group, the first join's time and inviter stay
    testbot.clock.advance(timedelta(hours=1))
    testbot.invite("10001@chatroom", [ContactInfo("wxid_new_fang", "方琳", is_friend=False)], "wxid_zhou_hao")
    with testbot.database.session(read_only=True) as s:
        assert len(s.execute(select(ContactEvent).where(ContactEvent.kind == "joined_group")).all()) == 1
        member = s.execute(select(RoomMember).where(RoomMember.member_wxid == "wxid_new_fang")).scalar_one()
        assert (member.inviter_wxid, member.joined_at) == ("wxid_wang_fang", T0)


def test_autoplay_produces_events(testbot: TestBot) -> None:
    before = len(testbot.transport.sent)
    for _ in range(30):
        testbot.run(testbot.transport._random_event())
    testbot.settle()
    with testbot.database.session(read_only=True) as s:
        assert len(s.execute(select(InboundMessage)).scalars().all()) > 10
    assert len(testbot.transport.sent) == before  # the sandbox alone never makes the bot talk


def test_wechat_tier_tags_follow_the_configured_ladder(tmp_path: Path) -> None:
    """The demo's WeChat tags name the default ladder's tiers; under AIPL they name none,
    so login sync sets no tier the ladder does not have: everyone starts on its first level."""
    settings = make_settings(tmp_path / "p", '[tiers]\nladder = "aipl"\n')
    with sqlite_database(tmp_path) as database:
        bot = TestBot(settings, database, FrozenClock(T0)).start()
        try:
            assert {c.tier for c in bot.contacts()} == {"awareness"}  # AIPL's first level, not "basic"
            assert "品牌KOC" in bot.contact("wxid_wang_fang").tags  # the tag itself is still mirrored
        finally:
            bot.close()
