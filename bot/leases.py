"""Account leases: each WeChat account is run by one daemon at a time.

A daemon takes the lease of every account it is configured for. An account whose lease
another daemon holds is not started: this daemon waits as its **standby** and takes it over
when the lease has expired (the holder was killed, its machine is gone, or it lost the
database for longer than the lease) — or at once when the holder ran on this same host and
its process is gone. The holder renews its leases every third of the lease; a daemon that
cannot renew stops sending for the account a third of a lease before it would expire
(`fenced`), so the next holder never sends beside it.

All of it lives in the database (`account_leases`): no coordinator beside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlmodel import Session

from bot.instance import pid_alive, this_host
from bot.store.models import AccountLease
from bot.store.upsert import insert_for


@dataclass(frozen=True)
class Holder:
    """Who holds an account's lease, as a log line names it."""

    holder: str
    host: str
    pid: int
    expires_at: datetime

    def describe(self, tz: object = None) -> str:
        until = self.expires_at.astimezone(tz).strftime("%H:%M:%S")  # type: ignore[arg-type]
        return f"daemon {self.holder} (host {self.host}, pid {self.pid}), lease until {until}"


def _gone(lease: AccountLease, now: datetime) -> bool:
    """The holder can no longer hold it: expired, or a dead process on this host."""
    return lease.expires_at <= now or (lease.host == this_host() and not pid_alive(lease.pid))


@dataclass(frozen=True)
class Acquired:
    """The outcome of `acquire`: `ours`, and the other daemon involved — the one holding
    the lease (not ours), or the one whose expired lease we took over (ours)."""

    ours: bool
    other: Holder | None = None


def acquire(session: Session, account_id: str, me: str, now: datetime, duration: timedelta) -> Acquired:
    """Take (or keep) the account's lease. Safe against another daemon doing the same at the
    same moment: the insert and the conditional update are each atomic, and only one wins."""
    values = {"holder": me, "host": this_host(), "pid": os.getpid(), "acquired_at": now,
              "expires_at": now + duration}  # fmt: skip
    table = AccountLease.__table__
    statement = insert_for(session, table).values(account_id=account_id, **values)
    inserted = statement.on_conflict_do_nothing(index_elements=["account_id"]).returning(table.c.account_id)
    if session.execute(inserted).first() is not None:  # (rowcount is not reliable here on psycopg)
        return Acquired(True)
    current = session.execute(select(AccountLease).where(AccountLease.account_id == account_id)).scalar_one()
    previous = Holder(current.holder, current.host, current.pid, current.expires_at)
    if current.holder != me and not _gone(current, now):
        return Acquired(False, previous)
    taken = session.execute(
        update(AccountLease)
        .where(AccountLease.account_id == account_id, AccountLease.holder == previous.holder,
               AccountLease.expires_at == previous.expires_at)
        .values(**values)
        .returning(AccountLease.account_id)
    ).first()  # fmt: skip
    if taken is not None:
        return Acquired(True, previous if previous.holder != me else None)
    winner = session.execute(select(AccountLease).where(AccountLease.account_id == account_id)).scalar_one()
    return Acquired(False, Holder(winner.holder, winner.host, winner.pid, winner.expires_at))


def renew(session: Session, account_ids: list[str], me: str, now: datetime, duration: timedelta) -> set[str]:
    """Extend the leases this daemon still holds; returns the accounts still ours."""
    if not account_ids:
        return set()
    session.execute(
        update(AccountLease)
        .where(AccountLease.account_id.in_(account_ids), AccountLease.holder == me)
        .values(expires_at=now + duration)
    )
    return set(
        session.execute(
            select(AccountLease.account_id).where(
                AccountLease.account_id.in_(account_ids), AccountLease.holder == me
            )
        ).scalars()
    )


def release(session: Session, account_ids: list[str], me: str) -> None:
    """Give the leases up (a clean stop): a standby may take over at once."""
    if account_ids:
        session.execute(
            delete(AccountLease).where(AccountLease.account_id.in_(account_ids), AccountLease.holder == me)
        )


def holders(session: Session) -> dict[str, Holder]:
    return {
        lease.account_id: Holder(lease.holder, lease.host, lease.pid, lease.expires_at)
        for lease in session.execute(select(AccountLease)).scalars()
    }
