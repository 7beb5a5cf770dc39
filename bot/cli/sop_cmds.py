"""`sopbot check`, `sopbot preview`, `sopbot plan`: the operator's view of the SOP files
before anything is sent. The plan marks the SOPs the automatic brake paused (their
messages are planned and wait), with the reason."""

from __future__ import annotations

import time as timer
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.sop.authoring.loader import SopSet
    from bot.sop.runtime.records import ContactRecord, RoomRecord
    from bot.sop.views.plan import PlanEntry
    from bot.sop.views.preview import PreviewItem
    from bot.store import Database
    from bot.store.models import SopBrake


def _date(value: str | None, settings: Settings, now: datetime) -> date:
    if value is None:
        return now.astimezone(settings.tz).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"--date/--from: {value!r} is not a date like 2027-02-06")


def _database(settings: Settings) -> Database | None:
    """The bot's database when it exists and has a schema; plans and previews work
    without one (counts are then zero)."""
    from bot.store import Database
    from bot.store.migrate import current_revision

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        from pathlib import Path

        if not Path(url.removeprefix("sqlite:///")).exists():
            return None
    database = Database(url)
    try:
        if current_revision(database) is None:
            database.dispose()
            return None
    except Exception:  # an unreachable server: plan from the files alone
        database.dispose()
        return None
    return database


def check(ctx: typer.Context) -> None:
    """Check every SOP file, template, the catalog and the tag rules; list every problem
    as file:line: field: reason. Exit code 1 when there is any."""
    from bot.clock import SystemClock
    from bot.sop.authoring.check import check_all
    from bot.sop.authoring.dates import read_holiday_notes
    from bot.sop.authoring.template_check import template_files

    state: CliState = ctx.obj
    settings = state.settings()
    started = timer.perf_counter()
    sopset, issues = check_all(settings, SystemClock().now())
    elapsed = timer.perf_counter() - started
    for issue in issues:
        typer.echo(str(issue))
    for note in read_holiday_notes(settings.sop_path):  # not problems: a year entered in part
        typer.echo(str(note))
    if issues:
        typer.echo(f"{len(issues)} problem(s) found; nothing was changed.", err=True)
        raise typer.Exit(1)
    assert sopset is not None
    steps = sum(len(sop.steps) for sop in sopset.sops.values())
    templates = len(template_files(settings.templates_path))
    typer.echo(
        f"OK: {len(sopset.sops)} SOPs ({steps} steps), {templates} templates, "
        f"{len(sopset.catalog.items)} catalog items, {len(sopset.groups.rules)} group types "
        f"checked in {elapsed:.2f}s"
    )


def _load(settings: Settings, now: datetime) -> SopSet:
    from bot.sop.authoring.check import load_checked

    return load_checked(settings, now)  # a ConfigError is printed by main() with exit 2


def preview_cmd(
    ctx: typer.Context,
    sop: Annotated[str, typer.Argument(help="SOP id, name or file name.")],
    on: Annotated[str | None, typer.Option("--date", help="The day to preview (default: today).")] = None,
    tier: Annotated[str | None, typer.Option(help="Render for a sample contact at this tier.")] = None,
    contact: Annotated[
        str | None, typer.Option(help="Render for this contact (name or remark) or group.")
    ] = None,
    upcoming: Annotated[
        bool, typer.Option("--next", help="Each step at the next time it fires, rendered for that day.")
    ] = False,
) -> None:
    """Show the exact messages an SOP sends on a day (or, with --next, when each step next fires)."""
    from bot.clock import SystemClock
    from bot.config.units import WEEKDAY_CN
    from bot.sop.views.preview import preview

    if tier and contact:
        fail("give either --tier or --contact, not both")
    if upcoming and on:
        fail("give either --date or --next, not both")
    state: CliState = ctx.obj
    settings = state.settings()
    now = SystemClock().now()
    sopset = _load(settings, now)
    try:
        chosen = sopset.find(sop)
    except KeyError as error:
        fail(str(error.args[0]))
    day = _date(on, settings, now)
    tier_id = None
    if tier:
        try:
            tier_id = sopset.tiers.resolve(tier)
        except ValueError as error:
            fail(f"--tier: {error}")
    recipients: list[ContactRecord | RoomRecord] | None = None
    if contact:
        recipients = _find_recipients(settings, sopset, contact)
        if not recipients:
            fail(f"--contact: nobody called {contact!r} in the database (friends and groups are searched)")
    if upcoming:
        typer.echo(f"# {chosen.spec.name} ({chosen.id}): each step the next time it fires")
        for step in chosen.steps:
            fire = step.trigger.get_next_fire_time(None, now) if step.trigger is not None else None
            if fire is None:
                reason = "follows contact events (lifecycle)" if step.is_lifecycle else "does not fire again"
                typer.echo(f"\n== {step.id} {step.spec.name or ''} · {reason}")
                continue
            local = fire.astimezone(chosen.tz)
            items = preview(sopset, chosen, local.date(), now, recipients=recipients, tier=tier_id)
            _print_items([i for i in items if i.step.id == step.id and i.at == local], dated=True)
        return
    items = preview(sopset, chosen, day, now, recipients=recipients, tier=tier_id)
    typer.echo(f"# {chosen.spec.name} ({chosen.id}) on {day.isoformat()} {WEEKDAY_CN[day.weekday()]}")
    if items and not any(item.scheduled for item in items):
        typer.echo("# no step fires on this day; showing every step as it would read (see --next)")
    _print_items(items, dated=False)


def _print_items(items: list[PreviewItem], *, dated: bool) -> None:
    from bot.config.units import WEEKDAY_CN
    from bot.sop.views.preview import lifecycle_when

    for item in items:
        if item.step.is_lifecycle:
            when = lifecycle_when(item.step)
        else:
            when = (
                f"{item.at:%Y-%m-%d} {WEEKDAY_CN[item.at.weekday()]} {item.at:%H:%M}"
                if dated
                else f"{item.at:%H:%M}"
            )
        typer.echo(f"\n== {item.step.id} {item.step.spec.name or ''} · {when} · to {item.recipient}")
        if item.nothing is not None:
            typer.echo(f"(gets nothing from this step: {item.nothing})")
        else:
            typer.echo(item.text if item.text is not None else f"!! not rendered: {item.error}")


def _find_recipients(settings: Settings, sopset: SopSet, name: str) -> list[ContactRecord | RoomRecord]:
    from bot.sop.runtime.audience import load_directory

    database = _database(settings)
    if database is None:
        return []
    try:
        with database.session(read_only=True) as session:
            directory = load_directory(session, sopset.groups)
    finally:
        database.dispose()
    people: list[ContactRecord | RoomRecord] = [c for c in directory.contacts if name in (c.name, c.alias)]
    people += [r for r in directory.rooms if name == r.topic or name in r.topic]
    return people


def plan_cmd(
    ctx: typer.Context,
    start: Annotated[str | None, typer.Option("--from", help="First day (default: today).")] = None,
    days: Annotated[int, typer.Option(min=1, max=1000, help="How many days.")] = 7,
    sop: Annotated[str | None, typer.Option("--sop", help="Only this SOP (id, name or file name).")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only recipients of this account.")] = None,
) -> None:
    """The calendar of what would go out: per day, SOP step, tier and group, with counts."""
    from bot.clock import SystemClock
    from bot.sop.runtime.audience import Directory, load_directory
    from bot.sop.views.plan import plan, render_plan

    state: CliState = ctx.obj
    settings = state.settings()
    now = SystemClock().now()
    sopset = _load(settings, now)
    only = None
    if sop is not None:
        try:
            only = sopset.find(sop).id
        except KeyError as error:
            fail(str(error.args[0]))
    if account is not None and account not in {a.id for a in settings.accounts}:
        fail(f"--account: no account {account!r}; known: {', '.join(a.id for a in settings.accounts)}")
    first = _date(start, settings, now)
    database = _database(settings)
    braked: dict[str, SopBrake] = {}
    if database is None:
        typer.echo("# no database yet: recipient counts are 0 (run `sopbot run` once to sync contacts)")
        entries = plan(sopset, Directory([], []), first, days, only_sop=only)
    else:
        try:
            braked = _braked(database)
            with database.session(read_only=True) as session:
                directory = load_directory(session, sopset.groups)
                if account is not None:
                    directory = Directory(
                        [c for c in directory.contacts if c.account_id == account],
                        [r for r in directory.rooms if r.account_id == account],
                    )
                entries = plan(sopset, directory, first, days, session=session, now=now, only_sop=only)
        finally:
            database.dispose()
    for line in mark_braked(render_plan(sopset, entries), entries, braked, settings):
        typer.echo(line)


PAUSED_MARK = "  ⏸ 已暂停 paused (brake)"


def _braked(database: Database) -> dict[str, SopBrake]:
    """The SOPs the brake holds; none when the schema has no brakes yet."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.retention.store import braked_sops

    try:
        with database.session(read_only=True) as session:
            return {brake.sop_id: brake for brake in braked_sops(session)}
    except SQLAlchemyError:  # a database from before migration 0009
        return {}


def mark_braked(
    lines: list[str], entries: list[PlanEntry], braked: dict[str, SopBrake], settings: Settings
) -> list[str]:
    """The plan's lines with each braked SOP's entries marked, and a line per braked SOP
    with its reason first."""
    if not braked:
        return lines
    out: list[str] = []
    upcoming = iter(entries)
    entry = next(upcoming, None)
    for line in lines:  # entries and their lines come in the same order
        if entry is not None and line.startswith(f"  {entry.at:%H:%M}  {entry.sop.id}/{entry.step.id}  "):
            if entry.sop.id in braked:
                line += PAUSED_MARK
            entry = next(upcoming, None)
        out.append(line)
    notes = []
    for sop_id, brake in sorted(braked.items()):
        since = (
            brake.tripped_at.astimezone(settings.tz).strftime("%Y-%m-%d %H:%M") if brake.tripped_at else "?"
        )
        notes.append(
            f"# ⏸ {sop_id} 已暂停 paused by the brake since {since}: {brake.reason}; its messages are "
            f"planned and wait; `sopbot sop resume {sop_id}` sends them"
        )
    return notes + out
