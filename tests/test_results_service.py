"""The daemon keeps the daily rollups up to date: its results service counts what the
pipeline recorded, and a report made right after reads it."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from bot.results.compute import make_report
from bot.results.model import Period
from bot.store.models import DailyRollup
from tests.support import TestBot


def test_the_results_service_counts_what_the_pipeline_recorded(testbot: TestBot) -> None:
    services = testbot.daemon.services
    assert services.results in services.in_start_order()
    testbot.say("wxid_wang_fang", "上新了吗？", room="10002@chatroom")
    testbot.say("wxid_zhou_hao", "在吗？")
    done = testbot.run(services.results.update())
    assert done["inbound"] == 2
    assert sum(testbot.run(services.results.update()).values()) == 0  # nothing new: nothing read

    today = date(2026, 11, 24)
    with testbot.database.session(read_only=True) as session:
        messages = session.execute(
            select(DailyRollup.value).where(DailyRollup.metric == "messages", DailyRollup.day == today)
        ).scalar_one()
    assert messages == 2

    testbot.clock.advance(timedelta(days=2))  # the questions' windows have passed
    report = make_report(
        testbot.database,
        testbot.settings,
        Period(today, today, "2026-11-24"),
        "main",
        now=testbot.clock.now(),
    )
    assert report.days[0].messages == 2
    assert report.success.service.denominator == 1  # 「在吗？」 1:1; the group's question is not service
    assert report.totals.assets_end >= 1
