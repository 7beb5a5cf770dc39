"""Faults an operator's bad day brings, each during a campaign: the database goes away or
stops answering, the disk fills up, the gateway freezes or dies. Each time the daemon keeps
running, nothing reaches WeChat twice (counted from the transport's own record) and every
recipient ends `sent` or with a row that says why."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.clock import SystemClock
from bot.daemon import Daemon
from bot.store import Database
from bot.store.migrate import upgrade
from bot.store.models import Contact
from bot.wechat.types import LinkCard, Text
from tests.campaign import Campaign, check_exactly_once, settled, state_counts
from tests.gateway.harness import Gateway
from tests.support import POSTGRES_URL, make_settings, outbox_rows, plan, sqlite_database
from tests.test_delivery_crash import postgres_schema, sending_rows
from tests.test_transport_contract import LoopThread
from tests.waiting import PATIENCE, stop_processes, wait_for, wait_for_progress

pytestmark = pytest.mark.slow


def run_campaign_through(campaign: Campaign, database: Database, fault) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Start the daemon, inject `fault(daemon)` once it is sending, let the campaign settle,
    and check that the daemon survived and everything reached WeChat once."""
    daemon = campaign.start()
    try:
        wait_for(lambda: sending_rows(database, daemon.pid), what="the daemon sending")
        fault(daemon)
        assert daemon.poll() is None, "the daemon died of the fault:\n" + campaign.log_text()[-3000:]
        wait_for_progress(
            lambda: state_counts(database), lambda counts: settled(counts, campaign.recipients),
            what="every row of the campaign to settle",
        )  # fmt: skip
        assert daemon.poll() is None
    finally:
        assert stop_processes([daemon], signal.SIGINT) == [0]
    return check_exactly_once(campaign, database)


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_available")
def test_postgresql_connections_terminated_mid_campaign(tmp_path: Path) -> None:
    name = f"sopbot_fault_{uuid.uuid4().hex[:8]}"
    with postgres_schema() as schema:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}&application_name={name}"
        campaign = Campaign.create(tmp_path, url, contacts=400)
        database = Database(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
        admin = Database(POSTGRES_URL)
        try:
            upgrade(database)
            campaign.prepare(database)
            terminated: list[int] = []

            def cut_connections(_daemon: subprocess.Popen[bytes]) -> None:
                for _ in range(6):
                    with admin.engine.begin() as connection:
                        killed = connection.execute(
                            text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"
                            ),
                            {"n": name},
                        ).all()
                    terminated.append(len(killed))
                    time.sleep(0.5)

            states = run_campaign_through(campaign, database, cut_connections)
            assert sum(terminated) >= 3, f"the fault never hit: {terminated} connections terminated"
            assert states == {"sent": campaign.recipients}
        finally:
            database.dispose()
            admin.dispose()


LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def test_sqlite_locked_by_another_process_for_15_seconds(tmp_path: Path) -> None:
    path = tmp_path / "sopbot.db"
    # sends of 50 ms: the campaign outlasts the lock even when the locker starts late on a busy machine
    campaign = Campaign.create(tmp_path, f"sqlite:///{path}", contacts=400, send_delay=0.05)
    database = Database(f"sqlite:///{path}")
    try:
        upgrade(database)
        campaign.prepare(database)
        held: list[str] = []

        def lock_for_15s(_daemon: subprocess.Popen[bytes]) -> None:
            locker = subprocess.Popen(
                [sys.executable, "-c", LOCKER, str(path), "15"], stdout=subprocess.PIPE, text=True
            )
            assert locker.stdout is not None
            held.append(locker.stdout.readline().strip())
            unsent = state_counts(database).get("planned", 0)  # read-only: allowed beside the lock
            assert unsent > 0, "the campaign was over before the lock landed: the fault proves nothing"
            assert locker.wait(PATIENCE) == 0

        states = run_campaign_through(campaign, database, lock_for_15s)
        assert held == ["locked"]
        log = campaign.log_text()  # the lock was met: by a send's record, a claim or the lease renewal
        assert any(sign in log for sign in ("database unavailable", "could not record", "database is locked")), log
        assert states == {"sent": campaign.recipients}
    finally:
        database.dispose()


@contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here to fill a disk ({mounted.stderr.strip() or 'not permitted'})"
        )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_sqlite_disk_full_mid_campaign(tmp_path: Path) -> None:
    """The disk fills up under the running daemon just as an operator adds the campaign's SOP
    file: planning it fails (the failure is logged, the daemon keeps running); once there is
    room again, it is planned and sent, once."""
    disk = tmp_path / "disk"
    # room for the database and its write-ahead log while the daemon starts
    with tmpfs(disk, "64m"):
        path = disk / "sopbot.db"
        campaign = Campaign.create(tmp_path, f"sqlite:///{path}", contacts=400)
        database = Database(f"sqlite:///{path}")
        try:
            upgrade(database)
            sop_file = campaign.folders[0] / "sop" / "campaign.yaml"
            sop_text = sop_file.read_text(encoding="utf-8")
            sop_file.unlink()  # the daemon starts without the campaign
            campaign.prepare(database)
            mark = len(campaign.log_text())
            daemon = campaign.start()
            filler = disk / "filler"
            try:
                wait_for(lambda: "SOP files loaded" in campaign.log_text()[mark:], what="the daemon running")
                # unbuffered: a buffered file's close would flush the bytes the full disk refused
                # and raise ENOSPC a second time (how this test once failed at the `with`)
                with filler.open("wb", buffering=0) as file:
                    try:
                        while True:
                            file.write(b"\0" * 65536)
                            file.flush()
                    except OSError:
                        pass  # the disk is full now
                print("disk full:", {f.name: f.stat().st_size for f in disk.iterdir()})
                sop_file.write_text(sop_text, encoding="utf-8")  # hot reload picks it up
                wait_for(
                    lambda: "database or disk is full" in campaign.log_text(),
                    what="the daemon meeting the full disk",
                )
                assert daemon.poll() is None, (
                    "the daemon died of a full disk:\n" + campaign.log_text()[-3000:]
                )
                filler.unlink()
                wait_for_progress(
                    lambda: state_counts(database), lambda counts: settled(counts, campaign.recipients),
                    what="every row of the campaign to settle",
                )  # fmt: skip
                assert daemon.poll() is None
            finally:
                assert stop_processes([daemon], signal.SIGINT) == [0]
            assert check_exactly_once(campaign, database) == {"sent": campaign.recipients}
        finally:
            database.dispose()
            shutil.rmtree(disk, ignore_errors=True)


# -- the WeChat side: a gateway that freezes or dies ---------------------------------------

GATEWAY_RECIPIENTS = [
    "wxid_zhangwei",
    "wxid_wangfang",
    "wxid_lina",
    "wxid_liuyang",
    "wxid_chenjing",
    "wxid_zhaolei",
]
STEPS = ("a", "b", "c")  # three messages per person: a campaign long enough to interrupt


@contextmanager
def wechaty_daemon(gateway: Gateway, tmp_path: Path) -> Iterator[tuple[Daemon, LoopThread, Database]]:
    settings = make_settings(
        tmp_path / "project",
        "\n".join([
            "[[accounts]]", 'id = "main"', 'transport = "wechaty"', f'endpoint = "{gateway.endpoint}"',
            "health_interval = 0.5", "reconnect_max = 1.0", "call_timeout = 2.0",
            "[delivery]", 'quiet_hours = "00:00-00:00"', "min_interval = 0", "jitter = 0",
            "contact_daily_cap = 100", "contact_weekly_cap = 100", "max_attempts = 50", "retry_backoff = 0.5",
            "[tiers]", "mirror_to_wechat = false",
        ]) + "\n",
    )  # fmt: skip
    os.environ["SOPBOT_TOKEN_MAIN"] = gateway.token
    loop = LoopThread()
    with sqlite_database(tmp_path) as database:
        daemon = Daemon(settings, database=database, clock=SystemClock(), autoplay=False)
        loop.run(daemon.start())
        try:
            loop.run(daemon.accounts["main"].pipeline.drained())
            yield daemon, loop, database
        finally:
            loop.run(daemon.stop())
            loop.close()


def plan_gateway_campaign(database: Database) -> int:
    with database.session(read_only=True) as session:
        ids = list(session.execute(select(Contact.id).where(Contact.wxid.in_(GATEWAY_RECIPIENTS))).scalars())
    parts = [
        Text("双12 会员专享 8 折"),
        LinkCard("双12 会场", "https://shop.example.com/1212", "会员价提前看"),
    ]
    at = datetime.now(UTC)
    return sum(plan(database, ids, at=at, step=step, parts=parts) for step in STEPS)


def check_gateway_campaign(gateway: Gateway, database: Database, *, faults: int) -> dict[str, int]:
    """Per (recipient, message, part): the gateway recorded it at most once; every row is
    sent (with every part recorded) or unknown with a reason, at most one per fault."""
    entries = gateway.journal_entries()
    by_row = Counter((e["to"], e.get("text") or e.get("payload", {}).get("url")) for e in entries)
    assert all(count <= len(STEPS) for count in by_row.values())  # one per message and part, at most
    rows = outbox_rows(database)
    states = Counter(row.state for row in rows)
    assert states["sent"] + states["unknown"] == len(rows), states
    assert states["unknown"] <= faults, f"{states['unknown']} unknown for {faults} faults"
    for row in rows:
        assert row.state == "sent" or "cannot confirm" in (row.reason or ""), (row.state, row.reason)
    texts = Counter(e["to"] for e in entries if e["kind"] == "text")
    assert sum(texts.values()) >= states["sent"] and all(n <= len(STEPS) for n in texts.values())
    return dict(states)


def settle_outbox(database: Database) -> None:
    def pending() -> int:
        return sum(1 for row in outbox_rows(database) if row.state in ("planned", "sending"))

    wait_for_progress(pending, lambda n: n == 0, what="the campaign to settle")


@pytest.mark.gateway
def test_gateway_frozen_mid_send_then_resumed(gateway_available: None, tmp_path: Path) -> None:
    gateway = Gateway(journal=tmp_path / "gateway-journal.jsonl", send_delay_ms=150).start()
    try:
        with wechaty_daemon(gateway, tmp_path) as (daemon, _loop, database):
            assert plan_gateway_campaign(database) == len(GATEWAY_RECIPIENTS) * len(STEPS)
            daemon.services.delivery.wake()
            wait_for(lambda: sending_rows(database, os.getpid()), what="rows being sent")
            assert gateway.process is not None
            gateway.process.send_signal(signal.SIGSTOP)
            try:
                transport = daemon.accounts["main"].transport
                wait_for(lambda: not transport.online, what="the frozen gateway noticed")
            finally:
                gateway.process.send_signal(signal.SIGCONT)
            settle_outbox(database)
            states = check_gateway_campaign(gateway, database, faults=1)
            print(f"\n{states}")
            assert states["sent"] >= len(GATEWAY_RECIPIENTS) * len(STEPS) - 1
    finally:
        gateway.terminate()


@pytest.mark.gateway
def test_gateway_killed_and_restarted_mid_campaign(gateway_available: None, tmp_path: Path) -> None:
    gateway = Gateway(journal=tmp_path / "gateway-journal.jsonl", send_delay_ms=150).start()
    try:
        with wechaty_daemon(gateway, tmp_path) as (daemon, _loop, database):
            plan_gateway_campaign(database)
            daemon.services.delivery.wake()
            wait_for(lambda: sending_rows(database, os.getpid()), what="rows being sent")
            sent_before = len(gateway.journal_entries())
            gateway.kill()  # SIGKILL: whatever it was sending is cut off
            transport = daemon.accounts["main"].transport
            wait_for(lambda: not transport.online, what="the dead gateway noticed")
            gateway.start()  # same ports, same journal
            settle_outbox(database)
            states = check_gateway_campaign(gateway, database, faults=1)
            print(f"\n{states}")
            assert len(gateway.journal_entries()) > sent_before  # the rest went out after the restart
            assert states["sent"] >= len(GATEWAY_RECIPIENTS) * len(STEPS) - 1
    finally:
        gateway.terminate()
