"""Account leases on both backends: one holder at a time, taken over only when it has
expired or its process on this host is gone, renewed by the holder alone."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from bot import leases
from bot.store import Database
from bot.store import directory as d
from bot.store.models import AccountLease

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def _take(database: Database, who: str, at: datetime) -> leases.Holder | None:
    """None when `who` holds the lease now; else who does."""
    with database.session() as session:
        lease = leases.acquire(session, "main", who, at, LEASE)
    return None if lease.ours else lease.other


def _setup(database: Database) -> None:
    with database.session() as session:
        d.ensure_account(session, "main", name="main", transport="sandbox", now=NOW)


def test_one_holder_at_a_time_until_the_lease_runs_out(database: Database) -> None:
    _setup(database)
    assert _take(database, "daemon-a", NOW) is None  # ours
    assert _take(database, "daemon-a", NOW + timedelta(seconds=5)) is None  # still ours
    held = _take(database, "daemon-b", NOW + timedelta(seconds=10))
    assert held is not None and held.holder == "daemon-a" and held.pid == os.getpid()
    with database.session() as session:  # a renewal moves the end
        assert leases.renew(session, ["main"], "daemon-a", NOW + timedelta(seconds=20), LEASE) == {"main"}
        assert leases.renew(session, ["main"], "daemon-b", NOW + timedelta(seconds=20), LEASE) == set()
    assert _take(database, "daemon-b", NOW + timedelta(seconds=45)) is not None  # renewed until 50 s
    with database.session() as session:  # expired: taken over, and we learn from whom
        lease = leases.acquire(session, "main", "daemon-b", NOW + timedelta(seconds=51), LEASE)
    assert lease.ours and lease.other is not None and lease.other.holder == "daemon-a"
    with database.session() as session:  # the old holder cannot renew it back
        assert leases.renew(session, ["main"], "daemon-a", NOW + timedelta(seconds=52), LEASE) == set()
        assert leases.holders(session)["main"].holder == "daemon-b"


def test_a_dead_process_on_this_host_is_taken_over_at_once(database: Database) -> None:
    _setup(database)
    assert _take(database, "daemon-a", NOW) is None
    with database.session() as session:
        session.execute(update(AccountLease).values(pid=2**22 + 4321))  # a pid no process has
    assert _take(database, "daemon-b", NOW + timedelta(seconds=1)) is None


def test_a_clean_stop_releases_the_lease(database: Database) -> None:
    _setup(database)
    assert _take(database, "daemon-a", NOW) is None
    with database.session() as session:
        leases.release(session, ["main"], "daemon-b")  # not its lease: nothing happens
    assert _take(database, "daemon-b", NOW) is not None
    with database.session() as session:
        leases.release(session, ["main"], "daemon-a")
    assert _take(database, "daemon-b", NOW) is None


def test_a_daemon_runs_only_the_accounts_it_may_and_leaves_the_others_free(tmp_path: Path) -> None:
    """`run_accounts` splits the accounts between daemons sharing a database: the others are
    neither started nor leased nor waited for as a standby."""
    from bot.clock import FrozenClock
    from tests.support import T0, TestBot, make_settings, sqlite_database

    settings = make_settings(
        tmp_path,
        'run_accounts = ["main"]\n[[accounts]]\nid = "main"\n[[accounts]]\nid = "shop2"\n',
    )
    with sqlite_database(tmp_path) as database:
        bot = TestBot(settings, database, FrozenClock(T0)).start()
        try:
            with database.session(read_only=True) as session:
                held = leases.holders(session)
            assert set(held) == {"main"}
            assert set(bot.daemon.accounts) == {"main"} and bot.daemon.account_set.standby == {}
        finally:
            bot.close()


def test_the_next_holders_pace_counts_a_send_cut_off_by_a_kill(tmp_path: Path) -> None:
    """After a hand-over the new holder's pacer starts from the database: sent rows, and a
    row the dead daemon left `sending` (it may have gone out) at its last write."""
    from bot.clock import FrozenClock
    from bot.delivery.ledger import recent_sends
    from bot.delivery.pacing import Pace, Pacer
    from bot.store.models import OutboxMessage
    from tests.support import T0, TestBot, make_settings, plan, sqlite_database

    with sqlite_database(tmp_path) as database:
        bot = TestBot(make_settings(tmp_path), database, FrozenClock(T0)).start()
        try:
            ids = [bot.contact(w).id for w in ("wxid_wang_fang", "wxid_li_na")]
        finally:
            bot.close()
        plan(database, ids)
        with database.session() as session:
            rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
            rows[0].state, rows[0].sent_at = "sent", T0 - timedelta(seconds=20)
            rows[1].state, rows[1].updated_at = "sending", T0 - timedelta(seconds=2)  # the kill
        with database.session(read_only=True) as session:
            history = recent_sends(session, "main", T0 - timedelta(days=1))
        assert sorted(history) == [T0 - timedelta(seconds=20), T0 - timedelta(seconds=2)]
        pacer = Pacer(Pace(min_interval=8, jitter=0, hourly_cap=100, daily_cap=800), history=history)
        assert pacer.next_allowed(T0) == T0 + timedelta(seconds=6)  # 8 s after the cut-off send
