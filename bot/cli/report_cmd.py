"""`sopbot report` – the results of a day, week, month or any range: contact assets,
additions and deletions, tiers and their migration, SOP outcomes, groups, orders, the
success rates and the performance formula (docs/metrics.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.context import CliState, fail

FILE_FORMATS = {"html": "html", "csv": "csv"}  # written to a file unless -o - says stdout


def report(
    ctx: typer.Context,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            "-p",
            help="day (yesterday), week (last complete Mon–Sun; the default), month (last complete), "
            "or one by name: 2026-11-30, 2026-W48, 2026-11 (the current one: to date).",
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option("--from", help="First day of a range, YYYY-MM-DD (with no --to: up to today)."),
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day of the range, included.")] = None,
    account: Annotated[str | None, typer.Option(help="Only this account id (default: all together).")] = None,
    form: Annotated[
        str, typer.Option("--format", "-f", help="text (tables here), html, csv or json.")
    ] = "text",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file ('-': standard output). Default: text and json to standard "
            "output; html and csv to report-<period>[-<account>].html/.csv here.",
        ),
    ] = None,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Recount the daily rollups from the raw events first.")
    ] = False,
    top: Annotated[
        int, typer.Option(help="How many most valuable contacts to list (tags: [results] top_tags).")
    ] = 10,
) -> None:
    """Results an operator reads: contact assets, 加粉/删粉, tiers and how contacts moved
    between them, SOP outcomes (replies, attributed orders, deletions), groups, the three
    success rates and 私域业绩, compared with the period before. Every figure is defined in
    docs/metrics.md."""
    from bot.clock import SystemClock
    from bot.report import FORMATS
    from bot.results.periods import PeriodError, local_today, resolve

    if form not in FORMATS:
        fail(f"--format: {form!r} is not one of {', '.join(FORMATS)}")
    if top < 0:
        fail("--top: must be 0 or more")
    state: CliState = ctx.obj
    settings = state.settings()
    accounts = [a.id for a in settings.accounts]
    if account is not None and account not in accounts:
        fail(f"--account: no account {account!r} in the settings (accounts: {', '.join(accounts)})")
    now = SystemClock().now()
    try:
        chosen, previous = resolve(period=period, start=start, end=end, today=local_today(now, settings.tz))
    except PeriodError as error:
        fail(str(error))

    import time

    from bot.report import render
    from bot.results.compute import make_report
    from bot.store import Database
    from bot.store.migrate import current_revision
    from bot.store.schema import SchemaOutOfDate, ensure_schema

    database = Database(settings.resolved_database_url)
    try:
        if current_revision(database) is None:
            fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
        ensure_schema(database)
        began = time.monotonic()
        # the rollups are brought up to date first (the daemon keeps them current; this
        # counts what came in since), or counted again from the raw events with --rebuild
        result = make_report(
            database, settings, chosen, account, now=now, previous=previous, top=top, rebuild=rebuild
        )
        if rebuild:
            typer.echo(
                f"rollups rebuilt from the raw events and the report made in {time.monotonic() - began:.1f} s",
                err=True,
            )
    except SchemaOutOfDate as error:
        fail(str(error))
    finally:
        database.dispose()
    if result.generated_at.tzinfo is not None:
        result.generated_at = result.generated_at.astimezone(settings.tz)

    target = output
    if target is None and form in FILE_FORMATS:
        suffix = f"-{account}" if account else ""
        target = Path(f"report-{chosen.label}{suffix}.{FILE_FORMATS[form]}")
    if form == "text" and (target is None or str(target) == "-"):
        from rich.console import Console

        from bot.report.text import print_report

        print_report(result, Console() if sys.stdout.isatty() else Console(width=160))
        return
    data = render(result, form)
    if target is None or str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        target.write_bytes(data)
    except OSError as error:
        fail(f"{target}: cannot write the report ({error.strerror or error})")
    typer.echo(f"{chosen.label}: {form} report written to {target} ({len(data):,} bytes)")
