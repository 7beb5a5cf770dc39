"""`sopbot check`, `sopbot preview` and `sopbot plan` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.app import app
from tests.sop_support import BASIC_TEMPLATES, REPO, project

SOP = "id: daily\nname: 每日\nsteps:\n  - id: morning\n    daily: '10:00'\n    template: hello\n"


def invoke(*args: str):
    return CliRunner().invoke(app, ["-s", "settings.toml", *args])


def test_check_passes_on_the_shipped_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(
        tmp_path / "p",
        {},
        monkeypatch,
        f'sop_dir = "{REPO / "sop"}"\ntemplates_dir = "{REPO / "templates"}"\n',
    )
    result = invoke("check")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: ")


def test_check_lists_every_problem_and_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(
        tmp_path / "p",
        {
            **BASIC_TEMPLATES,
            "sop/weekly.yaml": SOP.replace("'10:00'", "'25:00'"),
            "templates/default/x.j2": "{{ nope }}",
        },
        monkeypatch,
    )
    result = invoke("check")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "sop/weekly.yaml:5: steps[0].daily: '25:00' is not a time",
        "templates/default/x.j2:1: unknown variable 'nope' (known: contact, group, today, sop, step, catalog)",
    ]


def test_preview_renders_the_tier_voice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(
        tmp_path / "p",
        {
            **BASIC_TEMPLATES,
            "sop/daily.yaml": SOP,
            "templates/koc/hello.j2": "亲爱的KOC{{ contact.display_name }}\n---\n[图片] https://x.example/a.jpg",
        },
        monkeypatch,
    )
    result = invoke("preview", "daily", "--date", "2026-11-24", "--tier", "品牌KOC")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "# 每日 (daily) on 2026-11-24 周二",
        "",
        "== morning  · 10:00 · to 王芳 (品牌KOC)",
        "亲爱的KOC王姐",
        "---",
        "[图片] https://x.example/a.jpg",
    ]
    default = invoke("preview", "daily", "--date", "2026-11-24", "--tier", "basic")
    assert "你好王姐，周二快乐" in default.output


def test_preview_unknown_sop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path / "p", {**BASIC_TEMPLATES, "sop/daily.yaml": SOP}, monkeypatch)
    result = invoke("preview", "weekly")
    assert result.exit_code == 2
    assert "no SOP 'weekly'; known: daily (每日)" in result.output


def test_plan_without_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path / "p", {**BASIC_TEMPLATES, "sop/daily.yaml": SOP}, monkeypatch)
    result = invoke("plan", "--from", "2027-02-05", "--days", "2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "# no database yet: recipient counts are 0 (run `sopbot run` once to sync contacts)",
        "# (估) = estimated 班/休 (statutory days off with 补假, no 调休): no official schedule yet for "
        "2027 (元旦、春节、清明节、劳动节、端午节、中秋节、国庆节); enter the State Council notice in sop/dates.yaml",
        "2027-02-05 周五 休(春节)(估) · 除夕",
        "  10:00  daily/morning  每日  [hello]  → 0",
        "2027-02-06 周六 休(春节)(估) · 春节",
        "  10:00  daily/morning  每日  [hello]  → 0",
    ]


def test_check_reports_a_tag_rule_reply_template_that_does_not_exist(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tags = (
        (REPO / "sop" / "tags.yaml")
        .read_text(encoding="utf-8")
        .replace("reply: reply_deals", "reply: reply_dealz")
    )
    project(
        tmp_path / "p",
        {"sop/tags.yaml": tags},
        monkeypatch,
        f'templates_dir = "{REPO / "templates"}"\n',
    )
    result = invoke("check")
    assert result.exit_code == 1, result.output
    [line] = [line for line in result.stdout.splitlines() if "reply_dealz" in line]
    assert line.startswith("sop/tags.yaml:") and line.endswith("template 'reply_dealz' not found")
    assert ".reply:" in line  # names the field: rules[i].actions[j].reply


TWO_AUDIENCES = """id: care
name: 关怀
steps:
  - id: buyers
    daily: '10:00'
    template: hello
    audience:
      tags: has_ordered
  - id: browsers
    daily: '10:00'
    template: hello
    audience:
      exclude: has_ordered
  - id: top
    daily: '10:00'
    template: hello
    audience:
      tiers: [复购会员, 品牌KOC]
"""


def test_preview_applies_each_steps_audience_as_fan_out_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path / "p", {**BASIC_TEMPLATES, "sop/care.yaml": TWO_AUDIENCES}, monkeypatch)
    for tier, gets, nothing in [
        ("复购会员", {"buyers", "top"}, {"browsers"}),
        ("基础用户", {"browsers"}, {"buyers", "top"}),
        ("已购会员", {"buyers"}, {"browsers", "top"}),
    ]:
        result = invoke("preview", "care", "--date", "2026-11-24", "--tier", tier)
        assert result.exit_code == 0, result.output
        blocks = result.output.split("\n== ")[1:]
        got = {b.split()[0] for b in blocks if "gets nothing" not in b}
        empty = {b.split()[0] for b in blocks if "gets nothing" in b}
        assert (got, empty) == (gets, nothing), (tier, result.output)
    result = invoke("preview", "care", "--date", "2026-11-24", "--tier", "基础用户")
    assert (
        "(gets nothing from this step: the step's audience: tier basic is not among ['koc', 'repeat'])"
        in result.output
    )


WEEKLY_AND_DAILY = {
    **BASIC_TEMPLATES,
    "sop/daily.yaml": SOP,
    "sop/friday.yaml": "id: friday\nname: 周五\nsteps:\n  - id: s\n    weekly: [fri]\n    at: '20:00'\n"
    "    template: hello\n",
}


def test_preview_next_shows_each_step_when_it_really_fires(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path / "p", WEEKLY_AND_DAILY, monkeypatch)
    result = invoke("preview", "friday", "--next", "--tier", "basic")
    assert result.exit_code == 0, result.output
    [header] = [line for line in result.output.splitlines() if line.startswith("== s ")]
    assert "周五 20:00" in header, header
    assert "你好王姐，周五快乐" in result.output  # rendered for that day, not today
    assert invoke("preview", "friday", "--next", "--date", "2026-11-24").exit_code == 2


def test_plan_for_one_sop_or_one_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project(tmp_path / "p", WEEKLY_AND_DAILY, monkeypatch)
    both = invoke("plan", "--from", "2026-11-23", "--days", "7")
    only = invoke("plan", "--from", "2026-11-23", "--days", "7", "--sop", "friday")
    assert both.exit_code == only.exit_code == 0, both.output + only.output
    assert "daily/morning" in both.output and "friday/s" in both.output
    assert "daily/morning" not in only.output and only.output.count("friday/s") == 1
    assert invoke("plan", "--sop", "nope").exit_code == 2
    unknown = invoke("plan", "--account", "nope")
    assert unknown.exit_code == 2 and "no account 'nope'" in unknown.output
    assert invoke("plan", "--from", "2026-11-23", "--account", "main").exit_code == 0


def test_a_template_folder_may_be_named_by_the_tiers_chinese_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(
        tmp_path / "p",
        {**BASIC_TEMPLATES, "sop/daily.yaml": SOP, "templates/品牌KOC/hello.j2": "KOC专享｜{{ contact.display_name }}"},
        monkeypatch,
    )
    assert invoke("check").exit_code == 0
    result = invoke("preview", "daily", "--date", "2026-11-24", "--tier", "koc")
    assert "KOC专享｜王姐" in result.output, result.output
    assert "你好王姐" in invoke("preview", "daily", "--date", "2026-11-24", "--tier", "repeat").output
