"""Background tasks have one owner: a crash is logged at once with what the task was doing
and the task restarts; a task that keeps crashing stops the daemon with exit code 3."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FrozenClock, SystemClock
from bot.daemon import Daemon
from bot.store import Database
from bot.store.migrate import upgrade
from bot.supervisor import EXIT_TASK_CRASHED, Supervisor
from tests.sop_support import write_files
from tests.support import make_settings
from tests.test_transport_contract import LoopThread
from tests.waiting import wait_for


def test_a_crashed_task_is_logged_at_once_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[str] = []
    third_run = asyncio.Event()

    async def flaky() -> None:
        runs.append("run")
        if len(runs) <= 2:
            raise RuntimeError(f"boom {len(runs)}")
        third_run.set()
        await asyncio.sleep(3600)

    async def scenario() -> tuple[int, bool]:
        supervisor = Supervisor(first_backoff=0.01)
        entry = supervisor.spawn("flaky", flaky, doing="testing restarts")
        await third_run.wait()
        alive = entry.task is not None and not entry.task.done()
        await supervisor.stop()
        return entry.crashes, alive

    crashes, alive = asyncio.run(scenario())
    assert (crashes, alive, runs) == (2, True, ["run"] * 3)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and r.name == "bot.supervisor"]
    assert [r.getMessage().split(";")[0] for r in errors] == [
        "task flaky crashed while testing restarts: boom 1",
        "task flaky crashed while testing restarts: boom 2",
    ]
    assert all(r.exc_info for r in errors)  # with the traceback


def test_a_task_that_keeps_crashing_is_fatal() -> None:
    reasons: list[str] = []

    async def broken() -> None:
        raise OSError("disk on fire")

    async def scenario() -> None:
        given_up = asyncio.Event()

        def fatal(reason: str) -> None:
            reasons.append(reason)
            given_up.set()

        supervisor = Supervisor(fatal, first_backoff=0.001, crash_loop=3)
        entry = supervisor.spawn("broken", broken, doing="writing")
        await given_up.wait()
        assert entry.crashes == 3
        await supervisor.stop()

    asyncio.run(scenario())
    assert reasons == ["task broken kept crashing while writing: disk on fire"]


def _relay_ddl(database_path: Path) -> str:
    with sqlite3.connect(database_path) as connection:
        return connection.execute("SELECT sql FROM sqlite_master WHERE name = 'event_relay'").fetchone()[0]


def _execute(database_path: Path, statement: str) -> None:
    with sqlite3.connect(database_path, timeout=60) as connection:
        connection.execute(statement)


def test_the_daemons_upkeep_task_survives_a_broken_table(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real fault: the table the signals upkeep reads disappears under the running daemon,
    then comes back. The crash is logged while it happens and the task carries on after."""
    settings = make_settings(tmp_path / "project", "[sandbox]\nautoplay = false\n")
    database_path = tmp_path / "project" / "data" / "sopbot.db"
    loop = LoopThread()
    daemon = Daemon(settings, clock=SystemClock(), autoplay=False)
    loop.run(daemon.start())
    try:
        upkeep = daemon.supervisor.tasks["signals-upkeep"]
        ddl = _relay_ddl(database_path)
        _execute(database_path, "DROP TABLE event_relay")
        wait_for(lambda: upkeep.crashes >= 2, what="the upkeep task to crash twice")

        def crashed() -> list[logging.LogRecord]:
            return [
                r
                for r in caplog.records
                if "task signals-upkeep crashed while sweeping tags" in r.getMessage()
            ]

        # each crash in the log as it happened, not at shutdown (the count moves a moment
        # before its line is written, on the loop's thread)
        wait_for(lambda: len(crashed()) >= 2, what="both crashes in the log while the daemon runs")
        _execute(database_path, ddl)
        crashes = upkeep.crashes
        relayed = loop.run(daemon.services.upkeep.relay())  # the table works again
        assert relayed == 0
        wait_for(lambda: upkeep.task is not None and not upkeep.task.done(), what="the task running again")
        assert daemon.supervisor.fatal is None and upkeep.crashes == crashes
    finally:
        loop.run(daemon.stop())
        loop.close()


def test_the_daemon_stops_with_exit_code_3_when_a_task_keeps_crashing(tmp_path: Path) -> None:
    """The table stays gone: the upkeep task crashes again and again, the supervisor gives up
    (here after 3 crashes, 10 ms apart; in production 10, about three minutes), and
    `run_forever` (what `sopbot run` exits with) returns 3 after a clean shutdown."""
    settings = make_settings(tmp_path / "project", "[sandbox]\nautoplay = false\n")
    database_path = tmp_path / "project" / "data" / "sopbot.db"
    daemon = Daemon(
        settings, clock=SystemClock(), autoplay=False, supervisor=Supervisor(first_backoff=0.01, crash_loop=3)
    )

    upgrade(Database(f"sqlite:///{database_path}"))
    _execute(database_path, "DROP TABLE event_relay")  # before the daemon starts, for good
    assert asyncio.run(daemon.run_forever()) == EXIT_TASK_CRASHED
    assert daemon.supervisor.tasks == {}  # everything was stopped on the way out
    assert daemon.supervisor.fatal is not None and "signals-upkeep kept crashing" in daemon.supervisor.fatal


def test_a_failing_sop_job_is_reported_with_its_sop_step_and_occurrence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "project"
    write_files(root, {
        "sop/daily.yaml": """
            id: daily
            name: 每日好物
            steps:
              - id: pick
                daily: "10:00"
                template: pick
        """,
        "templates/default/pick.j2": "今日好物",
    })  # fmt: skip
    settings = make_settings(root, "[sandbox]\nautoplay = false\n")
    clock = FrozenClock(datetime(2026, 11, 24, 1, 59, tzinfo=UTC))  # 09:59 in Shanghai
    loop = LoopThread()
    daemon = Daemon(settings, clock=clock, autoplay=False)
    loop.run(daemon.start())
    try:
        _execute(root / "data" / "sopbot.db", "DROP TABLE sop_runs")  # the run ledger is gone
        clock.advance(timedelta(minutes=1, seconds=30))  # 10:00 has come

        async def fire_now() -> None:
            daemon.services.sop.scheduler.get_job("sop:daily:pick").modify(next_run_time=datetime.now(UTC))

        loop.run(fire_now())
        failed = wait_for(
            lambda: [r for r in caplog.records if r.getMessage().startswith("job 每日好物 / pick failed")],
            what="the job's failure in the log",
        )
        assert "while running sop:daily:pick for the occurrence at " in failed[0].getMessage()
        assert "sop_runs" in failed[0].getMessage() and failed[0].exc_info
    finally:
        loop.run(daemon.stop())
        loop.close()
