"""`sopbot contact NAME` – one person: tier and its history, tags with the evidence for
each, orders, referrals and events."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from bot.signals import profile
    from bot.signals.tier_policy import TierPolicy


def _t(moment: datetime | None, tz: tzinfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "-"


def contact(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name, remark (备注) or wxid; part of a name works too.")],
    account: Annotated[str | None, typer.Option(help="Only this account id.")] = None,
) -> None:
    """Show one contact: tier and history, tags with evidence, orders, referrals, events."""
    from bot.signals import profile
    from bot.signals.tier_policy import TierPolicy
    from bot.store import Database
    from bot.store.migrate import current_revision

    state: CliState = ctx.obj
    settings = state.settings()
    database = Database(settings.resolved_database_url)
    if current_revision(database) is None:
        fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
    policy = TierPolicy.from_settings(settings.tiers)
    with database.session(read_only=True) as session:
        found = profile.find(session, name, account)
        if len(found) > 1:
            lines = [f"  {c.name} ({c.wxid}, account {c.account_id})" for c in found[:20]]
            fail(f"{len(found)} contacts match {name!r}; give the wxid:\n" + "\n".join(lines), code=1)
        if not found:
            fail(f"no contact matches {name!r}", code=1)
        shown = profile.load(session, found[0])
    database.dispose()
    for line in render(shown, policy, settings.tz):
        typer.echo(line)


def render(p: profile.Profile, policy: TierPolicy, tz: tzinfo) -> list[str]:
    from bot.birthdays import describe as describe_birthday
    from bot.contact_fields import profile as contact_profile

    c = p.contact
    title = f"{c.name}（{c.alias}）" if c.alias else c.name
    out = [f"{title}  {c.wxid}  账号 {c.account_id}"]
    out.append(f"层级 tier: {policy.name(c.tier)} ({c.tier}) since {_t(c.tier_since, tz)}")
    flags = [
        f"opted out (退订): {'yes' if c.opted_out else 'no'}",
        f"friend: {'yes' if c.is_friend else 'no'}",
    ]
    if p.code:
        flags.append(f"推荐码 {p.code}")
    out.append("  " + " · ".join(flags))
    fields = contact_profile(c.city, c.gender, describe_birthday(c.birthday) or None, c.custom_fields)
    if fields:
        out.append("资料 profile: " + " · ".join(f"{key} {value}" for key, value in fields.items()))
    out.append("标签 tags:")
    for tag in p.tags or []:
        expires = f"  到期 {_t(tag.expires_at, tz)}" if tag.expires_at else ""
        ref = f"  [{tag.ref}]" if tag.ref else ""
        out.append(
            f"  {tag.name}  ({tag.source}, {_t(tag.added_at, tz)}){expires}  {tag.evidence or ''}{ref}"
        )
    if not p.tags:
        out.append("  (none)")
    out.append("层级历史 tier history:")
    for change in p.history:
        before = policy.name(change.from_tier) if change.from_tier else "-"
        ref = f"  [{change.evidence_ref}]" if change.evidence_ref else ""
        out.append(
            f"  {_t(change.changed_at, tz)}  {before} → {policy.name(change.to_tier)}  {change.cause}{ref}"
        )
    if not p.history:
        out.append("  (none)")
    out.append("订单 orders:")
    for order in p.orders:
        items = "、".join(
            f"{i.get('name') or i.get('category') or '?'}×{i.get('qty', 1)}" for i in order.items or ()
        )
        flags = "".join(
            [
                " 优惠" if order.discounted else "",
                " 含新品" if any(i.get("new") for i in order.items or ()) else "",
            ]
        )
        out.append(
            f"  {order.order_id}  {_t(order.ordered_at, tz)}  ¥{order.amount_cents / 100:.2f}  {order.status}"
            f"  {items}{flags}  ({order.source})"
        )
    if not p.orders:
        out.append("  (none)")
    if p.brought or p.brought_by:
        out.append("推荐 referrals:")
        for referral, who in p.brought:
            done = f"成交 {referral.converted_order_id}" if referral.converted_at else "未成交"
            out.append(f"  带来 {who}  via {referral.via} {referral.ref or ''}  {done}")
        for referral, who in p.brought_by:
            out.append(f"  由 {who} 带来  via {referral.via} {referral.ref or ''}")
    out.append("事件 events:")
    for event in p.events:
        detail = f"  {event.detail}" if event.detail else ""
        ref = f"  [{event.ref}]" if event.ref else ""
        out.append(f"  {_t(event.at, tz)}  {event.kind}{detail}{ref}")
    if not p.events:
        out.append("  (none)")
    return out
