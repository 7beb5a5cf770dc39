"""`sopbot import-orders FILE.csv` – orders from a shop export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    pass

ORDER = ("new", "updated", "refunded", "unchanged", "ignored")


def import_orders(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV export (UTF-8, UTF-8 with BOM, or GBK).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file; store nothing.")] = False,
) -> None:
    """Import orders from a CSV file. Safe to run again: orders are keyed by order id,
    a refund or cancellation row updates the order, bad rows are listed and skipped."""
    from bot.clock import SystemClock
    from bot.config.errors import display_path
    from bot.orders.csv_import import read_csv
    from bot.signals.engine import SignalEngine
    from bot.store import Database
    from bot.store.schema import SchemaOutOfDate, ensure_schema

    state: CliState = ctx.obj
    settings = state.settings()
    if not file.is_file():
        fail(f"{file}: no such file")
    parsed = read_csv(file, display_path(file), settings.tz)
    for issue in parsed.issues:
        typer.echo(str(issue), err=True)
    rows = len(parsed.orders) + len(parsed.issues)
    if dry_run:
        typer.echo(
            f"{parsed.file} ({parsed.encoding}): {len(parsed.orders)} good rows, {len(parsed.issues)} rejected"
        )
        raise typer.Exit(1 if parsed.issues else 0)
    database = Database(settings.resolved_database_url)
    try:
        ensure_schema(database)
        engine = SignalEngine(settings, database, SystemClock())
        report = engine.ingest_orders([order for _, order in parsed.orders], source="csv", relay=True)
    except SchemaOutOfDate as error:
        fail(str(error))
    finally:
        database.dispose()
    counts = ", ".join(f"{report.outcomes.get(k, 0)} {k}" for k in ORDER if report.outcomes.get(k))
    typer.echo(
        f"{parsed.file} ({parsed.encoding}): {rows} rows: {counts or 'nothing stored'}"
        + (f", {len(parsed.issues)} rejected" if parsed.issues else "")
        + (
            f"; {report.unknown_buyers} from buyers not yet known (linked when they appear)"
            if report.unknown_buyers
            else ""
        )
    )
    if parsed.ignored_columns:
        typer.echo("columns not used: " + ", ".join(parsed.ignored_columns))
    if parsed.issues:
        raise typer.Exit(1)
