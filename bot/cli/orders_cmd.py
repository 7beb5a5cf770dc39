"""`sopbot import-orders FILE` – orders from a shop export (CSV or Excel)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail
from bot.cli.mappings import operator_mappings

if TYPE_CHECKING:
    from bot.orders.importer import ParsedFile

ORDER = ("new", "updated", "refunded", "unchanged", "ignored")


def import_orders(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="The shop's export: CSV (UTF-8, GBK, UTF-16) or Excel .xlsx."),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            "-m",
            help="A YAML file naming your columns and values (as sop/columns.yaml, which is read too).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file; store nothing.")] = False,
) -> None:
    """Import orders from a shop export. The export is recognised from its header row (有赞,
    微店, 淘宝/天猫, 抖店, your own names in sop/columns.yaml). Safe to run again: orders are
    keyed by order id, a refund or cancellation row updates the order, bad rows are listed
    (`file:LINE: column: reason`, `file:sheet!row: …` for Excel) and skipped."""
    from bot.clock import SystemClock
    from bot.config.errors import display_path
    from bot.orders.columns import SCHEMA
    from bot.orders.importer import read_orders
    from bot.signals.engine import SignalEngine
    from bot.store import Database
    from bot.store.schema import SchemaOutOfDate, ensure_schema

    state: CliState = ctx.obj
    settings = state.settings()
    if not file.is_file():
        fail(f"{file}: no such file")
    parsed = read_orders(file, display_path(file), settings.tz, operator_mappings(settings, mapping, SCHEMA))
    for issue in parsed.issues:
        typer.echo(str(issue), err=True)
    _describe(parsed)
    if dry_run:
        good = len(parsed.orders)
        typer.echo(
            f"{parsed.file} ({parsed.encoding}): {good} good orders from {parsed.rows} rows, "
            f"{parsed.rejected_rows} rejected" + _unpaid(parsed)
        )
        _unused(parsed)
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
        f"{parsed.file} ({parsed.encoding}): {parsed.rows} rows: {counts or 'nothing stored'}"
        + (f", {parsed.rejected_rows} rejected" if parsed.issues else "")
        + _unpaid(parsed)
        + (
            f"; {report.unknown_buyers} from buyers not yet known (linked when they appear)"
            if report.unknown_buyers
            else ""
        )
    )
    _unused(parsed)
    if parsed.issues:
        raise typer.Exit(1)


def _describe(parsed: ParsedFile) -> None:
    """Which export each sheet was read as (the operator sees what was recognised)."""
    for use in parsed.sheets:
        if use.preset is None:
            how = "read by column names (no shop export recognised)"
        else:
            how = f"read as a {use.preset.name} export ({use.preset.id}: {', '.join(use.preset.detect)})"
        typer.echo(f"{use.label}: {how}; header on row {use.header_line}")
    for note in parsed.notes:
        typer.echo(note)


def _unpaid(parsed: ParsedFile) -> str:
    return f", {parsed.unpaid} not paid yet (skipped)" if parsed.unpaid else ""


def _unused(parsed: ParsedFile) -> None:
    """Nothing silently dropped: columns nothing reads, refund states read as no refund."""
    if parsed.ignored_columns:
        typer.echo(
            "columns not used: "
            + ", ".join(parsed.ignored_columns)
            + " (name them in sop/columns.yaml if they matter)"
        )
    if parsed.otherwise:
        shown = ", ".join(f"{column} {value!r} ×{n}" for (column, value), n in parsed.otherwise.items())
        typer.echo(
            f"refund states read as no refund: {shown} (map them under values: refund: in sop/columns.yaml)"
        )
