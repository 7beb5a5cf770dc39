"""The automatic brake (docs/retention.md): an SOP whose messages are followed by deletions,
opt-outs or complaints is paused; its planned messages wait, untouched, until an operator
resumes it from the terminal or in WeChat; the admins are told once per trip; `sopbot plan`
shows it paused, with the reason. The counts follow the results' last-touch attribution."""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.delivery import ledger
from bot.delivery.worker import rules_from
from bot.retention import store
from bot.retention.brake import BrakeRule, SopCounts, judge
from bot.retention.counting import count_sops
from bot.retention.service import Look
from bot.store import Database
from bot.store.models import OutboxMessage, SopBrake
from bot.wechat.sandbox import SandboxTransport, SentRecord
from bot.wechat.sandbox.population import HARD_SELL, PERSONAS, Persona
from bot.wechat.types import ContactInfo, Text
from tests.signals_kit import cli
from tests.sop_support import write_files
from tests.support import TestBot, make_settings, plan, sqlite_database
from tests.test_cli import sopbot, sopbot_env
from tests.test_results_metrics import History
from tests.waiting import LineReader, stop_process, wait_for, wait_for_progress

ADMIN = "wxid_wang_fang"
MONDAY = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
BAD, GOOD = "kanyidao", "morning"

SETTINGS = f"""
[delivery]
admins = ["{ADMIN}"]
quiet_hours = "00:00-00:00"
min_interval = 0
jitter = 0
hourly_cap = 100000
daily_cap = 100000
contact_daily_cap = 10
contact_weekly_cap = 50

[tiers]
mirror_to_wechat = false

[retention]
brake_min_sends = 20
brake_deletion_rate = 0.05
brake_optout_rate = 0.05
"""

FILES = {
    f"sop/{BAD}.yaml": f"""
        id: {BAD}
        name: 帮砍一刀
        steps:
          - id: ask
            daily: "12:00"
            template: ask
    """,
    f"sop/{GOOD}.yaml": f"""
        id: {GOOD}
        name: 早安问候
        steps:
          - id: tip
            daily: "10:00"
            template: tip
    """,
    "templates/default/ask.j2": "{{ contact.display_name }}，帮我砍一刀！0 元拿围巾，就差你了",
    "templates/default/tip.j2": "{{ contact.display_name }}，早上好，今天降温注意保暖",
}


def text_of(record: SentRecord) -> str:
    assert isinstance(record.content, Text)
    return record.content.text


def row_text(row: OutboxMessage) -> str:
    assert row.payload is not None
    return str(row.payload[0]["text"])


# -- the decision -------------------------------------------------------------------------------

RULE = BrakeRule(200, Fraction("0.01"), Fraction("0.02"))


def test_the_reason_gives_the_numbers_in_chinese() -> None:
    assert judge(SopCounts(210, deletions=3), RULE).reason == "删粉 3/210 = 1.4% ≥ 1%"
    both = judge(SopCounts(200, deletions=2, opt_outs=3, complaints=1), RULE)
    assert both.trips and both.reason == "删粉 2/200 = 1% ≥ 1%；退订/投诉 4/200 = 2% ≥ 2%"
    assert not judge(SopCounts(300, deletions=2, opt_outs=5), RULE).trips  # 0.67 %, 1.67 %
    # exact, not floating point: 3 in 300 is 1 % (0.01 * 300 = 3.0000000000000004)
    assert judge(SopCounts(300, deletions=3), RULE).trips


counts = st.builds(
    SopCounts,
    sends=st.integers(0, 5000),
    deletions=st.integers(0, 500),
    opt_outs=st.integers(0, 500),
    complaints=st.integers(0, 500),
)
rules = st.builds(
    BrakeRule,
    min_sends=st.integers(20, 1000),
    deletion_rate=st.fractions(Fraction(1, 1000), 1).map(lambda f: f.limit_denominator(1000)),
    optout_rate=st.fractions(Fraction(1, 1000), 1).map(lambda f: f.limit_denominator(1000)),
)


@given(counts, rules)
def test_never_trips_below_the_minimum_sample(c: SopCounts, rule: BrakeRule) -> None:
    if c.sends < rule.min_sends:
        assert not judge(c, rule).trips


@given(st.integers(0, 5000), rules, st.integers(0, 3))
def test_always_trips_from_its_threshold_on_once_the_sample_is_there(
    extra: int, rule: BrakeRule, over: int
) -> None:
    sends = rule.min_sends + extra
    fewest = math.ceil(rule.deletion_rate * sends)  # the fewest deletions at the rate
    assert judge(SopCounts(sends, deletions=fewest + over), rule).trips
    assert not judge(SopCounts(sends, deletions=fewest - 1), rule).trips
    driven = math.ceil(rule.optout_rate * sends) + over  # opt-outs and complaints add up
    assert judge(SopCounts(sends, opt_outs=driven // 2, complaints=driven - driven // 2), rule).trips
    assert not judge(SopCounts(sends, opt_outs=driven - over - 1), rule).trips


@given(counts, rules, st.integers(0, 50), st.integers(0, 50), st.integers(0, 50))
def test_more_people_driven_away_never_lifts_a_trip(
    c: SopCounts, rule: BrakeRule, deleted: int, opted: int, complained: int
) -> None:
    worse = SopCounts(c.sends, c.deletions + deleted, c.opt_outs + opted, c.complaints + complained)
    if judge(c, rule).trips:
        assert judge(worse, rule).trips
    stricter = BrakeRule(rule.min_sends, rule.deletion_rate / 2, rule.optout_rate / 2)
    if judge(c, rule).trips:
        assert judge(c, stricter).trips


# -- the counts, on SQLite and PostgreSQL --------------------------------------------------------


def test_the_counts_follow_last_touch_and_start_at_the_last_resume(
    database: Database, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "p", SETTINGS)
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    h = History(database)
    h.account("main")
    for cid in range(1, 13):
        h.contact(cid)
    row = iter(range(1, 1000))
    for cid in range(1, 11):  # ten sends of each SOP an hour apart: BAD at 08:00, GOOD at 09:00
        h.send(
            next(row),
            to=cid,
            sop=BAD,
            step="ask",
            planned=now - timedelta(hours=4),
            sent=now - timedelta(hours=4),
        )
        h.send(
            next(row),
            to=cid,
            sop=GOOD,
            step="tip",
            planned=now - timedelta(hours=3),
            sent=now - timedelta(hours=3),
        )
    # contacts 11 and 12 only ever got BAD, nine days ago (beyond the week the brake looks at)
    for cid in (11, 12):
        h.send(
            next(row),
            to=cid,
            sop=BAD,
            step="ask",
            planned=now - timedelta(days=9),
            sent=now - timedelta(days=9),
        )
    h.send(next(row), to=1, sop=BAD, step="ask", planned=now, state="planned")  # not sent: no send
    h.send(next(row), room=None, to=None, sop=BAD, step="ask", planned=now, state="skipped")
    # between BAD (08:00) and GOOD (09:00): blamed on BAD
    h.event(1, "friend_deleted", now - timedelta(hours=3, minutes=30), "transport")
    h.event(2, "opted_out", now - timedelta(hours=3, minutes=20))
    h.message(3, now - timedelta(hours=3, minutes=10), "别再发了，烦死了")
    # after GOOD: blamed on GOOD, the last touch
    h.event(4, "friend_deleted", now - timedelta(hours=2), "send_refused")
    h.message(5, now - timedelta(hours=1), "这是骚扰吧")  # a complaint …
    h.event(5, "opted_out", now - timedelta(minutes=50))  # … then an opt-out: the message counts once
    h.message(6, now - timedelta(hours=1), "谢谢，很好用")  # no complaint word
    h.message(7, now - timedelta(hours=1), "骚扰", room=None, account="main")
    # long after every message (beyond the 24 h windows) or before any: nobody's fault
    h.event(11, "friend_deleted", now - timedelta(days=8), "sync_missing")
    h.event(12, "friend_deleted", now - timedelta(hours=1), "sync_missing")
    # found missing at a sync right after GOOD: when they left is unknown, so nobody is blamed
    h.event(8, "friend_deleted", now - timedelta(hours=2, minutes=30), "sync_missing")

    with database.session(read_only=True) as session:
        found = {w.sop_id: w.counts for w in count_sops(session, settings, now)}
    assert found == {
        BAD: SopCounts(sends=10, deletions=1, opt_outs=1, complaints=1),
        GOOD: SopCounts(sends=10, deletions=1, opt_outs=1, complaints=1),  # 5 opted out; 7 complained
    }
    # resumed after BAD's sends: they no longer count, nor what followed them
    with database.session() as session:
        store.trip(session, BAD, "test", SopCounts(10), now - timedelta(hours=5), now - timedelta(days=7))
        assert store.resume_sop(session, BAD, "test", now - timedelta(hours=3, minutes=45))
    with database.session(read_only=True) as session:
        found = {w.sop_id: (w.counts, w.since) for w in count_sops(session, settings, now)}
    assert BAD not in found
    assert found[GOOD] == (SopCounts(10, 1, 1, 1), now - timedelta(days=7))


# -- the claim: a braked SOP's rows wait, untouched ------------------------------------------


def test_the_claim_passes_over_a_braked_sops_rows_and_leaves_them_as_they_are(
    database: Database, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "p", SETTINGS)
    now = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)
    h = History(database)
    h.account("main")
    h.contact(1)
    h.contact(2)
    for row_id, sop, to in ((1, BAD, 1), (2, BAD, 2), (3, GOOD, 1), (4, None, 2)):
        h.send(row_id, to=to, sop=sop, planned=now - timedelta(minutes=5), state="planned")
    with database.session() as session:  # BAD outranks the rest: the scan meets it first
        session.execute(update(OutboxMessage).values(priority=0))
        session.execute(update(OutboxMessage).where(OutboxMessage.sop_id == BAD).values(priority=50))
        store.trip(session, BAD, "删粉 5/20 = 25% ≥ 5%", SopCounts(20, 5), now, now)
    before = _rows(database, BAD)
    # one marketing message per contact a day: BAD's waiting row must not take contact 1's slot
    one_a_day = replace(rules_from(settings), contact_daily_cap=1)
    with database.session() as session:
        held = ledger.braked_sop_ids(session)
        claim = ledger.claim_due(session, "main", now, 10, "w1", one_a_day, scan=1, held_sops=held)
    assert held == {BAD}
    assert sorted(c.id for c in claim.claimed) == [3, 4] and not claim.skipped and not claim.deferred
    assert _rows(database, BAD) == before  # state, reason, due time, claim: nothing changed
    assert {r[1] for r in before} == {"planned"}
    with database.session() as session:
        assert store.resume_sop(session, BAD, "test", now)
        assert not store.resume_sop(session, BAD, "test", now)  # once
        claim = ledger.claim_due(
            session, "main", now, 10, "w1", rules_from(settings), held_sops=ledger.braked_sop_ids(session)
        )
    assert sorted(c.id for c in claim.claimed) == [1, 2]


def _rows(database: Database, sop: str) -> list[tuple[object, ...]]:
    o = OutboxMessage
    with database.session(read_only=True) as session:
        query = select(o.id, o.state, o.reason, o.not_before, o.updated_at, o.claimed_by, o.attempts)
        return [tuple(r) for r in session.execute(query.where(o.sop_id == sop).order_by(o.id))]


# -- the sandbox's people who cannot stand hard selling --------------------------------------


def test_hard_selling_makes_some_sandbox_people_delete_the_account_at_once(testbot: TestBot) -> None:
    offended = [p.contact.wxid for p in PERSONAS if p.offended_by]
    patient = ["wxid_wang_fang", "wxid_zhang_min"]
    assert len(offended) == 6 and not set(patient) & set(offended)
    everyone = [testbot.contact(wxid).id for wxid in offended + patient]
    plan(testbot.database, everyone, sop=GOOD, text="早上好，今天降温注意保暖")
    assert len(testbot.deliver()) == 8
    testbot.clock.advance(timedelta(minutes=5))
    testbot.run(testbot.transport.customers.due())
    assert all(testbot.transport.contact(wxid).is_friend for wxid in offended + patient)
    plan(testbot.database, everyone, sop=BAD, text="帮我砍一刀！0 元拿围巾", at=testbot.clock.now())
    assert len(testbot.deliver()) == 8
    testbot.clock.advance(timedelta(seconds=30))  # half a minute after the last of them
    testbot.run(testbot.transport.customers.due())
    testbot.settle()
    assert not any(testbot.transport.contact(wxid).is_friend for wxid in offended)
    assert all(testbot.transport.contact(wxid).is_friend for wxid in patient)
    known = [testbot.contact(wxid).is_friend for wxid in offended]
    assert known.count(False) == 3  # every other deletion is reported; sopbot finds the rest later


# -- a bad SOP and a good one in the same run ----------------------------------------------------


@dataclass
class Run:
    bot: TestBot
    settings: Settings
    clock: FrozenClock

    def tick(self) -> None:
        """The SOP scheduler at the clock's time (plans what is due)."""
        self.bot.run(self.bot.daemon.services.sop.tick())
        self.bot.settle()

    def deliver(self) -> list[SentRecord]:
        """Send what is due now; a row the brake holds is left where it is."""
        before = len(self.bot.transport.sent)
        while True:
            result = self.bot.run(self.bot.worker.step("main"))
            if result.paced:
                self.clock.advance(timedelta(seconds=result.wait))
                continue
            if not result.active:
                return self.bot.transport.sent[before:]

    def live(self, minutes: int) -> None:
        """`minutes` pass: people answer, delete the account, and what they write is handled."""
        for _ in range(minutes):
            self.clock.advance(timedelta(minutes=1))
            self.bot.run(self.bot.transport.customers.due())
            self.bot.settle()
            self.deliver()

    def at(self, day: int, hour: int, minute: int = 0) -> None:
        self.clock.set(MONDAY + timedelta(days=day, hours=hour - 9, minutes=minute))

    def look(self) -> Look:
        return self.bot.daemon.services.retention.check(self.clock.now())

    def rows(self, sop: str, occurrence_day: str | None = None) -> list[OutboxMessage]:
        with self.bot.database.session(read_only=True) as session:
            query = select(OutboxMessage).where(OutboxMessage.sop_id == sop).order_by(OutboxMessage.id)
            found = list(session.execute(query).scalars())
        return [r for r in found if occurrence_day is None or (r.occurrence or "").startswith(occurrence_day)]

    def brake_messages(self) -> list[OutboxMessage]:
        with self.bot.database.session(read_only=True) as session:
            query = select(OutboxMessage).where(OutboxMessage.key.like("brake:%"))
            return list(session.execute(query).scalars())


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    """Twenty sandbox people (six cannot stand 砍一刀, two put up with one pushed message a
    day) and twenty quiet synthetic contacts; GOOD greets everyone at 10:00, BAD asks everyone
    to 砍一刀 at 12:00."""
    folder = tmp_path / "project"
    write_files(folder, FILES)
    settings = make_settings(folder, f'database_url = "sqlite:///{tmp_path / "sopbot.db"}"\n' + SETTINGS)
    clock = FrozenClock(MONDAY)
    with sqlite_database(tmp_path) as database:
        transport = SandboxTransport("main", clock=clock, seed=settings.sandbox.seed, extra_contacts=20)
        bot = TestBot(settings, database, clock, transport).start()
        try:
            yield Run(bot, settings, clock)
        finally:
            bot.close()


def first_day(run: Run) -> None:
    """Monday: GOOD at 10:00 (one grumble after it), BAD at 12:00; the brake looks at 12:10."""
    run.at(0, 10)
    run.tick()
    assert len(run.deliver()) == 40
    run.live(5)
    run.bot.say("wxid_zhou_hao", "好烦啊")  # a complaint: last touch GOOD
    run.at(0, 12)
    run.tick()
    assert len([s for s in run.deliver() if (s.ref or "").startswith(f"sop:{BAD}:")]) == 40
    run.live(10)


def test_a_bad_sop_is_braked_and_a_good_one_is_not_and_its_rows_wait_for_the_resume(run: Run) -> None:
    first_day(run)
    look = run.look()
    (trip,) = look.trips
    assert trip.sop_id == BAD
    # six offended by 砍一刀 and the two with no patience for a second push left; every other
    # deletion is reported at once, the rest sopbot learns of only when it next sends to them
    assert trip.reason == "删粉 4/40 = 10% ≥ 5%"
    assert trip.counts == SopCounts(40, deletions=4)
    with run.bot.database.session(read_only=True) as session:
        good = {w.sop_id: w.counts for w in count_sops(session, run.settings, run.clock.now(), skip={BAD})}
        brake = store.brake_of(session, BAD)
        assert store.brake_of(session, GOOD) is None
    assert good == {GOOD: SopCounts(40, complaints=1)}  # watched, well under its thresholds
    assert brake is not None and (brake.state, brake.sends, brake.deletions) == ("paused", 40, 4)
    assert run.look().trips == []  # once per trip
    run.deliver()
    (told,) = run.brake_messages()
    admin = [s for s in run.bot.transport.sent_to(ADMIN) if (s.ref or "").startswith("brake:")]
    assert [text_of(s) for s in admin] == [row_text(told)]
    assert row_text(told).splitlines()[:2] == [
        "【SOP 自动暂停】帮砍一刀（kanyidao）",
        "原因：删粉 4/40 = 10% ≥ 5%（最近 7 天的一对一发送）",
    ]

    # Tuesday: the scheduler plans both SOPs as usual (decided: keep planning, rows wait)
    run.at(1, 10)
    run.tick()
    run.deliver()
    run.at(1, 12)
    run.tick()
    waiting = run.rows(BAD, "2026-11-24")
    assert len(waiting) == 32  # the eight who left are left out of the audience
    before = [(r.id, r.state, r.reason, r.not_before, r.updated_at) for r in waiting]
    run.live(30)
    assert all(r.state == "sent" or r.state == "skipped" for r in run.rows(GOOD, "2026-11-24"))
    after = [(r.id, r.state, r.reason, r.not_before, r.updated_at) for r in run.rows(BAD, "2026-11-24")]
    assert after == before and {r[1] for r in after} == {"planned"}
    assert not [s for s in run.bot.transport.sent if (s.ref or "").startswith(f"sop:{BAD}:ask:2026-11-24")]

    code, output = cli(run.settings, "sop", "brakes")
    assert (
        code == 0
        and "kanyidao: PAUSED since" in output
        and "删粉 4/40 = 10% ≥ 5%; 32 messages wait" in output
    )
    code, output = cli(run.settings, "sop", "resume", BAD)
    assert code == 0, output
    assert "resumed SOP kanyidao (braked for: 删粉 4/40 = 10% ≥ 5%)" in output
    assert "32 waiting messages go out at the account's pace" in output
    run.deliver()
    assert {r.state for r in run.rows(BAD, "2026-11-24")} == {"sent"}
    assert (
        len([s for s in run.bot.transport.sent if (s.ref or "").startswith(f"sop:{BAD}:ask:2026-11-24")])
        == 32
    )
    assert run.look().trips == []
    assert len(run.brake_messages()) == 1
    code, output = cli(run.settings, "sop", "resume", BAD)
    assert code == 1 and "was resumed already" in output


def test_an_admin_resumes_the_sop_in_wechat(run: Run) -> None:
    first_day(run)
    assert [t.sop_id for t in run.look().trips] == [BAD]
    run.at(1, 12)
    run.tick()
    assert {r.state for r in run.rows(BAD, "2026-11-24")} == {"planned"}
    run.bot.say(ADMIN, "#刹车")
    run.bot.say(ADMIN, "#status")
    run.bot.say(ADMIN, "#恢复 kanyidao")
    replies = [
        text_of(s) for s in run.deliver() if s.target.wxid == ADMIN and (s.ref or "").startswith("admin:")
    ]
    assert (
        replies[0] == "自动暂停的 SOP：\nkanyidao：删粉 4/40 = 10% ≥ 5%（待发 36 条）\n回复 #恢复 ID 恢复发送"
    )
    assert "自动暂停的 SOP：kanyidao（#刹车 查看原因）" in replies[1]
    assert replies[2] == "已恢复 SOP kanyidao：待发的 36 条消息按节奏发出"
    with run.bot.database.session(read_only=True) as session:
        brake = session.get(SopBrake, BAD)
    assert brake is not None and brake.state == "resumed" and brake.resumed_by == "王芳 (WeChat)"
    assert {r.state for r in run.rows(BAD, "2026-11-24")} == {"sent", "skipped"}
    run.bot.say(ADMIN, "#恢复 kanyidao")
    (again,) = [text_of(s) for s in run.deliver() if s.target.wxid == ADMIN]
    assert again == "SOP kanyidao 没有被自动暂停"


def test_after_a_resume_the_brake_counts_from_the_resume_and_may_trip_again(run: Run) -> None:
    first_day(run)
    assert [t.sop_id for t in run.look().trips] == [BAD]
    resumed_at = run.clock.now()
    with run.bot.database.session() as session:
        assert store.resume_sop(session, BAD, "test", resumed_at)
    run.live(60)
    assert run.look().trips == []  # the old deletions do not count again
    # new people, new sends after the resume, and they leave as well
    for n in range(24):
        wxid = f"wxid_picky_{n:02d}"
        run.bot.request_friend(wxid, f"挑剔{n}", "你好")
        picky = HARD_SELL if n < 10 else ()
        run.bot.transport.customers.people[wxid] = Persona(
            ContactInfo(wxid, f"挑剔{n}"), ("嗯",), offended_by=picky
        )
    run.at(1, 12)
    run.tick()
    run.deliver()
    run.live(5)
    (trip,) = run.look().trips
    assert trip.sop_id == BAD and trip.since == resumed_at
    # only Tuesday's sends count: to the 32 who stayed and the 24 newcomers (the four who had
    # left silently on Monday are found out now: their sends are refused and count nowhere)
    assert trip.counts == SopCounts(56, deletions=5)
    texts = sorted(row_text(m).splitlines()[1] for m in run.brake_messages())
    assert texts == [  # a second trip, a second message
        "原因：删粉 4/40 = 10% ≥ 5%（最近 7 天的一对一发送）",
        "原因：删粉 5/56 = 8.9% ≥ 5%（11-23 12:10 恢复以来的一对一发送）",
    ]


def test_plan_and_status_show_a_braked_sop_as_paused_with_the_reason(run: Run) -> None:
    run.at(1, 12)
    run.tick()  # Tuesday's BAD rows are planned …
    with run.bot.database.session() as session:  # … and the brake holds them
        assert store.trip(session, BAD, "删粉 4/40 = 10% ≥ 5%", SopCounts(40, 4), run.clock.now(), MONDAY)
    code, output = cli(run.settings, "plan", "--from", "2026-11-24", "--days", "2")
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0] == (
        "# ⏸ kanyidao 已暂停 paused by the brake since 2026-11-24 12:00: 删粉 4/40 = 10% ≥ 5%; "
        "its messages are planned and wait; `sopbot sop resume kanyidao` sends them"
    )
    bad = [line for line in lines if line.startswith("  12:00  kanyidao/ask")]
    good = [line for line in lines if line.startswith("  10:00  morning/tip")]
    assert len(bad) == 2 and all(line.endswith("⏸ 已暂停 paused (brake)") for line in bad)
    assert len(good) == 2 and not any("已暂停" in line for line in good)

    code, output = cli(run.settings, "status")
    assert code == 0, output
    assert "40 queued (40 held by the brake)" in output
    from bot.delivery.outlook import outlook  # the daemon's "what comes next" line says it too

    ahead = outlook(run.bot.daemon.context, None, run.clock.now()).describe(run.settings.tz)
    assert "account main online, 40 queued (40 held by the brake)" in ahead
    assert (
        "SOP kanyidao: BRAKED since 2026-11-24 12:00: 删粉 4/40 = 10% ≥ 5% (`sopbot sop resume kanyidao`)"
        in output
    )


def test_resume_with_skip_waiting_skips_the_backlog_with_the_reason(run: Run) -> None:
    run.at(1, 12)
    run.tick()
    with run.bot.database.session() as session:
        assert store.trip(session, BAD, "删粉 4/40 = 10% ≥ 5%", SopCounts(40, 4), run.clock.now(), MONDAY)
    code, output = cli(run.settings, "sop", "resume", BAD, "--skip-waiting", "--by", "小李")
    assert code == 0 and "40 waiting messages skipped" in output
    rows = run.rows(BAD)
    assert len(rows) == 40 and {(r.state, r.reason) for r in rows} == {
        ("skipped", "SOP braked; skipped at its resume by 小李")
    }
    assert run.deliver() == []
    code, output = cli(run.settings, "sop", "brakes", "--all")
    assert code == 0 and "kanyidao: resumed " in output and " by 小李; tripped 2026-11-24 12:00" in output


# -- the running daemon ----------------------------------------------------------------------


def daemon_settings(folder: Path) -> str:
    return f"""
database_url = "sqlite:///{folder / "sopbot.db"}"
log_level = "INFO"

[sandbox]
event_interval = 0.2
journal = "{folder / "wechat-server.jsonl"}"

[delivery]
admins = ["{ADMIN}"]
quiet_hours = "00:00-00:00"
min_interval = 0
jitter = 0
hourly_cap = 100000
daily_cap = 100000
contact_daily_cap = 10

[tiers]
mirror_to_wechat = false

[monitor]
enabled = false

[retention]
brake_min_sends = 20
brake_deletion_rate = 0.1
check_interval = 1
"""


@pytest.mark.slow
def test_the_running_daemon_brakes_a_bad_sop_and_sends_its_rows_after_sopbot_sop_resume(
    tmp_path: Path,
) -> None:
    """`sopbot run` on the sandbox: BAD's 砍一刀 goes to the twenty demo people, six of whom
    delete the account within half a minute; the daemon brakes BAD and tells the admin once.
    BAD's next rows wait while a later, lower-priority message goes out; `sopbot sop resume`
    (another process) lets them go."""
    folder = tmp_path / "project"
    write_files(folder, {"settings.toml": daemon_settings(folder)})
    journal = folder / "wechat-server.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=folder, env=sopbot_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    log = LineReader(process.stderr)
    database = Database(f"sqlite:///{folder / 'sopbot.db'}")
    try:
        log.wait_for(["delivery worker"])
        people = wait_for(lambda: _people(database), what="the demo people to be synced")
        plan(
            database,
            list(people.values()),
            at=_now(),
            sop=BAD,
            step="ask",
            occurrence="e2e-1",
            text="帮我砍一刀！",
        )
        log.wait_for(["SOP kanyidao BRAKED"])
        with database.session(read_only=True) as session:
            brake = store.brake_of(session, BAD)
        assert brake is not None and brake.state == "paused" and brake.sends == 20
        assert (
            brake.reason.startswith("删粉 ") and "/20 = " in brake.reason and brake.reason.endswith(" ≥ 10%")
        )
        wait_for(lambda: _state(database, "brake:%") == {"sent"}, what="the admin's brake message to go out")
        first = _refs(journal)
        assert len([r for r in first if r.startswith("brake:")]) == 1
        assert len([r for r in first if r.startswith(f"sop:{BAD}:ask:e2e-1:")]) == 20

        # BAD's next rows outrank a GOOD row planned after them: the claim meets them first
        stayed = [cid for wxid, cid in people.items() if _friend(database, cid)]
        plan(
            database,
            stayed,
            at=_now(),
            sop=BAD,
            step="ask",
            occurrence="e2e-2",
            text="再帮我砍一刀！",
            priority=10,
        )
        plan(database, [people[ADMIN]], at=_now(), sop=GOOD, step="tip", occurrence="e2e-2", text="早上好")
        wait_for(lambda: _state(database, f"sop:{GOOD}:%") == {"sent"}, what="GOOD's message to go out")
        assert _state(database, f"sop:{BAD}:ask:e2e-2:%") == {"planned"}
        assert not [r for r in _refs(journal) if r.startswith(f"sop:{BAD}:ask:e2e-2:")]

        resumed = sopbot(folder, "sop", "resume", BAD)
        assert resumed.returncode == 0, resumed.stderr
        assert f"{len(stayed)} waiting messages go out" in resumed.stdout
        wait_for_progress(
            lambda: _state(database, f"sop:{BAD}:ask:e2e-2:%"),
            lambda states: "planned" not in states and "sending" not in states,
            what="BAD's waiting rows to go out after the resume",
        )
        refs = _refs(journal)
        sent = _count(database, f"sop:{BAD}:ask:e2e-2:%", "sent")
        assert sent > 0 and len([r for r in refs if r.startswith(f"sop:{BAD}:ask:e2e-2:")]) == sent
        assert len(refs) == len(set(refs))  # nothing twice
        assert len([r for r in refs if r.startswith("brake:")]) == 1
    finally:
        database.dispose()
        if process.poll() is None:
            assert stop_process(process, signal.SIGINT) == 0


def _now() -> datetime:
    return datetime.now(UTC)


def _people(database: Database) -> dict[str, int]:
    """The demo people's contact ids, once all twenty are there."""
    from bot.store.models import Contact
    from bot.wechat.sandbox.population import PERSONAS

    wanted = {p.contact.wxid for p in PERSONAS}
    try:
        with database.session(read_only=True) as session:
            rows = session.execute(select(Contact.wxid, Contact.id).where(Contact.wxid.in_(wanted))).all()
    except Exception:  # the daemon is still creating the schema
        return {}
    return {str(wxid): int(cid) for wxid, cid in rows} if len(rows) == len(wanted) else {}


def _friend(database: Database, contact_id: int) -> bool:
    from bot.store.models import Contact

    with database.session(read_only=True) as session:
        return bool(session.execute(select(Contact.is_friend).where(Contact.id == contact_id)).scalar_one())


def _state(database: Database, key: str) -> set[str]:
    with database.session(read_only=True) as session:
        query = select(OutboxMessage.state).where(OutboxMessage.key.like(key))
        return set(session.execute(query).scalars())


def _count(database: Database, key: str, state: str) -> int:
    with database.session(read_only=True) as session:
        query = select(OutboxMessage.id).where(OutboxMessage.key.like(key), OutboxMessage.state == state)
        return len(session.execute(query).all())


def _refs(journal: Path) -> list[str]:
    """What WeChat's server side received (the sandbox journal), by outbox key."""
    lines = journal.read_text(encoding="utf-8").splitlines() if journal.exists() else []
    entries = [json.loads(line) for line in lines if line.strip().endswith("}")]
    return [str(e["ref"]).rpartition("#")[0] for e in entries if e.get("ref")]


def test_sop_commands_on_an_older_schema_say_to_upgrade(tmp_path: Path) -> None:
    from bot.store.migrate import upgrade

    settings = make_settings(tmp_path / "p", SETTINGS)
    database = Database(settings.resolved_database_url)
    upgrade(database, "0008_rollups")  # before the brake's tables
    database.dispose()
    code, output = cli(settings, "sop", "brakes")
    assert code == 2 and "older than this sopbot: run `sopbot db upgrade` first" in output, output
    assert "Traceback" not in output


def test_with_the_brake_off_nothing_is_braked(run: Run) -> None:
    from bot.retention.service import RetentionService

    first_day(run)
    retention = run.settings.retention.model_copy(update={"brake": False})
    off = RetentionService(
        replace(run.bot.daemon.context, settings=run.settings.model_copy(update={"retention": retention}))
    )
    assert off.check(run.clock.now()).trips == []
    with run.bot.database.session(read_only=True) as session:
        assert store.brake_of(session, BAD) is None
    assert [t.sop_id for t in run.look().trips] == [BAD]  # the same day with the brake on
