"""Birthdays as operators and contacts write them, and the days they fall on.

Stored forms (`Contact.birthday`): solar `MM-DD` or `YYYY-MM-DD`; lunar `农历MM-DD` or
`农历YYYY-MM-DD` (the year is the lunar year of birth, kept for the record only).

A solar 02-29 falls on 02-28 in common years. A lunar birthday falls on that lunar month and
day every year; on the 30th of a month that has 29 days that year it falls on the 29th; a
leap month (闰月) repeats no birthday — someone born in 闰四月 is celebrated in 四月.
"""

from __future__ import annotations

import re
from datetime import date
from functools import lru_cache

LUNAR_PREFIX = "农历"

_MONTHS_CN = {
    "正": 1, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
    "十": 10, "十一": 11, "冬": 11, "十二": 12, "腊": 12,
}  # fmt: skip
_DIGITS_CN = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_LUNAR_WORDS = re.compile(r"^\s*(?:农历|阴历|旧历)\s*|\s*[（(]\s*(?:农历|阴历)\s*[)）]\s*$")
_CN_MONTH_DAY = re.compile(
    r"^(?:(?P<year>\d{4})\s*年\s*)?(?:闰)?(?P<month>正|冬|腊|十[一二]?|[一二三四五六七八九])\s*月\s*(?P<day>初[一二三四五六七八九十]|[二廿]十|[十廿][一二三四五六七八九]|三十|十)\s*日?$"
)
_NUMERIC = re.compile(
    r"^(?:(?P<year>\d{4})\s*[-/.年]\s*)?(?P<month>\d{1,2})\s*[-/.月]\s*(?P<day>\d{1,2})\s*[日号]?$"
)
_STORED = re.compile(r"^(?P<lunar>农历)?(?:(?P<year>\d{4})-)?(?P<month>\d{2})-(?P<day>\d{2})$")
_DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class BirthdayError(ValueError):
    """Text that is no birthday; the message says what is accepted."""


def parse_birthday(text: str | date) -> str:
    """The stored form of a birthday written as `1990-05-20`, `5月20日`, `05/20`, `1990年5月20日`,
    `农历八月十五`, `农历8月15`, `阴历腊月初八`, `八月十五（农历）` (or an Excel date)."""
    if isinstance(text, date):
        return f"{text:%Y-%m-%d}"
    raw = text.strip()
    lunar = bool(_LUNAR_WORDS.search(raw))
    body = _LUNAR_WORDS.sub("", raw).strip()
    if stored := _STORED.match(body):
        lunar = lunar or bool(stored.group("lunar"))
        year, month, day = stored.group("year"), int(stored.group("month")), int(stored.group("day"))
    elif numeric := _NUMERIC.match(body):
        year, month, day = numeric.group("year"), int(numeric.group("month")), int(numeric.group("day"))
    elif written := _CN_MONTH_DAY.match(body):
        lunar = True  # 八月十五, 腊月初八: month and day in Chinese numerals are the lunar calendar
        year, month, day = (
            written.group("year"),
            _MONTHS_CN[written.group("month")],
            _cn_day(written.group("day")),
        )
    else:
        raise BirthdayError(
            f"{raw!r} is not a birthday (write 1990-05-20, 05-20, 5月20日, or a lunar one as 农历八月十五)"
        )
    if lunar:
        if not (1 <= month <= 12 and 1 <= day <= 30):
            raise BirthdayError(f"{raw!r}: a lunar month is 1-12 and its day 1-30")
    elif not (1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month - 1]):
        raise BirthdayError(f"{raw!r}: there is no day {month:02d}-{day:02d}")
    if year is not None and not lunar:
        try:
            date(int(year), month, day)
        except ValueError as exc:
            raise BirthdayError(f"{raw!r}: {exc}") from None
    stored_form = f"{int(year):04d}-{month:02d}-{day:02d}" if year else f"{month:02d}-{day:02d}"
    return (LUNAR_PREFIX if lunar else "") + stored_form


def _cn_day(text: str) -> int:
    if text.startswith("初"):
        return 10 if text[1] == "十" else _DIGITS_CN[text[1]]
    if text == "十":
        return 10
    if text in ("二十", "廿十"):
        return 20
    if text == "三十":
        return 30
    tens = 10 if text[0] == "十" else 20
    return tens + _DIGITS_CN[text[1]]


def is_lunar(birthday: str | None) -> bool:
    return bool(birthday) and birthday.startswith(LUNAR_PREFIX)  # type: ignore[union-attr]


def describe(birthday: str | None) -> str:
    """For people: `05-20`, `农历八月十五`."""
    if not birthday:
        return ""
    found = _STORED.match(birthday)
    if found is None or not found.group("lunar"):
        return birthday
    month, day = int(found.group("month")), int(found.group("day"))
    month_names = ("正", "二", "三", "四", "五", "六", "七", "八", "九", "十", "冬", "腊")
    return f"农历{month_names[month - 1]}月{_day_name(day)}"


def _day_name(day: int) -> str:
    digits = "一二三四五六七八九"
    if day <= 10:
        return "初" + ("十" if day == 10 else digits[day - 1])
    if day < 20:
        return "十" + digits[day - 11]
    if day == 20:
        return "二十"
    if day < 30:
        return "廿" + digits[day - 21]
    return "三十"


def birthday_matches(birthday: str | None, day: date) -> bool:
    """The birthday falls on `day` (rules in the module docstring)."""
    if not birthday:
        return False
    found = _STORED.match(birthday)
    if found is None:
        return False
    month, wanted = int(found.group("month")), int(found.group("day"))
    if found.group("lunar"):
        lunar_month, lunar_day, month_length = _lunar_of(day)
        if lunar_month != month:  # a leap month comes back negative and matches nothing
            return False
        return lunar_day == min(wanted, month_length)
    if (month, wanted) == (2, 29) and not _leap(day.year):
        wanted = 28
    return (month, wanted) == (day.month, day.day)


@lru_cache(maxsize=1024)
def _lunar_of(day: date) -> tuple[int, int, int]:
    """(lunar month, negative for a leap month; lunar day; days in that lunar month)."""
    from lunar_python import LunarMonth, Solar  # ~30 ms to import: only for lunar birthdays

    lunar = Solar.fromYmd(day.year, day.month, day.day).getLunar()
    length = LunarMonth.fromYm(lunar.getYear(), lunar.getMonth()).getDayCount()
    return lunar.getMonth(), lunar.getDay(), length


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
