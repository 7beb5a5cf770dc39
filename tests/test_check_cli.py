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
        "2027-02-05 周五 休(春节) · 除夕",
        "  10:00  daily/morning  每日  [hello]  → 0",
        "2027-02-06 周六 休(春节) · 春节",
        "  10:00  daily/morning  每日  [hello]  → 0",
    ]
