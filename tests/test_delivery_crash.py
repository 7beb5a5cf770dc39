"""Crash safety: the daemon is killed with SIGKILL at random points during a campaign and
restarted; every recipient gets the message exactly once, or the row says why not."""

from __future__ import annotations

import json
import os
import random
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
from sqlalchemy import func, select, text

from bot.store import Database
from bot.store.models import Contact, OutboxMessage
from tests.support import POSTGRES_URL, plan, write_project
from tests.waiting import PATIENCE, stop_process, stop_processes, wait_for_progress

REPO = Path(__file__).resolve().parents[1]
CAMPAIGN = 2000
KILLS = 30

pytestmark = pytest.mark.slow


def settings_text(database_url: str) -> str:
    return f"""
database_url = "{database_url}"
log_level = "WARNING"

[sandbox]
autoplay = false
extra_contacts = {CAMPAIGN}
journal = "wechat-server.jsonl"

[delivery]
quiet_hours = "00:00-00:00"   # equal ends: no quiet hours, whatever time CI runs
min_interval = 0.004
jitter = 0.002
hourly_cap = 1000000
daily_cap = 1000000
"""


def env() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
    environment["PYTHONPATH"] = str(REPO) + os.pathsep + environment.get("PYTHONPATH", "")
    return environment


def start(project: Path) -> subprocess.Popen[bytes]:
    with (project / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=project, env=env(),
            stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip


def recoveries(projects: list[Path]) -> int:
    return sum((p / "daemon.log").read_text(encoding="utf-8").count("recovered ") for p in projects)


def remaining(database: Database) -> int:
    with database.session(read_only=True) as s:
        return s.execute(
            select(func.count()).where(OutboxMessage.state.in_(["planned", "sending"]))
        ).scalar_one()


def seed_campaign(projects: list[Path], database: Database) -> None:
    """Run the daemon once so the contacts are synced, then plan the campaign."""
    process = start(projects[0])
    try:
        wait_for_progress(
            lambda: contact_count(database), lambda n: n >= CAMPAIGN, what="the contacts to be synced"
        )
    finally:
        assert stop_process(process, signal.SIGINT) == 0
    with database.session(read_only=True) as s:
        ids = list(s.execute(select(Contact.id).where(Contact.wxid.like("wxid_demo_%"))).scalars())
    assert len(ids) == CAMPAIGN
    now = datetime.now(UTC)
    assert plan(database, ids, at=now, text="双12 预告：会员专享 8 折") == CAMPAIGN


def contact_count(database: Database) -> int:
    try:
        with database.session(read_only=True) as s:
            return s.execute(select(func.count()).select_from(Contact)).scalar_one()
    except Exception:
        return 0


def kill_and_restart(projects: list[Path], database: Database, rng: random.Random) -> int:
    """Kill a running daemon KILLS times at random points; returns how many kills landed
    while the campaign was still being sent."""
    running = [start(p) for p in projects]
    during = 0
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 1.6))
        victim = rng.randrange(len(running))
        before = remaining(database)
        running[victim].send_signal(signal.SIGKILL)
        running[victim].wait(PATIENCE)
        during += before > 0
        running[victim] = start(projects[victim])
    try:
        # however slow the machine: it only has to keep settling rows
        wait_for_progress(lambda: remaining(database), lambda n: n == 0, what="every row to settle")
    finally:
        assert stop_processes(running, signal.SIGINT) == [0] * len(running)
    return during


def check_exactly_once(journal: Path, database: Database) -> None:
    refs = [
        json.loads(line)["ref"] for line in journal.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    duplicates = [ref for ref, count in Counter(refs).items() if count > 1]
    assert duplicates == [], f"sent twice: {duplicates[:5]}"
    with database.session(read_only=True) as s:
        rows = s.execute(select(OutboxMessage.key, OutboxMessage.state, OutboxMessage.reason)).all()
    assert len(rows) == CAMPAIGN
    delivered = {ref.removesuffix("#0") for ref in refs}
    for key, state, reason in rows:
        if state == "sent":
            assert key in delivered, f"{key} marked sent but never reached WeChat"
        else:
            assert state in {"unknown", "skipped"} and reason, f"{key}: {state} without a reason"
            assert state != "skipped" or key not in delivered
    lost = delivered - {key for key, state, _ in rows if state in {"sent", "unknown"}}
    assert lost == set(), f"reached WeChat but recorded otherwise: {sorted(lost)[:5]}"
    sent = sum(1 for _, state, _ in rows if state == "sent")
    print(
        f"\ncampaign {CAMPAIGN}: {sent} sent, {len(rows) - sent} unknown/skipped, {len(refs)} journal lines"
    )


def test_sigkill_thirty_times_during_a_sqlite_campaign(tmp_path: Path) -> None:
    write_project(tmp_path, settings_text("sqlite:///data/sopbot.db"))
    database = Database(f"sqlite:///{tmp_path / 'data/sopbot.db'}")
    try:
        seed_campaign([tmp_path], database)
        during = kill_and_restart([tmp_path], database, random.Random(7))
        assert during >= KILLS // 2, f"only {during} kills landed mid-campaign"
        check_exactly_once(tmp_path / "wechat-server.jsonl", database)
        print(f"{during} kills mid-campaign, {recoveries([tmp_path])} restarts recovered interrupted sends")
    finally:
        database.dispose()


@contextmanager
def postgres_schema() -> Iterator[str]:
    schema = f"sopbot_crash_{uuid.uuid4().hex[:10]}"
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as c:
        c.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.engine.begin() as c:
            c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_available")
def test_sigkill_with_two_workers_racing_on_postgresql(tmp_path: Path) -> None:
    with postgres_schema() as schema:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        journal = tmp_path / "wechat-server.jsonl"
        projects = []
        for name in ("worker-a", "worker-b"):
            project = tmp_path / name
            write_project(project, settings_text(url).replace('"wechat-server.jsonl"', f'"{journal}"'))
            projects.append(project)
        upgrade = subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"], cwd=projects[0], env=env(),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert upgrade.returncode == 0, upgrade.stderr
        database = Database(url)
        try:
            seed_campaign(projects, database)
            during = kill_and_restart(projects, database, random.Random(11))
            assert during >= KILLS // 2
            check_exactly_once(journal, database)
            print(f"{during} kills mid-campaign, {recoveries(projects)} restarts recovered interrupted sends")
        finally:
            database.dispose()
