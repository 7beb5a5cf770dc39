"""Crash safety: the daemon is killed with SIGKILL while rows are being sent (asserted, not
hoped for), restarted, and every (recipient, part) reaches WeChat exactly once; recoveries
are counted, and a two-part message cut off between its parts resumes after the part WeChat
confirms. On PostgreSQL a second daemon stands by and takes the account over from the one
that was killed. The campaign is planned by an SOP file, as in production."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.store import Database
from bot.store.migrate import upgrade
from bot.store.models import AccountLease, OutboxMessage
from tests.campaign import Campaign, check_exactly_once, journal_refs, settled, state_counts
from tests.support import POSTGRES_URL
from tests.waiting import PATIENCE, stop_processes, wait_for, wait_for_progress

pytestmark = pytest.mark.slow

KILLS = 8
CONTACTS = 600


def sending_rows(database: Database, pid: int) -> list[tuple[str, int]]:
    """(key, parts sent) of the rows the process `pid` holds in `sending` right now."""
    try:
        with database.session(read_only=True) as session:
            rows = session.execute(
                select(OutboxMessage.key, OutboxMessage.parts_sent).where(
                    OutboxMessage.state == "sending", OutboxMessage.claimed_by.like(f"%-{pid}-%")
                )
            ).all()
    except Exception:  # the database is locked or being created: nothing seen this time
        return []
    return [(key, parts) for key, parts in rows]


class Kills:
    """SIGKILLs timed while the victim has rows in `sending`, and what each one left."""

    def __init__(self, campaign: Campaign, database: Database, rng: random.Random) -> None:
        self.campaign = campaign
        self.database = database
        self.rng = rng
        self.landed = 0  # kills after which the victim's rows were still `sending`
        self.left: set[str] = set()  # rows a kill left in `sending`
        self.between_parts: set[str] = set()  # rows killed after their first part went out

    def done(self) -> bool:
        return settled(state_counts(self.database), self.campaign.recipients)

    def kill_mid_send(self, victim: subprocess.Popen[bytes]) -> bool:
        """Wait for the victim to be sending, SIGKILL it; False when the campaign finished
        first (nothing left to kill during)."""
        wait_for(
            lambda: sending_rows(self.database, victim.pid) or self.done(), what="the daemon sending rows"
        )
        if self.done():
            return False
        time.sleep(self.rng.uniform(0, 0.2))  # somewhere in the batch
        victim.send_signal(signal.SIGKILL)
        victim.wait(PATIENCE)
        left = sending_rows(self.database, victim.pid)
        if left:
            self.landed += 1
            self.left |= {key for key, _ in left}
            self.between_parts |= {key for key, parts in left if parts >= 1}
        return True

    def check(self) -> dict[str, int]:
        states = check_exactly_once(self.campaign, self.database)
        assert states == {"sent": self.campaign.recipients}  # the sandbox confirms: nothing unknown
        assert self.landed >= KILLS // 2, f"only {self.landed} kills landed while rows were `sending`"
        # every row a kill left `sending` was resolved by a recovery (a daemon killed in the
        # middle of recovering hands the same rows on to the next one: counted once)
        recovered = sum(
            int(n) for n in re.findall(r"recovered (\d+) interrupted sends", self.campaign.log_text())
        )
        assert recovered >= len(self.left), (
            f"{len(self.left)} rows left `sending` by kills, {recovered} recovered"
        )
        assert self.between_parts, "no kill landed between the two parts of a message"
        refs = set(journal_refs(self.campaign.journal))
        for key in self.between_parts:  # resumed after its first part: both parts, each once
            assert {f"{key}#0", f"{key}#1"} <= refs
        return states


def settle(kills: Kills) -> None:
    wait_for_progress(
        lambda: state_counts(kills.database), lambda counts: settled(counts, kills.campaign.recipients),
        what="every row of the campaign to settle",
    )  # fmt: skip


def test_sigkill_mid_send_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sopbot.db'}"
    campaign = Campaign.create(tmp_path, url, contacts=CONTACTS)
    database = Database(url)
    try:
        upgrade(database)
        campaign.prepare(database)
        kills = Kills(campaign, database, random.Random(7))
        daemon = campaign.start()
        try:
            for _ in range(KILLS):
                if not kills.kill_mid_send(daemon):
                    break
                daemon = campaign.start()
            settle(kills)
        finally:
            assert stop_processes([daemon], signal.SIGINT) == [0]
        states = kills.check()
        print(f"\n{campaign.recipients} recipients × 2 parts: {states}; {kills.landed} kills mid-send, "
              f"{len(kills.between_parts)} rows caught between parts")  # fmt: skip
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


def holder_pid(database: Database) -> int | None:
    try:
        with database.session(read_only=True) as session:
            holder = session.execute(
                select(AccountLease.holder).where(AccountLease.account_id == "main")
            ).scalar()
    except Exception:
        return None
    return int(holder.split("-")[-2]) if holder else None


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_available")
def test_sigkill_while_a_standby_daemon_runs_on_postgresql(tmp_path: Path) -> None:
    with postgres_schema() as schema:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        campaign = Campaign.create(tmp_path, url, daemons=2, contacts=CONTACTS)
        database = Database(url)
        try:
            upgrade(database)
            campaign.prepare(database)
            kills = Kills(campaign, database, random.Random(11))
            daemons = [campaign.start(0), campaign.start(1)]
            try:
                for _ in range(KILLS):
                    pid = wait_for(
                        lambda: (pid := holder_pid(database)) in {d.pid for d in daemons} and pid,
                        what="one of the running daemons holding the account",
                    )
                    index = next(i for i, d in enumerate(daemons) if d.pid == pid)
                    if not kills.kill_mid_send(daemons[index]):
                        break
                    survivor = daemons[1 - index].pid
                    if not kills.done():  # the standby takes the account over, then the other comes back
                        wait_for(lambda s=survivor: holder_pid(database) == s, what="the standby taking over")
                    daemons[index] = campaign.start(index)
                settle(kills)
            finally:
                assert stop_processes(daemons, signal.SIGINT) == [0, 0]
            states = kills.check()
            takeovers = campaign.log_text().count("taking over")
            assert takeovers >= kills.landed, f"{kills.landed} kills, {takeovers} takeovers by the standby"
            assert campaign.log_text().count("waits as its standby") >= 1
            print(f"\n{campaign.recipients} recipients × 2 parts: {states}; {kills.landed} kills mid-send, "
                  f"{takeovers} takeovers, {len(kills.between_parts)} rows caught between parts")  # fmt: skip
        finally:
            database.dispose()
