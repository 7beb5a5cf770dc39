"""`sopbot status` – every account: which daemon runs it and until when its lease holds,
online or not (as that daemon last wrote), paused or not, queue depth and the last send. Read from the database, so it works from any
machine that shares it."""

from __future__ import annotations

import typer

from bot.cli.context import CliState, fail


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
        typer.echo(
            f"{account.id}: {runner}; {'PAUSED: ' + pause.reason if pause else 'sending'}; "
            f"{queued.get(account.id, 0)} queued; last send {shown}"
        )
