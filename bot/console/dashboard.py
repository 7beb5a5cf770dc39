"""The dashboard's data: accounts (who runs each, online, paused, queued, last send), whether
quiet hours hold messages now, recent alerts, and the report's charts for the last 7 days.

The charts come from `build_report` over 100,000 contacts, which takes longer than a page
may: they are made in a worker thread, kept for `CHARTS_MAX_AGE`, and the page shows the
last ones made (saying when), never waiting for them."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup
from sqlalchemy import func, select
from sqlmodel import Session

from bot.clock import Clock
from bot.config.settings import Settings
from bot.delivery import control, ledger
from bot.delivery.policy import in_quiet_hours, quiet_end
from bot.delivery.worker import rules_from
from bot.leases import holders
from bot.report.html import Card, cards
from bot.report.svg import charts
from bot.results.compute import build_report, make_report
from bot.results.periods import local_today, resolve
from bot.store import Database
from bot.store.models import Account, OutboxMessage

log = logging.getLogger("bot.console")

CHART_DAYS = 7
CHARTS_MAX_AGE = timedelta(minutes=5)
ALERTS = 10


@dataclass(frozen=True)
class AccountState:
    id: str
    name: str
    runner: str | None  # the daemon holding its lease, None when none does
    online: bool
    paused: str | None  # the pause's reason
    paused_scope: str | None  # the account's own id, or "*" for the pause of all accounts
    queued: int
    last_send: datetime | None


@dataclass(frozen=True)
class Quiet:
    window: str
    now: bool
    until: datetime | None
    held: int  # planned messages waiting for the quiet hours to end


@dataclass(frozen=True)
class Overview:
    accounts: list[AccountState]
    quiet: Quiet
    alerts: list[dict[str, Any]]
    braked: list[dict[str, Any]]
    global_pause: str | None


def overview(session: Session, settings: Settings, now: datetime) -> Overview:
    held = holders(session)
    queued = ledger.queued_by_account(session)
    last = {account.id: last_send(session, account.id) for account in settings.accounts}
    status = dict(session.execute(select(Account.id, Account.status)).all())
    pauses = {pause.scope: pause for pause in control.pauses(session)}
    everything = pauses.get(control.ALL_ACCOUNTS)
    accounts = []
    for account in settings.accounts:
        lease = held.get(account.id)
        running = lease is not None and lease.expires_at > now
        pause = pauses.get(account.id) or everything
        accounts.append(
            AccountState(
                account.id,
                account.name,
                f"{lease.holder} ({lease.host})" if running and lease else None,
                running and status.get(account.id) == "online",
                pause.reason if pause else None,
                pause.scope if pause else None,
                int(queued.get(account.id, 0)),
                last.get(account.id),
            )
        )
    rules = rules_from(settings)
    quiet_now = in_quiet_hours(now, rules)
    until = quiet_end(now, rules) if quiet_now else None
    waiting = ledger.waiting_for_quiet_hours(session, now, until) if until is not None else 0
    alerts, braked = retention_view(session)
    return Overview(
        accounts,
        Quiet(str(rules.quiet), quiet_now, until, waiting),
        alerts,
        braked,
        everything.reason if everything else None,
    )


def last_send(session: Session, account_id: str) -> datetime | None:
    """One index probe (account, state, sent_at), not a scan of the outbox."""
    query = select(func.max(OutboxMessage.sent_at)).where(
        OutboxMessage.account_id == account_id, OutboxMessage.state == "sent"
    )
    return session.execute(query).scalar_one_or_none()


def retention_view(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Recent loss alerts and braked SOPs (`bot.retention`), when that part is installed."""
    try:
        from bot.retention import store
    except ImportError:
        return [], []
    alerts = [_plain(row) for row in store.recent_alerts(session, limit=ALERTS)]
    braked = [_plain(row) for row in store.braked_sops(session)]
    return alerts, braked


def _plain(row: Any) -> dict[str, Any]:
    """A row of the retention tables as a dict of its columns (the pages read names)."""
    if isinstance(row, dict):
        return dict(row)
    mapping = getattr(row, "_mapping", None)
    if mapping is not None:
        return dict(mapping)
    table = getattr(row, "__table__", None)
    if table is not None:
        return {column.name: getattr(row, column.name) for column in table.columns}
    return {"text": str(row)}


# -- charts ----------------------------------------------------------------------------------


@dataclass
class Charts:
    made_at: datetime
    label: str  # the period
    charts: dict[str, Markup | None]
    cards: list[Card]
    seconds: float  # how long making them took


@dataclass
class ChartCache:
    """The last 7 days' report charts. `current()` returns the last ones made and starts a
    refresh when they are older than `CHARTS_MAX_AGE` (one at a time)."""

    settings: Settings
    database: Database
    clock: Clock
    update_rollups: bool  # `sopbot console` alone: count what came in first, as `sopbot report`
    latest: Charts | None = None
    error: str | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def current(self) -> Charts | None:
        stale = self.latest is None or self.clock.now() - self.latest.made_at > CHARTS_MAX_AGE
        if stale and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self.refresh(), name="console-charts")
        return self.latest

    async def refresh(self) -> None:
        try:
            self.latest = await asyncio.to_thread(self.make)
            self.error = None
        except Exception as error:  # the page says so; the next visit tries again
            log.exception("console: the dashboard's charts could not be made")
            self.error = f"{type(error).__name__}: {error}"

    def make(self) -> Charts:
        began, timer = self.clock.now(), time.monotonic()
        today = local_today(began, self.settings.tz)
        period, previous = resolve(start=(today - timedelta(days=CHART_DAYS - 1)).isoformat(), today=today)
        if self.update_rollups:
            report = make_report(self.database, self.settings, period, None, now=began, previous=previous)
        else:
            with self.database.session(read_only=True) as session:
                report = build_report(session, self.settings, period, None, now=began, previous=previous)
        return Charts(began, period.label, charts(report), cards(report), time.monotonic() - timer)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
