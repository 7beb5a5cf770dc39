"""Whom an SOP run left out and why: a contact who said 退订 (or blocked us) is not sent
to, and the run's ledger entry counts them by reason; `sopbot outbox` shows the counts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.clock import FrozenClock
from bot.sop.runtime.audience import LeftOut
from bot.sop.runtime.ledger import (
    RunDecision,
    finish,
    left_out_note,
    read_left_out,
    record_occurrence,
    run_totals,
)
from bot.store.models import Contact
from tests.signals_kit import REPO, cli
from tests.sop_support import write_files
from tests.support import sqlite_database
from tests.test_sop_runtime import FILES, START, SopBot


@pytest.fixture
def sopbot(tmp_path: Path) -> Iterator[SopBot]:
    """The SOP runtime suite's project, with the shipped tag rules and reply templates."""
    project = tmp_path / "project"
    write_files(project, FILES)
    shutil.copy(REPO / "sop" / "tags.yaml", project / "sop" / "tags.yaml")
    for template in (REPO / "templates" / "default").glob("reply_*.j2"):
        shutil.copy(template, project / "templates" / "default")
    bot = SopBot(tmp_path, FrozenClock(START)).start()
    try:
        yield bot
    finally:
        bot.stop()
        bot._db_cm.__exit__(None, None, None)


def test_a_run_counts_whom_it_left_out_and_the_outbox_shows_it(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    audience = [c for c in sopbot.bot.contacts() if c.tier in ("repeat", "koc")]
    assert len(audience) == 8  # the daily SOP's 复购会员 and 品牌KOC
    said_td, blocked_us = audience[0], audience[1]
    sopbot.bot.say(said_td.wxid, "退订。")
    sopbot.bot.say("wxid_lin_xiaoyu", "ＴＤ")  # opted out too, but not in the daily audience
    with sopbot.database.session() as session:
        session.execute(update(Contact).where(Contact.id == blocked_us.id).values(blocked=True))

    sopbot.clock.set(START + timedelta(hours=1))  # Monday 10:00
    sopbot.tick()
    (run,) = sopbot.runs("daily")
    assert run.planned == 6
    assert run.detail == "left out 2: 1 opted out, 1 blocked"
    assert read_left_out(run.detail) == {LeftOut.OPTED_OUT: 1, LeftOut.BLOCKED: 1}
    assert {r.contact_id for r in sopbot.outbox("daily")}.isdisjoint({said_td.id, blocked_us.id})

    code, listing = cli(sopbot.settings, "outbox")
    assert code == 0, listing
    assert "SOP runs 1: 6 planned; left out 2: 1 opted out, 1 blocked" in listing
    assert "daily/pick @ 2026-11-23T10:00: left out 2: 1 opted out, 1 blocked" in listing
    # the runs line obeys --sop and --since
    weekly = cli(sopbot.settings, "outbox", "--sop", "welcome")[1]
    assert "left out" not in weekly
    assert "SOP runs" not in cli(sopbot.settings, "outbox", "--since", "2999-01-01")[1]
    # runs have no account or recipient: not summed up for one
    assert "SOP runs" not in cli(sopbot.settings, "outbox", "--account", "main")[1]


def test_nobody_left_out_says_so(sopbot: SopBot) -> None:
    sopbot.clock.set(START + timedelta(hours=1))
    sopbot.tick()
    (run,) = sopbot.runs("daily")
    assert run.detail is None and read_left_out(run.detail) == {}
    assert "SOP runs 1: 8 planned; nobody left out" in cli(sopbot.settings, "outbox")[1]


def test_a_lifecycle_step_for_someone_who_opted_out_says_why(sopbot: SopBot) -> None:
    assert sopbot.bot is not None
    sopbot.bot.request_friend("wxid_new_qiao", "乔悦", "你好")
    sopbot.bot.say("wxid_new_qiao", "不要再发了！")
    assert sopbot.bot.contact("wxid_new_qiao").opted_out
    sopbot.clock.set(START + timedelta(days=1, hours=1))  # Tuesday 10:00: day 1 of the welcome
    sopbot.tick()
    day1 = next(r for r in sopbot.runs("welcome") if r.step_id == "day1")
    assert (day1.planned, day1.detail) == (0, "left out 1: 1 opted out")
    assert not [r for r in sopbot.outbox("welcome") if r.step_id == "day1"]


def test_the_note_reads_back_whatever_else_the_detail_says() -> None:
    note = left_out_note({LeftOut.BLOCKED: 2, LeftOut.OPTED_OUT: 3})
    assert note == "left out 5: 3 opted out, 2 blocked"
    assert left_out_note({LeftOut.OPTED_OUT: 0}) is None
    detail = f"90m late, within grace 2h; {note}; 1 already in the outbox"
    assert read_left_out(detail) == {LeftOut.OPTED_OUT: 3, LeftOut.BLOCKED: 2}
    assert read_left_out("resumed after a stop") == {}


def test_the_totals_sum_every_run_and_list_the_five_newest_that_left_someone_out(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as database, database.session() as session:
        for day in range(1, 8):
            occurrence, at = f"2026-11-0{day}T10:00", START + timedelta(days=day)
            record_occurrence(session, "daily", "pick", occurrence, RunDecision.RAN, at)
            note = left_out_note({LeftOut.OPTED_OUT: day}) if day != 4 else None
            finish(session, "daily", "pick", occurrence, 10, note, at)
        totals = run_totals(session, None)
        assert (totals.runs, totals.planned) == (7, 70)
        assert totals.left_out == {LeftOut.OPTED_OUT: 1 + 2 + 3 + 5 + 6 + 7}
        assert [run.occurrence[:10] for run in totals.leaving_out] == [
            "2026-11-07", "2026-11-06", "2026-11-05", "2026-11-03", "2026-11-02",
        ]  # fmt: skip
        assert run_totals(session, START + timedelta(days=6)).runs == 2
        assert run_totals(session, None, "weekly").runs == 0
