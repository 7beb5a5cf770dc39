"""Acceptance: `sopbot plan` over 2026-11-24 … 2027-12-31 with the shipped SOP files.

Expected dates are facts written down here, not outputs of the code under test: 春节 2027
is 2027-02-06 (农历正月初一), 中秋 2027-09-15, 七夕 2027-08-08, 母亲节 2027 the second Sunday of
May = 2027-05-09; the 2026 调休 days are from 国办发明电〔2025〕7号 (2026-02-14 and 2026-02-28
are working Saturdays, 2026-02-15…23 are days off). 2027 has no published schedule in the
installed calendar yet, so its working days follow the statutory days off and their 补假
(《全国年节及纪念日放假办法》第六条), listed below.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from tests.sop_support import REPO

D = date


def run_plan(tmp_path: Path, start: str, days: int, sop_dir: Path | None = None) -> dict[date, list[str]]:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'sop_dir = "{sop_dir or REPO / "sop"}"\n'
        f'templates_dir = "{REPO / "templates"}"\n'
        f'database_url = "sqlite:///{tmp_path / "none.db"}"\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["-s", str(settings), "plan", "--from", start, "--days", str(days)])
    assert result.exit_code == 0, result.output
    plan: dict[date, list[str]] = defaultdict(list)
    current = None
    for line in result.output.splitlines():
        if line[:4].isdigit():
            current = date.fromisoformat(line[:10])
        elif line.startswith("  ") and current is not None:
            time, what = line.split()[:2]
            plan[current].append(f"{what}@{time}")
    return plan


@pytest.fixture(scope="module")
def year_plan(tmp_path_factory: pytest.TempPathFactory) -> dict[date, list[str]]:
    return run_plan(
        tmp_path_factory.mktemp("plan"), "2026-11-24", (D(2027, 12, 31) - D(2026, 11, 24)).days + 1
    )


def days_of(plan: dict[date, list[str]], entry: str) -> list[date]:
    return sorted(day for day, entries in plan.items() if entry in entries)


def test_spring_festival_2027(year_plan: dict[date, list[str]]) -> None:
    assert days_of(year_plan, "festival_year/chunjie@09:00") == [D(2027, 2, 6)]
    assert days_of(year_plan, "festival_year/chuxi@18:00") == [D(2027, 2, 5)]


def test_mid_autumn_2027_with_its_warm_up(year_plan: dict[date, list[str]]) -> None:
    assert days_of(year_plan, "festival_year/zhongqiu@10:00") == [D(2027, 9, 10), D(2027, 9, 15)]


def test_qixi_2027(year_plan: dict[date, list[str]]) -> None:
    assert days_of(year_plan, "festival_year/qixi@12:00") == [D(2027, 8, 8)]


def test_mothers_day_2027(year_plan: dict[date, list[str]]) -> None:
    assert days_of(year_plan, "festival_year/mothers_day@10:00") == [D(2027, 5, 6), D(2027, 5, 9)]


def test_double11_warm_up_offsets(year_plan: dict[date, list[str]]) -> None:
    # 3 days and 1 day before 11-11 at 20:00; the 2026 ones are before the plan starts
    assert days_of(year_plan, "festival_year/double11_warmup@20:00") == [D(2027, 11, 8), D(2027, 11, 10)]
    assert days_of(year_plan, "festival_year/double11@00:05") == [D(2027, 11, 11)]
    assert days_of(year_plan, "festival_year/double12@20:00") == [D(2026, 12, 12), D(2027, 12, 12)]


def test_nianhuo_window_runs_every_day_from_laba_to_the_day_before_chuxi(
    year_plan: dict[date, list[str]],
) -> None:
    # 腊八 2027 = 2027-01-15 (农历十二月初八); 除夕 2027 = 2027-02-05
    expected = [D(2027, 1, 15) + timedelta(days=i) for i in range(21)]
    assert days_of(year_plan, "nianhuo/nightly@19:30") == expected


def test_monthly_member_day_on_the_18th(year_plan: dict[date, list[str]]) -> None:
    days = days_of(year_plan, "member_day/day@10:00")
    assert days[:2] == [D(2026, 12, 18), D(2027, 1, 18)]
    assert len(days) == 13 and all(d.day == 18 for d in days)


def test_weekly_plan_by_weekday_name(year_plan: dict[date, list[str]]) -> None:
    days = days_of(year_plan, "weekly_plan/evening@20:00")
    assert {d.weekday() for d in days} == {0, 2, 4}  # Monday, Wednesday, Friday


# statutory days off of 2027 (元旦, 春节 除夕–初三, 清明, 劳动节, 端午, 中秋, 国庆), and the 补假
# for those on a weekend (春节 02-06/07, 劳动节 05-01/02, 国庆 10-02/03) on the next working days
DAYS_OFF_2027 = {
    D(2027, 1, 1),
    D(2027, 2, 5), D(2027, 2, 6), D(2027, 2, 7), D(2027, 2, 8), D(2027, 2, 9), D(2027, 2, 10),
    D(2027, 4, 5),
    D(2027, 5, 1), D(2027, 5, 2), D(2027, 5, 3), D(2027, 5, 4),
    D(2027, 6, 9),
    D(2027, 9, 15),
    D(2027, 10, 1), D(2027, 10, 2), D(2027, 10, 3), D(2027, 10, 4), D(2027, 10, 5),
}  # fmt: skip


def test_working_days_only_skips_weekends_and_holidays(year_plan: dict[date, list[str]]) -> None:
    got = days_of(year_plan, "workday_tips/noon@12:30")
    start, end = D(2026, 11, 24), D(2027, 12, 31)
    expected = [
        start + timedelta(days=i)
        for i in range((end - start).days + 1)
        if (start + timedelta(days=i)).weekday() < 5 and start + timedelta(days=i) not in DAYS_OFF_2027
    ]
    assert got == expected


def test_working_days_only_follows_tiaoxiu_2026(tmp_path: Path) -> None:
    plan = run_plan(tmp_path, "2026-02-09", 21)
    got = days_of(plan, "workday_tips/noon@12:30")
    assert D(2026, 2, 14) in got  # Saturday, 补班 for 春节
    assert D(2026, 2, 28) in got  # Saturday, 补班 for 春节
    assert not [d for d in got if D(2026, 2, 15) <= d <= D(2026, 2, 23)]
    assert D(2026, 2, 13) in got and D(2026, 2, 24) in got


def test_hand_entered_2027_schedule_adds_tiaoxiu(tmp_path: Path) -> None:
    sop = tmp_path / "sop"
    sop.mkdir()
    for name in ("groups.yaml", "catalog.yaml", "workday_tips.yaml"):
        (sop / name).write_text((REPO / "sop" / name).read_text(encoding="utf-8"), encoding="utf-8")
    (sop / "dates.yaml").write_text(
        "holidays:\n  2027:\n    off:\n      春节: 2027-02-05..2027-02-11\n    work:\n      春节: [2027-01-31, 2027-02-20]\n",
        encoding="utf-8",
    )
    got = days_of(run_plan(tmp_path, "2027-01-25", 35, sop), "workday_tips/noon@12:30")
    assert D(2027, 1, 31) in got and D(2027, 2, 20) in got  # Sunday and Saturday made working days
    assert not [d for d in got if D(2027, 2, 5) <= d <= D(2027, 2, 11)]
    assert D(2027, 2, 4) in got and D(2027, 2, 12) in got
