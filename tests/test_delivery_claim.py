"""Claiming on both backends: workers racing for the same outbox never claim a row twice."""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

from bot.config.settings import parse_quiet_hours
from bot.delivery import ledger
from bot.delivery.policy import Rules
from bot.recorder import writes as w
from bot.store import Database
from bot.store import directory as d
from bot.wechat.types import ContactInfo
from tests.support import T0, plan

RULES = Rules(
    tz=ZoneInfo("Asia/Shanghai"),
    quiet=parse_quiet_hours("00:00-00:00"),
    replies_in_quiet_hours=True,
    contact_daily_cap=5,
    contact_weekly_cap=10,
    lifecycle_exempt=True,
    room_daily_cap=3,
)


def test_racing_workers_claim_disjoint_rows(database: Database) -> None:
    with database.session() as s:
        d.ensure_account(s, "main", name="main", transport="sandbox", now=T0)
        ids = [w.upsert_contact(s, "main", ContactInfo(f"wxid_{n}", f"客户{n}"), T0) for n in range(600)]
    assert plan(database, ids) == 600
    claimed: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    errors: list[BaseException] = []

    start = threading.Barrier(len(claimed))

    def work(worker: str) -> None:
        try:
            start.wait()
            while True:
                with database.session() as s:
                    batch = ledger.claim_due(s, "main", T0, 25, worker, RULES, scan=25).claimed
                claimed[worker].extend(row.id for row in batch)
                time.sleep(0.002)  # the sends themselves: lets the other workers in
                if not batch:
                    with database.session(read_only=True) as s:
                        if ledger.state_counts(s).get("planned", 0) == 0:
                            return
                    time.sleep(0.001)
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    every = [row for rows in claimed.values() for row in rows]
    assert len(every) == len(set(every)) == 600
    assert sum(1 for rows in claimed.values() if rows) >= 2, "the race never happened"
    with database.session(read_only=True) as s:
        assert ledger.state_counts(s) == {"sending": 600}
