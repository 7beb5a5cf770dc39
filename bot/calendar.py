"""Chinese festival and working-day calendar for SOP schedules.

Pure logic: no I/O and no clock reads. Every function takes the dates it works on.

Festivals
    Built-in festivals (春节, 中秋, 双11, 母亲节, 清明, 年货节 ...) have a stable ASCII id
    (``chunjie``, ``zhongqiu``, ``double11`` ...), a Chinese display name and aliases, so an
    SOP file may say ``春节``, ``chunjie``, ``双十一`` or ``11.11``. Operators add their own
    dates with :class:`Festival` and a rule: :class:`FixedDate` (every year on a month-day,
    e.g. a brand anniversary or a contact's birthday), :class:`OnceDate`,
    :class:`NthWeekday`, :class:`LunarDay` or :class:`SolarTerm`; or a :class:`Window`
    (every day from festival A + x days to festival B + y days). :func:`parse_rule` reads the
    same rules from short strings (``"05-20"``, ``"农历08-15"``, ``"5月第2个周日"``).

Lunar dates and solar terms come from ``lunar-python`` (6tail's 寿星天文历 algorithm):
maintained, computed rather than tabulated, and correct where the table-based libraries
disagree with 紫金山天文台 (e.g. 中秋 1978 = 1978-09-17, which ``lunardate`` puts a day early;
``chinese_calendar``'s solar-term formula puts 立秋 on Aug 28 for 1901-1999).

Working days (调休)
    Official State Council schedules come from ``chinesecalendar`` (``chinese_calendar``),
    which ships every notice from 2004 on; see :func:`official_schedule_years`. For a year
    the installed release does not know yet (the notice for year N is published around
    Oct/Nov of N-1 and the library follows some days later), the calendar *estimates* the
    year from 《全国年节及纪念日放假办法》 (as amended 2024-11, in force from 2025), see
    :func:`statutory_days_off`: weekends off, plus the 13 statutory days off of 第二条
    (元旦 1/1; 春节 除夕 and 正月初一至初三; 清明 the solar-term day; 劳动节 5/1-5/2; 端午 5/5
    lunar; 中秋 8/15 lunar; 国庆 10/1-10/3), plus the 补假 of 第六条 ("全体公民放假的假日，如果
    适逢星期六、星期日，应当在工作日补假"): the statutory days of a holiday that fall on a
    weekend are made up on the first working days after it; no 调休 swaps (only the notice
    can say which weekends become working days).

    Operators type a newly published notice in as a :class:`HolidaySchedule` before the
    library catches up, possibly one holiday at a time. Entered days always override that
    day. In an estimated year, a statutory holiday counts as entered once its days off are
    listed (under a name that says which holiday, see :func:`statutory_holidays_in`): what
    was typed replaces that holiday's estimate, and every holiday not entered keeps its
    estimate. The year is official once all seven are entered; until then, every day not
    entered is reported with ``DayInfo.official == False``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

from chinese_calendar import constants as _cn_official
from lunar_python import Lunar, LunarYear

__all__ = [
    "STATUTORY_HOLIDAYS",
    "Calendar",
    "DateRule",
    "DayInfo",
    "Festival",
    "FestivalRef",
    "FixedDate",
    "HolidaySchedule",
    "LunarDay",
    "NthWeekday",
    "OnceDate",
    "SolarTerm",
    "Window",
    "builtin_festivals",
    "day_info",
    "has_official_schedule",
    "holiday_name",
    "is_makeup_workday",
    "is_working_day",
    "official_schedule_years",
    "parse_rule",
    "statutory_days_off",
    "statutory_holidays_in",
]

Category = Literal["traditional", "solar_term", "official", "shopping", "western", "custom"]

# The longest span searched for "the next occurrence" of anything that recurs yearly
# (a lunar year with a leap month has 384-385 days).
_YEAR_SPAN = timedelta(days=400)
_MAX_WINDOW_DAYS = 400

SOLAR_TERMS: tuple[str, ...] = (
    "小寒", "大寒", "立春", "雨水", "惊蛰", "春分", "清明", "谷雨", "立夏", "小满", "芒种", "夏至",
    "小暑", "大暑", "立秋", "处暑", "白露", "秋分", "寒露", "霜降", "立冬", "小雪", "大雪", "冬至",
)  # fmt: skip
_PINYIN_TERMS = {
    "DONG_ZHI": "冬至", "XIAO_HAN": "小寒", "DA_HAN": "大寒", "LI_CHUN": "立春",
    "YU_SHUI": "雨水", "JING_ZHE": "惊蛰", "DA_XUE": "大雪",
}  # fmt: skip


# --------------------------------------------------------------------------- date rules


@dataclass(frozen=True)
class FixedDate:
    """Every year on the same Gregorian month-day (元旦, 双11, a brand anniversary, a birthday).

    A 02-29 rule falls on 02-28 in common years.
    """

    month: int
    day: int

    def __post_init__(self) -> None:
        date(2000, self.month, self.day)  # 2000 is a leap year: raises on an impossible day

    def dates_in_year(self, year: int) -> tuple[date, ...]:
        """The dates this rule gives in Gregorian ``year``."""
        if self.month == 2 and self.day == 29 and not _is_leap(year):
            return (date(year, 2, 28),)
        return (date(year, self.month, self.day),)


@dataclass(frozen=True)
class OnceDate:
    """One specific date (a store opening, a one-off campaign day)."""

    on: date

    def dates_in_year(self, year: int) -> tuple[date, ...]:
        """The date, if it lies in Gregorian ``year``."""
        return (self.on,) if self.on.year == year else ()


@dataclass(frozen=True)
class NthWeekday:
    """The n-th given weekday of a month: 母亲节 = NthWeekday(5, 6, 2) (2nd Sunday of May).

    ``weekday`` follows :meth:`date.weekday` (0 = Monday ... 6 = Sunday); ``n`` is 1-5, or -1
    for the last one. A year without a 5th such weekday has no date.
    """

    month: int
    weekday: int
    n: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1-12, got {self.month}")
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {self.weekday}")
        if self.n not in (-1, 1, 2, 3, 4, 5):
            raise ValueError(f"n must be 1-5 or -1 (last), got {self.n}")

    def dates_in_year(self, year: int) -> tuple[date, ...]:
        """The date in Gregorian ``year``, if that month has such a weekday."""
        if self.n == -1:
            nxt = date(year + 1, 1, 1) if self.month == 12 else date(year, self.month + 1, 1)
            last = nxt - timedelta(days=1)
            return (last - timedelta(days=(last.weekday() - self.weekday) % 7),)
        first = date(year, self.month, 1)
        d = first + timedelta(days=(self.weekday - first.weekday()) % 7 + 7 * (self.n - 1))
        return (d,) if d.month == self.month else ()


@dataclass(frozen=True)
class LunarDay:
    """Every lunar year on a lunar month-day (春节 = LunarDay(1, 1), 中秋 = LunarDay(8, 15)).

    Only the regular (non-leap) month counts. A day past the end of a short (29-day) month
    falls on its last day, so ``LunarDay(12, 30)`` is 除夕 in every year, and a lunar birthday
    on the 30th is kept on the 29th when the month is short.
    """

    month: int
    day: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"lunar month must be 1-12, got {self.month}")
        if not 1 <= self.day <= 30:
            raise ValueError(f"lunar day must be 1-30, got {self.day}")

    def dates_in_year(self, year: int) -> tuple[date, ...]:
        """The dates in Gregorian ``year`` (lunar years ``year - 1`` and ``year`` overlap it)."""
        out = []
        for lunar_year in (year - 1, year):
            first, length = _lunar_month(lunar_year, self.month)
            d = first + timedelta(days=min(self.day, length) - 1)
            if d.year == year:
                out.append(d)
        return tuple(out)


@dataclass(frozen=True)
class SolarTerm:
    """A solar term (节气) by its Chinese name, e.g. ``SolarTerm("清明")``, in Beijing time."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in SOLAR_TERMS:
            raise ValueError(f"unknown solar term {self.name!r}; known: {' '.join(SOLAR_TERMS)}")

    def dates_in_year(self, year: int) -> tuple[date, ...]:
        """The day of this term in Gregorian ``year``."""
        return (_solar_terms(year)[self.name],)


DateRule = FixedDate | OnceDate | NthWeekday | LunarDay | SolarTerm


@dataclass(frozen=True)
class Window:
    """Every day from festival ``start`` + ``start_offset`` days to festival ``end`` +
    ``end_offset`` days, both ends included.

    ``end`` defaults to ``start``. For each occurrence A of ``start`` the window ends at the
    first occurrence of ``end`` on or after A. Festivals are named by id, Chinese name or
    alias. Examples::

        Window("腊八", "除夕")                          # every day from 腊八 to 除夕
        Window("双11", start_offset=-3, end_offset=-1)  # the 3 days before 双11
        Window("双11", start_offset=-3, end_offset=-3)  # the single day 3 days before 双11

    When ``start`` or ``end`` is itself a window festival, its first (for ``start``) or last
    (for ``end``) day is used.
    """

    start: str
    end: str | None = None
    start_offset: int = 0
    end_offset: int = 0


# --------------------------------------------------------------------------- festivals


@dataclass(frozen=True)
class Festival:
    """A named date rule or window. ``id`` is stable ASCII (``[A-Za-z0-9_-]``), used in
    configuration and storage; ``name`` is the Chinese display name; ``aliases`` are other
    names operators may write. A custom festival with a built-in id replaces the built-in."""

    id: str
    name: str
    rule: DateRule | Window
    aliases: tuple[str, ...] = ()
    category: Category = "custom"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.id):
            raise ValueError(f"festival id must be ASCII letters, digits, _ or -: {self.id!r}")
        if not self.name.strip():
            raise ValueError(f"festival {self.id!r} needs a display name")
        object.__setattr__(self, "aliases", tuple(self.aliases))

    @property
    def is_window(self) -> bool:
        """True when this festival spans several days (a :class:`Window`)."""
        return isinstance(self.rule, Window)


FestivalRef = str | Festival | Window | FixedDate | OnceDate | NthWeekday | LunarDay | SolarTerm

_SUN = 6


def builtin_festivals() -> tuple[Festival, ...]:
    """The built-in festivals, in display order."""
    return _BUILTINS


_BUILTINS: tuple[Festival, ...] = (
    # Gregorian fixed days
    Festival("yuandan", "元旦", FixedDate(1, 1), ("元旦节", "新年", "1.1"), "official"),
    Festival("valentines", "情人节", FixedDate(2, 14), ("2.14", "西方情人节"), "western"),
    Festival(
        "womens_day",
        "女王节",
        FixedDate(3, 8),
        ("3.8", "38", "三八", "妇女节", "三八妇女节", "3.8女王节", "38女王节", "女神节"),
        "shopping",
    ),
    Festival("labour_day", "劳动节", FixedDate(5, 1), ("五一", "5.1", "五一劳动节"), "official"),
    Festival("day520", "520", FixedDate(5, 20), ("5.20", "520表白日", "网络情人节"), "shopping"),
    Festival("day618", "618", FixedDate(6, 18), ("6.18", "618大促", "年中大促"), "shopping"),
    Festival("teachers_day", "教师节", FixedDate(9, 10), ("9.10",), "official"),
    Festival("national_day", "国庆", FixedDate(10, 1), ("国庆节", "十一", "10.1"), "official"),
    Festival("double11", "双11", FixedDate(11, 11), ("双十一", "11.11", "1111", "光棍节"), "shopping"),
    Festival("double12", "双12", FixedDate(12, 12), ("双十二", "12.12", "1212"), "shopping"),
    Festival("christmas_eve", "平安夜", FixedDate(12, 24), ("12.24",), "western"),
    Festival("christmas", "圣诞节", FixedDate(12, 25), ("圣诞", "12.25"), "western"),
    # floating Gregorian days
    Festival("mothers_day", "母亲节", NthWeekday(5, _SUN, 2), (), "western"),
    Festival("fathers_day", "父亲节", NthWeekday(6, _SUN, 3), (), "western"),
    # solar terms
    Festival("qingming", "清明", SolarTerm("清明"), ("清明节",), "solar_term"),
    Festival("dongzhi", "冬至", SolarTerm("冬至"), ("冬至节",), "solar_term"),
    # lunar festivals
    Festival("laba", "腊八", LunarDay(12, 8), ("腊八节",), "traditional"),
    Festival("xiaonian", "小年", LunarDay(12, 23), ("北方小年", "小年(北)"), "traditional"),
    Festival("xiaonian_south", "南方小年", LunarDay(12, 24), ("小年(南)",), "traditional"),
    Festival("chuxi", "除夕", LunarDay(12, 30), ("大年三十", "年三十", "除夕夜", "大年夜"), "traditional"),
    Festival(
        "chunjie",
        "春节",
        LunarDay(1, 1),
        ("春节", "大年初一", "新春", "过年", "农历新年", "正月初一"),
        "traditional",
    ),
    Festival("yuanxiao", "元宵", LunarDay(1, 15), ("元宵节", "上元节", "正月十五"), "traditional"),
    Festival("duanwu", "端午", LunarDay(5, 5), ("端午节", "端阳节"), "traditional"),
    Festival("qixi", "七夕", LunarDay(7, 7), ("七夕节", "中国情人节"), "traditional"),
    Festival("zhongqiu", "中秋", LunarDay(8, 15), ("中秋节", "八月十五"), "traditional"),
    Festival("chongyang", "重阳", LunarDay(9, 9), ("重阳节",), "traditional"),
    # shopping windows. 年货节 default: 腊月初八 (腊八) to 腊月二十三 (北方小年), both included;
    # redefine the id "nianhuo" in an SOP file for another window.
    Festival("nianhuo", "年货节", Window("laba", "xiaonian"), ("年货季", "办年货"), "shopping"),
)


def parse_rule(text: str) -> DateRule:
    """Read a date rule from the short form used in SOP files.

    ``MM-DD`` every year (``05-20``); ``YYYY-MM-DD`` once; ``农历MM-DD`` or ``lunar:MM-DD`` a
    lunar month-day (``农历08-15``); ``M月第N个周X`` / ``M月最后一个周X`` an n-th weekday
    (``5月第2个周日``; 周/星期, X in 一二三四五六日天 or 1-7); ``节气:清明`` / ``term:清明``.
    Raises ValueError with the accepted forms when the text matches none.
    """
    s = _normalize(text)
    try:
        if m := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s):
            return OnceDate(date(int(m[1]), int(m[2]), int(m[3])))
        if m := re.fullmatch(r"(\d{1,2})-(\d{1,2})", s):
            return FixedDate(int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(?:农历|阴历|lunar:?)(\d{1,2})-(\d{1,2})", s):
            return LunarDay(int(m[1]), int(m[2]))
        if m := re.fullmatch(r"(?:节气|term):?(\S+)", s):
            return SolarTerm(m[1])
        if m := re.fullmatch(
            r"(\d{1,2})月(?:第([1-5一二三四五])个|(最后一个))(?:周|星期|礼拜)([1-7一二三四五六日天])", s
        ):
            n = -1 if m[3] else _CN_DIGIT.get(m[2], 0) or int(m[2])
            wd = _CN_DIGIT.get(m[4], 0) or int(m[4])
            return NthWeekday(int(m[1]), wd - 1, n)
    except ValueError as exc:
        raise ValueError(f"invalid date rule {text!r}: {exc}") from None
    raise ValueError(
        f"cannot read date rule {text!r}; write one of: 05-20 (every year), 2026-08-08 (once), "
        "农历08-15 (lunar), 5月第2个周日 (n-th weekday; 最后一个 for the last), 节气:清明"
    )


_CN_DIGIT = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7}


# --------------------------------------------------------------------------- official days


@dataclass(frozen=True)
class HolidaySchedule:
    """An official 放假/调休 schedule for ``year`` entered by hand, for a year the installed
    ``chinesecalendar`` release does not cover yet (or to correct one it does). ``days_off``
    maps every day off (weekends inside a holiday block included) to its holiday name;
    ``workdays`` maps each 调休 working weekend day to the holiday it makes up for. Listed
    dates apply even when they lie in the neighbouring year.

    It may hold part of a year: in a year without library data, each statutory holiday
    whose days off are listed replaces that holiday's estimate, the others keep theirs
    (see :class:`Calendar`)."""

    year: int
    days_off: Mapping[date, str] = field(default_factory=dict)
    workdays: Mapping[date, str] = field(default_factory=dict)

    @property
    def entered_holidays(self) -> frozenset[str]:
        """The statutory holidays (``STATUTORY_HOLIDAYS`` names) whose days off are listed."""
        return frozenset(h for name in set(self.days_off.values()) for h in statutory_holidays_in(name))


@dataclass(frozen=True)
class DayInfo:
    """What the official calendar says about one day."""

    day: date
    is_working_day: bool
    holiday_name: str | None  # the holiday this day off belongs to, else None
    is_makeup_workday: bool  # a 调休 weekend day that is a working day
    makeup_for: str | None  # the holiday a makeup working day pays for
    official: bool  # False when estimated from the statutory rule (no published schedule)
    is_makeup_day_off: bool = False  # an estimated 补假: a weekday off for a holiday on a weekend


_OFFICIAL_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
}


def _official_name(value: str) -> str:
    if value in _OFFICIAL_NAMES:
        return _OFFICIAL_NAMES[value]
    for h in _cn_official.Holiday:
        if h.value == value:
            return h.chinese
    return value


_LIB_YEARS: frozenset[int] = frozenset(d.year for d in (*_cn_official.holidays, *_cn_official.workdays))


def official_schedule_years() -> frozenset[int]:
    """Years whose official State Council schedule the installed ``chinesecalendar`` knows
    (2004 up to the newest notice it ships)."""
    return _LIB_YEARS


# The holidays of 第二条 of 《全国年节及纪念日放假办法》, in its order, by the names the
# official data (chinesecalendar) uses; each with the words that name it in an operator's
# entry (“国庆节”, “十一”, “中秋国庆” ...).
STATUTORY_HOLIDAYS: tuple[str, ...] = ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")
_HOLIDAY_WORDS: Mapping[str, tuple[str, ...]] = {
    "元旦": ("元旦", "新年"),
    "春节": ("春节", "新春", "除夕"),
    "清明节": ("清明",),
    "劳动节": ("劳动", "五一"),
    "端午节": ("端午",),
    "中秋节": ("中秋",),
    "国庆节": ("国庆", "十一"),
}


def statutory_holidays_in(name: str) -> tuple[str, ...]:
    """The statutory holidays an entered holiday name stands for, in legal order:
    ``"国庆"`` → ``("国庆节",)``, ``"中秋节、国庆节"`` → both, ``"双十一"`` or ``"春截"`` → ()."""
    text = _normalize(name).replace("双十一", "")
    return tuple(h for h in STATUTORY_HOLIDAYS if any(w in text for w in _HOLIDAY_WORDS[h]))


@dataclass(frozen=True)
class _Estimated:
    holidays: tuple[str, ...]  # a statutory day may belong to two holidays (中秋 on 10-03)
    makeup: bool  # a 补假 day (a weekday off for a statutory day on a weekend)

    @property
    def name(self) -> str:
        return "、".join(self.holidays)


def statutory_days_off(year: int, *, makeup: bool = True) -> dict[date, str]:
    """The estimated days off of ``year`` besides weekends, from 《全国年节及纪念日放假办法》
    (2024 amendment), whatever official data exists: the 13 statutory days of 第二条 and the
    补假 of 第六条, each day mapped to its holiday.

    补假 ("全体公民放假的假日，如果适逢星期六、星期日，应当在工作日补假"): for each statutory
    day of a holiday on a Saturday or Sunday, and each one shared with another holiday
    (中秋 on 国庆: the 2020 notice gave 8 days), the holiday gets one working day off, the
    first working days after its last statutory day. 2027: 春节 02-06/07 → 02-09, 02-10;
    劳动节 05-01/02 → 05-03, 05-04; 国庆 10-02/03 → 10-04, 10-05. ``makeup=False``: the
    statutory days alone.
    """
    return {d: e.name for d, e in _estimate(year).items() if makeup or not e.makeup}


@lru_cache(maxsize=256)
def _estimate(year: int) -> Mapping[date, _Estimated]:
    spring = LunarDay(1, 1).dates_in_year(year)[0]
    by_holiday: dict[str, list[date]] = {
        "元旦": [date(year, 1, 1)],
        "春节": [spring + timedelta(days=i) for i in range(-1, 3)],
        "清明节": [_only(SolarTerm("清明").dates_in_year(year))],
        "劳动节": [date(year, 5, 1), date(year, 5, 2)],
        "端午节": [_only(LunarDay(5, 5).dates_in_year(year))],
        "中秋节": [_only(LunarDay(8, 15).dates_in_year(year))],
        "国庆节": [date(year, 10, i) for i in (1, 2, 3)],
    }
    owners: dict[date, list[str]] = {}
    for holiday, days in by_holiday.items():
        for d in days:
            owners.setdefault(d, []).append(holiday)
    out: dict[date, _Estimated] = {d: _Estimated(tuple(hs), False) for d, hs in owners.items()}
    claimed: set[date] = set()  # statutory days already counted for an earlier holiday
    for holiday, days in sorted(by_holiday.items(), key=lambda item: max(item[1])):
        owed = 0
        for d in days:
            owed += d.weekday() >= 5 or d in claimed
            claimed.add(d)
        d = max(days)
        while owed:
            d += timedelta(days=1)
            if d.weekday() < 5 and d not in out:
                out[d] = _Estimated((holiday,), True)
                owed -= 1
    return out


# --------------------------------------------------------------------------- the calendar


class Calendar:
    """Festivals (built-in plus operator-defined) and the official working-day calendar.

    ``custom`` festivals are added to the built-ins (or replace the built-in with the same
    id); ``schedules`` add hand-entered official schedules, usually for years the library
    lacks. Entering part of a year overrides only what was entered: every day listed, and
    in a year the library lacks, the estimate of each statutory holiday whose days off are
    listed; the other holidays keep their estimate (补假 included).

    Raises ValueError when two festivals claim the same name or alias, or when windows
    refer to unknown festivals or to each other in a cycle.
    """

    def __init__(
        self,
        custom: Iterable[Festival] = (),
        *,
        include_builtin: bool = True,
        schedules: Iterable[HolidaySchedule] = (),
    ) -> None:
        by_id: dict[str, Festival] = {f.id: f for f in _BUILTINS} if include_builtin else {}
        seen_custom: set[str] = set()
        for fest in custom:
            if fest.id in seen_custom:
                raise ValueError(f"festival id {fest.id!r} is defined twice")
            seen_custom.add(fest.id)
            by_id[fest.id] = fest
        self._festivals: dict[str, Festival] = by_id
        self._index: dict[str, str] = {}
        for fest in by_id.values():
            for key in (fest.id, fest.name, *fest.aliases):
                norm = _normalize(key)
                owner = self._index.setdefault(norm, fest.id)
                if owner != fest.id:
                    raise ValueError(
                        f"name {key!r} of festival {fest.id!r} is already used by "
                        f"{owner!r} ({by_id[owner].name})"
                    )
        for fest in by_id.values():
            if isinstance(fest.rule, Window):
                try:
                    self._check_window(fest.rule, (fest.id,))
                except ValueError as exc:
                    raise ValueError(f"window festival {fest.id!r}: {exc}") from None
        self._schedules = tuple(schedules)
        self._sched_off: dict[date, str] = {}
        self._sched_work: dict[date, str] = {}
        self._entered: dict[int, frozenset[str]] = {}  # year → statutory holidays typed in
        for sched in self._schedules:
            self._sched_off.update(sched.days_off)
            self._sched_work.update(sched.workdays)
            self._entered[sched.year] = self._entered.get(sched.year, frozenset()) | sched.entered_holidays
        self._estimates: dict[int, Mapping[date, _Estimated]] = {}

    # ---- festivals: lookup

    @property
    def festivals(self) -> tuple[Festival, ...]:
        """Every festival this calendar knows, built-ins first."""
        return tuple(self._festivals.values())

    def resolve(self, ref: str | Festival) -> Festival:
        """The festival named by id, Chinese name or alias (case, width and spaces ignored).

        Raises ValueError listing the closest known names when nothing matches.
        """
        if isinstance(ref, Festival):
            return ref
        key = _normalize(ref)
        fid = self._index.get(key)
        if fid is None:
            close = difflib.get_close_matches(key, list(self._index), n=5, cutoff=0.5)
            names = list(dict.fromkeys(self._festivals[self._index[c]].name for c in close))
            hint = f"; did you mean: {', '.join(names)}?" if names else ""
            raise ValueError(
                f"unknown festival {ref!r} (未知节日){hint} Known festivals: "
                + ", ".join(f.name for f in self._festivals.values())
            )
        return self._festivals[fid]

    # ---- festivals: dates

    def occurrences(self, festival: FestivalRef, start: date, end: date) -> list[date]:
        """Every date of ``festival`` between ``start`` and ``end`` (both included), sorted.

        ``festival`` is a name/id, a :class:`Festival`, a :class:`Window` (every day inside
        it) or a bare date rule such as ``FixedDate(3, 14)`` (a contact's birthday).
        """
        if end < start:
            return []
        rule = self._rule_of(festival)
        if isinstance(rule, Window):
            days: set[date] = set()
            for ws, we in self._spans(rule, start, end):
                d = max(ws, start)
                while d <= min(we, end):
                    days.add(d)
                    d += timedelta(days=1)
            return sorted(days)
        out: list[date] = []
        for year in range(start.year, end.year + 1):
            out.extend(d for d in _rule_dates(rule, year) if start <= d <= end)
        return out

    def spans(self, festival: FestivalRef, start: date, end: date) -> list[tuple[date, date]]:
        """The (first day, last day) spans of a window festival or :class:`Window` that
        overlap ``start``..``end``; a one-day festival gives (d, d) spans."""
        rule = self._rule_of(festival)
        if isinstance(rule, Window):
            return self._spans(rule, start, end)
        return [(d, d) for d in self.occurrences(festival, start, end)]

    def festivals_on(self, d: date) -> list[Festival]:
        """The festivals falling on ``d`` (window festivals on every day they span)."""
        out = []
        for fest in self._festivals.values():
            if isinstance(fest.rule, Window):
                if self.occurrences(fest, d, d):
                    out.append(fest)
            elif d in _rule_dates(fest.rule, d.year):
                out.append(fest)
        return out

    def next_festival(
        self,
        d: date,
        *,
        inclusive: bool = False,
        only: Iterable[str | Festival] | None = None,
        categories: Iterable[Category] | None = None,
    ) -> tuple[Festival, date]:
        """The nearest festival after ``d`` (on or after it when ``inclusive``) and its date;
        for a window festival, the date its window opens. ``only`` limits the candidates to
        the named festivals, ``categories`` to those categories. Ties keep display order.
        "Days to the next festival" is ``(when - d).days``. Raises ValueError if none of the
        candidates occurs within the next 400 days.
        """
        candidates = [self.resolve(x) for x in only] if only is not None else list(self._festivals.values())
        if categories is not None:
            cats = set(categories)
            candidates = [f for f in candidates if f.category in cats]
        first = d if inclusive else d + timedelta(days=1)
        best: tuple[Festival, date] | None = None
        for fest in candidates:
            days = [s for s, _ in self.spans(fest, first, first + _YEAR_SPAN) if s >= first]
            if days and (best is None or days[0] < best[1]):
                best = (fest, days[0])
        if best is None:
            raise ValueError(f"no festival occurs within 400 days after {d.isoformat()}")
        return best

    # ---- working days

    def day_info(self, d: date) -> DayInfo:
        """The official status of ``d``: working day or not, holiday name, 调休 makeup day,
        and whether published data decided (``official``) or the statutory estimate did.

        A hand-entered day wins; then the library's schedule; then, in a year without
        one, the estimate of each statutory holiday not entered (see :class:`Calendar`)."""
        weekend = d.weekday() >= 5
        if d in self._sched_off:
            return DayInfo(d, False, self._sched_off[d], False, None, True)
        if d in self._sched_work:
            return DayInfo(d, True, None, weekend, self._sched_work[d], True)
        if d.year in _LIB_YEARS:
            if d in _cn_official.holidays:
                return DayInfo(d, False, _official_name(_cn_official.holidays[d]), False, None, True)
            if d in _cn_official.workdays:
                why = _official_name(_cn_official.workdays[d])
                return DayInfo(d, True, None, weekend, why, True)
            return DayInfo(d, not weekend, None, False, None, True)
        estimated = self._estimate(d.year).get(d)
        if estimated is None:
            return DayInfo(d, not weekend, None, False, None, self.has_official_schedule(d.year))
        return DayInfo(d, False, estimated.name, False, None, False, estimated.makeup)

    def is_working_day(self, d: date) -> bool:
        """True when ``d`` is a working day (调休 weekend days included, holidays excluded)."""
        return self.day_info(d).is_working_day

    def holiday_name(self, d: date) -> str | None:
        """The official holiday ``d`` belongs to (``春节``, ``国庆节`` ...) when it is a day off
        in a holiday block, else None (plain weekends and working days)."""
        return self.day_info(d).holiday_name

    def is_makeup_workday(self, d: date) -> bool:
        """True when ``d`` is a weekend day made a working day by 调休 (补班)."""
        return self.day_info(d).is_makeup_workday

    def has_official_schedule(self, year: int) -> bool:
        """True when ``year`` follows a published schedule: the library's, or one entered
        for all seven statutory holidays. False while any holiday of ``year`` is estimated
        from the statutory rule (补假 included, no 调休)."""
        return year in _LIB_YEARS or not self.estimated_holidays(year)

    def estimated_holidays(self, year: int) -> tuple[str, ...]:
        """The statutory holidays of ``year`` whose days off are estimated (not in the
        library, not entered), in legal order; () for an official year."""
        if year in _LIB_YEARS:
            return ()
        entered = self._entered.get(year, frozenset())
        return tuple(h for h in STATUTORY_HOLIDAYS if h not in entered)

    def working_days(self, start: date, end: date) -> list[date]:
        """Every working day from ``start`` to ``end``, both included."""
        return [d for d in _days(start, end) if self.is_working_day(d)]

    # ---- internals

    def _estimate(self, year: int) -> Mapping[date, _Estimated]:
        """The statutory estimate of ``year`` without the holidays entered by hand."""
        if year not in self._estimates:
            entered = self._entered.get(year, frozenset())
            self._estimates[year] = {
                d: e for d, e in _estimate(year).items() if not entered.intersection(e.holidays)
            }
        return self._estimates[year]

    def _rule_of(self, festival: FestivalRef) -> DateRule | Window:
        if isinstance(festival, str):
            return self.resolve(festival).rule
        if isinstance(festival, Festival):
            if isinstance(festival.rule, Window):
                self._check_window(festival.rule, (festival.id,))
            return festival.rule
        if isinstance(festival, Window):
            self._check_window(festival, ())
        return festival

    def _anchor_dates(self, name: str, start: date, end: date, which: int) -> list[date]:
        """Dates of festival ``name`` in range; for a window festival its first (which=0) or
        last (which=1) days."""
        return sorted({span[which] for span in self.spans(name, start, end)})

    def _spans(self, w: Window, start: date, end: date) -> list[tuple[date, date]]:
        end_name = w.end if w.end is not None else w.start
        reach = timedelta(days=abs(w.start_offset) + abs(w.end_offset) + _MAX_WINDOW_DAYS)
        out = []
        for a in self._anchor_dates(w.start, start - reach, end + reach, 0):
            ends = self._anchor_dates(end_name, a, a + timedelta(days=_MAX_WINDOW_DAYS), 1)
            if not ends:
                continue
            ws = a + timedelta(days=w.start_offset)
            we = ends[0] + timedelta(days=w.end_offset)
            if ws <= we and ws <= end and we >= start:
                out.append((ws, we))
        return out

    def _check_window(self, w: Window, path: tuple[str, ...]) -> None:
        for ref in (w.start, w.end if w.end is not None else w.start):
            fest = self.resolve(ref)
            if fest.id in path:
                raise ValueError(f"window cycle: {' -> '.join((*path, fest.id))}")
            if isinstance(fest.rule, Window):
                self._check_window(fest.rule, (*path, fest.id))


# --------------------------------------------------------------------------- module API


@lru_cache(maxsize=1)
def _default() -> Calendar:
    return Calendar()


def is_working_day(d: date) -> bool:
    """True when ``d`` is a working day in mainland China (see :meth:`Calendar.is_working_day`)."""
    return _default().is_working_day(d)


def holiday_name(d: date) -> str | None:
    """The official holiday ``d`` is a day off for, else None (see :meth:`Calendar.holiday_name`)."""
    return _default().holiday_name(d)


def is_makeup_workday(d: date) -> bool:
    """True when ``d`` is a 调休 working weekend day (see :meth:`Calendar.is_makeup_workday`)."""
    return _default().is_makeup_workday(d)


def has_official_schedule(year: int) -> bool:
    """True when the installed library ships the official schedule of ``year`` (hand-entered
    schedules are a :class:`Calendar`'s: see :meth:`Calendar.has_official_schedule`)."""
    return year in _LIB_YEARS


def day_info(d: date) -> DayInfo:
    """The official status of ``d`` (see :meth:`Calendar.day_info`)."""
    return _default().day_info(d)


# --------------------------------------------------------------------------- helpers


def _normalize(text: str) -> str:
    """Fold full-width characters, case and whitespace: ``'  双１１ '`` -> ``'双11'``."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _only(dates: tuple[date, ...]) -> date:
    (d,) = dates
    return d


def _days(start: date, end: date) -> Iterator[date]:
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


@lru_cache(maxsize=4096)
def _rule_dates(rule: DateRule, year: int) -> tuple[date, ...]:
    return rule.dates_in_year(year)


# Julian day number of 0001-01-01 (proleptic Gregorian ordinal 1) is 1721426.
_JD_TO_ORDINAL = 1721425


def _lunar_month(lunar_year: int, month: int) -> tuple[date, int]:
    """(first day, length in days) of the regular lunar month ``month`` of ``lunar_year``."""
    return _lunar_months(lunar_year)[month]


@lru_cache(maxsize=256)
def _lunar_months(lunar_year: int) -> dict[int, tuple[date, int]]:
    """Every regular month of ``lunar_year`` from one computation of the year: lunar-python
    keeps only the last year it computed (8 ms each), and festivals around New Year ask
    for two years in turn."""
    months: dict[int, tuple[date, int]] = {}
    for m in LunarYear.fromYear(lunar_year).getMonths():
        if m.getYear() == lunar_year and m.getMonth() > 0:
            months[m.getMonth()] = (
                date.fromordinal(int(m.getFirstJulianDay()) - _JD_TO_ORDINAL),
                m.getDayCount(),
            )
    return months


@lru_cache(maxsize=512)
def _solar_terms(year: int) -> Mapping[str, date]:
    """The 24 solar terms of Gregorian ``year``: the lunar year starting in ``year`` lists
    every term from the previous 冬至 to the next one (the last few under pinyin keys)."""
    out: dict[str, date] = {}
    for key, solar in Lunar.fromYmd(year, 1, 1).getJieQiTable().items():
        if solar.getYear() == year:
            out[_PINYIN_TERMS.get(key, key)] = date(year, solar.getMonth(), solar.getDay())
    missing = set(SOLAR_TERMS) - set(out)
    if missing:  # pragma: no cover - guards against a library change
        raise RuntimeError(f"lunar-python gave no {sorted(missing)} for {year}")
    return out
