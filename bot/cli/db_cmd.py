"""`sopbot db …` – the database schema."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from bot.cli.context import CliState

if TYPE_CHECKING:
    pass

app = typer.Typer(help="Database schema: upgrade, status.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Bring the database schema up to date (safe to run any time)."""
    from bot.store import Database
    from bot.store.migrate import upgrade as run_upgrade

    state: CliState = ctx.obj
    database = Database(state.settings().resolved_database_url)
    before, after = run_upgrade(database)
    if before == after:
        typer.echo(f"{database.display_url}: schema already at {after}")
    else:
        typer.echo(f"{database.display_url}: schema upgraded {before or 'empty'} -> {after}")
    database.dispose()


@app.command()
def status(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the one this sopbot needs; exits 1 when
    it needs `sopbot db upgrade` (so scripts can test it)."""
    from bot.store import Database
    from bot.store.migrate import current_revision, head_revision

    state: CliState = ctx.obj
    database = Database(state.settings().resolved_database_url)
    current, head = current_revision(database), head_revision()
    verdict = "up to date" if current == head else "needs `sopbot db upgrade`"
    typer.echo(f"{database.display_url}: at {current or 'empty'}, needs {head}: {verdict}")
    database.dispose()
    if current != head:
        raise typer.Exit(1)
