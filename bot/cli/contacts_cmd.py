"""`sopbot contacts` – who the bot knows, with tier and tags, filtered by tier and by a
tag expression (`--where "tier >= customer and tag:活动喜好型"`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from bot.signals.expr import Subject
    from bot.store.directory import ContactRow


def contacts(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account id.")] = None,
    tier: Annotated[str | None, typer.Option(help="Only this tier (id or 中文 name).")] = None,
    where: Annotated[
        str | None, typer.Option(help='A tag expression, e.g. "tier >= customer and tag:活动喜好型".')
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many rows (0 = all).")] = 0,
) -> None:
    """List stored contacts with their tier and tags."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from sqlalchemy import select

    from bot.signals.expr import ExprError, parse
    from bot.signals.tier_policy import TierPolicy
    from bot.store import Database
    from bot.store.directory import list_contacts
    from bot.store.migrate import current_revision
    from bot.store.models import Contact, Order

    state: CliState = ctx.obj
    settings = state.settings()
    policy = TierPolicy.from_settings(settings.tiers)
    ladder = policy.ladder
    expression = None
    if where:
        try:
            expression = parse(where, ladder)
        except ExprError as error:
            fail(f"--where {error}\n  {error.caret()}")
    wanted_tier = None
    if tier:
        wanted_tier = ladder.resolve(tier)
        if wanted_tier is None:
            hint = ladder.suggest(tier)
            fail(f"--tier: unknown tier {tier!r}" + (f" (did you mean {hint}?)" if hint else ""))
    database = Database(settings.resolved_database_url)
    if current_revision(database) is None:
        fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
    with database.session(read_only=True) as session:
        rows = list_contacts(session, account)
        blocked = set(session.execute(select(Contact.id).where(Contact.blocked.is_(True))).scalars())
        ordered = set(
            session.execute(select(Order.contact_id).where(Order.contact_id.is_not(None))).scalars()
        )
    database.dispose()
    if wanted_tier:
        rows = [row for row in rows if row.tier == wanted_tier]
    if expression is not None:
        rows = [row for row in rows if expression.evaluate(_subject(row, blocked, ordered))]
    shown = rows[:limit] if limit else rows
    table = Table(title=f"{len(rows)} contacts", title_justify="left")
    for column in ("name", "tier", "tags", "friend", "last message", "wxid"):
        table.add_column(column)
    tier_names = set(ladder.names)
    for row in shown:
        display = f"{row.name} ({row.alias})" if row.alias else row.name
        last = (
            row.last_message_at.astimezone(settings.tz).strftime("%m-%d %H:%M") if row.last_message_at else ""
        )
        table.add_row(  # names and tags are text, never rich markup
            escape(display),
            policy.name(row.tier),
            escape("、".join(t for t in row.tags if t not in tier_names)),
            "yes" if row.is_friend else "",
            last,
            row.wxid,
        )
    Console(soft_wrap=False).print(table)


def _subject(row: ContactRow, blocked: set[int], ordered: set[int]) -> Subject:
    from bot.signals.expr import Subject

    flags = {
        "opted_out": row.opted_out,
        "blocked": row.id in blocked,
        "is_friend": row.is_friend,
        "has_ordered": row.id in ordered,
    }
    return Subject(row.tier, frozenset(row.tags), flags, row.profile)
