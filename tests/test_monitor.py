"""/healthz, /livez and /metrics of a running `sopbot run`, over a real socket."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import FrozenClock
from bot.monitor.health import health
from tests.support import sqlite_database, write_project
from tests.test_cli import sopbot_env
from tests.waiting import LineReader, stop_process, wait_for

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_running_daemon_says_it_is_ready_and_serves_prometheus_metrics(tmp_path: Path) -> None:
    port = free_port()
    settings = (REPO / "settings.toml").read_text(encoding="utf-8").replace("port = 9464", f"port = {port}")
    write_project(tmp_path, settings)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=sopbot_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    log = LineReader(process.stderr)
    try:
        log.wait_for(
            [f"/metrics on http://127.0.0.1:{port}", "contacts, 3 rooms synced", "account main online"]
        )
        status, body = get(port, "/healthz")
        assert status == 200, body
        seen = json.loads(body)
        assert (
            seen["live"]
            and seen["ready"]
            and seen["accounts"]["main"]["held"]
            and seen["accounts"]["main"]["online"]
        )
        assert get(port, "/livez") == (200, '{"live": true}')
        status, page = get(port, "/metrics")
        assert status == 200
        lines = page.splitlines()
        assert 'sopbot_account_online{account="main"} 1.0' in lines
        assert 'sopbot_account_held{account="main"} 1.0' in lines
        assert 'sopbot_lease_changes_total{account="main",change="acquired"} 1.0' in lines
        assert any(line.startswith('sopbot_queue_depth{account="main"} ') for line in lines)
        assert any(line.startswith("sopbot_event_loop_lag_seconds ") for line in lines)
        assert "# TYPE sopbot_reconnects_total counter" in lines
        # the account's health is looked at once its lane runs: normal pace (docs/pacing.md)
        slowdown = 'sopbot_pace_slowdown{account="main"} 1.0'
        wait_for(
            lambda: slowdown in get(port, "/metrics")[1].splitlines(), what="the pace gauge", interval=0.2
        )
        assert get(port, "/metrics", "POST")[0] == 405
        assert get(port, "/admin")[0] == 404
        stop_process(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def test_readiness_is_every_held_account_online_and_a_standby_is_not_ready(tmp_path: Path) -> None:
    from bot.runtime import BotContext
    from tests.support import make_settings

    settings = make_settings(tmp_path)
    with sqlite_database(tmp_path) as database:
        context = BotContext(settings, database, FrozenClock(datetime(2026, 12, 1, tzinfo=UTC)))
        standby = health(context, True, context.clock.now())
        assert (standby.ready, standby.reason) == (False, "standby: holds no account")
        assert health(context, False, context.clock.now()).reason == "starting"
        assert standby.body()["accounts"] == {"main": {"held": False, "online": False, "lease_until": None}}


def test_a_connection_coming_back_is_a_reconnect_and_the_first_one_is_not() -> None:
    from bot.monitor.metrics import RECONNECTS, count_reconnects

    states = iter([False, True, True, False, False, True, False, True])
    current = {"online": False}
    poll = count_reconnects("acct-x", lambda: current["online"])
    before = RECONNECTS.labels("acct-x")._value.get()
    for state in states:
        current["online"] = state
        poll()
    assert RECONNECTS.labels("acct-x")._value.get() - before == 2  # the 2nd and 3rd ups
