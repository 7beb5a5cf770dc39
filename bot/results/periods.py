"""Which days a report covers: `sopbot report`'s options turned into a `Period`, and the
period it is compared with.

- No option, or `--period week`: the last complete ISO week (Monday to Sunday); `--period
  day` is yesterday, `--period month` the last complete calendar month. A finished period
  compares fairly with the one before it (日报 / 周报 / 月报).
- `--period 2026-11-30`, `--period 2026-W48`, `--period 2026-11`: that day, ISO week or
  month. One that has not ended yet runs to today (week or month to date).
- `--from D [--to D]`: any range, both days included; without `--to`, up to today.

The period before: the day, week or month before; for a week or month to date, the same
days of the one before (1–15 November → 1–15 October); for a range of whole months, as many
whole months before; for any other range, as many days right before it. Days are local
dates in the configured time zone.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta, tzinfo

from bot.results.model import Period

KINDS = ("day", "week", "month")
MAX_DAYS = 3 * 366  # a report's daily series stays a size a page and a terminal can show

_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_WEEK = re.compile(r"(\d{4})-?[Ww](\d{1,2})")
_MONTH = re.compile(r"(\d{4})[-/.](\d{1,2})")


class PeriodError(ValueError):
    """An option that names no period; the message says which and why."""


def local_today(now: datetime, tz: tzinfo) -> date:
    """The local date at `now` (timezone-aware) in the configured time zone."""
    return now.astimezone(tz).date()


def resolve(
    *, period: str | None = None, start: str | None = None, end: str | None = None, today: date
) -> tuple[Period, Period]:
    """The period the options name and the period before it (for the comparison).

    `period`: day, week, month (the last complete one) or a label (2026-11-30, 2026-W48,
    2026-11); `start`/`end`: `--from`/`--to` as YYYY-MM-DD, both included."""
    if period is not None and (start is not None or end is not None):
        raise PeriodError("--period and --from/--to name a period each: use one or the other")
    if start is None and end is not None:
        raise PeriodError("--to needs --from (the first day of the range)")
    if start is not None:
        chosen = _range(parse_date(start, "--from"), parse_date(end, "--to") if end else today, today)
        return chosen, _previous_range(chosen)
    return _calendar(period or "week", today)


def parse_date(text: str, option: str = "date") -> date:
    """YYYY-MM-DD (also with / or . between the parts)."""
    match = _DATE.fullmatch(text.strip())
    if match is None:
        raise PeriodError(f"{option}: {text!r} is not a date (write it as YYYY-MM-DD, e.g. 2026-11-30)")
    try:
        return date(*(int(part) for part in match.groups()))
    except ValueError as error:
        raise PeriodError(f"{option}: {text!r} is not a date ({error})") from None


def day_label(day: date) -> str:
    return day.isoformat()


def week_label(day: date) -> str:
    """The ISO week the day falls in: 2026-W48 (the ISO year: 2027-01-01 is in 2026-W53)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def month_label(day: date) -> str:
    return f"{day.year}-{day.month:02d}"


def range_label(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()}..{end.isoformat()}"


# -- calendar periods ---------------------------------------------------------------------


def _calendar(text: str, today: date) -> tuple[Period, Period]:
    word = text.strip().lower()
    if word == "day":
        return _day(today - timedelta(days=1))
    if word == "week":
        return _week(_monday(today) - timedelta(days=7), today)
    if word == "month":
        return _month(_add_months(today.replace(day=1), -1), today)
    if match := _WEEK.fullmatch(text.strip()):
        year, week = int(match[1]), int(match[2])
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise PeriodError(f"--period: {year} has no ISO week {week}") from None
        return _week(monday, today)
    if _DATE.fullmatch(text.strip()):
        day = parse_date(text, "--period")
        _not_after(day, today, "--period", text)
        return _day(day)
    if match := _MONTH.fullmatch(text.strip()):
        year, month = int(match[1]), int(match[2])
        if not 1 <= month <= 12:
            raise PeriodError(f"--period: {text!r} has no month {month}")
        return _month(date(year, month, 1), today)
    raise PeriodError(
        f"--period: {text!r} is not day, week, month or a day / week / month (2026-11-30, 2026-W48, 2026-11)"
    )


def _day(day: date) -> tuple[Period, Period]:
    before = day - timedelta(days=1)
    return Period(day, day, day_label(day)), Period(before, before, day_label(before))


def _week(monday: date, today: date) -> tuple[Period, Period]:
    _not_after(monday, today, "--period", week_label(monday))
    sunday = monday + timedelta(days=6)
    before = monday - timedelta(days=7)
    if sunday <= today:
        return Period(monday, sunday, week_label(monday)), Period(
            before, before + timedelta(days=6), week_label(before)
        )
    # the week to date, against the same weekdays of the week before
    length = today - monday
    return Period(monday, today, range_label(monday, today)), Period(
        before, before + length, range_label(before, before + length)
    )


def _month(first: date, today: date) -> tuple[Period, Period]:
    _not_after(first, today, "--period", month_label(first))
    last = _month_end(first)
    before = _add_months(first, -1)
    if last <= today:
        return Period(first, last, month_label(first)), Period(
            before, _month_end(before), month_label(before)
        )
    # the month to date, against the same days of the month before (capped at its end)
    end_before = before.replace(day=min(today.day, _month_end(before).day))
    return Period(first, today, range_label(first, today)), Period(
        before, end_before, range_label(before, end_before)
    )


# -- ranges -------------------------------------------------------------------------------


def _range(start: date, end: date, today: date) -> Period:
    _not_after(start, today, "--from", start.isoformat())
    if end < start:
        raise PeriodError(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    days = (end - start).days + 1
    if days > MAX_DAYS:
        raise PeriodError(
            f"--from {start.isoformat()} --to {end.isoformat()} is {days} days: a report covers at most {MAX_DAYS}"
        )
    return Period(start, end, range_label(start, end))


def _previous_range(period: Period) -> Period:
    start, end = period.start, period.end
    if start.day == 1 and end == _month_end(end):  # whole months: as many whole months before
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        first = _add_months(start, -months)
        last = start - timedelta(days=1)
        label = month_label(first) if months == 1 else range_label(first, last)
        return Period(first, last, label)
    last = start - timedelta(days=1)
    first = last - timedelta(days=period.days - 1)
    return Period(first, last, range_label(first, last))


# -- small date arithmetic ----------------------------------------------------------------


def _not_after(day: date, today: date, option: str, text: str) -> None:
    if day > today:
        raise PeriodError(f"{option} {text} has not started yet (today is {today.isoformat()})")


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
