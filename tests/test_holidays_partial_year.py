"""Official holidays an operator types in (`holidays:` in sop/dates.yaml) for a year the
built-in calendar has no notice for, and the statutory estimate of such a year.

The expected days are facts, not outputs of the code under test. 《全国年节及纪念日放假办法》
(as amended 2024-11, in force from 2025), 第二条: 元旦 1 day (01-01); 春节 4 days (除夕,
正月初一至初三); 清明 1; 劳动节 2 days (05-01, 05-02); 端午 1; 中秋 1; 国庆 3 days
(10-01…10-03). 第六条: "全体公民放假的假日，如果适逢星期六、星期日，应当在工作日补假".
2027 (正月初一 = 2027-02-06, 清明 04-05, 端午 06-09, 中秋 09-15):
- 春节 02-05 Fri (除夕), 02-06 Sat, 02-07 Sun, 02-08 Mon: two weekend days → 补假 02-09 Tue,
  02-10 Wed;
- 劳动节 05-01 Sat, 05-02 Sun → 05-03 Mon, 05-04 Tue;
- 国庆 10-01 Fri, 10-02 Sat, 10-03 Sun → 10-04 Mon, 10-05 Tue;
- 元旦 (Fri), 清明 (Mon), 端午 (Wed), 中秋 (Wed) fall on weekdays: no 补假.
2030 (正月初一 = 2030-02-03, a Sunday): 除夕 02-02 Sat and 初一 02-03 Sun → 02-06, 02-07.
The 2025 and 2026 schedules are the State Council's (国办发明电〔2024〕12号, 〔2025〕7号), as
shipped by chinesecalendar; the 2020 one (国办发明电〔2019〕16号) gave 10-01…10-08 for 国庆
and 中秋 on the same day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from bot.calendar import Calendar, official_schedule_years, statutory_days_off, statutory_holidays_in
from bot.cli.app import app
from bot.sop.authoring.loader import load_sop_set
from bot.sop.authoring.triggers import fire_times
from tests.sop_support import REPO

D = date
SHANGHAI = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.skipif(2027 in official_schedule_years(), reason="the library now ships 2027")

ONLY_CHUNJIE_2027 = """\
holidays:
  2027:
    off:
      春节: 2027-02-05..2027-02-11
    work:
      春节: [2027-01-31, 2027-02-20]
"""
OTHER_HOLIDAYS_2027 = {
    D(2027, 1, 1): "元旦",
    D(2027, 4, 5): "清明节",
    D(2027, 5, 1): "劳动节",
    D(2027, 5, 2): "劳动节",
    D(2027, 5, 3): "劳动节",  # 补假
    D(2027, 5, 4): "劳动节",  # 补假
    D(2027, 6, 9): "端午节",
    D(2027, 9, 15): "中秋节",
    D(2027, 10, 1): "国庆节",
    D(2027, 10, 2): "国庆节",
    D(2027, 10, 3): "国庆节",
    D(2027, 10, 4): "国庆节",  # 补假
    D(2027, 10, 5): "国庆节",  # 补假
}
BUJIA_2027 = {D(2027, 2, 9), D(2027, 2, 10), D(2027, 5, 3), D(2027, 5, 4), D(2027, 10, 4), D(2027, 10, 5)}


def sop_folder(root: Path, dates_yaml: str | None) -> Path:
    """The shipped working-day SOP (with the group types and catalog it needs) and a
    dates.yaml, as an operator's sop/ folder."""
    sop = root / "sop"
    sop.mkdir(parents=True)
    for name in ("groups.yaml", "catalog.yaml", "workday_tips.yaml"):
        (sop / name).write_text((REPO / "sop" / name).read_text(encoding="utf-8"), encoding="utf-8")
    if dates_yaml is not None:
        (sop / "dates.yaml").write_text(dates_yaml, encoding="utf-8")
    return sop


def calendar_of(tmp_path: Path, dates_yaml: str) -> Calendar:
    sop = sop_folder(tmp_path, dates_yaml)
    return load_sop_set(sop, REPO / "templates", SHANGHAI).calendar


def cli(tmp_path: Path, sop: Path, *args: str) -> list[str]:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'sop_dir = "{sop}"\ntemplates_dir = "{REPO / "templates"}"\n'
        f'database_url = "sqlite:///{tmp_path / "none.db"}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["-s", str(settings), *args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def plan_days(lines: list[str]) -> dict[date, tuple[str, list[str]]]:
    """Each day of `sopbot plan` output: its header and its entries."""
    days: dict[date, tuple[str, list[str]]] = {}
    current = None
    for line in lines:
        if line[:4].isdigit():
            current = date.fromisoformat(line[:10])
            days[current] = (line, [])
        elif line.startswith("  ") and current is not None:
            days[current][1].append(line.split()[1])
    return days


# --------------------------------------------------------------------------- the estimate


def test_2027_estimate_has_the_bujia_of_article_6() -> None:
    # the weekdays the derivation in the module docstring rests on
    assert [D(2027, 2, d).weekday() for d in (5, 6, 7, 8)] == [4, 5, 6, 0]
    assert [D(2027, 5, d).weekday() for d in (1, 2)] == [5, 6]
    assert [D(2027, 10, d).weekday() for d in (1, 2, 3)] == [4, 5, 6]
    off = statutory_days_off(2027)
    law = statutory_days_off(2027, makeup=False)
    assert set(off) - set(law) == BUJIA_2027
    assert {d: off[d] for d in sorted(BUJIA_2027)} == {
        D(2027, 2, 9): "春节",
        D(2027, 2, 10): "春节",
        D(2027, 5, 3): "劳动节",
        D(2027, 5, 4): "劳动节",
        D(2027, 10, 4): "国庆节",
        D(2027, 10, 5): "国庆节",
    }
    assert len(law) == 13
    cal = Calendar()
    for d in BUJIA_2027:
        info = cal.day_info(d)
        assert not info.is_working_day and info.is_makeup_day_off and not info.official, d


def test_2030_estimate_makes_up_chuxi_and_chunjie_on_the_weekend() -> None:
    assert 2030 not in official_schedule_years()
    assert D(2030, 2, 2).weekday() == 5 and D(2030, 2, 3).weekday() == 6
    off = statutory_days_off(2030)
    spring = [d for d, name in sorted(off.items()) if name == "春节"]
    assert spring == [D(2030, 2, d) for d in (2, 3, 4, 5, 6, 7)]
    assert not Calendar().is_working_day(D(2030, 2, 7))
    assert Calendar().is_working_day(D(2030, 2, 8))  # Friday after the 补假


def test_two_holidays_on_one_day_are_made_up_like_the_2020_notice() -> None:
    # 2020: 中秋 was 10-01; the notice gave 10-01…10-08 with 09-27 and 10-10 worked, i.e. four
    # weekdays off net (国庆 10-01, 10-02, 补假 for Saturday 10-03, and one for 中秋).
    official = Calendar()
    autumn = [D(2020, 9, 20) + timedelta(days=i) for i in range(25)]
    net = sum(d.weekday() < 5 and not official.is_working_day(d) for d in autumn) - sum(
        d.weekday() >= 5 and official.is_working_day(d) for d in autumn
    )
    assert net == 4
    estimate = {d for d in statutory_days_off(2020) if d in autumn}
    assert len([d for d in estimate if d.weekday() < 5]) == 4
    assert estimate <= {d for d in autumn if not official.is_working_day(d)}
    # 2028: 中秋 is 10-03, a 国庆 day; 10-01 is a Sunday → 补假 10-04 and 10-05
    off = statutory_days_off(2028)
    assert off[D(2028, 10, 3)] == "中秋节、国庆节"
    assert [d for d in sorted(off) if d.month == 10] == [D(2028, 10, i) for i in range(1, 6)]


@pytest.mark.parametrize("year", [2025, 2026])
def test_the_estimate_agrees_with_the_published_notices(year: int) -> None:
    """Under the same law, every weekday the estimate gives off (statutory days and 补假)
    is off in the State Council's schedule, and both give 13 weekdays off net of 调休."""
    official = Calendar()
    assert official.has_official_schedule(year)
    year_days = [D(year, 1, 1) + timedelta(days=i) for i in range(365)]
    estimate_weekdays = {d for d in statutory_days_off(year) if d.weekday() < 5}
    assert all(not official.is_working_day(d) for d in estimate_weekdays)
    official_net = sum(d.weekday() < 5 and not official.is_working_day(d) for d in year_days) - sum(
        d.weekday() >= 5 and official.is_working_day(d) for d in year_days
    )
    assert len(estimate_weekdays) == official_net == 13


def test_holiday_names_an_operator_writes() -> None:
    assert statutory_holidays_in("春节") == ("春节",)
    assert statutory_holidays_in("国庆") == ("国庆节",)
    assert statutory_holidays_in("五一") == ("劳动节",)
    assert statutory_holidays_in("中秋节、国庆节") == ("中秋节", "国庆节")
    assert statutory_holidays_in("清明节") == ("清明节",)
    assert statutory_holidays_in("双十一") == ()
    assert statutory_holidays_in("春截") == ()


# --------------------------------------------------------------------------- a partly entered year


def test_only_chunjie_2027_entered_keeps_the_other_holidays_off(tmp_path: Path) -> None:
    cal = calendar_of(tmp_path, ONLY_CHUNJIE_2027)
    for d, name in OTHER_HOLIDAYS_2027.items():
        info = cal.day_info(d)
        assert not info.is_working_day, d
        assert info.holiday_name == name, d
        assert not info.official, d  # still the estimate
    # the entered days are what the operator typed
    for d in (D(2027, 2, 5) + timedelta(days=i) for i in range(7)):
        info = cal.day_info(d)
        assert not info.is_working_day and info.holiday_name == "春节" and info.official, d
    for d in (D(2027, 1, 31), D(2027, 2, 20)):  # a Sunday and a Saturday
        info = cal.day_info(d)
        assert info.is_working_day and info.is_makeup_workday and info.makeup_for == "春节", d
    assert not cal.has_official_schedule(2027)
    assert cal.estimated_holidays(2027) == ("元旦", "清明节", "劳动节", "端午节", "中秋节", "国庆节")


def test_an_entered_holiday_replaces_its_estimate(tmp_path: Path) -> None:
    # only 初一 to 初三 typed: 除夕 (02-05) and the estimate's 补假 (02-09, 02-10) are working days
    cal = calendar_of(tmp_path, "holidays:\n  2027:\n    off:\n      春节: 2027-02-06..2027-02-08\n")
    assert [cal.is_working_day(D(2027, 2, d)) for d in range(4, 12)] == [
        True, True, False, False, False, True, True, True,  # 02-04 Thu … 02-11 Thu
    ]  # fmt: skip
    assert cal.day_info(D(2027, 2, 9)).official is False  # a day not entered: still estimated
    assert not cal.is_working_day(D(2027, 10, 4))  # 国庆 keeps its estimate


def test_official_years_are_unchanged_by_an_entered_2027(tmp_path: Path) -> None:
    entered = calendar_of(tmp_path, ONLY_CHUNJIE_2027)
    plain = Calendar()
    for d in (D(2025, 1, 1) + timedelta(days=i) for i in range(730)):
        assert entered.day_info(d) == plain.day_info(d), d
        assert plain.day_info(d).official, d
        assert not plain.day_info(d).is_makeup_day_off, d
    assert not plain.is_working_day(D(2026, 10, 5)) and plain.is_working_day(D(2026, 10, 10))


def test_a_working_day_sop_does_not_fire_on_the_2027_bujia(tmp_path: Path) -> None:
    sop = sop_folder(tmp_path, ONLY_CHUNJIE_2027)
    sopset = load_sop_set(sop, REPO / "templates", SHANGHAI)
    step = sopset.sops["workday_tips"].steps[0]
    assert step.trigger is not None
    start = datetime(2027, 9, 27, tzinfo=SHANGHAI)
    fired = [f.astimezone(SHANGHAI) for f in fire_times(step.trigger, start, start + timedelta(days=12))]
    assert all(f.time() == time(12, 30) for f in fired)
    days = [f.date() for f in fired]
    assert D(2027, 10, 4) not in days and D(2027, 10, 5) not in days
    assert days == [D(2027, 9, 27), D(2027, 9, 28), D(2027, 9, 29), D(2027, 9, 30),
                    D(2027, 10, 6), D(2027, 10, 7), D(2027, 10, 8)]  # fmt: skip


# --------------------------------------------------------------------------- what operators see


def test_plan_marks_the_estimate(tmp_path: Path) -> None:
    sop = sop_folder(tmp_path, ONLY_CHUNJIE_2027)
    lines = cli(tmp_path, sop, "plan", "--from", "2027-01-29", "--days", "250")
    legend = [line for line in lines if line.startswith("# (估)")]
    assert legend == [
        "# (估) = estimated 班/休 (statutory days off with 补假, no 调休): no official schedule yet for "
        "2027 (元旦、清明节、劳动节、端午节、中秋节、国庆节); enter the State Council notice in sop/dates.yaml"
    ]
    days = plan_days(lines)
    assert days[D(2027, 1, 31)][0].startswith("2027-01-31 周日 班(调休补班 春节) · ")  # entered: no mark
    assert days[D(2027, 2, 4)][0] == "2027-02-04 周四 班(估)"
    assert D(2027, 2, 9) not in days  # entered as a day off: the working-day SOP is quiet
    assert D(2027, 5, 3) not in days and D(2027, 5, 4) not in days  # estimated 补假
    assert days[D(2027, 5, 5)][0] == "2027-05-05 周三 班(估)"
    # a day with no working-day SOP still shows its status: plan the 补假 with a daily SOP
    (sop / "daily.yaml").write_text(
        "id: daily\nname: 每日\naudience:\n  to: groups\n  group_types: [基础客户群]\n"
        "steps:\n  - id: noon\n    daily: '12:00'\n    template: workday_tips\n",
        encoding="utf-8",
    )
    days = plan_days(cli(tmp_path, sop, "plan", "--from", "2027-10-03", "--days", "3"))
    assert [header for header, _ in days.values()] == [
        "2027-10-03 周日 休(国庆节)(估)",
        "2027-10-04 周一 休(国庆节 补假)(估)",
        "2027-10-05 周二 休(国庆节 补假)(估)",
    ]
    assert [entries for _, entries in days.values()] == [["daily/noon"]] * 3


def test_plan_of_an_official_year_is_not_marked(tmp_path: Path) -> None:
    sop = sop_folder(tmp_path, ONLY_CHUNJIE_2027)
    lines = cli(tmp_path, sop, "plan", "--from", "2026-09-28", "--days", "14")
    assert not [line for line in lines if "估" in line]
    days = plan_days(lines)
    assert days[D(2026, 10, 10)][0] == "2026-10-10 周六 班(调休补班 国庆节)"
    assert D(2026, 10, 5) not in days  # 国庆节 2026, official


def test_check_notes_a_year_entered_in_part(tmp_path: Path) -> None:
    sop = sop_folder(tmp_path, ONLY_CHUNJIE_2027)
    lines = cli(tmp_path, sop, "check")  # exit code 0: a note is not a problem
    notes = [line for line in lines if ": note: " in line]
    assert [line.split(": ", 1)[1] for line in notes] == [
        "holidays.2027: note: 2027 is entered in part (春节); 元旦、清明节、劳动节、端午节、中秋节、国庆节 keep the "
        "statutory estimate (补假 included, no 调休) until you enter them from the State Council notice"
    ]
    assert notes[0].split(": ", 1)[0].endswith("dates.yaml:2")
    assert lines[-1].startswith("OK: ")


def test_check_notes_an_unknown_name_and_a_missing_statutory_day(tmp_path: Path) -> None:
    sop = sop_folder(
        tmp_path,
        "holidays:\n  2027:\n    off:\n      春节: 2027-02-06..2027-02-10\n      春截: 2027-02-11\n",
    )
    notes = [line.split(": ", 1)[1] for line in cli(tmp_path, sop, "check") if ": note: " in line]
    assert notes == [
        "holidays.2027: note: 2027 is entered in part (春节); 元旦、清明节、劳动节、端午节、中秋节、国庆节 keep the "
        "statutory estimate (补假 included, no 调休) until you enter them from the State Council notice",
        "holidays.2027.off.春节: note: 春节 does not list its statutory day off 2027-02-05 (全国年节及纪念日放假办法 第二条)",
        "holidays.2027.off.春截: note: '春截' names none of 元旦、春节、清明节、劳动节、端午节、中秋节、国庆节; "
        "its days count as days off",
    ]


def test_a_whole_year_entered_has_no_note_and_no_mark(tmp_path: Path) -> None:
    # An illustrative full 2027 schedule (not the real notice, which is not out yet).
    sop = sop_folder(
        tmp_path,
        """\
holidays:
  2027:
    off:
      元旦: 2027-01-01..2027-01-03
      春节: 2027-02-05..2027-02-11
      清明: 2027-04-03..2027-04-05
      五一: 2027-05-01..2027-05-05
      端午: 2027-06-09
      中秋节: 2027-09-15
      国庆: 2027-10-01..2027-10-07
    work:
      春节: [2027-01-31, 2027-02-20]
      国庆: 2027-10-09
""",
    )
    assert not [line for line in cli(tmp_path, sop, "check") if "note" in line]
    lines = cli(tmp_path, sop, "plan", "--from", "2027-09-27", "--days", "14")
    assert not [line for line in lines if "估" in line]
    got: defaultdict[str, list[date]] = defaultdict(list)
    for day, (_, entries) in plan_days(lines).items():
        for entry in entries:
            got[entry].append(day)
    assert got["workday_tips/noon"] == [
        D(2027, 9, 27), D(2027, 9, 28), D(2027, 9, 29), D(2027, 9, 30),
        D(2027, 10, 8), D(2027, 10, 9),  # 10-09: a Saturday worked, as entered
    ]  # fmt: skip
