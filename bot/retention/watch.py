"""The brake at work: count what followed each SOP's messages, judge, and pause an SOP that
drives people away; its admins are told once per trip, and the log says it (WARNING)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.config.settings import Settings
from bot.retention import store
from bot.retention.brake import BrakeRule, SopCounts, judge
from bot.retention.counting import LOOKBACK, count_sops
from bot.retention.notify import tell_each_admin_once
from bot.store import Database

log = logging.getLogger("bot.retention")


@dataclass(frozen=True)
class Trip:
    """An SOP this look paused."""

    sop_id: str
    reason: str
    counts: SopCounts
    since: datetime
    told: int  # admin messages planned


def check_brakes(database: Database, settings: Settings, now: datetime) -> list[Trip]:
    """One look: every SOP not braked yet is counted and judged; those that trip are paused."""
    with database.session(read_only=True) as session:
        braked = {brake.sop_id for brake in store.braked_sops(session)}
        watched = count_sops(session, settings, now, skip=braked)
    rule = BrakeRule.of(settings.retention)
    trips = []
    for item in watched:
        verdict = judge(item.counts, rule)
        if not verdict.trips:
            continue
        with database.session(background=True) as session:
            if not store.trip(session, item.sop_id, verdict.reason, item.counts, now, item.since):
                continue  # another daemon was first, or an operator resumed it meanwhile
            waiting = store.waiting_rows(session, item.sop_id)
            counted = since_text(item.since, now, settings.tz)
            text = brake_text(item.sop_id, _name(settings, item.sop_id), verdict.reason, counted, waiting)
            key = f"brake:{item.sop_id}:{now.astimezone(ZoneInfo('UTC')):%Y%m%dT%H%M%S}"
            told = tell_each_admin_once(session, settings, key, text, now)
        log.warning(
            "SOP %s BRAKED (paused automatically): %s; %d queued messages wait until "
            "`sopbot sop resume %s` (or #恢复 %s from an admin); %d admin message(s) planned",
            item.sop_id, verdict.reason, waiting, item.sop_id, item.sop_id, told,
        )  # fmt: skip
        trips.append(Trip(item.sop_id, verdict.reason, item.counts, item.since, told))
    return trips


def since_text(since: datetime, now: datetime, tz: ZoneInfo) -> str:
    """Which sends were counted: the last week's, or those since the last resume."""
    if since <= now - LOOKBACK:
        return "最近 7 天的一对一发送"
    return f"{since.astimezone(tz):%m-%d %H:%M} 恢复以来的一对一发送"


def brake_text(sop_id: str, name: str, reason: str, counted: str, waiting: int) -> str:
    """What the admins read on their phones."""
    title = f"{name}（{sop_id}）" if name and name != sop_id else sop_id
    return "\n".join(
        [
            f"【SOP 自动暂停】{title}",
            f"原因：{reason}（{counted}）",
            f"待发的 {waiting} 条消息留在发件箱，不会丢弃；恢复后按节奏发出（已过期的跳过）。",
            f"检查话术后回复「#恢复 {sop_id}」，或运行 sopbot sop resume {sop_id}",
        ]
    )


def _name(settings: Settings, sop_id: str) -> str:
    from bot.results.compute import sop_names  # reads the SOP files: only when a brake trips

    return sop_names(settings.sop_path).get(sop_id, (sop_id, {}, []))[0]
