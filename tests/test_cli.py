"""The `sopbot` command as an operator uses it: real processes, real signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.store.migrate import head_revision
from tests.support import write_project
from tests.waiting import PATIENCE, LineReader, stop_process

REPO = Path(__file__).resolve().parents[1]


def sopbot_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def sopbot(cwd: Path, *args: str, timeout: float = PATIENCE) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=sopbot_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_run_logs_in_stores_contacts_shows_events_and_stops_cleanly(tmp_path: Path) -> None:
    settings = (
        (REPO / "settings.toml")
        .read_text(encoding="utf-8")
        .replace("event_interval = 3.0", "event_interval = 0.2")
        .replace("outlook_interval = 300.0", "outlook_interval = 1.0")
    )
    write_project(tmp_path, settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=sopbot_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    log = LineReader(process.stderr)
    try:
        lines = log.wait_for(
            ["running on the built-in sandbox WeChat", "20 contacts, 3 rooms synced", "message from"]
        )
        running = sopbot(tmp_path, "status")  # from another process, through the database
        log.wait_for_count("account main online,", 3)  # said at start, then every outlook_interval
        stop_process(process, signal.SIGINT)
        rest = "\n".join(log.rest())
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, rest
    assert "sopbot stopped" in rest
    assert running.returncode == 0, running.stderr
    assert running.stdout.startswith("main: run by daemon "), running.stdout
    assert f"pid {process.pid}" in running.stdout and "; online; sending;" in running.stdout, running.stdout
    stopped = sopbot(tmp_path, "status").stdout
    assert stopped.startswith("main: not running (no daemon holds it); sending;"), stopped  # released at stop
    assert sum("no WeChat token configured" in line for line in lines) == 1
    said = [
        line for line in (lines + rest.splitlines()) if "account main online," in line and "queued" in line
    ]
    assert said and ("next SOP send:" in said[0] or "no SOP send scheduled" in said[0]), (
        said
    )  # what comes next
    # the log tells time in the configured zone (Asia/Shanghai), as outbox/contact/plan do
    stamp = datetime.strptime(lines[0][:20], "%m-%d %H:%M:%S%z")
    assert stamp.utcoffset() == timedelta(hours=8)
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    assert abs(stamp.replace(year=now.year) - now) < timedelta(hours=1), lines[0]

    listing = sopbot(tmp_path, "contacts")
    assert listing.returncode == 0, listing.stderr
    shown = re.search(r"(\d+) contacts", listing.stdout)
    assert shown and int(shown.group(1)) >= 20, listing.stdout  # 20 demo contacts, plus newcomers
    for name in ("王芳", "林小雨", "郭美"):
        assert name in listing.stdout
    assert "品牌KOC" in sopbot(tmp_path, "contacts", "--tier", "koc").stdout


def test_sigterm_also_stops_cleanly(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=sopbot_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        LineReader(process.stderr).wait_for(["synced"])
        stop_process(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[delivery\nhourly_cap = 1\n", "settings.toml:1: invalid TOML: "),
        ("[sandbox]\nseeed = 1\n", "settings.toml:2: sandbox.seeed: unknown field (check the spelling)"),
        (
            '[sandbox]\nevent_interval = "fast"\n',
            "settings.toml:2: sandbox.event_interval: Input should be a valid number",
        ),
    ],
    ids=["bad-toml", "unknown-field", "wrong-type"],
)
def test_broken_settings_stop_at_the_door(tmp_path: Path, text: str, expected: str) -> None:
    write_project(tmp_path, text)
    for command in (["run"], ["contacts"], ["db", "upgrade"]):
        result = sopbot(tmp_path, *command)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(expected), result.stderr
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.toml"]  # nothing written


def test_db_upgrade_then_status(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    head = head_revision()
    outdated = sopbot(tmp_path, "db", "status")
    assert outdated.returncode == 1 and "needs `sopbot db upgrade`" in outdated.stdout  # scripts can test it
    first = sopbot(tmp_path, "db", "upgrade")
    assert first.returncode == 0 and f"schema upgraded empty -> {head}" in first.stdout, first.stderr
    again = sopbot(tmp_path, "db", "upgrade")
    assert f"already at {head}" in again.stdout
    current = sopbot(tmp_path, "db", "status")
    assert current.returncode == 0 and "up to date" in current.stdout


def test_outside_a_project_folder_commands_say_so(tmp_path: Path) -> None:
    result = sopbot(tmp_path, "check")
    assert result.returncode == 2 and "no settings.toml and no sop/ folder" in result.stderr
    env = sopbot_env() | {"SOPBOT_SETTINGS": "missing.toml"}
    named = subprocess.run(
        [sys.executable, "-m", "bot", "check"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert named.returncode == 2 and "missing.toml: file not found" in named.stderr  # as with -s


def test_contacts_before_any_run_says_what_to_do(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    result = sopbot(tmp_path, "contacts")
    assert result.returncode == 2
    assert "run `sopbot run`" in result.stderr


def test_config_masks_tokens(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    env = sopbot_env() | {"SOPBOT_TOKEN_MAIN": "puppet_padlocal_supersecret"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "supersecret" not in result.stdout
    assert "SOPBOT_TOKEN_MAIN: ********** (set, 27 chars)" in result.stdout


def test_help_and_version() -> None:
    result = sopbot(REPO, "--help")
    assert result.returncode == 0
    for command in ("run", "contacts", "db", "version", "config"):
        assert command in result.stdout
    assert sopbot(REPO, "version").stdout.startswith("sopbot ")


def test_run_refuses_broken_sop_files_listing_every_problem(tmp_path: Path) -> None:
    write_project(tmp_path, "")
    (tmp_path / "sop").mkdir()
    (tmp_path / "templates" / "default").mkdir(parents=True)
    (tmp_path / "templates" / "default" / "hello.j2").write_text(
        "{{ contact.nmae }}，早上好\n", encoding="utf-8"
    )
    (tmp_path / "sop" / "daily.yaml").write_text(
        "id: daily\nname: 每日问候\naudience:\n  to: contacts\nsteps:\n"
        "  - id: morning\n    daily: '25:00'\n    template: hello\n",
        encoding="utf-8",
    )
    result = sopbot(tmp_path, "run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "sop/daily.yaml:7: steps[0].daily: '25:00' is not a time" in lines[0]
    assert any(
        line.startswith("templates/default/hello.j2:1: unknown attribute 'contact.nmae'") for line in lines
    )
    assert lines[-1].startswith("sopbot: ") and "nothing was started" in lines[-1]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()  # nothing written


def test_import_orders_help_lists_the_columns(tmp_path: Path) -> None:
    result = sopbot(tmp_path, "import-orders", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for column in ("订单号", "实付金额", "下单时间", "微信id", "手机号", "推荐人"):
        assert column in text, column
