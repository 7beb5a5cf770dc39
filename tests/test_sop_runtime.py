"""The SOP runtime in the daemon: occurrences fan out into the outbox once, missed runs
follow on_missed/grace with the decision recorded, lifecycle steps follow contact events
(immediately and after restarts), edits reload or are rejected, rooms get group types."""

from __future__ import annotations

import itertools
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.sop.runtime.service import SopService
from bot.store.models import ContactEvent, OutboxMessage, Room, SopRun, TierChange
from tests.signals_kit import cli
from tests.sop_support import write_files
from tests.support import TestBot, make_settings, sqlite_database

START = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai

FILES = {
    "sop/groups.yaml": """
        groups:
          - match: "【精英会员群】*"
            type: 精英会员群
          - match: "【基础客户群】*"
            type: 基础客户群
    """,
    "sop/catalog.yaml": """
        items:
          - {id: a, name: 围巾, price: 399, prices: {koc: 329}}
          - {id: b, name: 面霜, price: 268}
          - {id: c, name: 马甲, price: 459}
    """,
    "sop/daily.yaml": """
        id: daily
        name: 每日好物
        on_missed: catch_up
        grace: 2h
        audience:
          tiers: [复购会员, 品牌KOC]
        steps:
          - id: pick
            daily: "10:00"
            template: pick
    """,
    "sop/weekly.yaml": """
        id: weekly
        name: 每周栏目
        audience:
          to: groups
          group_types: [精英会员群]
        steps:
          - id: plan
            at: "20:00"
            weekly: {mon: monday, wed: wednesday}
    """,
    "sop/welcome.yaml": """
        id: welcome
        name: 欢迎
        category: lifecycle
        on_missed: catch_up
        grace: 6h
        event: friend_added
        steps:
          - id: day0
            after: 0
            template: welcome
          - id: day1
            after: 1d
            at: "10:00"
            template: welcome_day1
    """,
    "templates/default/pick.j2": "{{ contact.display_name }}，今日好物：{{ catalog.first().name }} {{ catalog.first().price }}元",
    "templates/koc/pick.j2": "KOC专享｜{{ contact.display_name }}：{{ catalog.first().name }} {{ catalog.first().price }}元",
    "templates/default/monday.j2": "周一上新｜{{ group.name }}",
    "templates/default/wednesday.j2": "周三会员日｜{{ group.type }}",
    "templates/default/welcome.j2": "你好{{ contact.name }}，送你见面礼\n---\n[链接] 见面礼 | https://x.example/gift | 20元券",
    "templates/default/welcome_day1.j2": "{{ contact.name }}，第{{ contact.days_since_joined }}天好",
}


class SopBot:
    """A testbot whose project has SOP files; restartable on the same database."""

    def __init__(self, root: Path, clock: FrozenClock) -> None:
        self.root = root
        self.clock = clock
        self.settings = make_settings(root / "project", f'database_url = "sqlite:///{root / "sopbot.db"}"\n')
        self._db_cm = sqlite_database(root)
        self.database = self._db_cm.__enter__()
        self.bot: TestBot | None = None

    def start(self) -> SopBot:
        self.bot = TestBot(self.settings, self.database, self.clock).start()
        return self

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.bot is not None:
            # Daemon.stop disposes the engine; the database object stays usable.
            self.bot.close()
            self.bot = None

    @property
    def service(self) -> SopService:
        assert self.bot is not None
        return self.bot.daemon.services.sop

    def tick(self) -> list:
        assert self.bot is not None
        return self.bot.run(self.service.tick())

    def outbox(self, sop: str | None = None) -> list[OutboxMessage]:
        with self.database.session(read_only=True) as session:
            query = select(OutboxMessage).order_by(OutboxMessage.id)
            if sop:
                query = query.where(OutboxMessage.sop_id == sop)
            return list(session.execute(query).scalars())

    def runs(self, sop: str | None = None) -> list[SopRun]:
        with self.database.session(read_only=True) as session:
            query = select(SopRun).order_by(SopRun.id)
            if sop:
                query = query.where(SopRun.sop_id == sop)
            return list(session.execute(query).scalars())


@pytest.fixture
def sopbot(tmp_path: Path) -> Iterator[SopBot]:
    write_files(tmp_path / "project", FILES)
    clock = FrozenClock(START)
    bot = SopBot(tmp_path, clock).start()
    try:
        yield bot
    finally:
        bot.stop()
        bot._db_cm.__exit__(None, None, None)


def test_daily_occurrence_fans_out_once_per_recipient_with_tier_voices(sopbot: SopBot) -> None:
    assert sopbot.tick() == []  # 09:00: nothing due yet
    sopbot.clock.set(START + timedelta(hours=1))
    sopbot.tick()
    rows = sopbot.outbox("daily")
    assert len(rows) == 8  # 4 复购会员 + 4 品牌KOC in the sandbox
    assert {r.occurrence for r in rows} == {"2026-11-23T10:00"}
    assert all(r.key == f"sop:daily:pick:2026-11-23T10:00:contact:{r.contact_id}" for r in rows)
    texts = {r.payload[0]["text"] for r in rows}
    assert any(t.startswith("KOC专享｜王芳：") and t.endswith(" 329元") for t in texts) or any(
        t.startswith("KOC专享｜") for t in texts
    )
    assert any(t.startswith("郭美，今日好物：") for t in texts)
    (run,) = sopbot.runs("daily")
    assert (run.occurrence, run.decision, run.planned) == ("2026-11-23T10:00", "ran", 8)
    # a second tick, a restart and a re-run plan nothing more
    sopbot.tick()
    sopbot.restart()
    sopbot.tick()
    assert len(sopbot.outbox("daily")) == 8
    assert len(sopbot.runs("daily")) == 1


def test_catalog_rotation_never_repeats_yesterdays_pick(sopbot: SopBot) -> None:
    picks = []
    for day in range(4):
        sopbot.clock.set(START + timedelta(days=day, hours=1))
        sopbot.tick()
        rows = [r for r in sopbot.outbox("daily") if r.occurrence.startswith(f"2026-11-{23 + day}")]
        picks.append({r.payload[0]["text"].split("：")[1].split()[0] for r in rows})
    for today, tomorrow in itertools.pairwise(picks):
        assert len(today) == 1
        assert today != tomorrow


def test_weekly_steps_use_the_weekday_template_and_group_types(sopbot: SopBot) -> None:
    sopbot.clock.set(START + timedelta(hours=11))  # Monday 20:00
    sopbot.tick()
    (monday,) = sopbot.outbox("weekly")
    assert monday.payload[0]["text"] == "周一上新｜【精英会员群】小美VIP会员专享"
    assert monday.room_id is not None and monday.contact_id is None
    sopbot.clock.set(START + timedelta(days=1, hours=11))  # Tuesday: nothing
    sopbot.tick()
    assert len(sopbot.outbox("weekly")) == 1
    sopbot.clock.set(START + timedelta(days=2, hours=11))  # Wednesday
    sopbot.tick()
    assert sopbot.outbox("weekly")[-1].payload[0]["text"] == "周三会员日｜精英会员群"


def test_rooms_get_their_group_type_at_sync(sopbot: SopBot) -> None:
    with sopbot.database.session(read_only=True) as session:
        types = dict(session.execute(select(Room.topic, Room.group_type)).all())
    assert types["【精英会员群】小美VIP会员专享"] == "精英会员群"
    assert types["【基础客户群】小美好物分享1群"] == "基础客户群"
    assert types["【分销群】小美推广大使"] is None


def test_missed_occurrence_is_caught_up_within_grace(sopbot: SopBot) -> None:
    sopbot.clock.set(START + timedelta(hours=1))
    sopbot.tick()  # Monday 10:00 ran
    sopbot.stop()
    sopbot.clock.set(START + timedelta(days=2, hours=2, minutes=30))  # Wednesday 11:30, down since Monday
    sopbot.start()
    runs = [(r.occurrence, r.decision) for r in sopbot.runs("daily")]
    assert runs == [
        ("2026-11-23T10:00", "ran"),
        ("2026-11-24T10:00", "skipped_missed"),
        ("2026-11-25T10:00", "caught_up"),
    ]
    details = {r.occurrence: r.detail for r in sopbot.runs("daily")}
    assert details["2026-11-24T10:00"] == "25h late, beyond grace 2h"
    assert details["2026-11-25T10:00"] == "90m late, within grace 2h"
    assert len([r for r in sopbot.outbox("daily") if r.occurrence == "2026-11-25T10:00"]) == 8


def test_missed_occurrence_beyond_grace_is_skipped_and_recorded(sopbot: SopBot) -> None:
    sopbot.clock.set(START + timedelta(hours=1))
    sopbot.tick()
    sopbot.stop()
    sopbot.clock.set(START + timedelta(days=1, hours=5))  # Tuesday 14:00, grace is 2h
    sopbot.start()
    last = sopbot.runs("daily")[-1]
    assert (last.occurrence, last.decision, last.planned) == ("2026-11-24T10:00", "skipped_missed", 0)
    assert last.detail == "4h late, beyond grace 2h"
    assert not [r for r in sopbot.outbox("daily") if r.occurrence == "2026-11-24T10:00"]


def test_welcome_day0_is_immediate_and_day1_follows_from_the_ledger(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    sopbot.bot.request_friend("wxid_new_qiao", "乔悦", "你好")
    rows = sopbot.outbox("welcome")
    assert len(rows) == 1
    assert rows[0].step_id == "day0" and rows[0].category == "lifecycle"
    assert [p["type"] for p in rows[0].payload] == ["text", "link"]
    assert rows[0].payload[0]["text"] == "你好乔悦，送你见面礼"
    # day 1 at 10:00 survives a restart: it comes from contact_events, not memory
    sopbot.restart()
    sopbot.clock.set(START + timedelta(days=1, hours=1))  # Tuesday 10:00
    sopbot.tick()
    day1 = [r for r in sopbot.outbox("welcome") if r.step_id == "day1"]
    assert len(day1) == 1 and day1[0].payload[0]["text"] == "乔悦，第1天好"
    sopbot.tick()
    assert len(sopbot.outbox("welcome")) == 2


def test_lifecycle_after_long_downtime_is_recorded_as_missed(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    sopbot.bot.request_friend("wxid_new_ye", "叶子", "")
    sopbot.stop()
    sopbot.clock.set(START + timedelta(days=2))  # day1 was due Tuesday 10:00, grace 6h
    sopbot.start()
    run = next(r for r in sopbot.runs("welcome") if r.step_id == "day1")
    assert run.decision == "skipped_missed"
    assert run.detail == "23h late"
    with sopbot.database.session(read_only=True) as session:
        event_id = session.execute(
            select(ContactEvent.id).where(
                ContactEvent.kind == "friend_added", ContactEvent.detail == "request"
            )
        ).scalar()  # (the friends of the login sync have friend_added events too: source sync)
    assert run.occurrence == f"ev{event_id}"


def test_an_invalid_edit_is_rejected_and_the_previous_version_keeps_running(
    sopbot: SopBot, caplog: pytest.LogCaptureFixture
) -> None:
    assert sopbot.bot is not None
    daily = sopbot.settings.sop_path / "daily.yaml"
    daily.write_text(daily.read_text(encoding="utf-8").replace('"10:00"', '"25:00"'), encoding="utf-8")
    with caplog.at_level(logging.ERROR, logger="bot.sop"):
        assert sopbot.bot.run(sopbot.service.reload()) is False
    assert "sop/daily.yaml:9: steps[0].daily: '25:00' is not a time" in caplog.text.replace(
        str(sopbot.settings.base_dir) + "/", ""
    )
    sopbot.clock.set(START + timedelta(hours=1))
    sopbot.tick()
    assert len(sopbot.outbox("daily")) == 8  # the old version ran at 10:00


def test_a_valid_edit_is_reloaded(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    daily = sopbot.settings.sop_path / "daily.yaml"
    daily.write_text(daily.read_text(encoding="utf-8").replace('"10:00"', '"09:30"'), encoding="utf-8")
    (sopbot.settings.templates_path / "default" / "pick.j2").write_text(
        "新话术 {{ contact.name }}", encoding="utf-8"
    )
    assert sopbot.bot.run(sopbot.service.reload()) is True
    job = sopbot.service.scheduler.get_job("sop:daily:pick")
    assert job is not None
    sopbot.clock.set(START + timedelta(minutes=30))
    sopbot.tick()
    rows = sopbot.outbox("daily")
    assert {r.occurrence for r in rows} == {"2026-11-23T09:30"}
    assert any(r.payload[0]["text"] == "新话术 郭美" for r in rows)


def test_scheduler_jobs_use_explicit_weekday_numbers(sopbot: SopBot) -> None:
    job = sopbot.service.scheduler.get_job("sop:weekly:plan")
    assert job is not None
    fire = job.trigger.get_next_fire_time(None, START)
    assert fire.astimezone(sopbot.settings.tz).strftime("%a %H:%M") == "Mon 20:00"
    after = job.trigger.get_next_fire_time(None, fire + timedelta(minutes=1))
    assert after.astimezone(sopbot.settings.tz).strftime("%a %H:%M") == "Wed 20:00"


def test_second_scheduler_plans_nothing_twice(sopbot: SopBot) -> None:
    from bot.sop.runtime.ledger import RunDecision
    from bot.sop.runtime.occurrences import execute

    sopbot.clock.set(START + timedelta(hours=1))
    sopbot.tick()
    sopset = sopbot.service.sopset
    assert sopset is not None
    sop = sopset.sops["daily"]
    again = execute(
        sopbot.database,
        sopset,
        sop,
        sop.steps[0],
        START + timedelta(hours=1),
        RunDecision.RAN,
        sopbot.clock.now(),
    )
    assert again.decision is None
    assert len(sopbot.outbox("daily")) == 8


def test_plan_counts_match_what_the_daemon_plans(sopbot: SopBot) -> None:
    from bot.sop.runtime.audience import load_directory
    from bot.sop.views.plan import plan

    sopset = sopbot.service.sopset
    assert sopset is not None
    with sopbot.database.session(read_only=True) as session:
        entries = plan(sopset, load_directory(session, sopset.groups), START.date(), 1)
    planned = {(e.sop.id, e.step.id): e for e in entries}
    daily = planned[("daily", "pick")]
    assert dict(daily.counts) == {"复购会员": 4, "品牌KOC": 4}
    assert dict(planned[("weekly", "plan")].counts) == {"【精英会员群】小美VIP会员专享": 1}
    for hours in (1, 11):  # 10:00 and 20:00
        sopbot.clock.set(START + timedelta(hours=hours))
        sopbot.tick()
    assert len(sopbot.outbox("daily")) == daily.total
    assert len(sopbot.outbox("weekly")) == planned[("weekly", "plan")].total


def test_tiers_read_from_wechat_tags_count_except_where_a_contact_starts(tmp_path: Path) -> None:
    """The first sync places the demo's tagged KOCs at 品牌KOC: that is where they start, not
    news, so KOC care does not fire (the moves are in the history). A later WeChat tag on a
    contact sopbot already knows is a tier change like any other: KOC care fires."""
    files = {
        "sop/koc.yaml": """
            id: koc_care
            name: KOC关怀
            category: lifecycle
            event: {kind: tier_changed, to: 品牌KOC}
            steps:
              - id: thanks
                after: 0
                template: koc_thanks
        """,
        "templates/default/koc_thanks.j2": "{{ contact.name }}，感谢你一直推荐我们",
    }
    write_files(tmp_path / "project", files)
    bot = SopBot(tmp_path, FrozenClock(START)).start()
    try:
        kocs = [c for c in bot.bot.contacts() if c.tier == "koc"]  # type: ignore[union-attr]
        assert len(kocs) == 4
        with bot.database.session(read_only=True) as s:
            moves = s.execute(select(TierChange).where(TierChange.to_tier == "koc")).scalars().all()
            assert {m.contact_id for m in moves} == {c.id for c in kocs}  # recorded, with the cause
            assert all(m.cause.startswith("微信标签：品牌KOC") and m.evidence_ref == "initial" for m in moves)
        bot.tick()
        assert bot.outbox("koc_care") == []
        # later, the operator tags a known customer 品牌KOC in WeChat; the next sync sees it
        assert bot.bot is not None
        lin = bot.bot.contact("wxid_lin_xiaoyu")
        bot.bot.run(bot.bot.transport.add_tag("wxid_lin_xiaoyu", "品牌KOC"))
        bot.bot.run(bot.bot.transport.start(bot.bot.daemon.accounts["main"].pipeline.submit))
        bot.bot.settle()
        assert bot.bot.contact("wxid_lin_xiaoyu").tier == "koc"
        [row] = bot.outbox("koc_care")
        assert row.contact_id == lin.id and row.payload[0]["text"] == "林小雨，感谢你一直推荐我们"
    finally:
        bot.stop()
        bot._db_cm.__exit__(None, None, None)


def _rename_table(database_path: Path, old: str, new: str) -> None:
    with sqlite3.connect(database_path, timeout=60) as connection:
        connection.execute(f"ALTER TABLE {old} RENAME TO {new}")


def test_a_failed_occurrence_is_recorded_shown_and_retried_within_its_grace(
    sopbot: SopBot, tmp_path: Path
) -> None:
    """The outbox table is gone when 10:00 comes (a real fault, not a mock): the daily
    occurrence fails, the failure is in the run ledger with the error and in `sopbot outbox`;
    a few minutes later, with the table back, the retry plans it (within its 2 h grace)."""
    sopbot.clock.set(START + timedelta(hours=1))  # 10:00 in Shanghai
    _rename_table(tmp_path / "sopbot.db", "outbox", "outbox_away")
    results = sopbot.tick()
    [failed] = [r for r in results if r.sop_id == "daily"]
    assert (
        failed.decision is not None
        and failed.decision.value == "failed"
        and "outbox" in (failed.detail or "")
    )
    [run] = sopbot.runs("daily")
    assert (run.decision, run.attempts) == ("failed", 1) and "no such table: outbox" in (run.detail or "")
    _rename_table(tmp_path / "sopbot.db", "outbox_away", "outbox")
    code, output = cli(sopbot.settings, "outbox", "--sop", "daily")
    assert code == 0
    assert "SOP FAILED daily/pick @ 2026-11-23T10:00 (try 1)" in output, output
    sopbot.clock.advance(timedelta(minutes=10))
    sopbot.tick()
    [run] = sopbot.runs("daily")
    assert (run.decision, run.attempts, run.planned) == ("caught_up", 2, 8)
    assert len(sopbot.outbox("daily")) == 8


def test_a_failed_occurrence_past_its_grace_is_recorded_as_missed(sopbot: SopBot, tmp_path: Path) -> None:
    sopbot.clock.set(START + timedelta(hours=1))
    _rename_table(tmp_path / "sopbot.db", "outbox", "outbox_away")
    sopbot.tick()
    _rename_table(tmp_path / "sopbot.db", "outbox_away", "outbox")
    sopbot.clock.advance(timedelta(hours=3))  # the daily SOP's grace is 2 h
    sopbot.tick()
    [run] = [r for r in sopbot.runs("daily") if r.occurrence == "2026-11-23T10:00"]
    assert run.decision == "skipped_missed" and "not retried after its grace 2h" in (run.detail or "")
    assert sopbot.outbox("daily") == []


NIGHT_SOPS = {
    "sop/night_skip.yaml": """
        id: night_skip
        name: 夜间提醒（过时不候）
        quiet_policy: skip
        guarantee: at_least_once
        audience:
          tiers: [复购会员, 品牌KOC]
        steps:
          - id: s
            daily: "23:00"
            template: pick
    """,
    "sop/night_wait.yaml": """
        id: night_wait
        name: 夜间提醒（等到早上）
        audience:
          tiers: [复购会员, 品牌KOC]
        steps:
          - id: s
            daily: "23:00"
            template: pick
    """,
}


def test_per_sop_quiet_policy_and_guarantee_reach_the_outbox_and_the_worker(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    write_files(sopbot.settings.base_dir, NIGHT_SOPS)
    code, output = cli(sopbot.settings, "check")
    assert code == 0, output  # both keys are known to `check`
    assert sopbot.bot.run(sopbot.service.reload()) is True
    sopbot.clock.set(datetime(2026, 11, 23, 15, 0, tzinfo=UTC))  # 23:00 in Shanghai
    sopbot.tick()
    skip, wait = sopbot.outbox("night_skip"), sopbot.outbox("night_wait")
    assert skip and len(skip) == len(wait)
    assert {(r.quiet_policy, r.guarantee) for r in skip} == {("skip", "at_least_once")}
    assert {(r.quiet_policy, r.guarantee) for r in wait} == {("wait", "at_most_once")}
    assert sopbot.bot.deliver(max_wait=timedelta(0)) == []
    skip, wait = sopbot.outbox("night_skip"), sopbot.outbox("night_wait")
    assert {(r.state, r.reason) for r in skip} == {("skipped", "inside quiet hours 22:00-08:00")}
    assert {r.state for r in wait} == {"planned"}
    assert {r.not_before.replace(tzinfo=UTC) for r in wait} == {
        datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    }  # 08:00
