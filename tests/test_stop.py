"""A stop signal ends `sopbot run` in every phase — while a gateway that accepts connections
but never answers holds up the start, during a big contact sync, and mid-campaign — and the
gateway that never answers is reported as such (exit 2). Each test proves the phase it stops
in was under way (the hung gateway still hangs, the sync says where it stopped), and prints
how long the stop took."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.store import Database
from bot.store.migrate import upgrade
from tests.campaign import Campaign, journal_refs, state_counts
from tests.test_cli import sopbot_env
from tests.waiting import PATIENCE, LineReader, stop_process, wait_for

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def silent_gateway() -> Iterator[tuple[int, list[socket.socket]]]:
    """A TCP server that accepts every connection and never says a word."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            accepted.append(connection)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        server.close()
        for connection in accepted:
            connection.close()


def wechaty_env(folder: Path, port: int) -> dict[str, str]:
    env = sopbot_env()
    env |= {
        "SOPBOT_ACCOUNTS": json.dumps(
            [{"id": "main", "transport": "wechaty", "endpoint": f"127.0.0.1:{port}"}]
        ),
        "SOPBOT_TOKEN_MAIN": "any-token",
        "SOPBOT_DATABASE_URL": f"sqlite:///{folder / 'sopbot.db'}",
    }
    return env


@contextmanager
def sopbot_run(folder: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], LineReader]]:
    """`sopbot run` in `folder`, its stderr read line by line; killed if a test leaves it running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=folder, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        yield process, LineReader(process.stderr)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_gateway_that_never_answers_is_reported_with_exit_2(tmp_path: Path) -> None:
    with silent_gateway() as (port, accepted):
        result = subprocess.run(
            [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=wechaty_env(tmp_path, port),
            capture_output=True, text=True, timeout=PATIENCE, check=False,
        )  # fmt: skip
        assert accepted, "the daemon never connected"
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"sopbot: account main: the gateway at 127.0.0.1:{port} did not answer in time"
    )
    assert "Traceback" not in result.stderr


def test_a_stop_signal_ends_a_start_held_up_by_a_silent_gateway(tmp_path: Path) -> None:
    with (
        silent_gateway() as (port, accepted),
        sopbot_run(tmp_path, wechaty_env(tmp_path, port)) as (process, log),
    ):
        log.wait_for(["starting as"])
        wait_for(lambda: accepted, what="the daemon connecting to the silent gateway")
        began = time.monotonic()
        code = stop_process(process, signal.SIGTERM)
        took = time.monotonic() - began
    lines = log.rest()
    assert code == 0, "\n".join(lines)
    assert any("stop requested while starting" in line for line in lines)
    assert not any("Traceback" in line for line in lines)
    print(f"\nstop during a start held up by a silent gateway: exited {took:.1f}s after SIGTERM")


def test_a_stop_signal_ends_a_big_contact_sync(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        '[sandbox]\nautoplay = false\nextra_contacts = 300000\njournal = "j.jsonl"\n', encoding="utf-8"
    )
    with sopbot_run(tmp_path, sopbot_env()) as (process, log):
        log.wait_for(["delivery worker"])  # started; the sync of 300,000 people runs beside
        began = time.monotonic()
        code = stop_process(process, signal.SIGTERM)
        took = time.monotonic() - began
    lines = log.rest()
    assert code == 0, "\n".join(lines)
    stopped = [line for line in lines if "contact sync stopped at" in line]
    assert stopped, "the stop did not land during the sync:\n" + "\n".join(lines)
    print(
        f"\nstop during a contact sync of 300,020 people: exited {took:.1f}s after SIGTERM ({stopped[0].split('recorder')[-1].strip()})"
    )


@pytest.mark.slow
def test_a_stop_signal_mid_campaign_leaves_only_the_cut_off_send_for_recovery(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sopbot.db'}"
    campaign = Campaign.create(tmp_path, url, contacts=100, send_delay=0.3)
    database = Database(url)
    try:
        upgrade(database)
        campaign.prepare(database)
        daemon = campaign.start()
        try:
            # a few parts out: the batch has rows sent, one being sent, and rows not tried yet
            wait_for(lambda: len(journal_refs(campaign.journal)) >= 5, what="the daemon sending")
            began = time.monotonic()
            code = stop_process(daemon, signal.SIGTERM)
            took = time.monotonic() - began
        finally:
            if daemon.poll() is None:
                daemon.kill()
        assert code == 0
        counts = state_counts(database)
        # what went out was recorded on the way out, the rows not tried went back to planned;
        # only the send cut off by the stop is left `sending`, for the next start to confirm
        assert counts["sending"] <= 1, counts
        assert counts["sent"] >= 2 and counts["planned"] > 0, counts
        print(f"\nstop mid-campaign: exited {took:.1f}s after SIGTERM; outbox {dict(counts)}")
    finally:
        database.dispose()


def test_usr1_and_usr2_print_the_threads_and_tasks_of_a_running_daemon(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        '[sandbox]\nautoplay = false\njournal = "j.jsonl"\n', encoding="utf-8"
    )
    with sopbot_run(tmp_path, sopbot_env()) as (process, log):
        log.wait_for(["delivery worker"])
        process.send_signal(signal.SIGUSR1)
        log.wait_for(["--- thread MainThread"])
        process.send_signal(signal.SIGUSR2)
        log.wait_for(["--- task delivery"])
        code = stop_process(process, signal.SIGTERM)
    lines = log.rest()
    assert code == 0, "\n".join(lines)
    assert any("daemon.py" in line for line in lines)  # a task's stack names where it waits


def test_a_second_stop_signal_while_stopping_does_not_cut_the_clean_stop_short(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        '[sandbox]\nautoplay = false\njournal = "j.jsonl"\n', encoding="utf-8"
    )
    with sopbot_run(tmp_path, sopbot_env()) as (process, log):
        log.wait_for(["delivery worker"])
        process.send_signal(signal.SIGTERM)
        log.wait_for(["shutting down"])
        process.send_signal(signal.SIGTERM)  # again, while it stops
        code = process.wait(PATIENCE)
    lines = log.rest()
    assert code == 0, "\n".join(lines)
    assert any("sopbot stopped" in line for line in lines), "\n".join(lines)  # the clean stop finished
