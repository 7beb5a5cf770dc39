"""The festival calendar, cold: every built-in festival over two years, and the festivals
of each of the 730 days, with empty caches; beside the floor of the same run — the
lunar-python conversions those years need (every day to its lunar date, once).

    python bench/bench_calendar.py

Target: ≤ 2 s cold on an idle machine. Prints figures, asserts nothing.
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lunar_python import Solar

from bot import calendar as cal_mod
from bot.calendar import Calendar

FIRST, LAST = date(2026, 1, 1), date(2027, 12, 31)


def cold_year_walk() -> float:
    for cached in (
        cal_mod._lunar_month,
        cal_mod._solar_terms,
        cal_mod._rule_dates,
        cal_mod._statutory_days_off,
    ):
        cached.cache_clear()
    started = time.perf_counter()
    cal = Calendar()
    for festival in cal.festivals:
        cal.occurrences(festival, FIRST, LAST)
    for offset in range((LAST - FIRST).days + 1):
        cal.festivals_on(FIRST + timedelta(days=offset))
    return time.perf_counter() - started


def lunar_floor() -> float:
    started = time.perf_counter()
    for offset in range((LAST - FIRST).days + 1):
        day = FIRST + timedelta(days=offset)
        Solar.fromYmd(day.year, day.month, day.day).getLunar()
    return time.perf_counter() - started


def main() -> None:
    ours = [cold_year_walk() for _ in range(5)]
    floor = [lunar_floor() for _ in range(5)]
    festivals = len(Calendar().festivals)
    print(f"{festivals} festivals over {FIRST} .. {LAST}, plus festivals_on for each of the 730 days")
    print(
        f"calendar, cold caches: best {min(ours):.3f}s, median {statistics.median(ours):.3f}s (target ≤ 2 s)"
    )
    print(f"floor (730 lunar conversions): best {min(floor):.3f}s, median {statistics.median(floor):.3f}s")
    print(f"ratio: {min(ours) / min(floor):.2f} × the floor")


if __name__ == "__main__":
    main()
