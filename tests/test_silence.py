"""Silence and lapse (沉睡唤醒 / 复购提醒): `silent:` and `no_order:` steps fire once per spell.

A spell of silence begins at the contact's last message (1:1 or in a group; our own sends
never count), or when the friendship began, or when sopbot first saw them; a spell of lapse
at a buyer's latest paid order. The daemon's sweep finds the spells that reached a step's
length, and the run ledger names each spell, so no sweep, restart or second daemon sends a
spell's message twice, and the next spell fires again.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text, update

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.events import AddSource, DeletionSeen
from bot.recorder import writes
from bot.sop.authoring.check import check_all, load_checked
from bot.sop.authoring.loader import SopSet
from bot.sop.runtime.occurrences import LIFECYCLE_LOOKBACK, ON_TIME
from bot.sop.runtime.silence import pending_spells, run_spell_step, spell_occurrence, spells_query
from bot.sop.views.plan import plan, render_plan
from bot.sop.views.preview import preview
from bot.store import Database, friendships
from bot.store import directory as d
from bot.store.eventlog import EventLog
from bot.store.migrate import upgrade
from bot.store.models import Contact, Order, OutboxMessage, SopRun
from bot.wechat.types import ContactInfo, Message, MessageKind, Text
from tests.sop_support import BASIC_TEMPLATES, NOW, project, write_files
from tests.support import TestBot, make_settings
from tests.test_sop_runtime import START, SopBot

SHANGHAI = ZoneInfo("Asia/Shanghai")

WINBACK = """
    id: winback
    name: 沉睡唤醒
    category: lifecycle
    on_missed: catch_up
    grace: 1d
    steps:
      - {id: d14, name: 14天问候, silent: 14d, at: "19:30", template: quiet14}
      - {id: d30, name: 30天福利, silent: 30d, at: "11:00", template: quiet30}
      - {id: d60, name: 60天告别, silent: 60d, at: "20:00", template: quiet60}
"""
REPURCHASE = """
    id: repurchase
    name: 复购提醒
    category: lifecycle
    on_missed: catch_up
    grace: 1d
    steps:
      - {id: lapse30, no_order: 30d, at: "10:30", template: lapse}
      - {id: koc30, no_order: 30d, at: "10:30", template: lapse, audience: {tiers: [品牌KOC]}}
"""
TEMPLATES = {
    "templates/default/quiet14.j2": "{{ contact.display_name }}，好久没聊啦～",
    "templates/default/quiet30.j2": "{{ contact.display_name }}，给老朋友的小心意🎁",
    "templates/default/quiet60.j2": "{{ contact.display_name }}，不想收到可以回复「退订」",
    "templates/default/lapse.j2": (
        "{{ contact.display_name }}，上次下单{% if contact.last_order %}"
        "{{ contact.last_order.days_ago }}天{% endif %}了，回购享老客价"
    ),
}
FILES = {"sop/winback.yaml": WINBACK, "sop/repurchase.yaml": REPURCHASE, **TEMPLATES}


def local(day: date, at: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(at), SHANGHAI)


# ------------------------------------------------------------------ the daemon (sandbox)


@pytest.fixture
def sopbot(tmp_path: Path) -> Iterator[SopBot]:
    """The daemon on the sandbox WeChat (its friends synced at START, Monday 09:00) with the
    win-back and repurchase SOPs above; restartable on the same SQLite file."""
    write_files(tmp_path / "project", FILES)
    bot = SopBot(tmp_path, FrozenClock(START)).start()
    try:
        yield bot
    finally:
        bot.stop()
        bot._db_cm.__exit__(None, None, None)


def contact_id(sopbot: SopBot, wxid: str) -> int:
    assert sopbot.bot is not None
    return sopbot.bot.contact(wxid).id


def rows_for(sopbot: SopBot, cid: int, step: str | None = None) -> list[OutboxMessage]:
    return [r for r in sopbot.outbox() if r.contact_id == cid and (step is None or r.step_id == step)]


def at(sopbot: SopBot, moment: datetime) -> None:
    """Move the clock and run what the daemon runs every `lifecycle_interval`."""
    sopbot.clock.set(moment)
    sopbot.tick()


def test_a_silence_step_fires_once_per_spell_whatever_the_sweeps_and_restarts(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    wang = contact_id(sopbot, "wxid_wang_fang")
    sopbot.clock.set(START + timedelta(hours=1))  # Monday 10:00
    sopbot.bot.say("wxid_wang_fang", "这款围巾还有货吗")
    spoke = START + timedelta(hours=1)
    friends = [c for c in sopbot.bot.contacts() if c.is_friend]

    at(sopbot, local(date(2026, 12, 7), "19:29"))  # the 14th day, a minute early
    assert [r for r in sopbot.outbox() if r.step_id == "d14"] == []
    at(sopbot, local(date(2026, 12, 7), "19:30"))
    (row,) = rows_for(sopbot, wang, "d14")
    assert row.occurrence == spell_occurrence("silent", wang, spoke) == f"silent:{wang}:20261123T020000"
    assert row.payload[0]["text"] == "王芳，好久没聊啦～"
    # every friend who never wrote counts from when sopbot first saw them (the sync at START)
    assert len([r for r in sopbot.outbox() if r.step_id == "d14"]) == len(friends)
    li = contact_id(sopbot, "wxid_li_na")
    assert [r.occurrence for r in rows_for(sopbot, li)] == [spell_occurrence("silent", li, START)]

    for _ in range(3):
        sopbot.tick()
    at(sopbot, local(date(2026, 12, 7), "21:00"))
    sopbot.restart()  # a new daemon: it knows the spell from the run ledger alone
    at(sopbot, local(date(2026, 12, 8), "10:00"))
    assert len(rows_for(sopbot, wang, "d14")) == 1
    assert len([r for r in sopbot.outbox() if r.step_id == "d14"]) == len(friends)
    sent = sopbot.bot.deliver(max_wait=timedelta(hours=2))
    assert [r.content for r in sent if r.target.wxid == "wxid_wang_fang"] == [Text("王芳，好久没聊啦～")]
    at(sopbot, local(date(2026, 12, 9), "10:00"))
    assert sopbot.bot.deliver() == []
    runs = [r for r in sopbot.runs("winback") if r.occurrence.startswith(f"silent:{wang}:")]
    assert [(r.step_id, r.decision, r.planned) for r in runs] == [("d14", "ran", 1)]


def test_speaking_again_starts_a_new_spell_and_a_group_message_counts(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    wang = contact_id(sopbot, "wxid_wang_fang")
    at(sopbot, local(date(2026, 12, 7), "19:30"))  # silent since the sync at START
    assert len(rows_for(sopbot, wang, "d14")) == 1

    # she speaks in the VIP group on day 20: her silence starts again from there
    sopbot.clock.set(local(date(2026, 12, 13), "15:00"))
    sopbot.bot.say("wxid_wang_fang", "今天的直播几点开始？", room="10002@chatroom")
    assert sopbot.bot.contact("wxid_wang_fang").last_message_at == local(date(2026, 12, 13), "15:00")
    at(sopbot, local(date(2026, 12, 23), "11:00"))  # the old spell's 30th day: that spell is over
    assert rows_for(sopbot, wang, "d30") == []
    at(sopbot, local(date(2026, 12, 27), "19:29"))
    assert len(rows_for(sopbot, wang, "d14")) == 1
    at(sopbot, local(date(2026, 12, 27), "19:30"))  # 14 days after the group message
    first, second = rows_for(sopbot, wang, "d14")
    assert first.occurrence != second.occurrence == f"silent:{wang}:20261213T070000"
    others = [r for r in sopbot.outbox() if r.step_id == "d30" and r.contact_id != wang]
    assert others, "the friends who stayed silent get their 30-day message"


def test_our_own_sends_do_not_end_a_spell_and_a_sequence_fires_each_step_once(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    li = contact_id(sopbot, "wxid_li_na")
    sopbot.clock.set(START + timedelta(hours=2))
    sopbot.bot.say("wxid_li_na", "收到，谢谢")
    spoke = START + timedelta(hours=2)
    for day, moment in (
        (date(2026, 12, 7), "19:30"),
        (date(2026, 12, 23), "11:00"),
        (date(2027, 1, 22), "20:00"),
    ):
        at(sopbot, local(day, moment))
        sopbot.bot.deliver(max_wait=timedelta(hours=2))  # our messages go out...
        assert sopbot.bot.contact("wxid_li_na").last_message_at == spoke  # ...and change nothing
        for _ in range(2):
            sopbot.tick()
    at(sopbot, local(date(2027, 3, 1), "12:00"))
    steps = Counter(r.step_id for r in rows_for(sopbot, li))
    assert steps == {"d14": 1, "d30": 1, "d60": 1}
    texts = [r.content for r in sopbot.bot.sent() if r.target.wxid == "wxid_li_na"]
    assert texts == [
        Text("李娜，好久没聊啦～"),
        Text("李娜，给老朋友的小心意🎁"),
        Text("李娜，不想收到可以回复「退订」"),
    ]
    assert {r.occurrence for r in rows_for(sopbot, li)} == {spell_occurrence("silent", li, spoke)}


def test_opted_out_blocked_and_deleted_friends_are_left_out(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    said_td, blocked, deleted = (contact_id(sopbot, w) for w in ("wxid_li_na", "wxid_xu_na", "wxid_song_yu"))
    with sopbot.database.session() as session:
        session.execute(update(Contact).where(Contact.id == said_td).values(opted_out=True))
        session.execute(update(Contact).where(Contact.id == blocked).values(blocked=True))
        session.execute(update(Contact).where(Contact.id == deleted).values(is_friend=False, blocked=True))
    at(sopbot, local(date(2026, 12, 7), "19:30"))
    planned = {r.contact_id for r in sopbot.outbox() if r.step_id == "d14"}
    assert planned and planned.isdisjoint({said_td, blocked, deleted})
    runs = {r.occurrence.split(":")[1]: r for r in sopbot.runs("winback") if r.step_id == "d14"}
    assert runs[str(said_td)].detail == "left out 1: 1 opted out" and runs[str(said_td)].planned == 0
    assert runs[str(blocked)].detail == "left out 1: 1 blocked"
    assert str(deleted) not in runs  # no friend any more: no spell to decide


def test_no_order_fires_for_buyers_once_per_latest_paid_order(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    wang, li, xu, song, guo = (
        contact_id(sopbot, w)
        for w in ("wxid_wang_fang", "wxid_li_na", "wxid_xu_na", "wxid_song_yu", "wxid_guo_mei")
    )
    paid_at = START + timedelta(hours=3)  # Monday 12:00
    add_orders(
        sopbot.database,
        [
            ("A1", wang, "paid", paid_at),
            ("B1", li, "refunded", paid_at),  # a refund is no order
            ("C1", xu, "cancelled", paid_at),  # nor is a cancelled one
            ("D1", song, "paid", paid_at - timedelta(days=5)),  # an older order: not the latest
            ("D2", song, "paid", paid_at),
        ],
    )
    at(sopbot, local(date(2026, 12, 23), "10:29"))
    assert [r for r in sopbot.outbox() if r.step_id == "lapse30"] == []
    at(sopbot, local(date(2026, 12, 23), "10:30"))  # 30 days after the latest paid order
    rows = [r for r in sopbot.outbox() if r.step_id == "lapse30"]
    assert sorted(r.contact_id for r in rows) == sorted([wang, song])
    assert {r.occurrence for r in rows} == {f"order:{wang}:20261123T040000", f"order:{song}:20261123T040000"}
    assert (
        next(r for r in rows if r.contact_id == wang).payload[0]["text"]
        == "王芳，上次下单30天了，回购享老客价"
    )
    # the audience applies as to any step: the KOC step reaches her, not the 复购会员 buyer
    assert [r.contact_id for r in sopbot.outbox() if r.step_id == "koc30"] == [wang]
    (skipped,) = [r for r in sopbot.runs("repurchase") if r.step_id == "koc30" and r.planned == 0]
    assert skipped.occurrence == f"order:{song}:20261123T040000"
    assert skipped.detail == "contact is not in the audience (or not a reachable friend)"
    for _ in range(3):
        sopbot.tick()
    sopbot.restart()
    at(sopbot, local(date(2026, 12, 24), "10:30"))
    assert len([r for r in sopbot.outbox() if r.step_id == "lapse30"]) == 2

    add_orders(sopbot.database, [("A2", wang, "paid", local(date(2026, 12, 28), "20:00"))])
    add_orders(sopbot.database, [("G1", guo, "refunded", local(date(2026, 12, 28), "20:00"))])
    at(sopbot, local(date(2027, 1, 27), "10:30"))  # 30 days after her new order: a new spell
    rows = [r for r in sopbot.outbox() if r.step_id == "lapse30"]
    assert Counter(r.contact_id for r in rows) == {wang: 2, song: 1}


def test_a_spell_message_still_waiting_is_dropped_once_the_spell_ends(sopbot: SopBot) -> None:
    """Quiet hours or the pace can hold a win-back message for hours: if the contact writes
    (or orders) in the meantime, it is skipped with the reason rather than sent."""
    assert sopbot.bot is not None
    wang, li, guo = (contact_id(sopbot, w) for w in ("wxid_wang_fang", "wxid_li_na", "wxid_guo_mei"))
    add_orders(sopbot.database, [("A1", guo, "paid", START + timedelta(hours=3))])
    at(sopbot, local(date(2026, 12, 7), "19:30"))  # d14 for everyone, waiting to go out
    at(sopbot, local(date(2026, 12, 23), "11:00"))  # lapse30 for guo (10:30), d30 for the rest
    sopbot.clock.set(local(date(2026, 12, 23), "11:01"))
    sopbot.bot.say("wxid_wang_fang", "最近忙，刚看到消息")
    add_orders(sopbot.database, [("A2", guo, "paid", local(date(2026, 12, 23), "11:01"))])
    sopbot.bot.deliver(max_wait=timedelta(hours=12))
    rows = {(r.contact_id, r.step_id): r for r in sopbot.outbox()}
    for step in ("d14", "d30"):
        assert (rows[(wang, step)].state, rows[(wang, step)].reason) == (
            "skipped",
            "the contact wrote again before it went out: the silence is over",
        )
    assert rows[(guo, "lapse30")].state == "skipped"
    assert rows[(guo, "lapse30")].reason == "the contact ordered again before it went out: the lapse is over"
    assert rows[(li, "d14")].state == rows[(li, "d30")].state == "sent"  # still silent: sent as planned
    assert not [r for r in sopbot.bot.sent() if r.target.wxid == "wxid_wang_fang"]


def add_orders(database: Database, orders: list[tuple[str, int, str, datetime]]) -> None:
    with database.session() as session:
        session.execute(
            insert(Order),
            [
                {"order_id": oid, "contact_id": cid, "status": status, "ordered_at": when, "amount_cents": 39_900,
                 "items": [{"name": "羊绒围巾"}], "imported_at": when}
                for oid, cid, status, when in orders
            ],
        )  # fmt: skip


def test_plan_shows_the_silence_messages_coming_due_and_the_daemon_agrees(sopbot: SopBot) -> None:
    from bot.sop.runtime.audience import load_directory

    assert sopbot.bot is not None
    sopbot.clock.set(START + timedelta(days=1))
    sopbot.bot.say("wxid_wang_fang", "在的")  # her spell starts a day later than the others'
    sopset = sopbot.service.sopset
    assert sopset is not None
    with sopbot.database.session(read_only=True) as session:
        directory = load_directory(session, sopset.groups)
        entries = plan(sopset, directory, date(2026, 12, 6), 3, session=session, now=sopbot.clock.now())
    silent = [e for e in entries if e.sop.id == "winback"]
    assert [(e.at, e.step.id, e.total) for e in silent] == [
        (local(date(2026, 12, 7), "19:30"), "d14", len(directory.contacts) - 1),
        (local(date(2026, 12, 8), "19:30"), "d14", 1),
    ]
    lines = render_plan(sopset, silent)
    assert lines[1].startswith("  19:30  winback/d14  14天问候  [quiet14] (lifecycle: silent 14d)  → ")
    at(sopbot, local(date(2026, 12, 7), "19:30"))
    at(sopbot, local(date(2026, 12, 8), "19:30"))
    assert len([r for r in sopbot.outbox() if r.step_id == "d14"]) == len(directory.contacts)


# ------------------------------------------------------------------------ on the ledger


@dataclass
class Spells:
    """A project with silence steps, a migrated database, and the sweep called directly."""

    sopset: SopSet
    database: Database
    ids: itertools.count[int]

    def friend(self, wxid: str, at: datetime) -> int:
        """A friend found by a contact sync at `at` (first seen then; no friendship start)."""
        with self.database.session() as session:
            return writes.upsert_contact(session, "main", ContactInfo(wxid, wxid, is_friend=True), at)

    def say(self, cid: int, wxid: str, at: datetime) -> None:
        message = Message(f"m{next(self.ids)}", ContactInfo(wxid, wxid), MessageKind.TEXT, "在吗", at)
        with self.database.session() as session:
            assert writes.record_message(session, "main", message, cid, None, at) is not None

    def unfriend(self, cid: int, at: datetime) -> None:
        with self.database.session() as session:
            events = EventLog(session)
            friendships.unfriend(session, events, [cid], DeletionSeen.TRANSPORT, at)
            events.flush()

    def befriend(self, cid: int, at: datetime) -> None:
        with self.database.session() as session:
            events = EventLog(session)
            friendships.befriend(session, events, cid, AddSource.REQUEST, at)
            events.flush()

    def order(self, cid: int, at: datetime, status: str = "paid") -> None:
        add_orders(self.database, [(f"o{next(self.ids)}", cid, status, at)])

    def sweep(self, at: datetime) -> None:
        for sop in self.sopset.enabled():
            for step in sop.steps:
                if step.spell is not None:
                    run_spell_step(self.database, self.sopset, sop, step, at)

    def planned(self) -> Counter[tuple[str, int]]:
        with self.database.session(read_only=True) as session:
            rows = session.execute(select(OutboxMessage.step_id, OutboxMessage.contact_id)).all()
        return Counter((str(step), int(cid)) for step, cid in rows)


SPELL_FILES = {
    "sop/spells.yaml": """
        id: spells
        name: 沉默与复购
        on_missed: {policy}
        grace: {grace}
        steps:
          - {{id: s2, silent: 2d, template: hello}}
          - {{id: s5, silent: 5d, at: "10:00", template: hello}}
          - {{id: o3, no_order: 3d, template: hello}}
    """,
    **BASIC_TEMPLATES,
}


T0 = datetime(2026, 11, 2, 16, 0, tzinfo=UTC)  # 2026-11-03 00:00 in Shanghai


def spell_project(folder: Path, policy: str = "catch_up", grace: str = "2d") -> Settings:
    files = {
        **SPELL_FILES,
        "sop/spells.yaml": SPELL_FILES["sop/spells.yaml"].format(policy=policy, grace=grace),
    }
    write_files(folder, files)
    return make_settings(folder)


def spells_on(database: Database, settings: Settings, at: datetime) -> Spells:
    with database.session() as session:
        d.ensure_account(session, "main", name="演示账号", transport="sandbox", now=at)
    return Spells(load_checked(settings, NOW), database, itertools.count(1))


def test_the_spell_names_agree_in_sql_and_python_on_each_backend(database: Database, tmp_path: Path) -> None:
    """The sweep leaves decided spells out by the name SQL computes (strftime on SQLite,
    to_char on PostgreSQL); it must be the name the ledger was given, cut to the second."""
    t0 = datetime(2026, 11, 1, 2, 0, 59, 999_999, tzinfo=UTC)
    kit = spells_on(database, spell_project(tmp_path / "p"), t0)
    quiet = kit.friend("wxid_quiet", t0)
    talker = kit.friend("wxid_talker", t0)
    kit.say(talker, "wxid_talker", t0 + timedelta(hours=5, microseconds=-1))
    buyer = kit.friend("wxid_buyer", t0 + timedelta(days=1))  # first seen a day later
    kit.order(buyer, t0 + timedelta(hours=1, seconds=0.5))
    sweep_at = t0 + timedelta(days=2, hours=6)
    kit.sweep(sweep_at)
    assert kit.planned() == {("s2", quiet): 1, ("s2", talker): 1}
    with database.session(read_only=True) as session:
        occurrences = set(session.execute(select(SopRun.occurrence)).scalars())
        sop = kit.sopset.sops["spells"]
        assert all(pending_spells(session, sop, step, sweep_at) == [] for step in sop.steps)
    assert occurrences == {f"silent:{quiet}:20261101T020059", f"silent:{talker}:20261101T070059"}
    assert spell_occurrence("silent", talker, t0 + timedelta(hours=5, microseconds=-1)) in occurrences
    later = t0 + timedelta(days=4, hours=1, seconds=1)  # the order is 3 days old, the buyer 3 days silent
    kit.sweep(later)
    kit.sweep(later + timedelta(hours=1))
    assert kit.planned() == {("s2", quiet): 1, ("s2", talker): 1, ("s2", buyer): 1, ("o3", buyer): 1}
    with database.session(read_only=True) as session:
        assert f"order:{buyer}:20261101T030100" in set(session.execute(select(SopRun.occurrence)).scalars())


def test_a_sweep_that_dies_mid_way_leaves_no_spell_half_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill -9 in the middle of a sweep: the chunks written before it stay, the one being
    written is gone with its transaction, and the next daemon plans the rest, once each."""
    import bot.sop.runtime.occurrences as occurrences
    import bot.sop.runtime.silence as silence

    database = Database(f"sqlite:///{tmp_path / 'sopbot.db'}")
    upgrade(database)
    try:
        kit = spells_on(database, spell_project(tmp_path / "p"), T0)
        people = [kit.friend(f"wxid_{n}", T0) for n in range(3)]
        real_enqueue, calls = occurrences.enqueue, itertools.count(1)

        def dies_at_the_second_chunk(*args: object, **kwargs: object) -> int:
            if next(calls) == 2:
                raise KeyboardInterrupt("kill -9")
            return real_enqueue(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(silence, "PLAN_CHUNK", 1)
        monkeypatch.setattr(occurrences, "enqueue", dies_at_the_second_chunk)
        sop = kit.sopset.sops["spells"]
        due = T0 + timedelta(days=2)
        with pytest.raises(KeyboardInterrupt):
            run_spell_step(database, kit.sopset, sop, sop.step("s2"), due)
        assert kit.planned() == {("s2", people[0]): 1}
        monkeypatch.setattr(occurrences, "enqueue", real_enqueue)
        for _ in range(2):
            kit.sweep(due + timedelta(minutes=1))
        assert kit.planned() == {("s2", cid): 1 for cid in people}
        with database.session(read_only=True) as session:
            runs = session.execute(select(SopRun.occurrence, SopRun.planned)).all()
        assert sorted(runs) == sorted((spell_occurrence("silent", cid, T0), 1) for cid in people)
    finally:
        database.dispose()


def test_the_silence_query_reads_index_ranges_not_every_contact(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'sopbot.db'}")
    upgrade(database)
    try:
        kit = spells_on(database, spell_project(tmp_path / "p"), NOW)
        for n in range(50):
            buyer = kit.friend(f"wxid_{n}", NOW - timedelta(days=n))
            kit.order(buyer, NOW - timedelta(days=n))
            kit.order(buyer, NOW - timedelta(days=2 * n), "refunded")
        sop = kit.sopset.sops["spells"]
        with database.session(read_only=True) as session:
            session.execute(text("ANALYZE"))
            plans = {
                step.id: explain(session, spells_query(session, sop, step, NOW, NOW)) for step in sop.steps
            }
    finally:
        database.dispose()
    for step in ("s2", "s5"):
        for index in (
            "ix_contacts_last_message_at",
            "ix_contacts_friend_added_at",
            "ix_contacts_first_seen_at",
        ):
            assert f"SEARCH contacts USING INDEX {index} (" in plans[step], plans[step]
    assert "SEARCH orders USING INDEX ix_orders_ordered_at (ordered_at>? AND ordered_at<?)" in plans["o3"]
    for found in plans.values():
        assert "SCAN contacts" not in found and "SCAN orders" not in found, found
        assert "SEARCH sop_runs USING INDEX" in found, found


def explain(session: object, query: object) -> str:
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    compiled = query.compile(session.get_bind())  # type: ignore[attr-defined]
    processors = compiled._bind_processors
    params = [processors[k](v) if k in processors else v for k, v in compiled.construct_params().items()]
    cursor = session.connection().connection.cursor()
    return "\n".join(row[3] for row in cursor.execute(f"EXPLAIN QUERY PLAN {compiled}", params))


# ------------------------------------------------------------------ property: spells counted


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "sopbot.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    return path


DAY = 24 * 60  # minutes
HORIZON = 20 * DAY
PEOPLE = 3
SPANS = (2 * DAY, 3 * DAY, 5 * DAY)  # the steps below: s2, o3, s5
POLICIES = (
    ("catch_up", "2d", timedelta(days=2)),
    ("skip", "1h", timedelta(hours=1)),
    ("catch_up", "1h", timedelta(hours=1)),
    ("catch_up", "7d", timedelta(days=7)),
)
timeline = st.fixed_dictionaries(
    {
        # (minute after T0, person, what): a message from them, or an order of theirs
        "events": st.lists(
            st.tuples(
                st.integers(1, 14 * DAY),
                st.integers(0, PEOPLE - 1),
                st.sampled_from(
                    ["message", "message", "paid", "paid", "refunded", "cancelled", "unfriend", "befriend"]
                ),
            ),
            min_size=1,
            max_size=12,
        ),
        # the sweep's cadence (None: no regular sweep), and stretches the daemon was down
        "cadence": st.sampled_from([720, 180, DAY, 3 * DAY, None]),
        "offset": st.integers(0, 179),
        "downtime": st.lists(st.tuples(st.integers(0, HORIZON), st.integers(60, 10 * DAY)), max_size=2),
        # sweeps near a step's due moment (after the event at that index, or T0), some on time
        "near": st.lists(
            st.tuples(
                st.one_of(st.just(-1), st.integers(0, 11)),
                st.sampled_from(SPANS),
                st.sampled_from([0, 3, 5, 6, 90, 600, 3000]),
            ),
            min_size=1,
            max_size=6,
        ),
        "repeat": st.lists(st.integers(0, 200), max_size=3),  # swept again at once, as after a restart
        "policy": st.sampled_from(POLICIES),
    }
)


def sweep_minutes(case: dict) -> list[int]:
    minutes: list[int] = []
    if case["cadence"] is not None:
        minutes += list(range(case["offset"], HORIZON, case["cadence"]))
        minutes = [
            m for m in minutes if not any(start <= m < start + length for start, length in case["downtime"])
        ]
    for index, span, delta in case["near"]:
        base = case["events"][index][0] if 0 <= index < len(case["events"]) else 0
        minutes.append(base + span + delta)
    minutes = sorted(minutes) or [0]
    return sorted(minutes + [minutes[i % len(minutes)] for i in case["repeat"]])


def expected_messages(
    events: list[tuple[int, int, str]], sweeps: list[datetime], limit: timedelta
) -> Counter[str]:
    """What the steps must send, worked out apart from the code. A silence begins at T0
    (first seen), at each message and at each new friendship; a lapse at each paid order.
    Each spell's step is due at its length (s5 on that day at 10:00). It is sent if a sweep
    comes while the spell lasts, while the contact is a friend, no later after the due
    moment than `limit` (5 minutes with on_missed: skip, else the grace) and the 7-day
    lookback; else nothing (the first such sweep too late records it as missed)."""
    found: Counter[str] = Counter()
    for person in range(PEOPLE):
        mine = [(T0 + timedelta(minutes=m), what) for m, p, what in sorted(events) if p == person]
        quiet = [T0, *sorted({at for at, what in mine if what in ("message", "befriend")})]
        paid = sorted({at for at, what in mine if what == "paid"})

        def friend_at(moment: datetime, mine: list[tuple[datetime, str]] = mine) -> bool:
            changes = [what for at, what in mine if at <= moment and what in ("unfriend", "befriend")]
            return not changes or changes[-1] == "befriend"

        for step, anchors, due in (
            ("s2", quiet, lambda a: a + timedelta(days=2)),
            (
                "s5",
                quiet,
                lambda a: max(local(a.astimezone(SHANGHAI).date() + timedelta(days=5), "10:00"), a),
            ),
            ("o3", paid, lambda a: a + timedelta(days=3)),
        ):
            for anchor, end in zip(anchors, [*anchors[1:], None], strict=False):
                when = due(anchor)
                if any(
                    when <= s
                    and (end is None or s < end)
                    and s - when <= min(limit, LIFECYCLE_LOOKBACK)
                    and friend_at(s)
                    for s in sweeps
                ):
                    found[step] += 1
    return found


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(timeline)
def test_messages_equal_the_spells_that_came_due_while_sweeping(template_db: Path, case: dict) -> None:
    policy, grace, grace_length = case["policy"]
    folder = Path(tempfile.mkdtemp(prefix="silence-"))
    try:
        shutil.copy(template_db, folder / "sopbot.db")
        database = Database(f"sqlite:///{folder / 'sopbot.db'}")
        try:
            kit = spells_on(database, spell_project(folder / "p", policy, grace), T0)
            people = [kit.friend(f"wxid_{n}", T0) for n in range(PEOPLE)]
            sweeps = Counter(T0 + timedelta(minutes=m) for m in sweep_minutes(case))
            events = sorted(case["events"])
            for moment in sorted({*sweeps, *(T0 + timedelta(minutes=m) for m, _, _ in events)}):
                for minute, person, what in events:  # what happens at a moment comes before its sweep
                    if T0 + timedelta(minutes=minute) == moment:
                        if what == "message":
                            kit.say(people[person], f"wxid_{person}", moment)
                        elif what == "unfriend":
                            kit.unfriend(people[person], moment)
                        elif what == "befriend":
                            kit.befriend(people[person], moment)
                        else:
                            kit.order(people[person], moment, what)
                for _ in range(sweeps[moment]):
                    kit.sweep(moment)
            limit = ON_TIME if policy == "skip" else max(ON_TIME, grace_length)
            want = expected_messages(events, sorted(sweeps), limit)
            got = Counter(step for step, _ in kit.planned().elements())
            assert got == want
        finally:
            database.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------ sopbot check


CHECK_CASES = [
    pytest.param(
        "  - {id: a, silent: banana, template: hello}\n",
        ["sop/w.yaml:4: steps[0].silent: 'banana' is not a duration (write it like '15m', '2h' or '3d')"],
        id="not-a-duration",
    ),
    pytest.param(
        "  - {id: a, no_order: 36h, template: hello}\n",
        ["sop/w.yaml:4: steps[0].no_order: write it in whole days, at least '1d' (like '14d') (got '36h')"],
        id="not-whole-days",
    ),
    pytest.param(
        "  - {id: a, silent: 0, template: hello}\n",
        ["sop/w.yaml:4: steps[0].silent: write it in whole days, at least '1d' (like '14d') (got 0)"],
        id="zero",
    ),
    pytest.param(
        "  - {id: a, silent: 99999d, template: hello}\n",
        ["sop/w.yaml:4: steps[0].silent: at most 3650d (got '99999d')"],
        id="too-long",
    ),
    pytest.param(
        "  - {id: a, silent: 14d, daily: '10:00', template: hello}\n",
        [
            "sop/w.yaml:4: steps[0]: give exactly one schedule: daily, weekly, monthly, festival, window, "
            "birthday, after, silent, no_order (found daily, silent)"
        ],
        id="two-schedules",
    ),
    pytest.param(
        "  - {id: a, silent: 14d, event: friend_added, template: hello}\n",
        [
            "sop/w.yaml:4: steps[0]: 'event' does not go with silent: the silence counts from the contact's last message"
        ],
        id="with-event",
    ),
    pytest.param(
        "  - {id: a, no_order: 30d, at: ['10:00', '20:00'], template: hello}\n",
        ["sop/w.yaml:4: steps[0]: a lifecycle step has one 'at' time"],
        id="two-times",
    ),
    pytest.param(
        "  - {id: a, silent: 14d, working_days_only: true, template: hello}\n",
        ["sop/w.yaml:4: steps[0]: working_days_only does not go with lifecycle steps"],
        id="working-days",
    ),
    pytest.param(
        "  - id: a\n    silent: 14d\n    template: group_hello\naudience:\n  to: groups\n",
        [
            "sop/w.yaml:5: steps[0].silent: silent counts a contact's own messages: it goes to contacts, not groups"
        ],
        id="to-groups",
    ),
    pytest.param(
        "  - {id: a, no_order: 30d, template: group_hello}\naudience: {to: groups}\n",
        [
            "sop/w.yaml:4: steps[0].no_order: no_order counts a buyer's orders: it goes to contacts, not groups"
        ],
        id="no-order-to-groups",
    ),
]


@pytest.mark.parametrize(("steps", "expected"), CHECK_CASES)
def test_check_names_file_line_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: str, expected: list[str]
) -> None:
    sop = "id: w\nname: 唤醒\nsteps:\n" + steps
    settings = project(tmp_path / "p", {**BASIC_TEMPLATES, "sop/w.yaml": sop}, monkeypatch)
    _, issues = check_all(settings, NOW)
    assert [str(issue) for issue in issues] == expected


# ------------------------------------------------------------------------ preview, plan


def test_preview_shows_a_lapse_to_buyers_only_as_it_will_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = project(tmp_path / "p", {**BASIC_TEMPLATES, **FILES}, monkeypatch)
    sopset = load_checked(settings, NOW)
    sop = sopset.sops["repurchase"]
    items = preview(sopset, sop, NOW.date(), NOW)
    shown = {item.recipient: item.text for item in items if item.step.id == "lapse30"}
    assert "王芳 (基础用户)" not in shown  # no order: nothing to lapse from
    assert shown["王芳 (已购会员)"] == "王姐，上次下单30天了，回购享老客价"
    (basic, _) = preview(sopset, sop, NOW.date(), NOW, tier="basic")
    assert basic.text is None and basic.nothing == "no paid order: a no_order step is for buyers"

    from bot.sop.views.preview import lifecycle_when

    lapse = sop.step("lapse30")
    assert lifecycle_when(lapse) == "30 days after the last paid order"
    assert lifecycle_when(lapse, "zh") == "最后一单 30 天后"
    silent = next(step for s_ in sopset.sops.values() for step in s_.steps if step.spec.silent is not None)
    assert lifecycle_when(silent, "zh") == f"沉默 {silent.spec.silent.days} 天后"


def test_plan_without_a_database_lists_no_spell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.sop.runtime.audience import Directory

    settings = project(tmp_path / "p", {**BASIC_TEMPLATES, **FILES}, monkeypatch)
    sopset = load_checked(settings, NOW)
    entries = plan(sopset, Directory([], []), NOW.date(), 90)
    assert entries == [] and render_plan(sopset, entries) == ["nothing scheduled in this period"]


def test_a_message_that_arrives_late_does_not_move_a_silence_back(testbot: TestBot) -> None:
    later = testbot.clock.now() + timedelta(hours=1)
    testbot.clock.set(later)
    testbot.say("wxid_wang_fang", "在吗")
    testbot.clock.set(later - timedelta(minutes=30))  # delivered after it, written before it
    testbot.say("wxid_wang_fang", "昨天那款还有吗")
    assert testbot.contact("wxid_wang_fang").last_message_at == later
