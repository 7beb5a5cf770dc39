"""`sopbot status` – every account: which daemon runs it and until when its lease holds,
online or not (as that daemon last wrote), paused or not, queue depth and the last send;
then the SOPs the automatic brake holds and the loss alerts of the last day. Read from the
database, so it works from any machine that shares it."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.store import Database


def status(ctx: typer.Context) -> None:
    """Accounts: the daemon holding each (lease expiry), paused, queued, last send."""
    from sqlalchemy import func, select

    from bot.clock import SystemClock
    from bot.delivery import control, ledger
    from bot.leases import holders
    from bot.store import Database
    from bot.store.migrate import current_revision
    from bot.store.models import Account, OutboxMessage

    state: CliState = ctx.obj
    settings = state.settings()
    database = Database(settings.resolved_database_url)
    if current_revision(database) is None:
        fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
    now, tz = SystemClock().now(), settings.tz
    with database.session(read_only=True) as session:
        held = holders(session)
        queued = ledger.queued_by_account(session)
        last = dict(
            session.execute(
                select(OutboxMessage.account_id, func.max(OutboxMessage.sent_at)).group_by(
                    OutboxMessage.account_id
                )
            ).all()
        )
        paused = {account.id: control.pause_of(session, account.id) for account in settings.accounts}
        connection = dict(session.execute(select(Account.id, Account.status)).all())
    retention = _retention(database, now, tz)
    database.dispose()
    for account in settings.accounts:
        lease = held.get(account.id)
        if lease is None:
            runner = "not running (no daemon holds it)"
        elif lease.expires_at <= now:
            runner = f"not running (the lease of {lease.describe(tz)} expired)"
        else:
            runner = f"run by {lease.describe(tz)}; {connection.get(account.id) or 'offline'}"
        pause = paused[account.id]
        sent = last.get(account.id)
        shown = sent.astimezone(tz).strftime("%Y-%m-%d %H:%M") if sent else "never"
        held = retention.held.get(account.id, 0)
        typer.echo(
            f"{account.id}: {runner}; {'PAUSED: ' + pause.reason if pause else 'sending'}; "
            f"{queued.get(account.id, 0)} queued{f' ({held} held by the brake)' if held else ''}; last send {shown}"
        )
    for line in retention.lines:
        typer.echo(line)


class _Retention(NamedTuple):
    held: dict[str, int]  # account → planned rows a brake holds
    lines: list[str]


def _retention(database: Database, now: datetime, tz: ZoneInfo) -> _Retention:
    """The braked SOPs and the last day's loss alerts (nothing from a schema before 0009)."""
    from datetime import timedelta

    from sqlalchemy.exc import SQLAlchemyError

    from bot.delivery import ledger
    from bot.retention import store

    try:
        with database.session(read_only=True) as session:
            brakes = store.braked_sops(session)
            held = ledger.held_by_account(session, {b.sop_id for b in brakes})
            alerts = [
                a
                for a in store.recent_alerts(session, 50)
                if a.created_at and a.created_at > now - timedelta(days=1)
            ]
    except SQLAlchemyError:
        return _Retention({}, [])
    lines = []
    for brake in brakes:
        since = brake.tripped_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if brake.tripped_at else "?"
        lines.append(
            f"SOP {brake.sop_id}: BRAKED since {since}: {brake.reason} (`sopbot sop resume {brake.sop_id}`)"
        )
    if alerts:
        lines.append(f"{len(alerts)} loss alert(s) in the last 24 h: `sopbot sop alerts`")
    return _Retention(held, lines)
