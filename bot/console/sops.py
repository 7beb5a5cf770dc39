"""The SOP pages' data: the SOP set, each step's next firing, a month of the plan view, a
preview (the very functions `sopbot plan`, `sopbot preview` and `sopbot check` call)."""

from __future__ import annotations

import calendar as months
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session

from bot.clock import Clock
from bot.config.errors import ConfigIssue
from bot.config.settings import Settings
from bot.sop.authoring.check import check_all
from bot.sop.authoring.dates import read_holiday_notes
from bot.sop.authoring.loader import Sop, SopSet
from bot.sop.runtime.audience import Directory, load_directory
from bot.sop.runtime.context import sample_room
from bot.sop.runtime.records import ContactRecord, RoomRecord
from bot.sop.runtime.service import fingerprint
from bot.sop.views.plan import PlanEntry, day_header, plan
from bot.sop.views.preview import PreviewItem, preview


@dataclass(frozen=True)
class Checked:
    """The files as `sopbot check` sees them now."""

    sopset: SopSet | None  # None when the files have errors (and no daemon runs a good set)
    issues: list[ConfigIssue]
    notes: list[ConfigIssue]  # not problems: holiday years entered in part
    running: bool  # the set is the one the daemon runs (the files may have changed since)


class SopSource:
    """The set the pages show: the daemon's running set when there is one (the last good
    one, whatever the files say now), else the files, checked once per change and per day."""

    def __init__(self, settings: Settings, clock: Clock, running: Callable[[], SopSet | None] | None = None):
        self.settings = settings
        self.clock = clock
        self.running = running
        self._lock = threading.Lock()
        self._cache: tuple[object, tuple[SopSet | None, list[ConfigIssue], list[ConfigIssue]]] | None = None

    def checked(self) -> Checked:
        now = self.clock.now()
        key = (
            fingerprint(self.settings.sop_path, self.settings.templates_path),
            now.astimezone(self.settings.tz).date(),
        )
        with self._lock:
            if self._cache is None or self._cache[0] != key:
                sopset, issues = check_all(self.settings, now)
                self._cache = (key, (sopset, issues, read_holiday_notes(self.settings.sop_path)))
            sopset, issues, notes = self._cache[1]
        live = self.running() if self.running is not None else None
        return Checked(live or sopset, issues, notes, live is not None)


@dataclass(frozen=True)
class NextFiring:
    at: datetime
    sop: Sop
    step_id: str
    step_name: str


def next_firings(sopset: SopSet, now: datetime, limit: int | None = None) -> list[NextFiring]:
    """Each enabled calendar step's next firing, soonest first (as the scheduler has them)."""
    found: list[NextFiring] = []
    for sop in sopset.enabled():
        for step in sop.steps:
            if step.trigger is None or not step.spec.enabled:
                continue
            fire = step.trigger.get_next_fire_time(None, now)
            if fire is not None:
                found.append(NextFiring(fire.astimezone(sop.tz), sop, step.id, step.spec.name or ""))
    found.sort(key=lambda f: (f.at, f.sop.id, f.step_id))
    return found[:limit] if limit else found


@dataclass(frozen=True)
class MonthDay:
    day: date
    header: str  # `2026-11-11 周三 班 · 双11`, as `sopbot plan` heads a day
    entries: list[PlanEntry]
    in_month: bool


def month_plan(
    sopset: SopSet, session: Session | None, first: date, now: datetime, *, counts: bool, only_sop: str | None
) -> list[list[MonthDay]]:
    """The month as weeks (Monday first) of days with their plan entries. With `counts`,
    recipients are counted from the directory and pending lifecycle messages included, as
    `sopbot plan` does; without, only the calendar steps (no contact is read)."""
    days_in_month = months.monthrange(first.year, first.month)[1]
    if counts and session is not None:
        directory = load_directory(session, sopset.groups)
        entries = plan(sopset, directory, first, days_in_month, session=session, now=now, only_sop=only_sop)
    else:
        entries = plan(sopset, Directory([], []), first, days_in_month, only_sop=only_sop)
    by_day: dict[date, list[PlanEntry]] = {}
    for entry in entries:
        by_day.setdefault(entry.day, []).append(entry)
    start = first - timedelta(days=first.weekday())
    last = first + timedelta(days=days_in_month - 1)
    end = last + timedelta(days=6 - last.weekday())
    weeks: list[list[MonthDay]] = []
    day = start
    while day <= end:
        week = []
        for _ in range(7):
            inside = day.month == first.month
            week.append(
                MonthDay(day, day_header(sopset.calendar, day) if inside else "", by_day.get(day, []), inside)
            )
            day += timedelta(days=1)
        weeks.append(week)
    return weeks


def contact_recipient(session: Session, sopset: SopSet, contact_id: int) -> ContactRecord | None:
    """One contact as the SOP runtime sees it (also one who opted out or blocked us: the
    preview then says why the contact gets nothing)."""
    directory = load_directory(
        session, sopset.groups, contact_ids=[contact_id], with_rooms=False, left_out=True
    )
    found = directory.contacts + [record for record, _ in directory.left_out]
    return found[0] if found else None


def group_recipient(group_type: str | None) -> RoomRecord:
    return sample_room(group_type or None)


def preview_items(
    sopset: SopSet,
    sop: Sop,
    day: date,
    now: datetime,
    *,
    tier: str | None = None,
    recipients: list[ContactRecord | RoomRecord] | None = None,
) -> list[PreviewItem]:
    """Exactly what `sopbot preview` prints, as data."""
    return preview(sopset, sop, day, now, recipients=recipients, tier=tier)
