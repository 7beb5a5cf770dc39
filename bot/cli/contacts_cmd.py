"""`sopbot contacts` – who the bot knows, with tier and tags."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.context import CliState, fail
from bot.store import Database
from bot.store.directory import list_contacts
from bot.store.migrate import current_revision

TIER_NAMES = {
    "basic": "基础用户",
    "prospect": "未购会员",
    "customer": "已购会员",
    "repeat": "复购会员",
    "koc": "品牌KOC",
}


def contacts(
    ctx: typer.Context,
    account: Annotated[str | None, typer.Option(help="Only this account id.")] = None,
    tier: Annotated[str | None, typer.Option(help="Only this tier (id or 中文 name).")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many rows (0 = all).")] = 0,
) -> None:
    """List stored contacts with their tier and tags."""
    state: CliState = ctx.obj
    settings = state.settings()
    database = Database(settings.resolved_database_url)
    if current_revision(database) is None:
        fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
    with database.session(read_only=True) as session:
        rows = list_contacts(session, account)
    database.dispose()
    if tier:
        wanted = {tier} | {key for key, name in TIER_NAMES.items() if name == tier}
        rows = [row for row in rows if row.tier in wanted]
    shown = rows[:limit] if limit else rows
    table = Table(title=f"{len(rows)} contacts", title_justify="left")
    for column in ("name", "tier", "tags", "friend", "last message", "wxid"):
        table.add_column(column)
    for row in shown:
        display = f"{row.name} ({row.alias})" if row.alias else row.name
        last = (
            row.last_message_at.astimezone(settings.tz).strftime("%m-%d %H:%M") if row.last_message_at else ""
        )
        table.add_row(
            display,
            TIER_NAMES.get(row.tier, row.tier),
            "、".join(row.tags),
            "yes" if row.is_friend else "",
            last,
            row.wxid,
        )
    Console(soft_wrap=False).print(table)
