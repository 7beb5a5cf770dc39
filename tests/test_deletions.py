"""Friendships begin and end on record: every deletion (删粉) is seen once, however it is
seen (a refused send, a contact sync, the transport's own event), and every new friend
carries where they came from (request, referral, group, sync)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.signals import referrals
from bot.store import Database
from bot.store.models import Contact, ContactEvent, OutboxMessage
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.types import ContactInfo, FriendRemoved
from tests.signals_kit import EventTap, make_project
from tests.support import T0, TestBot, outbox_rows, plan, sqlite_database

REPO = Path(__file__).resolve().parents[1]
CHEN, LUO, LIN = "wxid_chen_jing", "wxid_luo_qian", "wxid_lin_xiaoyu"  # 罗倩 is in no group


@pytest.fixture
def bot(tmp_path: Path, clock: FrozenClock) -> Iterator[TestBot]:
    """The testbot on a sandbox whose journal keeps its friendships across logins (as WeChat
    does), so a contact sync may conclude that a missing friend is gone."""
    settings = make_project(tmp_path / "project")
    transport = SandboxTransport(
        "main", clock=clock, seed=settings.sandbox.seed, journal=tmp_path / "j.jsonl"
    )
    with sqlite_database(tmp_path) as database:
        testbot = TestBot(settings, database, clock, transport).start()
        try:
            yield testbot
        finally:
            testbot.close()


def relogin(bot: TestBot) -> None:
    """The account goes offline and logs in again: a full contact sync."""
    handler = bot.daemon.accounts["main"].pipeline.submit
    bot.run(bot.transport.stop())
    bot.run(bot.transport.start(handler))
    bot.settle()


def friend_events(bot: TestBot, wxid: str) -> list[tuple[str, str | None]]:
    contact_id = bot.contact(wxid).id
    with bot.database.session(read_only=True) as s:
        rows = s.execute(
            select(ContactEvent.kind, ContactEvent.detail)
            .where(
                ContactEvent.contact_id == contact_id,
                ContactEvent.kind.in_(["friend_added", "friend_deleted"]),
            )
            .order_by(ContactEvent.id)
        ).all()
    return [(kind, detail) for kind, detail in rows]


def flags(bot: TestBot, wxid: str) -> tuple[bool, bool]:
    """(is_friend, blocked)"""
    with bot.database.session(read_only=True) as s:
        contact = s.execute(select(Contact).where(Contact.wxid == wxid)).scalar_one()
        return contact.is_friend, contact.blocked


# -- deletions ------------------------------------------------------------------------------


def test_a_refused_send_records_one_deletion(bot: TestBot) -> None:
    tap = EventTap(bot)
    bot.run(bot.transport.unfriend(CHEN, tell=False))  # WeChat keeps quiet; the send will tell
    chen = bot.contact(CHEN).id
    plan(bot.database, [chen])
    plan(bot.database, [chen], sop="weekly", occurrence="2026-11-24T10:30")
    assert bot.deliver() == []
    assert flags(bot, CHEN) == (False, True)
    assert friend_events(bot, CHEN) == [("friend_added", "sync"), ("friend_deleted", "send_refused")]
    assert ("friend_deleted", "send_refused") in tap.kinds(chen)  # published after the commit
    reasons = [r.reason for r in outbox_rows(bot.database)]
    assert "wxid_chen_jing is gone or has blocked the account" in reasons[0]
    assert reasons[1] == "contact deleted or blocked the account"  # not even tried
    # the same deletion seen again, at the next sync: nothing new
    relogin(bot)
    assert friend_events(bot, CHEN) == [("friend_added", "sync"), ("friend_deleted", "send_refused")]


def test_a_friend_missing_from_the_contact_list_is_a_deletion_once(bot: TestBot) -> None:
    bot.clock.advance(timedelta(hours=2))
    bot.run(bot.transport.unfriend(CHEN, tell=False))  # still listed (and in a group), as no friend
    del bot.transport._contacts[LUO]  # gone from the list altogether
    relogin(bot)
    for wxid in (CHEN, LUO):
        assert flags(bot, wxid) == (False, True)
        assert friend_events(bot, wxid) == [("friend_added", "sync"), ("friend_deleted", "sync_missing")]
    with bot.database.session(read_only=True) as s:
        at = s.execute(select(ContactEvent.at).where(ContactEvent.detail == "sync_missing")).scalars().all()
    assert at == [T0 + timedelta(hours=2)] * 2  # when it was seen
    # the group member view of 陈静 (who is still in the group) makes no friend of her
    relogin(bot)
    assert flags(bot, CHEN) == (False, True)
    assert [k for k, _ in friend_events(bot, CHEN)].count("friend_deleted") == 1
    assert flags(bot, LIN) == (True, False)  # the others stay friends


def test_a_contact_list_that_lost_too_many_friends_ends_no_friendship(
    bot: TestBot, caplog: pytest.LogCaptureFixture
) -> None:
    people = [c.wxid for c in bot.contacts()][:12]  # of 20: a gateway still loading its list
    for wxid in people:
        bot.run(bot.transport.unfriend(wxid, tell=False))
    relogin(bot)
    assert all(flags(bot, wxid) == (True, False) for wxid in people)
    assert "the contact list lacks 12 of 20 friends; taken as incomplete" in caplog.text


def test_a_sandbox_without_a_journal_forgets_friends_and_so_proves_no_deletion(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_project(tmp_path / "project")
    with sqlite_database(tmp_path) as database:
        first = TestBot(settings, database, clock).start()
        try:
            first.request_friend("wxid_new_qiao", "乔悦", "你好")
        finally:
            first.close()
        again = TestBot(settings, database, clock).start()  # a fresh sandbox: 乔悦 is not in it
        try:
            assert flags(again, "wxid_new_qiao") == (True, False)
            assert friend_events(again, "wxid_new_qiao") == [("friend_added", "request")]
        finally:
            again.close()


def test_the_transport_s_own_event_records_the_deletion_once(bot: TestBot) -> None:
    bot.clock.advance(timedelta(minutes=5))
    bot.run(bot.transport.unfriend(CHEN, tell=True))  # FriendRemoved
    bot.settle()
    assert flags(bot, CHEN) == (False, True)
    assert friend_events(bot, CHEN) == [("friend_added", "sync"), ("friend_deleted", "transport")]
    plan(bot.database, [bot.contact(CHEN).id])  # not sent: the bot knows
    assert bot.deliver() == []
    removed = FriendRemoved("main", bot.transport.contact(CHEN), bot.clock.now())
    bot.run(bot.transport._emit(removed))  # told twice
    bot.settle()
    relogin(bot)
    assert [k for k, _ in friend_events(bot, CHEN)].count("friend_deleted") == 1


def test_a_deleted_contact_who_comes_back_is_a_new_friend(bot: TestBot) -> None:
    bot.run(bot.transport.unfriend(CHEN, tell=True))
    bot.settle()
    bot.clock.advance(timedelta(days=1))
    bot.request_friend(CHEN, "陈静", "不好意思之前手滑删了")
    assert flags(bot, CHEN) == (True, False)
    with bot.database.session(read_only=True) as s:
        assert s.get(Contact, bot.contact(CHEN).id).friend_added_at == T0 + timedelta(days=1)
    assert friend_events(bot, CHEN) == [
        ("friend_added", "sync"),
        ("friend_deleted", "transport"),
        ("friend_added", "request"),
    ]
    plan(bot.database, [bot.contact(CHEN).id], at=bot.clock.now())
    assert [r.target.wxid for r in bot.deliver()] == [CHEN]  # reachable again
    bot.run(bot.transport.unfriend(CHEN, tell=False))  # and gone again: a second deletion
    plan(bot.database, [bot.contact(CHEN).id], sop="weekly", at=bot.clock.now())
    bot.deliver()
    assert friend_events(bot, CHEN)[-1] == ("friend_deleted", "send_refused")


# -- additions and their source ---------------------------------------------------------------


def test_friends_found_at_the_first_sync_are_the_baseline_and_greeted_by_nobody(
    tmp_path: Path, clock: FrozenClock
) -> None:
    settings = make_project(tmp_path / "project")
    for name in ("welcome.yaml", "catalog.yaml"):
        shutil.copy(REPO / "sop" / name, settings.sop_path / name)
    shutil.copytree(REPO / "templates", settings.templates_path, dirs_exist_ok=True)
    with sqlite_database(tmp_path) as database:
        bot = TestBot(settings, database, clock).start()
        try:
            with database.session(read_only=True) as s:
                added = s.execute(
                    select(ContactEvent.detail, ContactEvent.ref).where(ContactEvent.kind == "friend_added")
                ).all()
                assert added == [("sync", "initial")] * 20  # one per friend: where the assets start
                assert s.execute(select(OutboxMessage)).first() is None  # no welcome for them
            bot.request_friend("wxid_new_qiao", "乔悦", "你好")
            with database.session(read_only=True) as s:
                welcome = s.execute(select(OutboxMessage.sop_id)).scalars().all()
            assert welcome == ["welcome"]  # a new friend is greeted
        finally:
            bot.close()


def test_a_new_friend_carries_its_source(bot: TestBot) -> None:
    # request: the greeting is kept as the event's ref
    bot.request_friend("wxid_new_qiao", "乔悦", "你好，小红书上看到你们家的面霜")
    with bot.database.session(read_only=True) as s:
        event = s.execute(
            select(ContactEvent).where(ContactEvent.contact_id == bot.contact("wxid_new_qiao").id)
        ).scalar_one()
        assert (event.kind, event.detail, event.ref) == (
            "friend_added",
            "request",
            "hello:你好，小红书上看到你们家的面霜",
        )
        code = referrals.code_for(s, bot.contact("wxid_wang_fang").id, T0)
    # referral: the greeting carries someone's referral code
    bot.request_friend("wxid_new_fang", "方琳", f"王芳推荐的，推荐码 {code}")
    assert friend_events(bot, "wxid_new_fang") == [("friend_added", "referral")]
    # a code nobody owns is no referral
    bot.request_friend("wxid_new_tao", "陶然", "推荐码 ZZZZZZ")
    assert friend_events(bot, "wxid_new_tao") == [("friend_added", "request")]
    # group: met in a group first, then a friend
    bot.invite("10001@chatroom", [ContactInfo("wxid_new_ye", "叶子", is_friend=False)], "wxid_lin_xiaoyu")
    assert flags(bot, "wxid_new_ye") == (False, False)
    relogin(bot)  # a room member view makes no friend
    assert flags(bot, "wxid_new_ye") == (False, False)
    bot.request_friend("wxid_new_ye", "叶子", "群里看到你，加个好友～")
    assert friend_events(bot, "wxid_new_ye") == [("friend_added", "group")]
    # a friend already: a transport telling twice adds nobody
    bot.request_friend("wxid_new_qiao", "乔悦", "你好")
    assert friend_events(bot, "wxid_new_qiao") == [("friend_added", "request")]


def test_a_friend_added_while_the_bot_was_away_is_found_by_the_next_sync(bot: TestBot) -> None:
    bot.transport.add_contact(ContactInfo("wxid_new_bai", "白露"))  # befriended on the phone
    relogin(bot)
    assert flags(bot, "wxid_new_bai") == (True, False)
    with bot.database.session(read_only=True) as s:
        event = s.execute(
            select(ContactEvent).where(ContactEvent.contact_id == bot.contact("wxid_new_bai").id)
        ).scalar_one()
    assert (event.kind, event.detail, event.ref) == ("friend_added", "sync", "initial")


# -- the store, on both backends --------------------------------------------------------------


def test_friendships_end_once_and_only_a_new_friendship_undoes_a_deletion(database: Database) -> None:
    from bot.events import AddSource, DeletionSeen
    from bot.recorder import writes as w
    from bot.store import directory as d
    from bot.store import friendships
    from bot.store.eventlog import EventLog

    with database.session() as s:
        d.ensure_account(s, "main", name="main", transport="sandbox", now=T0)
        fang = w.upsert_contact(s, "main", ContactInfo("wxid_fang", "方琳"), T0)
        ye = w.upsert_contact(s, "main", ContactInfo("wxid_ye", "叶子", is_friend=False), T0)
    for attempt in range(2):  # a refused send and a sync at the same moment: one deletion
        with database.session() as s:
            events = EventLog(s)
            ended = friendships.unfriend(s, events, [fang, ye], DeletionSeen.SYNC_MISSING, T0)
            events.flush()
        assert ended == ([fang] if attempt == 0 else [])
    with database.session() as s:
        # a view that says "friend" (a message, a sync) does not undo the deletion
        w.upsert_contact(s, "main", ContactInfo("wxid_fang", "方琳 Fang"), T0)
        known = w.known_contacts(s, "main")
        w.sync_contacts(s, "main", [ContactInfo("wxid_fang", "方琳")], known, T0, first_tier="basic")
        assert (s.get(Contact, fang).is_friend, s.get(Contact, fang).blocked) == (False, True)
        events = EventLog(s)
        friendships.befriend(s, events, fang, AddSource.REQUEST, T0, ref="hello:你好")
        events.flush()
    with database.session(read_only=True) as s:
        assert (s.get(Contact, fang).is_friend, s.get(Contact, fang).blocked) == (True, False)
        kinds = s.execute(
            select(ContactEvent.kind, ContactEvent.detail)
            .where(ContactEvent.contact_id == fang)
            .order_by(ContactEvent.id)
        ).all()
    assert [tuple(k) for k in kinds] == [("friend_deleted", "sync_missing"), ("friend_added", "request")]
