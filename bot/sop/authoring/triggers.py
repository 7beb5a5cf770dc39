"""Schedules as APScheduler 3 triggers: the one place SOP schedules become fire times.

The daemon adds these triggers as jobs; `sopbot plan` and missed-run detection walk the
very same triggers with `fire_times`, so what the plan shows is what the daemon does.

- every schedule → `DatesTrigger`: a set of dates per year, at the step's times — daily:
  every day; weekly: weekday names through `units.WEEKDAYS` (Monday = 0); monthly: the cron
  day expression, evaluated at noon; festival / window / birthday: the festival calendar;
- `WallClockTrigger` makes each safe across daylight-saving changes;
- `working_days_only` wraps either in `WorkingDaysTrigger` (official 调休 included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger

from bot.calendar import Calendar, Window
from bot.config.units import WEEKDAYS
from bot.sop.authoring.spec import StepSpec

_SEARCH_DAYS = 800  # how far ahead a trigger looks for its next date (a lunar year and more)
_TICK = timedelta(microseconds=1)


class DatesTrigger(BaseTrigger):
    """Fires at `times` on every date `rule(year)` gives (a set of dates per year)."""

    def __init__(self, rule: Callable[[int], frozenset[date]], times: list[time], tz: ZoneInfo) -> None:
        self.rule = lru_cache(maxsize=8)(rule)
        self.times = sorted(times)
        self.timezone = tz

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = _start(previous_fire_time, now)
        local = start.astimezone(self.timezone)
        day = local.date()
        for _ in range(_SEARCH_DAYS):
            if day in self.rule(day.year):
                for moment in self.times:
                    fire = datetime.combine(day, moment, self.timezone)
                    if fire.astimezone(UTC) >= start.astimezone(UTC):
                        return fire
            day += timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"dates[{', '.join(f'{t:%H:%M}' for t in self.times)}]"


class WorkingDaysTrigger(BaseTrigger):
    """Another trigger's fire times that fall on working days (调休 weekends included)."""

    def __init__(self, inner: BaseTrigger, calendar: Calendar, tz: ZoneInfo) -> None:
        self.inner = inner
        self.calendar = calendar
        self.timezone = tz

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        fire = self.inner.get_next_fire_time(previous_fire_time, now)
        for _ in range(_SEARCH_DAYS * 4):
            if fire is None or self.calendar.is_working_day(fire.astimezone(self.timezone).date()):
                return fire
            fire = self.inner.get_next_fire_time(fire, fire + _TICK)
        return None

    def __str__(self) -> str:
        return f"working_days({self.inner})"


class WallClockTrigger(BaseTrigger):
    """Another trigger's fire times made safe across daylight-saving changes (zones that
    have them; China has none). A wall time that occurs twice (clocks fall back) fires
    once, at its first occurrence; a wall time that does not exist (clocks spring forward)
    fires once, at the moment the clocks jump (02:30 → 03:00). APScheduler 3's CronTrigger
    returns a repeated time's second occurrence forever instead, which hung `plan` and
    the scheduler."""

    def __init__(self, inner: BaseTrigger, tz: ZoneInfo) -> None:
        self.inner = inner
        self.timezone = tz

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        start = _start(previous_fire_time, now).astimezone(UTC)
        search = start
        for _ in range(_SEARCH_DAYS * 4):
            fire = self.inner.get_next_fire_time(None, search.astimezone(self.timezone))
            if fire is None:
                return None
            wall = fire.replace(tzinfo=None)
            if _repeated(wall, self.timezone) and fire.fold == 1:
                search = _after_repeat(wall, self.timezone)  # the second pass: already fired
                continue
            real = _existing(wall, self.timezone)
            if real.astimezone(UTC) < start:
                # an inner trigger that went backwards (or a skipped time mapped before `start`)
                search = max(search, fire.astimezone(UTC)) + timedelta(minutes=1)
                continue
            return real
        return None

    def __str__(self) -> str:
        return str(self.inner)


def _repeated(wall: datetime, tz: ZoneInfo) -> bool:
    return wall.replace(tzinfo=tz, fold=0).utcoffset() != wall.replace(tzinfo=tz, fold=1).utcoffset()


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=tz)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def _existing(wall: datetime, tz: ZoneInfo) -> datetime:
    """`wall` in `tz` (its first occurrence), or the first minute after a clock jump."""
    moment = wall
    for _ in range(24 * 60):
        if _exists(moment, tz):
            return moment.replace(tzinfo=tz, fold=0)
        moment = (moment + timedelta(minutes=1)).replace(second=0, microsecond=0)
    return wall.replace(tzinfo=tz)


def _after_repeat(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant after the repeated hour `wall` falls in (clocks falling back)."""
    moment = wall
    for _ in range(24 * 60):
        moment = (moment + timedelta(minutes=1)).replace(second=0, microsecond=0)
        if not _repeated(moment, tz):
            return moment.replace(tzinfo=tz).astimezone(UTC)
    return wall.replace(tzinfo=tz, fold=1).astimezone(UTC) + timedelta(hours=1)


def _start(previous_fire_time: datetime | None, now: datetime) -> datetime:
    # the same rule as APScheduler's CronTrigger: resume right after the previous fire time
    if previous_fire_time is None:
        return now
    return min(now, previous_fire_time + _TICK)


def cron_days(tz: ZoneInfo, **fields: str) -> Callable[[int], frozenset[date]]:
    """The dates a cron day expression (`day="18,last"`, `day="2nd sat"`) matches in a year.
    Asked at noon, when no time zone changes its clocks: APScheduler 3's CronTrigger skips a
    day when asked across a daylight-saving change at night."""
    noon = CronTrigger(hour=12, minute=0, second=0, timezone=tz, **fields)

    def rule(year: int) -> frozenset[date]:
        out: set[date] = set()
        fire = noon.get_next_fire_time(None, datetime(year, 1, 1, tzinfo=tz))
        while fire is not None and fire.year == year:
            out.add(fire.date())
            fire = noon.get_next_fire_time(None, fire + timedelta(hours=1))
        return frozenset(out)

    return rule


def weekdays(numbers: set[int]) -> Callable[[int], frozenset[date]]:
    def rule(year: int) -> frozenset[date]:
        return frozenset(day for day in _every_day(year) if day.weekday() in numbers)

    return rule


def festival_days(
    calendar: Calendar, names: list[str], offsets: list[int]
) -> Callable[[int], frozenset[date]]:
    """The dates of the named festivals (every day of a window festival), shifted by each
    offset, that fall in a given year."""
    shifts = offsets or [0]
    reach = timedelta(days=max(abs(s) for s in shifts) + 1)

    def rule(year: int) -> frozenset[date]:
        first, last = date(year, 1, 1), date(year, 12, 31)
        out: set[date] = set()
        for name in names:
            for day in calendar.occurrences(name, first - reach, last + reach):
                out.update(day + timedelta(days=s) for s in shifts)
        return frozenset(d for d in out if d.year == year)

    return rule


def window_days(calendar: Calendar, window: Window) -> Callable[[int], frozenset[date]]:
    def rule(year: int) -> frozenset[date]:
        return frozenset(calendar.occurrences(window, date(year, 1, 1), date(year, 12, 31)))

    return rule


def _every_day(year: int) -> frozenset[date]:
    first = date(year, 1, 1)
    return frozenset(first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days))


def trigger_for(step: StepSpec, tz: ZoneInfo, calendar: Calendar) -> BaseTrigger | None:
    """The trigger of a calendar step; None for lifecycle steps (they follow events, or
    spells of silence and lapse: `bot.sop.runtime.silence`)."""
    times = step.times()
    trigger: BaseTrigger
    if step.daily is not None:
        trigger = DatesTrigger(_every_day, times, tz)
    elif step.weekly is not None:
        trigger = DatesTrigger(weekdays({WEEKDAYS[name] for name in step.weekly}), times, tz)
    elif step.monthly is not None:
        trigger = DatesTrigger(cron_days(tz, day=",".join(step.monthly)), times, tz)
    elif step.festival is not None:
        trigger = DatesTrigger(festival_days(calendar, step.festival, step.offset or []), times, tz)
    elif step.window is not None:
        w = step.window
        trigger = DatesTrigger(
            window_days(calendar, Window(w.start, w.end, w.from_offset, w.to_offset)), times, tz
        )
    elif step.birthday:
        trigger = DatesTrigger(_every_day, times, tz)
    else:
        return None
    trigger = WallClockTrigger(trigger, tz)
    return WorkingDaysTrigger(trigger, calendar, tz) if step.working_days_only else trigger


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every fire time of `trigger` in [start, end]."""
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        yield fire
        fire = trigger.get_next_fire_time(None, fire + timedelta(seconds=1))


def weekday_template(step: StepSpec, local_day: date) -> str:
    """The template a step uses on a day (a weekly step may name one per weekday)."""
    if step.weekly is not None:
        name = next(n for n, number in WEEKDAYS.items() if number == local_day.weekday())
        chosen = step.weekly.get(name)
        if chosen:
            return chosen
    assert step.template is not None
    return step.template
