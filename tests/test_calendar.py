"""The festival and working-day calendar, checked against independently known dates.

Expected dates below are hard facts, not outputs of the code under test: the Chinese
calendar dates as published by 紫金山天文台 / printed calendars, and the 2026 schedule from
国务院办公厅关于2026年部分节假日安排的通知 (国办发明电〔2025〕7号, November 2025).
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.calendar import (
    Calendar,
    Festival,
    FixedDate,
    HolidaySchedule,
    LunarDay,
    NthWeekday,
    OnceDate,
    SolarTerm,
    Window,
    builtin_festivals,
    day_info,
    has_official_schedule,
    holiday_name,
    is_makeup_workday,
    is_working_day,
    official_schedule_years,
    parse_rule,
)

D = date


@pytest.fixture(scope="module")
def cal() -> Calendar:
    return Calendar()


def one(cal: Calendar, name: str, year: int) -> date:
    (d,) = cal.occurrences(name, D(year, 1, 1), D(year, 12, 31))
    return d


# --------------------------------------------------------------------------- festival dates

KNOWN_DATES = [
    ("春节", D(2023, 1, 22)),
    ("春节", D(2024, 2, 10)),
    ("春节", D(2025, 1, 29)),
    ("春节", D(2026, 2, 17)),
    ("春节", D(2027, 2, 6)),
    ("除夕", D(2025, 1, 28)),
    ("除夕", D(2026, 2, 16)),  # 腊月廿九: 2026 has no 大年三十
    ("除夕", D(2027, 2, 5)),
    ("元宵", D(2026, 3, 3)),
    ("端午", D(2024, 6, 10)),
    ("端午", D(2025, 5, 31)),
    ("端午", D(2026, 6, 19)),
    ("端午", D(2027, 6, 9)),
    ("七夕", D(2026, 8, 19)),
    ("七夕", D(2027, 8, 8)),
    ("中秋", D(1978, 9, 17)),  # table-based libraries say 09-16
    ("中秋", D(2023, 9, 29)),
    ("中秋", D(2024, 9, 17)),
    ("中秋", D(2025, 10, 6)),
    ("中秋", D(2026, 9, 25)),
    ("中秋", D(2027, 9, 15)),
    ("重阳", D(2026, 10, 18)),
    ("腊八", D(2026, 1, 26)),
    ("清明", D(2023, 4, 5)),
    ("清明", D(2024, 4, 4)),
    ("清明", D(2025, 4, 4)),
    ("清明", D(2026, 4, 5)),
    ("清明", D(2027, 4, 5)),
    ("冬至", D(2024, 12, 21)),
    ("冬至", D(2025, 12, 21)),
    ("冬至", D(2026, 12, 22)),
    ("母亲节", D(2026, 5, 10)),
    ("母亲节", D(2027, 5, 9)),
    ("父亲节", D(2026, 6, 21)),
    ("父亲节", D(2027, 6, 20)),
    ("双11", D(2026, 11, 11)),
    ("女王节", D(2027, 3, 8)),
    ("教师节", D(2026, 9, 10)),
    ("520", D(2026, 5, 20)),
    ("618", D(2026, 6, 18)),
    ("平安夜", D(2026, 12, 24)),
]


@pytest.mark.parametrize(("name", "expected"), KNOWN_DATES)
def test_known_festival_dates(cal: Calendar, name: str, expected: date) -> None:
    assert one(cal, name, expected.year) == expected


def test_chuxi_is_the_day_before_chunjie_even_when_lamonth_has_29_days(cal: Calendar) -> None:
    start, end = D(1950, 1, 1), D(2099, 12, 31)
    chunjie = cal.occurrences("chunjie", start, end)
    chuxi = cal.occurrences("chuxi", start, end)
    assert len(chunjie) == len(chuxi) == 150
    assert all(x + timedelta(days=1) == c for x, c in zip(chuxi, chunjie, strict=True))
    assert all(D(c.year, 1, 21) <= c <= D(c.year, 2, 20) for c in chunjie)
    yuanxiao = cal.occurrences("元宵", start, end)
    assert all(c + timedelta(days=14) == y for c, y in zip(chunjie, yuanxiao, strict=True))


def test_lunar_year_rolls_into_next_gregorian_year(cal: Calendar) -> None:
    # 腊月 of lunar 2026 lies in January 2027; 小年 north/south are one day apart.
    assert cal.occurrences("腊八", D(2026, 12, 1), D(2027, 2, 28)) == [D(2027, 1, 15)]
    assert one(cal, "小年", 2027) == D(2027, 1, 30)
    assert one(cal, "南方小年", 2027) == D(2027, 1, 31)


def test_qingming_stays_in_its_three_day_range(cal: Calendar) -> None:
    for d in cal.occurrences("清明", D(1950, 1, 1), D(2099, 12, 31)):
        assert D(d.year, 4, 4) <= d <= D(d.year, 4, 6)


def test_occurrences_range_is_inclusive_and_sorted(cal: Calendar) -> None:
    got = cal.occurrences("双11", D(2026, 11, 11), D(2028, 11, 11))
    assert got == [D(2026, 11, 11), D(2027, 11, 11), D(2028, 11, 11)]
    assert cal.occurrences("双11", D(2026, 11, 12), D(2027, 11, 10)) == []
    assert cal.occurrences("双11", D(2027, 1, 1), D(2026, 1, 1)) == []


def test_festivals_on(cal: Calendar) -> None:
    assert [f.id for f in cal.festivals_on(D(2026, 2, 16))] == ["chuxi"]
    assert [f.id for f in cal.festivals_on(D(2026, 10, 1))] == ["national_day"]
    assert cal.festivals_on(D(2026, 7, 15)) == []
    # 年货节 is a window: on every day from 腊八 to 小年.
    assert {f.id for f in cal.festivals_on(D(2027, 1, 15))} == {"laba", "nianhuo"}
    assert [f.id for f in cal.festivals_on(D(2027, 1, 20))] == ["nianhuo"]
    assert {f.id for f in cal.festivals_on(D(2027, 1, 30))} == {"xiaonian", "nianhuo"}
    assert cal.festivals_on(D(2027, 1, 31))[0].id == "xiaonian_south"
    assert "nianhuo" not in {f.id for f in cal.festivals_on(D(2027, 1, 31))}


def test_next_festival(cal: Calendar) -> None:
    fest, when = cal.next_festival(D(2026, 11, 23))
    assert (fest.id, when) == ("double12", D(2026, 12, 12))
    assert cal.next_festival(D(2026, 12, 12))[0].id == "dongzhi"
    assert cal.next_festival(D(2026, 12, 12), inclusive=True)[0].id == "double12"
    fest, when = cal.next_festival(D(2026, 11, 23), only=["春节", "中秋"])
    assert (fest.name, when, (when - D(2026, 11, 23)).days) == ("春节", D(2027, 2, 6), 75)
    fest, when = cal.next_festival(D(2026, 11, 23), categories=["traditional"])
    assert (fest.id, when) == ("laba", D(2027, 1, 15))
    # A window festival counts from the day it opens, not from inside it.
    fest, when = cal.next_festival(D(2027, 1, 16), only=["年货节"])
    assert when == one(cal, "腊八", 2028)  # 腊八 of lunar 2027
    assert D(2028, 1, 1) < when < D(2028, 1, 26)  # before 春节 2028 (01-26)


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "fid"),
    [
        ("双11", "double11"),
        ("双十一", "double11"),
        ("11.11", "double11"),
        ("双１１", "double11"),  # full-width digits
        (" Double11 ", "double11"),
        ("元宵节", "yuanxiao"),
        ("元宵", "yuanxiao"),
        ("中秋节", "zhongqiu"),
        ("3.8", "womens_day"),
        ("妇女节", "womens_day"),
        ("大年三十", "chuxi"),
        ("过年", "chunjie"),
        ("小年(北)", "xiaonian"),
        ("小年（南）", "xiaonian_south"),  # full-width brackets
        ("清明节", "qingming"),
        ("年货节", "nianhuo"),
    ],
)
def test_aliases(cal: Calendar, text: str, fid: str) -> None:
    assert cal.resolve(text).id == fid


def test_unknown_name_lists_close_matches(cal: Calendar) -> None:
    with pytest.raises(ValueError, match="unknown festival '中秋街'") as info:
        cal.resolve("中秋街")
    assert "did you mean: 中秋" in str(info.value)
    with pytest.raises(ValueError, match="did you mean: 双11"):
        cal.occurrences("双11节", D(2026, 1, 1), D(2026, 12, 31))
    with pytest.raises(ValueError, match="Known festivals: 元旦"):
        cal.resolve("zzzz")


def test_builtin_ids_are_unique_ascii() -> None:
    ids = [f.id for f in builtin_festivals()]
    assert len(ids) == len(set(ids))
    assert all(i.isascii() for i in ids)


# --------------------------------------------------------------------------- windows


def test_window_every_day_from_laba_to_chuxi(cal: Calendar) -> None:
    days = cal.occurrences(Window("腊八", "除夕"), D(2026, 12, 1), D(2027, 3, 1))
    assert days[0] == D(2027, 1, 15)
    assert days[-1] == D(2027, 2, 5)
    assert len(days) == 22
    assert days == [D(2027, 1, 15) + timedelta(days=i) for i in range(22)]


def test_window_days_before_a_festival(cal: Calendar) -> None:
    three_before = Window("双11", start_offset=-3, end_offset=-1)
    got = cal.occurrences(three_before, D(2026, 1, 1), D(2026, 12, 31))
    assert got == [D(2026, 11, 8), D(2026, 11, 9), D(2026, 11, 10)]
    single = Window("双十一", start_offset=-3, end_offset=-3)
    assert cal.occurrences(single, D(2026, 1, 1), D(2027, 12, 31)) == [
        D(2026, 11, 8),
        D(2027, 11, 8),
    ]


def test_window_clipped_to_range_and_crossing_new_year(cal: Calendar) -> None:
    xmas_to_new_year = Window("圣诞节", "元旦")
    got = cal.occurrences(xmas_to_new_year, D(2026, 12, 30), D(2027, 1, 5))
    assert got == [D(2026, 12, 30), D(2026, 12, 31), D(2027, 1, 1)]
    assert cal.spans(xmas_to_new_year, D(2027, 1, 1), D(2027, 1, 1)) == [(D(2026, 12, 25), D(2027, 1, 1))]


def test_window_festival_and_nested_window(cal: Calendar) -> None:
    assert cal.spans("年货节", D(2027, 1, 1), D(2027, 12, 31)) == [(D(2027, 1, 15), D(2027, 1, 30))]
    # "from 年货节 opens until the day after 春节": starts on 腊八.
    w = Window("年货节", "春节", end_offset=1)
    assert cal.spans(w, D(2027, 1, 1), D(2027, 3, 1)) == [(D(2027, 1, 15), D(2027, 2, 7))]


def test_window_errors() -> None:
    with pytest.raises(ValueError, match="unknown festival '腊九'"):
        Calendar([Festival("promo", "促销", Window("腊九", "除夕"))])
    a = Festival("a", "甲", Window("b"))
    b = Festival("b", "乙", Window("a"))
    with pytest.raises(ValueError, match="cycle"):
        Calendar([a, b])


# --------------------------------------------------------------------------- custom dates


def test_custom_festivals() -> None:
    cal = Calendar(
        [
            Festival("brand_day", "品牌日", FixedDate(5, 20), ["周年庆"]),
            Festival("launch", "新店开业", OnceDate(D(2026, 8, 8))),
            Festival("member_day", "会员日", NthWeekday(3, 2, -1)),  # last Wednesday of March
            Festival("lunar_bday", "店长农历生日", LunarDay(8, 15)),
            Festival("day618", "618", FixedDate(6, 16), ["6.16"], "shopping"),  # seed: 6.16
            Festival("summer", "夏至", SolarTerm("夏至")),
        ]
    )
    assert one(cal, "周年庆", 2027) == D(2027, 5, 20)
    assert {f.id for f in cal.festivals_on(D(2027, 5, 20))} == {"brand_day", "day520"}
    assert cal.occurrences("launch", D(2020, 1, 1), D(2030, 1, 1)) == [D(2026, 8, 8)]
    assert one(cal, "会员日", 2026) == D(2026, 3, 25)
    assert one(cal, "店长农历生日", 2027) == D(2027, 9, 15)
    assert one(cal, "618", 2026) == D(2026, 6, 16)
    with pytest.raises(ValueError, match=r"unknown festival '6\.18'"):  # replaced whole
        cal.resolve("6.18")
    assert one(cal, "夏至", 2026) == D(2026, 6, 21)


def test_birthday_rules_as_bare_specs(cal: Calendar) -> None:
    leap_day = FixedDate(2, 29)
    got = cal.occurrences(leap_day, D(2027, 1, 1), D(2028, 12, 31))
    assert got == [D(2027, 2, 28), D(2028, 2, 29)]
    # A lunar birthday on the 30th is kept on the 29th in a short month.
    assert cal.occurrences(LunarDay(12, 30), D(2026, 1, 1), D(2026, 12, 31)) == [D(2026, 2, 16)]


def test_nth_weekday_rules() -> None:
    assert NthWeekday(5, 6, 2).dates_in_year(2026) == (D(2026, 5, 10),)
    assert NthWeekday(11, 3, 4).dates_in_year(2026) == (D(2026, 11, 26),)  # Thanksgiving
    assert NthWeekday(6, 4, -1).dates_in_year(2026) == (D(2026, 6, 26),)
    assert NthWeekday(2, 0, 5).dates_in_year(2026) == ()  # February 2026 has 4 Mondays
    with pytest.raises(ValueError, match="n must be"):
        NthWeekday(5, 6, 0)


def test_duplicate_alias_is_rejected() -> None:
    with pytest.raises(ValueError, match="already used by 'double11'"):
        Calendar([Festival("shop", "店庆", FixedDate(11, 1), ["双十一"])])
    with pytest.raises(ValueError, match="defined twice"):
        Calendar([Festival("x", "甲", FixedDate(1, 2)), Festival("x", "乙", FixedDate(1, 3))])
    with pytest.raises(ValueError, match="ASCII"):
        Festival("店庆", "店庆", FixedDate(1, 2))


def test_invalid_rules() -> None:
    with pytest.raises(ValueError, match="day is out of range"):
        FixedDate(2, 30)
    with pytest.raises(ValueError, match="lunar day"):
        LunarDay(8, 31)
    with pytest.raises(ValueError, match="unknown solar term"):
        SolarTerm("清明节")


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("05-20", FixedDate(5, 20)),
        (" 5-20 ", FixedDate(5, 20)),
        ("2026-08-08", OnceDate(D(2026, 8, 8))),
        ("农历08-15", LunarDay(8, 15)),
        ("lunar:12-30", LunarDay(12, 30)),
        ("5月第2个周日", NthWeekday(5, 6, 2)),
        ("6月第三个星期日", NthWeekday(6, 6, 3)),
        ("3月最后一个周三", NthWeekday(3, 2, -1)),
        ("节气：清明", SolarTerm("清明")),
        ("term:冬至", SolarTerm("冬至")),
    ],
)
def test_parse_rule(text: str, rule: object) -> None:
    assert parse_rule(text) == rule


def test_parse_rule_errors() -> None:
    with pytest.raises(ValueError, match="write one of"):
        parse_rule("every may 20")
    with pytest.raises(ValueError, match="invalid date rule '02-30'"):
        parse_rule("02-30")


# --------------------------------------------------------------------------- working days

# 国办发明电〔2025〕7号: the 2026 schedule.
DAYS_OFF_2026 = {
    "元旦": [D(2026, 1, 1), D(2026, 1, 2), D(2026, 1, 3)],
    "春节": [D(2026, 2, 15) + timedelta(days=i) for i in range(9)],  # 2/15 - 2/23
    "清明节": [D(2026, 4, 4), D(2026, 4, 5), D(2026, 4, 6)],
    "劳动节": [D(2026, 5, i) for i in range(1, 6)],
    "端午节": [D(2026, 6, 19), D(2026, 6, 20), D(2026, 6, 21)],
    "中秋节": [D(2026, 9, 25), D(2026, 9, 26), D(2026, 9, 27)],
    "国庆节": [D(2026, 10, i) for i in range(1, 8)],
}
MAKEUP_WORKDAYS_2026 = {
    D(2026, 1, 4): "元旦",
    D(2026, 2, 14): "春节",
    D(2026, 2, 28): "春节",
    D(2026, 5, 9): "劳动节",
    D(2026, 9, 20): "国庆节",
    D(2026, 10, 10): "国庆节",
}


def test_2026_is_covered_by_the_library() -> None:
    assert has_official_schedule(2026)
    assert {2004, 2025, 2026} <= official_schedule_years()


def test_2026_official_days_off() -> None:
    expected = {d: name for name, days in DAYS_OFF_2026.items() for d in days}
    for d in (D(2026, 1, 1) + timedelta(days=i) for i in range(365)):
        info = day_info(d)
        assert info.official
        assert info.holiday_name == expected.get(d), d
        if d in expected:
            assert not is_working_day(d), d
        elif d in MAKEUP_WORKDAYS_2026:
            assert is_working_day(d), d
        else:
            assert is_working_day(d) == (d.weekday() < 5), d


def test_2026_makeup_workdays() -> None:
    found = {
        d: day_info(d).makeup_for
        for d in Calendar().working_days(D(2026, 1, 1), D(2026, 12, 31))
        if d.weekday() >= 5
    }
    assert found == MAKEUP_WORKDAYS_2026
    assert all(is_makeup_workday(d) for d in MAKEUP_WORKDAYS_2026)


def test_working_day_examples() -> None:
    assert D(2026, 2, 14).weekday() == 5 and is_working_day(D(2026, 2, 14))  # 调休 Saturday
    assert D(2026, 10, 5).weekday() == 0 and not is_working_day(D(2026, 10, 5))  # holiday Monday
    assert holiday_name(D(2026, 10, 5)) == "国庆节"
    assert not is_working_day(D(2026, 10, 11))  # plain Sunday
    assert holiday_name(D(2026, 10, 11)) is None
    assert not is_makeup_workday(D(2026, 10, 11))
    assert is_working_day(D(2026, 10, 8))  # Thursday after the break
    assert not is_makeup_workday(D(2026, 10, 8))


# 2027 under 《全国年节及纪念日放假办法》 (2024 amendment) 第二条, with the 补假 of 第六条
# ("全体公民放假的假日，如果适逢星期六、星期日，应当在工作日补假"): 2027-02-06/07 (春节 初一、
# 初二), 05-01/02 and 10-02/03 are Saturdays and Sundays, made up on the next working days.
STATUTORY_2027 = {
    D(2027, 1, 1): "元旦",
    D(2027, 2, 5): "春节",  # 除夕
    D(2027, 2, 6): "春节",
    D(2027, 2, 7): "春节",
    D(2027, 2, 8): "春节",
    D(2027, 4, 5): "清明节",
    D(2027, 5, 1): "劳动节",
    D(2027, 5, 2): "劳动节",
    D(2027, 6, 9): "端午节",
    D(2027, 9, 15): "中秋节",
    D(2027, 10, 1): "国庆节",
    D(2027, 10, 2): "国庆节",
    D(2027, 10, 3): "国庆节",
}
BUJIA_2027 = {
    D(2027, 2, 9): "春节",
    D(2027, 2, 10): "春节",
    D(2027, 5, 3): "劳动节",
    D(2027, 5, 4): "劳动节",
    D(2027, 10, 4): "国庆节",
    D(2027, 10, 5): "国庆节",
}


@pytest.mark.skipif(has_official_schedule(2027), reason="the library now ships 2027")
def test_2027_falls_back_to_statutory_days_with_bujia() -> None:
    off = STATUTORY_2027 | BUJIA_2027
    for d in (D(2027, 1, 1) + timedelta(days=i) for i in range(365)):
        info = day_info(d)
        assert not info.official
        assert not info.is_makeup_workday
        assert info.holiday_name == off.get(d), d
        assert info.is_makeup_day_off == (d in BUJIA_2027), d
        assert info.is_working_day == (d not in off and d.weekday() < 5), d


def test_statutory_fallback_far_ahead() -> None:
    # 2040: 01-01 is a Sunday; 春节 (农历正月初一) is 2040-02-12, a Sunday, so 除夕 is Saturday
    # 02-11; 初三 is Tuesday 02-14. 补假: 01-02 for 元旦, 02-15 and 02-16 for 春节.
    cal = Calendar()
    assert not cal.has_official_schedule(2040)
    assert cal.estimated_holidays(2040) == ("元旦", "春节", "清明节", "劳动节", "端午节", "中秋节", "国庆节")
    off = {
        d: n for d in (D(2040, 1, 1) + timedelta(days=i) for i in range(366)) if (n := cal.holiday_name(d))
    }
    assert len(off) == 13 + 3
    spring = one(cal, "春节", 2040)
    assert spring == D(2040, 2, 12)
    assert [d for d, n in off.items() if n == "春节"] == [spring + timedelta(days=i) for i in range(-1, 5)]
    assert off[D(2040, 1, 2)] == "元旦"
    assert [d for d in off if cal.day_info(d).is_makeup_day_off] == [
        D(2040, 1, 2),
        D(2040, 2, 15),
        D(2040, 2, 16),
    ]


def test_hand_entered_schedule_overrides_only_what_it_enters() -> None:
    # An illustrative 国庆 block, as an operator would enter one before the library has it.
    sched = HolidaySchedule(
        2040,
        days_off={D(2040, 10, i): "国庆节" for i in range(1, 9)},
        workdays={D(2040, 9, 29): "国庆节", D(2040, 10, 13): "国庆节"},
    )
    cal = Calendar(schedules=[sched])
    assert sched.entered_holidays == {"国庆节"}
    assert cal.holiday_name(D(2040, 10, 8)) == "国庆节"
    assert cal.day_info(D(2040, 10, 8)).official
    assert cal.is_makeup_workday(D(2040, 9, 29))  # a Saturday
    assert cal.day_info(D(2040, 9, 29)).makeup_for == "国庆节"
    # The holidays not entered keep the statutory estimate: 劳动节 2040-05-01 is a Tuesday.
    assert cal.holiday_name(D(2040, 5, 1)) == "劳动节"
    assert not cal.is_working_day(D(2040, 5, 1))
    assert not cal.day_info(D(2040, 5, 1)).official
    assert not cal.has_official_schedule(2040)
    assert "国庆节" not in cal.estimated_holidays(2040)


def test_entering_all_seven_holidays_makes_the_year_official() -> None:
    names = ("元旦", "春节", "清明", "五一", "端午", "中秋节", "国庆")
    days = (
        D(2040, 1, 2),
        D(2040, 2, 10),
        D(2040, 4, 4),
        D(2040, 5, 1),
        D(2040, 6, 14),
        D(2040, 9, 20),
        D(2040, 10, 1),
    )
    cal = Calendar(schedules=[HolidaySchedule(2040, dict(zip(days, names, strict=True)))])
    assert cal.has_official_schedule(2040)
    assert cal.estimated_holidays(2040) == ()
    # what was typed, nothing else: 2040-01-01 is a plain Sunday, 2040-02-13 a plain Monday
    assert cal.holiday_name(D(2040, 1, 1)) is None and cal.day_info(D(2040, 1, 1)).official
    assert cal.is_working_day(D(2040, 2, 13)) and cal.day_info(D(2040, 2, 13)).official
    assert not cal.is_working_day(D(2040, 2, 10))  # a Friday, as entered


def test_days_entered_for_an_official_year_override_those_days_only() -> None:
    # e.g. a day added to 国庆 2026 after the notice: the rest of 2026 stays the library's
    cal = Calendar(schedules=[HolidaySchedule(2026, days_off={D(2026, 10, 9): "国庆节"})])
    assert not cal.is_working_day(D(2026, 10, 9)) and cal.holiday_name(D(2026, 10, 9)) == "国庆节"
    assert cal.is_makeup_workday(D(2026, 10, 10))  # 调休 Saturday of the notice
    assert cal.holiday_name(D(2026, 5, 1)) == "劳动节"
    assert cal.has_official_schedule(2026) and cal.estimated_holidays(2026) == ()
    assert all(cal.day_info(D(2026, 1, 1) + timedelta(days=i)).official for i in range(365))
