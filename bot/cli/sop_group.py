"""`sopbot sop …`: the automatic brake from the terminal (docs/retention.md).

- `sopbot sop brakes` lists the SOPs the brake paused, with the reason and what waits;
- `sopbot sop resume ID` lifts a brake (its waiting messages go out at the account's pace,
  or are skipped with `--skip-waiting`);
- `sopbot sop alerts` lists the latest loss alerts (删粉预警)."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from bot.store import Database

app = typer.Typer(
    help="The automatic brake on SOPs that drive people away, and loss alerts.", no_args_is_help=True
)


def _database(ctx: typer.Context) -> Database:
    from bot.store import Database
    from bot.store.migrate import current_revision, head_revision

    state: CliState = ctx.obj
    database = Database(state.settings().resolved_database_url)
    current = current_revision(database)
    if current is None:
        database.dispose()
        fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
    if current != head_revision():  # the brake's tables came with 0009
        database.dispose()
        fail(f"the database schema is at {current}, older than this sopbot: run `sopbot db upgrade` first")
    return database


@app.command("brakes")
def brakes(
    ctx: typer.Context,
    everything: Annotated[
        bool, typer.Option("--all", help="Also the SOPs resumed since their brake tripped.")
    ] = False,
) -> None:
    """The SOPs the brake paused: why, since when, and how many messages wait."""
    from sqlalchemy import select

    from bot.retention import store
    from bot.store.models import SopBrake

    tz = ctx.obj.settings().tz
    database = _database(ctx)
    try:
        with database.session(read_only=True) as session:
            rows = (
                list(session.execute(select(SopBrake).order_by(SopBrake.tripped_at.desc())).scalars())
                if everything
                else store.braked_sops(session)
            )
            waiting = {row.sop_id: store.waiting_rows(session, row.sop_id) for row in rows}
    finally:
        database.dispose()
    if not rows:
        typer.echo("no SOP is braked" if not everything else "the brake never tripped")
        return
    for row in rows:
        tripped = row.tripped_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if row.tripped_at else "?"
        if row.state == store.PAUSED:
            typer.echo(
                f"{row.sop_id}: PAUSED since {tripped}: {row.reason}; {waiting[row.sop_id]} messages wait; "
                f"resume with `sopbot sop resume {row.sop_id}`"
            )
        else:
            resumed = row.resumed_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if row.resumed_at else "?"
            typer.echo(
                f"{row.sop_id}: resumed {resumed} by {row.resumed_by}; tripped {tripped}: {row.reason}"
            )


@app.command("resume")
def resume(
    ctx: typer.Context,
    sop_id: Annotated[str, typer.Argument(metavar="ID", help="The SOP id the brake paused.")],
    skip_waiting: Annotated[
        bool,
        typer.Option(
            "--skip-waiting", help="Skip its waiting messages (with the reason) instead of sending them."
        ),
    ] = False,
    by: Annotated[str | None, typer.Option(help="Who resumes it (default: your login name).")] = None,
) -> None:
    """Lift an SOP's brake: its waiting messages go out at the account's pace.

    Messages past their step's `expires` are skipped when they come due; with
    --skip-waiting every waiting message is skipped (with the reason) instead. The brake
    counts the SOP's sends from now on."""
    from sqlalchemy import update

    from bot.clock import SystemClock
    from bot.delivery.outbox import OutboxState
    from bot.retention import store
    from bot.store.models import OutboxMessage

    who = by or f"cli:{_login()}"
    now = SystemClock().now()
    database = _database(ctx)
    try:
        with database.session() as session:
            brake = store.brake_of(session, sop_id)
            lifted = store.resume_sop(session, sop_id, who, now)
            waiting = 0
            if lifted and skip_waiting:
                # one statement, on the rows still planned: a worker may claim one the moment
                # the brake is lifted
                waiting = session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.sop_id == sop_id, OutboxMessage.state == OutboxState.PLANNED.value)
                    .values(
                        state=OutboxState.SKIPPED.value,
                        reason=f"SOP braked; skipped at its resume by {who}",
                        updated_at=now,
                    )
                ).rowcount
            elif lifted:
                waiting = store.waiting_rows(session, sop_id)
    finally:
        database.dispose()
    if not lifted:
        state = "was resumed already" if brake is not None else "was never braked"
        fail(f"SOP {sop_id} is not paused by the brake ({state}); see `sopbot sop brakes`", code=1)
    assert brake is not None
    typer.echo(f"resumed SOP {sop_id} (braked for: {brake.reason})")
    if skip_waiting:
        typer.echo(f"{waiting} waiting messages skipped")
    else:
        typer.echo(f"{waiting} waiting messages go out at the account's pace")


@app.command("alerts")
def alerts(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
) -> None:
    """The latest loss alerts (删粉预警) sent to the admins."""
    from bot.retention import store

    tz = ctx.obj.settings().tz
    database = _database(ctx)
    try:
        with database.session(read_only=True) as session:
            found = store.recent_alerts(session, limit)
    finally:
        database.dispose()
    if not found:
        typer.echo("no loss alert yet")
        return
    for alert in found:
        at = alert.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if alert.created_at else "?"
        scope = alert.account_id or alert.sop_id
        typer.echo(f"{at}  {alert.kind} {scope}: {alert.count} (threshold {alert.threshold})")
        for line in alert.message.splitlines():
            typer.echo(f"    {line}")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container
        return "operator"
