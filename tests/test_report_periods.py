"""Which days `sopbot report` covers, and the period it is compared with."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.results.model import Period
from bot.results.periods import MAX_DAYS, PeriodError, local_today, parse_date, resolve

TODAY = date(2026, 12, 2)  # a Wednesday


def span(period: Period) -> tuple[str, str, str]:
    return period.start.isoformat(), period.end.isoformat(), period.label


@pytest.mark.parametrize(
    ("option", "chosen", "before"),
    [
        # the last complete one
        ("day", ("2026-12-01", "2026-12-01", "2026-12-01"), ("2026-11-30", "2026-11-30", "2026-11-30")),
        ("week", ("2026-11-23", "2026-11-29", "2026-W48"), ("2026-11-16", "2026-11-22", "2026-W47")),
        ("month", ("2026-11-01", "2026-11-30", "2026-11"), ("2026-10-01", "2026-10-31", "2026-10")),
        # by name
        (
            "2026-11-30",
            ("2026-11-30", "2026-11-30", "2026-11-30"),
            ("2026-11-29", "2026-11-29", "2026-11-29"),
        ),
        ("2026-W47", ("2026-11-16", "2026-11-22", "2026-W47"), ("2026-11-09", "2026-11-15", "2026-W46")),
        ("2026w47", ("2026-11-16", "2026-11-22", "2026-W47"), ("2026-11-09", "2026-11-15", "2026-W46")),
        ("2026-03", ("2026-03-01", "2026-03-31", "2026-03"), ("2026-02-01", "2026-02-28", "2026-02")),
        ("2026-1", ("2026-01-01", "2026-01-31", "2026-01"), ("2025-12-01", "2025-12-31", "2025-12")),
        # not ended yet: to date, against the same days of the one before
        (
            "2026-W49",
            ("2026-11-30", "2026-12-02", "2026-11-30..2026-12-02"),
            ("2026-11-23", "2026-11-25", "2026-11-23..2026-11-25"),
        ),
        (
            "2026-12",
            ("2026-12-01", "2026-12-02", "2026-12-01..2026-12-02"),
            ("2026-11-01", "2026-11-02", "2026-11-01..2026-11-02"),
        ),
        (
            "2026-12-02",
            ("2026-12-02", "2026-12-02", "2026-12-02"),
            ("2026-12-01", "2026-12-01", "2026-12-01"),
        ),
    ],
)
def test_calendar_periods(option: str, chosen: tuple[str, str, str], before: tuple[str, str, str]) -> None:
    period, previous = resolve(period=option, today=TODAY)
    assert span(period) == chosen
    assert span(previous) == before


def test_no_option_is_the_last_complete_week() -> None:
    assert resolve(today=TODAY) == resolve(period="week", today=TODAY)
    # on a Monday, the week that ended yesterday
    period, _ = resolve(today=date(2026, 11, 30))
    assert span(period) == ("2026-11-23", "2026-11-29", "2026-W48")


def test_iso_weeks_across_the_new_year() -> None:
    period, previous = resolve(period="week", today=date(2027, 1, 5))
    assert span(period) == ("2026-12-28", "2027-01-03", "2026-W53")
    assert previous.label == "2026-W52"
    period, previous = resolve(period="2027-W01", today=date(2027, 2, 1))
    assert span(period) == ("2027-01-04", "2027-01-10", "2027-W01")
    assert previous.label == "2026-W53"


def test_month_to_date_against_a_shorter_month() -> None:
    period, previous = resolve(period="2026-03", today=date(2026, 3, 30))
    assert span(period) == ("2026-03-01", "2026-03-30", "2026-03-01..2026-03-30")
    assert span(previous) == ("2026-02-01", "2026-02-28", "2026-02-01..2026-02-28")
    # January's previous month is December of the year before
    _, previous = resolve(period="month", today=date(2026, 2, 10))
    assert span(previous) == ("2025-12-01", "2025-12-31", "2025-12")


@pytest.mark.parametrize(
    ("start", "end", "chosen", "before"),
    [
        (
            "2026-11-10",
            "2026-11-16",
            ("2026-11-10", "2026-11-16", "2026-11-10..2026-11-16"),
            ("2026-11-03", "2026-11-09", "2026-11-03..2026-11-09"),
        ),
        (
            "2026/11/05",
            "2026.11.05",
            ("2026-11-05", "2026-11-05", "2026-11-05"),
            ("2026-11-04", "2026-11-04", "2026-11-04"),
        ),
        # no --to: up to today
        (
            "2026-11-25",
            None,
            ("2026-11-25", "2026-12-02", "2026-11-25..2026-12-02"),
            ("2026-11-17", "2026-11-24", "2026-11-17..2026-11-24"),
        ),
        # whole months: as many whole months before
        (
            "2026-11-01",
            "2026-11-30",
            ("2026-11-01", "2026-11-30", "2026-11-01..2026-11-30"),
            ("2026-10-01", "2026-10-31", "2026-10"),
        ),
        (
            "2026-09-01",
            "2026-11-30",
            ("2026-09-01", "2026-11-30", "2026-09-01..2026-11-30"),
            ("2026-06-01", "2026-08-31", "2026-06-01..2026-08-31"),
        ),
    ],
)
def test_ranges(
    start: str, end: str | None, chosen: tuple[str, str, str], before: tuple[str, str, str]
) -> None:
    period, previous = resolve(start=start, end=end, today=TODAY)
    assert span(period) == chosen
    assert span(previous) == before
    assert previous.days == period.days or previous.start.day == 1  # whole months may differ by a day


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"start": "2026-11-31"}, "--from: '2026-11-31' is not a date (day is out of range for month)"),
        (
            {"start": "30.11.2026"},
            "--from: '30.11.2026' is not a date (write it as YYYY-MM-DD, e.g. 2026-11-30)",
        ),
        ({"start": "2026-11-10", "end": "yesterday"}, "--to: 'yesterday' is not a date"),
        ({"start": "2026-11-30", "end": "2026-11-01"}, "--to 2026-11-01 is before --from 2026-11-30"),
        ({"end": "2026-11-30"}, "--to needs --from"),
        ({"period": "week", "start": "2026-11-01"}, "--period and --from/--to name a period each"),
        ({"start": "2026-12-03"}, "--from 2026-12-03 has not started yet (today is 2026-12-02)"),
        ({"period": "2027-01"}, "--period 2027-01 has not started yet (today is 2026-12-02)"),
        ({"period": "2026-W50"}, "--period 2026-W50 has not started yet"),
        ({"period": "2026-W54"}, "--period: 2026 has no ISO week 54"),
        ({"period": "2026-13"}, "--period: '2026-13' has no month 13"),
        ({"period": "quarter"}, "--period: 'quarter' is not day, week, month or a day / week / month"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, f"is 2193 days: a report covers at most {MAX_DAYS}"),
    ],
)
def test_clear_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(PeriodError) as caught:
        resolve(today=TODAY, **options)
    assert message in str(caught.value)


def test_today_is_the_local_date_in_the_configured_time_zone() -> None:
    late = datetime(2026, 12, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 December in Shanghai
    assert local_today(late, ZoneInfo("Asia/Shanghai")) == date(2026, 12, 2)
    assert local_today(late, ZoneInfo("Europe/Berlin")) == date(2026, 12, 1)
    assert parse_date(" 2026-1-5 ") == date(2026, 1, 5)
