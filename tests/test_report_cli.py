"""`sopbot report` from the command line: its options, its errors, and a real SQLite project
database filled by the bot on the sandbox WeChat."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli.app import app
from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.store.models import Contact
from tests.support import TestBot, make_settings, sqlite_database, write_project
from tests.test_cli import sopbot_env


def invoke(folder: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["-s", str(folder / "settings.toml"), "report", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "quarter"], "sopbot: --period: 'quarter' is not day, week, month"),
        (
            ["--from", "2026-11-30", "--to", "2026-11-01"],
            "sopbot: --to 2026-11-01 is before --from 2026-11-30",
        ),
        (["--from", "30/11/2026"], "sopbot: --from: '30/11/2026' is not a date (write it as YYYY-MM-DD"),
        (["--period", "week", "--from", "2026-11-01"], "sopbot: --period and --from/--to name a period each"),
        (["--format", "xml"], "sopbot: --format: 'xml' is not one of text, html, csv, json"),
        (["--account", "nobody"], "sopbot: --account: no account 'nobody' in the settings (accounts: main)"),
    ],
)
def test_bad_options_are_refused_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    write_project(tmp_path)
    code, output = invoke(tmp_path, *args)
    assert code == 2
    assert message in output


def test_an_empty_database_says_what_to_do(tmp_path: Path) -> None:
    write_project(tmp_path)
    code, output = invoke(tmp_path, "--period", "day")
    assert code == 2
    assert "the database is empty: run `sopbot run` (or `sopbot db upgrade`) first" in output


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Settings]:
    """A project whose database the bot filled: a day ago it logged in on the sandbox WeChat
    and synced its contacts."""
    folder = tmp_path / "project"
    settings = make_settings(folder)
    (folder / "data").mkdir()
    with sqlite_database(folder / "data") as database:
        bot = TestBot(settings, database, FrozenClock(datetime.now(UTC) - timedelta(days=1))).start()
        bot.close()
        with database.session(read_only=True) as session:
            friends = session.execute(select(func.count()).where(Contact.is_friend.is_(True))).scalar_one()
    assert friends > 0
    return folder, settings


def test_report_as_json_from_a_real_project_database(project: tuple[Path, Settings]) -> None:
    folder, settings = project
    today = datetime.now(settings.tz).date()
    start = today - timedelta(days=6)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "report", "--format", "json", "--from", start.isoformat()],
        cwd=folder,
        env=sopbot_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert data["period"] == {
        "start": start.isoformat(),
        "end": today.isoformat(),
        "label": f"{start.isoformat()}..{today.isoformat()}",
    }
    assert data["account"] is None
    assert data["accounts"] == ["main"]
    assert len(data["days"]) == 7
    with sqlite_database(folder / "data") as database, database.session(read_only=True) as session:
        friends = session.execute(select(func.count()).where(Contact.is_friend.is_(True))).scalar_one()
    assert data["totals"]["assets_end"] == friends
    assert set(data["performance"]) == {
        "reachable",
        "reach_rate",
        "conversion_rate",
        "average_order_cents",
        "value_cents",
    }


def test_html_and_csv_go_to_a_file_named_after_the_period(
    project: tuple[Path, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, settings = project
    monkeypatch.chdir(folder)
    today = datetime.now(settings.tz).date()
    label = today.isoformat()
    code, output = invoke(folder, "--period", label, "--format", "html", "--account", "main")
    assert code == 0, output
    page = folder / f"report-{label}-main.html"
    assert f"{label}: html report written to report-{label}-main.html" in output
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    code, output = invoke(folder, "--period", label, "--format", "csv")
    assert code == 0, output
    assert (folder / f"report-{label}.csv").read_bytes().startswith(b"\xef\xbb\xbfperiod,account,section,")
    code, output = invoke(folder, "--period", label, "--format", "json", "-o", str(folder / "out.json"))
    assert code == 0, output
    assert json.loads((folder / "out.json").read_text(encoding="utf-8"))["period"]["label"] == label
    code, output = invoke(folder, "--period", label, "--format", "csv", "-o", "-")
    assert code == 0, output
    assert f"{label},all,totals,,,assets_end," in output
    code, output = invoke(
        folder, "--period", label, "--rebuild", "--format", "json", "-o", str(folder / "again.json")
    )
    assert code == 0, output
    assert "rollups rebuilt from the raw events" in output
    again = json.loads((folder / "again.json").read_text(encoding="utf-8"))
    assert again["totals"] == json.loads((folder / "out.json").read_text(encoding="utf-8"))["totals"]
    code, output = invoke(folder, "--period", label)
    assert code == 0, output
    assert f"sopbot 报表 report {label}" in output
    assert "客群资产 Contact assets" in output
