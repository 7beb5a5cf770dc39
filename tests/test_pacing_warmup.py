"""A new account warms up (its daily cap rises by a schedule) and risk signals slow an
account down: the pure rules, property tests over clocks, and the delivery worker."""

from __future__ import annotations

import logging
import random
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config.settings import load_settings
from bot.delivery import health
from bot.delivery.pacing import Pace, Pacer
from bot.delivery.warmup import WarmUp, first_send_day
from bot.delivery.worker import pace_for
from bot.events import ContactEventKind
from bot.monitor.metrics import REGISTRY
from bot.store.models import Contact, ContactEvent, InboundMessage
from tests.support import T0, TestBot, make_settings, plan, sqlite_database, write_project

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY1 = date(2026, 11, 24)  # T0 is 10:00 on this day in Shanghai


# -- the schedule --------------------------------------------------------------------------


def test_the_cap_follows_the_schedule_then_the_full_cap() -> None:
    warmup = WarmUp((50, 80, 120), DAY1, SHANGHAI)
    noon = datetime(2026, 11, 24, 12, tzinfo=SHANGHAI)
    assert [warmup.cap(noon + timedelta(days=n), 800) for n in range(5)] == [50, 80, 120, 800, 800]
    assert warmup.cap(noon - timedelta(days=3), 800) == 50  # a clock before day 1: day 1
    assert warmup.cap(noon + timedelta(days=1), 60) == 60  # never above the account's own cap
    # the day turns at local midnight, not UTC's
    assert warmup.day_number(datetime(2026, 11, 24, 15, 59, tzinfo=UTC)) == 1
    assert warmup.day_number(datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == 2


def _settings(tmp_path: Path, account: str, delivery: str = "") -> object:
    return load_settings(write_project(tmp_path, f"[[accounts]]\n{account}\n[delivery]\n{delivery}\n"))


def test_which_accounts_warm_up(tmp_path: Path) -> None:
    real = _settings(tmp_path / "a", 'id = "main"\ntransport = "wechaty"\nendpoint = "127.0.0.1:1"')
    pace = pace_for(real.accounts[0], real, None)  # type: ignore[attr-defined]
    assert pace.warmup == WarmUp((50, 80, 120, 180, 250, 350, 500), None, SHANGHAI)  # never sent: not begun
    pace = pace_for(real.accounts[0], real, date(2026, 11, 1))  # type: ignore[attr-defined]
    assert pace.warmup is not None and not pace.warmup.active(T0)  # sent for weeks: warmed up

    sandbox = _settings(tmp_path / "b", 'id = "main"')
    assert pace_for(sandbox.accounts[0], sandbox, None).warmup is None  # type: ignore[attr-defined]

    own = _settings(
        tmp_path / "c",
        'id = "main"\n[accounts.pacing]\nwarmup = [5, 10]\nwarmup_from = 2026-11-23',
    )
    assert pace_for(own.accounts[0], own, None).warmup == WarmUp((5, 10), date(2026, 11, 23), SHANGHAI)  # type: ignore[attr-defined]

    off = _settings(
        tmp_path / "d",
        'id = "main"\ntransport = "wechaty"\nendpoint = "127.0.0.1:1"\n[accounts.pacing]\nwarmup = []',
    )
    assert pace_for(off.accounts[0], off, None).warmup is None  # type: ignore[attr-defined]


def test_an_account_that_has_not_sent_is_on_day_1_until_its_first_send() -> None:
    warmup = WarmUp((3, 5), None, SHANGHAI)
    pacer = Pacer(Pace(min_interval=0, jitter=0, hourly_cap=100, daily_cap=800, warmup=warmup))
    idle_for_days = T0 + timedelta(days=3)  # started days ago, nothing to send until now
    assert pacer.allowance(idle_for_days) == 3
    for _ in range(3):
        pacer.record(idle_for_days)
    assert pacer.pace.warmup == WarmUp((3, 5), DAY1 + timedelta(days=3), SHANGHAI)
    assert pacer.allowance(idle_for_days + timedelta(hours=1)) == 0  # day 1's cap, not the full one
    assert pacer.allowance(idle_for_days + timedelta(days=1, minutes=1)) == 5  # day 2


def test_a_bad_schedule_names_the_line(tmp_path: Path) -> None:
    from bot.config.errors import ConfigError

    path = write_project(tmp_path, "[delivery]\nmin_interval = 8\nwarmup = [50, 0, 100]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    text = str(caught.value)
    assert "settings.toml:3" in text and "warmup" in text and "day 2" in text


# -- property tests over clocks -------------------------------------------------------------


def _local_day(moment: datetime) -> date:
    return moment.astimezone(SHANGHAI).date()


@settings(max_examples=150, deadline=None)
@given(
    caps=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    full=st.integers(1, 60),
    start_offset=st.integers(-2, 3),
    gaps=st.lists(st.integers(1, 6 * 3600), min_size=1, max_size=250),
    restarts=st.sets(st.integers(0, 249), max_size=5),
    paced=st.booleans(),
)
def test_warm_up_caps_hold_for_any_clock(
    caps: list[int], full: int, start_offset: int, gaps: list[int], restarts: set[int], paced: bool
) -> None:
    """A sender that sends whenever the pacer allows, at arbitrary moments, restarted now and
    then (a new pacer from the last day's sends, as after kill -9), never sends more on a
    local day than that day's cap, nor more in any 24 h than the cap in force."""
    warmup = WarmUp(tuple(caps), DAY1 + timedelta(days=start_offset), SHANGHAI)
    pace = Pace(min_interval=30 if paced else 0, jitter=0, hourly_cap=1000, daily_cap=full, warmup=warmup)
    pacer = Pacer(pace, random.Random(1))
    sent: list[datetime] = []
    now = T0
    for index, gap in enumerate(gaps):
        now += timedelta(seconds=gap)
        if index in restarts:
            pacer = Pacer(pace, random.Random(1), [t for t in sent if t > now - timedelta(days=1)])
        for _ in range(pacer.allowance(now)):
            pacer.record(now)
            sent.append(now)
            in_force = warmup.cap(now, full)
            assert sum(1 for t in sent if t > now - timedelta(days=1)) <= in_force
    per_day = Counter(_local_day(t) for t in sent)
    for day, count in per_day.items():
        noon = datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(hours=12)
        assert count <= warmup.cap(noon, full), (day, count)


@settings(max_examples=100, deadline=None)
@given(
    daily=st.integers(1, 80),
    hourly=st.integers(1, 40),
    slowdowns=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=1, max_size=8),
    gaps=st.lists(st.integers(1, 3600), min_size=1, max_size=200),
)
def test_a_slowed_account_stays_within_its_divided_caps(
    daily: int, hourly: int, slowdowns: list[int], gaps: list[int]
) -> None:
    pacer = Pacer(Pace(min_interval=0, jitter=0, hourly_cap=hourly, daily_cap=daily), random.Random(2))
    sent: list[datetime] = []
    now = T0
    for index, gap in enumerate(gaps):
        pacer.slowdown = slowdowns[index % len(slowdowns)]
        now += timedelta(seconds=gap)
        for _ in range(pacer.allowance(now)):
            pacer.record(now)
            sent.append(now)
            assert sum(1 for t in sent if t > now - timedelta(hours=1)) <= max(1, hourly // pacer.slowdown)
            assert sum(1 for t in sent if t > now - timedelta(days=1)) <= max(1, daily // pacer.slowdown)


def test_a_slowdown_stretches_the_interval() -> None:
    pacer = Pacer(Pace(min_interval=10, jitter=0, hourly_cap=100, daily_cap=800))
    pacer.record(T0)
    assert pacer.next_allowed(T0) == T0 + timedelta(seconds=10)
    pacer.slowdown = 4
    pacer.record(T0 + timedelta(seconds=10))
    assert pacer.next_allowed(T0) == T0 + timedelta(seconds=50)


# -- the health rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("deletions", "complaints", "refusals", "sends", "slowdown"),
    [
        (0, 0, 0, 500, 1),
        (2, 0, 0, 50, 1),  # two signals: never enough, whatever the rate
        (3, 0, 0, 500, 1),  # 0.6 %
        (3, 0, 0, 300, 2),  # 1 %
        (2, 1, 0, 100, 2),  # a quiet account: the rate counts against 200 sends
        (3, 1, 1, 200, 4),  # 5 signals, 2.5 %
        (6, 2, 2, 250, 8),  # 10 signals, 4 %
        (20, 0, 0, 5000, 1),  # a big account: 0.4 %
    ],
)
def test_the_documented_rule(
    deletions: int, complaints: int, refusals: int, sends: int, slowdown: int
) -> None:
    verdict = health.assess(health.Signals(deletions, complaints, refusals, sends))
    assert verdict.slowdown == slowdown
    assert f"删粉 {deletions}" in verdict.reason and f"发送 {sends} 条" in verdict.reason


@given(
    signals=st.integers(0, 60),
    more=st.integers(0, 20),
    sends=st.integers(0, 3000),
    extra=st.integers(0, 3000),
)
def test_more_signals_never_speed_up_and_more_sends_never_slow_down(
    signals: int, more: int, sends: int, extra: int
) -> None:
    base = health.assess(health.Signals(signals, 0, 0, sends)).slowdown
    assert health.assess(health.Signals(signals + more, 0, 0, sends)).slowdown >= base
    assert health.assess(health.Signals(signals, 0, 0, sends + extra)).slowdown <= base


def test_risky_refusals_are_told_apart() -> None:
    assert health.smells_of_risk("TransientSendError: 操作过于频繁，请稍后再试")
    assert health.smells_of_risk("TransientSendError: rate limit exceeded")
    assert not health.smells_of_risk("TransientSendError: connection reset by peer")


# -- in the delivery worker ------------------------------------------------------------------

WARM = (
    '[[accounts]]\nid = "main"\n[accounts.pacing]\nwarmup = [3, 5]\n'
    "[delivery]\nmin_interval = 0\njitter = 0\ncontact_daily_cap = 100\ncontact_weekly_cap = 100\n"
)


def test_the_worker_holds_a_new_account_to_its_warm_up_caps(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    with sqlite_database(tmp_path) as db:
        bot = TestBot(make_settings(tmp_path / "project", WARM), db, clock).start()
        try:
            everyone = [c.id for c in bot.contacts()]
            assert plan(bot.database, everyone) == len(everyone) > 8
            assert len(bot.deliver(max_wait=timedelta(hours=6))) == 3  # day 1: 3, then nothing
            clock.set(datetime(2026, 11, 25, 1, 0, tzinfo=UTC))  # day 2, 09:00 Shanghai
            assert bot.run(bot.worker.step("main")).sent == 2  # 5 in the last 24 h
            waiting = bot.run(bot.worker.step("main"))
            assert waiting.paced and waiting.wait == 3600  # until day 1's first send is 24 h old
            # day 1's sends leave the rolling window at 10:00: day 2 reaches its 5, no more
            assert len(bot.deliver(max_wait=timedelta(hours=12))) == 3
            per_day = Counter(_local_day(r.at) for r in bot.sent())
            assert per_day == {DAY1: 3, DAY1 + timedelta(days=1): 5}
            clock.set(datetime(2026, 11, 26, 3, 0, tzinfo=UTC))  # day 3: warmed up, full cap
            rest = bot.deliver(max_wait=timedelta(hours=1))
            assert len(rest) == len(everyone) - 8
            with db.session(read_only=True) as session:
                assert first_send_day(session, "main", SHANGHAI) == DAY1
        finally:
            bot.close()


def _record_deletions(bot: TestBot, count: int, at: datetime) -> None:
    with bot.database.session() as session:
        contacts = session.execute(select(Contact.id).where(Contact.account_id == "main")).scalars().all()
        for contact_id in contacts[:count]:
            session.add(
                ContactEvent(contact_id=contact_id, kind=ContactEventKind.FRIEND_DELETED.value, at=at)
            )


def _pace_metric(account: str) -> float | None:
    return REGISTRY.get_sample_value("sopbot_pace_slowdown", {"account": account})


def test_risk_signals_slow_the_worker_down_and_it_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FrozenClock(T0)
    text = "[delivery]\nmin_interval = 10\njitter = 0\ncontact_daily_cap = 100\ncontact_weekly_cap = 100\n"
    with sqlite_database(tmp_path) as db:
        bot = TestBot(make_settings(tmp_path / "project", text), db, clock).start()
        try:
            lin = bot.contact("wxid_lin_xiaoyu").id
            plan(bot.database, [lin], occurrence="a")
            bot.deliver()
            lane = bot.worker.lanes["main"]
            assert lane.pacer.slowdown == 1 and _pace_metric("main") == 1

            _record_deletions(bot, 6, clock.now())
            with bot.database.session() as session:  # two complaints in 1:1 chats, one in a group
                for text_ in ("别再发了，骚扰", "再发我就投诉"):
                    session.add(InboundMessage(account_id="main", transport_msg_id=text_, contact_id=lin,
                                               text=text_, sent_at=clock.now(), received_at=clock.now()))  # fmt: skip
            clock.advance(health.CHECK_EVERY)
            with caplog.at_level(logging.WARNING, logger="bot.delivery"):
                plan(bot.database, [lin], occurrence="b")
                bot.deliver()
            # 8 signals over max(2 sends, 200) = 4 %: ×4 (not ×8: fewer than 10 signals)
            assert lane.pacer.slowdown == 4 and _pace_metric("main") == 4
            assert any("pace ×4 slower (was ×1)" in r.getMessage() and "删粉 6" in r.getMessage()
                       for r in caplog.records)  # fmt: skip
            sent = [r.at for r in bot.sent()]
            plan(bot.database, [lin], occurrence="c")
            bot.deliver()
            assert (bot.sent()[-1].at - sent[-1]).total_seconds() >= 40  # 10 s × 4

            clock.advance(health.WINDOW + timedelta(minutes=1))  # the signals age out
            plan(bot.database, [lin], occurrence="d")
            bot.deliver()
            assert lane.pacer.slowdown == 1 and _pace_metric("main") == 1
        finally:
            bot.close()


def test_risk_slowdown_can_be_turned_off(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    text = "[delivery]\nrisk_slowdown = false\ncontact_daily_cap = 100\ncontact_weekly_cap = 100\n"
    with sqlite_database(tmp_path) as db:
        bot = TestBot(make_settings(tmp_path / "project", text), db, clock).start()
        try:
            _record_deletions(bot, 12, clock.now())
            plan(bot.database, [bot.contact("wxid_lin_xiaoyu").id])
            assert len(bot.deliver()) == 1
            assert bot.worker.lanes["main"].pacer.slowdown == 1
        finally:
            bot.close()


def test_a_capped_account_still_tells_its_admins(tmp_path: Path) -> None:
    """The daily cap holds marketing back, not what the admins must hear (a brake, an alert):
    that goes out at the account's interval, caps or not."""
    from bot.retention.notify import tell_each_admin_once
    from bot.wechat.types import Text

    clock = FrozenClock(T0)
    text = WARM + 'admins = ["wxid_lin_xiaoyu"]\n'
    with sqlite_database(tmp_path) as db:
        bot = TestBot(make_settings(tmp_path / "project", text), db, clock).start()
        try:
            plan(bot.database, [c.id for c in bot.contacts()])
            assert bot.run(bot.worker.step("main")).sent == 3  # day 1's cap
            assert bot.run(bot.worker.step("main")).paced
            with bot.database.session() as session:
                assert (
                    tell_each_admin_once(session, bot.settings, "alert:test", "【删粉预警】", clock.now())
                    == 1
                )
            assert bot.run(bot.worker.step("main")).sent == 1
            assert bot.sent()[-1].content == Text("【删粉预警】")
            capped = bot.run(bot.worker.step("main"))  # and nothing else
            assert capped.sent == 0 and capped.paced
        finally:
            bot.close()


def test_sends_refused_as_too_frequent_slow_the_account(tmp_path: Path) -> None:
    """Refusals that read like WeChat limiting the account count as risk signals; other
    transient errors do not."""
    from bot.wechat.transport import TransientSendError

    clock = FrozenClock(T0)
    text = "[delivery]\nmin_interval = 0\njitter = 0\nretry_backoff = 1\ncontact_daily_cap = 100\ncontact_weekly_cap = 100\n"
    with sqlite_database(tmp_path) as db:
        bot = TestBot(make_settings(tmp_path / "project", text), db, clock).start()
        try:
            lane = bot.worker.lanes["main"]
            everyone = [c.id for c in bot.contacts()]
            bot.transport.fail_next(TransientSendError("connection reset"), times=3)
            plan(bot.database, everyone[:3], occurrence="a")
            bot.deliver()
            clock.advance(health.CHECK_EVERY)
            bot.run(bot.worker.step("main"))
            assert lane.refusals.since(T0 - timedelta(days=1)) == 0 and lane.pacer.slowdown == 1
            bot.transport.fail_next(TransientSendError("操作过于频繁，请稍后再试"), times=3)
            plan(bot.database, everyone[3:6], occurrence="b")
            bot.deliver()
            clock.advance(health.CHECK_EVERY)
            bot.run(bot.worker.step("main"))
            assert lane.refusals.since(T0 - timedelta(days=1)) == 3
            assert lane.pacer.slowdown == 2  # 3 signals over max(6 sends, 200) = 1.5 %
        finally:
            bot.close()
