"""Loss alerts (删粉预警, docs/retention.md): deletions piling up on an account within an hour
or a day, or after one SOP's messages, alert the admins in WeChat once per spike: 30
deletions in an hour are one alert, two bursts with quiet between them are two."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.clock import FrozenClock
from bot.retention import store
from bot.retention.alerts import check_alerts
from bot.retention.spikes import crossings, spikes
from bot.store import Database
from bot.store.models import Alert, Contact, OutboxMessage
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.types import Text
from tests.signals_kit import cli
from tests.support import TestBot, make_settings, outbox_rows, sqlite_database
from tests.test_results_metrics import History

ADMIN = "wxid_wang_fang"
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
HOUR = timedelta(hours=1)
SETTINGS = f"""
[delivery]
admins = ["{ADMIN}"]
quiet_hours = "00:00-00:00"
min_interval = 0
jitter = 0

[tiers]
mirror_to_wechat = false

[retention]
alert_hour = 5
alert_day = 20
alert_sop = 5
"""


# -- spikes, from the times alone -------------------------------------------------------------


def minutes(*values: int) -> list[tuple[datetime, int]]:
    return [(T0 + timedelta(minutes=m), index) for index, m in enumerate(values, start=1)]


def test_thirty_deletions_in_an_hour_are_one_spike() -> None:
    found = crossings(minutes(*range(0, 60, 2)), HOUR, 5)
    assert [c.ref for c in found] == list(range(5, 31))  # the 5th deletion crossed, then each one
    (spike,) = spikes(found, HOUR, None)
    assert (spike.first.ref, spike.last.ref, spike.peak, spike.continues) == (5, 30, 30, False)


def test_two_bursts_with_quiet_between_them_are_two_spikes() -> None:
    found = crossings(minutes(0, 1, 2, 3, 4, 5, 240, 241, 242, 243, 244), HOUR, 5)
    first, second = spikes(found, HOUR, None)
    assert (first.first.ref, first.peak, second.first.ref, second.peak) == (5, 6, 11, 5)
    # a spike an earlier alert covered up to its 6th deletion: only the second one is new
    (new,) = spikes(found, HOUR, T0 + timedelta(minutes=5))
    assert (new.first.ref, new.continues) == (11, False)
    # … and up to its 5th: the 6th continues it
    going_on, new = spikes(found, HOUR, T0 + timedelta(minutes=4))
    assert (going_on.continues, going_on.last.ref, new.continues) == (True, 6, False)


def test_a_steady_stream_at_the_threshold_is_one_spike_not_one_per_deletion() -> None:
    found = crossings(minutes(*range(0, 600, 12)), HOUR, 5)  # one every 12 min for 10 h
    assert len(found) > 40 and len(spikes(found, HOUR, None)) == 1


@given(st.lists(st.integers(0, 3 * 24 * 60), max_size=60), st.integers(1, 8), st.sampled_from([60, 24 * 60]))
def test_looking_every_time_alerts_the_same_spikes_as_one_look_at_the_end(
    offsets: list[int], threshold: int, window_minutes: int
) -> None:
    """The service looks every minute: however often it looks, each spike is alerted once
    (the store keeps how far the latest alert's spike reached)."""
    deletions = minutes(*sorted(offsets))
    window = timedelta(minutes=window_minutes)
    once = [s.first.ref for s in spikes(crossings(deletions, window, threshold), window, None)]
    alerted: list[int] = []
    covered: datetime | None = None
    for at, _ in deletions:  # a look right after each deletion
        seen = [d for d in deletions if d[0] <= at]
        fresh = [c for c in crossings(seen, window, threshold) if c.at > at - window]
        for spike in spikes(fresh, window, covered):
            if not spike.continues:
                alerted.append(spike.first.ref)
            covered = spike.last.at
    assert alerted == once


# -- alerts on the store, SQLite and PostgreSQL ------------------------------------------------


def test_a_spike_is_recorded_and_sent_once_whoever_looks(database: Database, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "p", SETTINGS)
    h = History(database)
    h.account("main")
    h.contact(100, wxid=ADMIN, name="王芳")
    for cid in range(1, 13):
        h.contact(cid)
    row = iter(range(1000, 1100))  # ids clear of the outbox's own sequence (PostgreSQL)
    for cid in range(1, 13):  # the SOP's message at 10:00, then a deletion every 5 min from 10:10
        h.send(next(row), to=cid, sop="flash", planned=T0, sent=T0)
        h.event(cid, "friend_deleted", T0 + timedelta(minutes=5 + 5 * cid), "transport")
    now = T0 + timedelta(hours=2)
    first = check_alerts(database, settings, now)
    assert sorted(a.kind for a in first) == ["account_hour", "sop_day"]
    assert check_alerts(database, settings, now) == []  # a second look (another daemon)
    assert check_alerts(database, settings, now + timedelta(minutes=10)) == []
    with database.session(read_only=True) as session:
        alerts = {a.kind: a for a in store.recent_alerts(session)}
        told = (
            session.execute(select(OutboxMessage.key).where(OutboxMessage.key.like("alert:%")))
            .scalars()
            .all()
        )
    hour = alerts["account_hour"]
    # the 5th deletion (10:30) brought the hour to 5; by 11:05 the hour held all 12 (10:10 … 11:05)
    assert hour.key.startswith("account_hour:main:") and hour.count == 12 and hour.threshold == 5
    assert (hour.window_start, hour.window_end) == (T0 + timedelta(minutes=10), T0 + timedelta(minutes=65))
    assert hour.message.splitlines()[:2] == [
        "【删粉预警】账号 main：1 小时内删粉 12 人（预警线 5）",
        "11-24 10:10–11:05；24 小时内的末次触达：flash 12",
    ]
    assert alerts["sop_day"].sop_id == "flash" and alerts["sop_day"].message.startswith(
        "【删粉预警】SOP flash：发送后 24 小时内删粉，24 小时内 12 人（预警线 5）"
    )
    assert sorted(key.split(":")[1] for key in told) == ["account_hour", "sop_day"]  # one message each


def test_the_next_spike_after_a_quiet_spell_alerts_again(database: Database, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "p", SETTINGS)
    h = History(database)
    h.account("main")
    for cid in range(1, 13):
        h.contact(cid)
    for cid in range(1, 7):  # 10:00 … 10:05
        h.event(cid, "friend_deleted", T0 + timedelta(minutes=cid - 1), "transport")
    assert [a.kind for a in check_alerts(database, settings, T0 + timedelta(minutes=6))] == ["account_hour"]
    for cid in range(7, 13):  # 14:00 … 14:05
        h.event(cid, "friend_deleted", T0 + timedelta(hours=4, minutes=cid - 7), "transport")
    later = check_alerts(database, settings, T0 + timedelta(hours=4, minutes=6))
    assert [a.kind for a in later] == ["account_hour"]
    with database.session(read_only=True) as session:
        assert len([a for a in store.recent_alerts(session) if a.kind == "account_hour"]) == 2


# -- in WeChat, through the running bot -----------------------------------------------------


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[TestBot]:
    """The testbot with 60 quiet synthetic contacts who can be made to delete the account."""
    settings = make_settings(
        tmp_path / "project", f'database_url = "sqlite:///{tmp_path / "sopbot.db"}"\n' + SETTINGS
    )
    clock = FrozenClock(T0)
    with sqlite_database(tmp_path) as database:
        transport = SandboxTransport("main", clock=clock, seed=settings.sandbox.seed, extra_contacts=60)
        testbot = TestBot(settings, database, clock, transport).start()
        try:
            yield testbot
        finally:
            testbot.close()


def leave(bot: TestBot, numbers: range, every: timedelta) -> None:
    """Synthetic contacts delete the account one after the other; the service looks after each."""
    for number in numbers:
        bot.clock.advance(every)
        bot.run(bot.transport.unfriend(f"wxid_demo_{number:06d}"))
        bot.settle()
        bot.daemon.services.retention.check(bot.clock.now())


def admin_alerts(bot: TestBot) -> list[str]:
    bot.deliver()
    sent = [s for s in bot.transport.sent_to(ADMIN) if (s.ref or "").startswith("alert:")]
    assert all(isinstance(s.content, Text) for s in sent)
    return [s.content.text for s in sent if isinstance(s.content, Text)]


def test_thirty_deletions_in_one_hour_send_one_hour_alert(bot: TestBot) -> None:
    leave(bot, range(1, 31), timedelta(minutes=2))
    texts = admin_alerts(bot)
    hour = [t for t in texts if "1 小时内删粉" in t]
    day = [t for t in texts if "24 小时内删粉" in t]
    assert len(hour) == 1 and hour[0].startswith("【删粉预警】账号 main：1 小时内删粉 5 人（预警线 5）")
    assert len(day) == 1 and day[0].startswith("【删粉预警】账号 main：24 小时内删粉 20 人（预警线 20）")
    with bot.database.session(read_only=True) as session:
        hour_alert = session.execute(select(Alert).where(Alert.kind == "account_hour")).scalar_one()
    assert hour_alert.count == 30  # the spike went on: the alert's count followed it, silently
    code, output = cli(bot.settings, "sop", "alerts")
    assert code == 0
    assert "2026-11-24 10:40  account_day main: 30 (threshold 20)" in output
    assert "2026-11-24 10:10  account_hour main: 30 (threshold 5)" in output
    assert "    【删粉预警】账号 main：1 小时内删粉 5 人（预警线 5）" in output


def test_two_spikes_separated_by_quiet_send_two_alerts(bot: TestBot) -> None:
    leave(bot, range(1, 7), timedelta(minutes=1))
    bot.clock.advance(timedelta(hours=3))
    bot.daemon.services.retention.check(bot.clock.now())  # quiet
    leave(bot, range(7, 13), timedelta(minutes=1))
    hour = [t for t in admin_alerts(bot) if "1 小时内删粉" in t]
    assert len(hour) == 2


def test_admins_are_told_only_where_a_message_can_reach_them(
    testbot: TestBot, caplog: pytest.LogCaptureFixture
) -> None:
    """An admin known only as a group member, or who deleted the account, is no one to write
    to: the notice is not planned where it would be skipped, and the log says so."""
    from bot.retention.notify import tell_each_admin_once

    delivery = testbot.settings.delivery.model_copy(update={"admins": ["wxid_lin_xiaoyu", "wxid_zhou_hao"]})
    settings = testbot.settings.model_copy(update={"delivery": delivery})
    now = testbot.clock.now()
    with testbot.database.session() as session:
        session.execute(update(Contact).where(Contact.wxid == "wxid_zhou_hao").values(is_friend=False))
    with caplog.at_level(logging.WARNING, logger="bot.retention"), testbot.database.session() as session:
        assert tell_each_admin_once(session, settings, "test:1", "删粉预警", now) == 1
    rows = [r for r in outbox_rows(testbot.database) if r.key.startswith("test:1")]
    assert [r.contact_id for r in rows] == [testbot.contact("wxid_lin_xiaoyu").id]
    assert any("admin wxid_zhou_hao is no friend of any account" in r.getMessage() for r in caplog.records)
    with testbot.database.session() as session:
        session.execute(update(Contact).where(Contact.wxid == "wxid_lin_xiaoyu").values(blocked=True))
    with testbot.database.session() as session:
        assert tell_each_admin_once(session, settings, "test:2", "删粉预警", now) == 0
