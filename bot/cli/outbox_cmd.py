"""`sopbot outbox`, `sopbot pause`, `sopbot resume` – what is queued, sent, skipped and why."""

from __future__ import annotations

import re
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlmodel import Session

    from bot.sop.runtime.ledger import RunTotals
    from bot.store import Database

STATES = ("planned", "sending", "sent", "skipped", "failed", "unknown")


def _database(ctx: typer.Context) -> Database:
    from bot.store import Database
    from bot.store.migrate import current_revision

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
    contact: Annotated[
        str | None, typer.Option(help="Only to this contact or group (name, 备注 or wxid).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only rows changed since a day (2026-11-20) or for a while (2h, 3d).")
    ] = None,
    today: Annotated[bool, typer.Option("--today", help="Only rows changed today (local time).")] = False,
    show: Annotated[
        int | None, typer.Option("--show", help="One message in full, by its # in the list.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows to show, newest first.")] = 30,
) -> None:
    """What is queued, sent, skipped or failed, and why. The counts obey the filters."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from sqlalchemy import func, select

    from bot.delivery import control
    from bot.delivery.payload import summary
    from bot.sop.runtime import ledger as runs
    from bot.store.models import Contact, OutboxMessage, Room

    if state is not None and state not in STATES:
        fail(f"--state must be one of {', '.join(STATES)}, not {state!r}")
    settings = ctx.obj.settings()
    now = _now()
    start = _start(since, today, now, settings.tz)
    database = _database(ctx)
    console = Console(soft_wrap=False)
    with database.session(read_only=True) as session:
        if show is not None:
            _show(session, show, settings.tz)
            database.dispose()
            return
        filters = []
        if account:
            filters.append(OutboxMessage.account_id == account)
        if sop:
            known = _known_sops(session, settings.sop_path)
            if sop not in known:
                names = ", ".join(sorted(known)) or "none yet"
                fail(f"--sop: no SOP {sop!r} in sop/, the outbox or the run ledger (known: {names})")
            filters.append(OutboxMessage.sop_id == sop)
        if contact:
            filters.append(_recipient_filter(session, contact))
        if start is not None:
            filters.append(OutboxMessage.updated_at >= start)
        counts = dict(
            session.execute(
                select(OutboxMessage.state, func.count()).where(*filters).group_by(OutboxMessage.state)
            ).all()
        )
        for pause in control.pauses(session):
            scope = "all accounts" if pause.scope == control.ALL_ACCOUNTS else f"account {pause.scope}"
            console.print(
                f"[bold red]PAUSED[/] {escape(scope)}: {escape(pause.reason)} (by {escape(pause.paused_by)})"
            )
        query = (
            select(OutboxMessage, Contact.name, Room.topic)
            .outerjoin(Contact, Contact.id == OutboxMessage.contact_id)
            .outerjoin(Room, Room.id == OutboxMessage.room_id)
            .where(*filters)
            .order_by(OutboxMessage.updated_at.desc(), OutboxMessage.id.desc())
            .limit(limit)
        )
        if state:
            query = query.where(OutboxMessage.state == state)
        rows = session.execute(query).all()
        failed = [run for run in runs.failed(session) if sop is None or run.sop_id == sop]
        # runs are not per account or recipient: their line obeys --sop, --since, --today only
        totals = runs.run_totals(session, start, sop) if not (account or contact) else None
    database.dispose()
    for run in failed:
        console.print(
            f"[bold red]SOP FAILED[/] {run.sop_id}/{run.step_id} @ {run.occurrence} (try {run.attempts}): "
            f"{escape(run.detail or '')} — retried within the SOP's grace"
        )
    console.print("  ".join(f"{name} {counts.get(name, 0)}" for name in STATES))
    if totals is not None and totals.runs:
        console.print(escape(_runs_line(totals)))
        for run in totals.leaving_out:
            left = runs.left_out_note(runs.read_left_out(run.detail))
            console.print(escape(f"  {run.sop_id}/{run.step_id} @ {run.occurrence}: {left}"))
    table = Table(title_justify="left")
    for column in ("#", "when", "state", "to", "from", "message", "reason"):
        table.add_column(column)
    for row, contact_name, topic in rows:
        moment = row.sent_at or row.updated_at or row.not_before
        when = moment.astimezone(settings.tz).strftime("%m-%d %H:%M") if moment else ""
        origin = f"{row.sop_id}/{row.step_id}" if row.sop_id else row.origin
        table.add_row(  # what contacts and operators wrote is text, never rich markup
            str(row.id),
            when,
            row.state,
            escape(topic or contact_name or "?"),
            escape(origin),
            escape(summary(row.payload or [])),
            escape(row.reason or ""),
        )
    console.print(table)
    if rows:
        console.print("the whole text of a message: sopbot outbox --show #")


def _runs_line(totals: RunTotals) -> str:
    """`SOP runs 3: 16 planned; left out 3: 2 opted out, 1 blocked` (the newest runs that
    left someone out follow, one a line)."""
    from bot.sop.runtime.ledger import left_out_note

    line = f"SOP runs {totals.runs}: {totals.planned} planned"
    return f"{line}; {left_out_note(totals.left_out) or 'nobody left out'}"


def _known_sops(session: Session, sop_dir: Path) -> set[str]:
    """SOP ids in the outbox, the run ledger and the files' `id:` lines (read, not loaded)."""
    from sqlalchemy import select

    from bot.store.models import OutboxMessage, SopRun

    known = {str(i) for i in session.execute(select(OutboxMessage.sop_id).distinct()).scalars() if i}
    known |= {str(i) for i in session.execute(select(SopRun.sop_id).distinct()).scalars() if i}
    for path in sop_dir.glob("*.yaml"):
        try:
            match = re.search(r"^id:\s*['\"]?([\w-]+)", path.read_text(encoding="utf-8-sig"), re.MULTILINE)
        except (OSError, UnicodeDecodeError):
            continue
        if match:
            known.add(match.group(1))
    return known


def _start(since: str | None, today: bool, now: datetime, tz: tzinfo) -> datetime | None:
    from bot.config.units import parse_duration

    if since and today:
        fail("give either --since or --today, not both")
    local = now.astimezone(tz)
    if today:
        return datetime.combine(local.date(), time(0), tz)
    if since is None:
        return None
    try:
        return datetime.combine(date.fromisoformat(since), time(0), tz)
    except ValueError:
        pass
    try:
        return now - parse_duration(since)
    except ValueError:
        fail(f"--since: {since!r} is neither a day (2026-11-20) nor a duration (2h, 3d)")


def _recipient_filter(session: Session, needle: str) -> ColumnElement[bool]:
    from sqlalchemy import or_, select

    from bot.signals.profile import find
    from bot.store.models import OutboxMessage, Room

    people = [c.id for c in find(session, needle)]
    rooms = list(
        session.execute(
            select(Room.id).where(or_(Room.room_wxid == needle, Room.topic.contains(needle, autoescape=True)))
        ).scalars()
    )
    if not people and not rooms:
        fail(f"--contact: nobody called {needle!r} (names, 备注, wxids and group names are searched)")
    return or_(OutboxMessage.contact_id.in_(people), OutboxMessage.room_id.in_(rooms))


def _show(session: Session, number: int, tz: tzinfo) -> None:
    from bot.delivery.payload import from_json
    from bot.sop.views.preview import show_part
    from bot.store.models import Contact, OutboxMessage, Room

    row = session.get(OutboxMessage, number)
    if row is None:
        fail(f"--show: no message #{number} in the outbox")
    who = session.get(Contact, row.contact_id) if row.contact_id else session.get(Room, row.room_id)
    name = getattr(who, "name", None) or getattr(who, "topic", None) or "?"
    local = {k: (v.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if v else "-") for k, v in (
        ("planned", row.created_at), ("due", row.not_before), ("sent", row.sent_at), ("changed", row.updated_at))}  # fmt: skip
    origin = f"{row.sop_id}/{row.step_id} @ {row.occurrence}" if row.sop_id else row.origin
    typer.echo(f"#{row.id} {row.state} to {name} · account {row.account_id} · from {origin}")
    typer.echo("  ".join(f"{k} {v}" for k, v in local.items()))
    if row.reason:
        typer.echo(f"reason: {row.reason}")
    typer.echo(f"key: {row.key}")
    typer.echo("\n---\n".join(show_part(part) for part in from_json(row.payload or [])))


def pause(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Pause only this account (default: all).")] = None,
    reason: Annotated[
        str, typer.Option(help="Shown in `sopbot outbox` and #status.")
    ] = "paused by the operator",
) -> None:
    """Stop sending (nothing queued is lost; it waits in the outbox)."""
    from bot.delivery import control

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
    from bot.delivery import control

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
