"""`sopbot import-contacts FILE` – birthdays, gender, city, tags and fields of your own, from a
CRM export or a spreadsheet (CSV or Excel)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail
from bot.cli.mappings import operator_mappings

if TYPE_CHECKING:
    from bot.people.importer import ParsedContacts


def import_contacts(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="CSV (UTF-8, GBK, UTF-16) or Excel .xlsx, one row per person.")
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            "--mapping",
            "-m",
            help="A YAML file naming your columns (as the contacts: section of sop/columns.yaml).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the file; store nothing.")] = False,
) -> None:
    """Import contact profiles: 生日 (solar, or lunar as 农历八月十五), 性别, 城市, 标签, and every
    other column as a field of your own (usable as field:会员卡号 and {{ contact.fields.会员卡号 }}).
    The contact is found by 微信号/wxid, then unionid, then 手机号, then a unique 备注; a row
    that finds nobody waits and is applied when that person appears. Safe to run again. Bad
    rows are listed (`file:LINE: column: reason`, `file:sheet!row: …` for Excel) and skipped;
    the exit code is then 1."""
    from bot.clock import SystemClock
    from bot.config.errors import display_path
    from bot.people.columns import SCHEMA
    from bot.people.importer import read_contacts
    from bot.signals.engine import SignalEngine
    from bot.store import Database
    from bot.store.schema import SchemaOutOfDate, ensure_schema

    state: CliState = ctx.obj
    settings = state.settings()
    if not file.is_file():
        fail(f"{file}: no such file")
    parsed = read_contacts(
        file, display_path(file), settings.tz, operator_mappings(settings, mapping, SCHEMA)
    )
    for issue in parsed.issues:
        typer.echo(str(issue), err=True)
    _describe(parsed)
    if dry_run:
        typer.echo(
            f"{parsed.file} ({parsed.encoding}): {len(parsed.rows)} good rows of {parsed.read}, "
            f"{parsed.rejected_rows} rejected"
        )
        raise typer.Exit(1 if parsed.issues else 0)
    database = Database(settings.resolved_database_url)
    try:
        ensure_schema(database)
        report = SignalEngine(settings, database, SystemClock()).ingest_profiles(parsed.rows, relay=True)
    except SchemaOutOfDate as error:
        fail(str(error))
    finally:
        database.dispose()
    for where, why in report.ambiguous:
        typer.echo(f"{where}: {why}", err=True)
    parts = [
        f"{report.matched_rows} rows found {report.contacts_changed + report.contacts_unchanged} contacts "
        f"({report.contacts_changed} changed, {report.contacts_unchanged} already so)"
    ]
    if report.pending or report.pending_unchanged:
        parts.append(
            f"{report.pending + report.pending_unchanged} rows name no contact yet: kept, applied when "
            f"they appear ({report.pending} new or changed)"
        )
    if parsed.issues:
        parts.append(f"{parsed.rejected_rows} rejected")
    if report.ambiguous:
        parts.append(f"{len(report.ambiguous)} not applied (备注 on several contacts)")
    typer.echo(f"{parsed.file} ({parsed.encoding}): {parsed.read} rows: " + "; ".join(parts))
    if parsed.issues or report.ambiguous:
        raise typer.Exit(1)


def _describe(parsed: ParsedContacts) -> None:
    for use in parsed.sheets:
        how = f"mapped by {use.preset.name}" if use.preset is not None else "read by column names"
        typer.echo(f"{use.label}: {how}; header on row {use.header_line}")
    if parsed.custom_fields:
        typer.echo("fields of your own: " + ", ".join(parsed.custom_fields))
