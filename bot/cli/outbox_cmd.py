"""`sopbot outbox`, `sopbot pause`, `sopbot resume` – what is queued, sent, skipped and why."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from bot.cli.context import CliState, fail
from bot.delivery import control, ledger
from bot.delivery.payload import summary
from bot.sop.runtime import ledger as runs
from bot.store import Database
from bot.store.migrate import current_revision
from bot.store.models import Contact, OutboxMessage, Room

STATES = ("planned", "sending", "sent", "skipped", "failed", "unknown")


def _database(ctx: typer.Context) -> Database:
    state: CliState = ctx.obj
    database = Database(state.settings().resolved_database_url)
    if current_revision(database) is None:
        fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
    return database


def outbox(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help=f"Only rows in this state: {', '.join(STATES)}.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account id.")] = None,
    sop: Annotated[str | None, typer.Option(help="Only this SOP id.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show, newest first.")] = 30,
) -> None:
    """What is queued, sent, skipped or failed, and why."""
    if state is not None and state not in STATES:
        fail(f"--state must be one of {', '.join(STATES)}, not {state!r}")
    settings = ctx.obj.settings()
    database = _database(ctx)
    console = Console(soft_wrap=False)
    with database.session(read_only=True) as session:
        counts = ledger.state_counts(session, account)
        for pause in control.pauses(session):
            scope = "all accounts" if pause.scope == control.ALL_ACCOUNTS else f"account {pause.scope}"
            console.print(f"[bold red]PAUSED[/] {scope}: {pause.reason} (by {pause.paused_by})")
        query = (
            select(OutboxMessage, Contact.name, Room.topic)
            .outerjoin(Contact, Contact.id == OutboxMessage.contact_id)
            .outerjoin(Room, Room.id == OutboxMessage.room_id)
            .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        )
        if state:
            query = query.where(OutboxMessage.state == state)
        if account:
            query = query.where(OutboxMessage.account_id == account)
        if sop:
            query = query.where(OutboxMessage.sop_id == sop)
        rows = session.execute(query).all()
        failed = [run for run in runs.failed(session) if sop is None or run.sop_id == sop]
    database.dispose()
    for run in failed:
        console.print(
            f"[bold red]SOP FAILED[/] {run.sop_id}/{run.step_id} @ {run.occurrence} (try {run.attempts}): "
            f"{run.detail} — retried within the SOP's grace"
        )
    console.print("  ".join(f"{name} {counts.get(name, 0)}" for name in STATES))
    table = Table(title_justify="left")
    for column in ("when", "state", "to", "from", "message", "reason"):
        table.add_column(column)
    for row, contact_name, topic in rows:
        moment = row.sent_at or row.updated_at or row.not_before
        when = moment.astimezone(settings.tz).strftime("%m-%d %H:%M") if moment else ""
        origin = f"{row.sop_id}/{row.step_id}" if row.sop_id else row.origin
        table.add_row(
            when,
            row.state,
            topic or contact_name or "?",
            origin,
            summary(row.payload or []),
            row.reason or "",
        )
    console.print(table)


def pause(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Pause only this account (default: all).")] = None,
    reason: Annotated[
        str, typer.Option(help="Shown in `sopbot outbox` and #status.")
    ] = "paused by the operator",
) -> None:
    """Stop sending (nothing queued is lost; it waits in the outbox)."""
    settings = ctx.obj.settings()
    if account is not None and account not in {a.id for a in settings.accounts}:
        fail(f"no account {account!r} in {settings.source}")
    database = _database(ctx)
    with database.session() as session:
        control.pause(session, account or control.ALL_ACCOUNTS, reason, "cli", _now())
    database.dispose()
    typer.echo(f"paused {'account ' + account if account else 'all accounts'}: {reason}")


def resume(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option(help="Resume only this account (default: the global pause).")
    ] = None,
) -> None:
    """Send again after `sopbot pause` or a risk-control pause."""
    database = _database(ctx)
    with database.session() as session:
        done = control.resume(session, account or control.ALL_ACCOUNTS)
        left = [p.scope for p in control.pauses(session)]
    database.dispose()
    what = f"account {account}" if account else "all accounts"
    typer.echo(f"resumed {what}" if done else f"{what} was not paused")
    if left:
        typer.echo(f"still paused: {', '.join('all accounts' if s == '*' else s for s in left)}")


def _now():  # type: ignore[no-untyped-def]
    from bot.clock import SystemClock

    return SystemClock().now()
