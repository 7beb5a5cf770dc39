"""Purchase tags: first-order month, repurchase count and frequency, value grade,
category affinity, discount lover vs new-arrival follower. Recomputed from a contact's
paid orders whenever they change; a tag no longer earned is taken off again (only tags
that orders put on: a tag a rule or an operator gave stays)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy import select
from sqlmodel import Session

from bot.events import ContactEventKind, ContactEventRecorded
from bot.signals import taglib
from bot.signals.rules import PurchaseTags
from bot.store.eventlog import EventLog
from bot.store.models import Order

SOURCE = "order"


@dataclass(frozen=True)
class Earned:
    tag: str
    evidence: str
    order_id: str


def _ids(orders: Sequence[Order]) -> str:
    shown = "、".join(o.order_id for o in orders[-3:])
    return f"订单 {shown}" + (f" 等 {len(orders)} 笔" if len(orders) > 3 else "")


def earned_tags(config: PurchaseTags, orders: Sequence[Order], tz: tzinfo) -> list[Earned]:
    """The tags these paid orders (oldest first) earn, each with its evidence."""
    if not orders:
        return []
    last = orders[-1].order_id
    out: list[Earned] = []
    first = orders[0]
    if config.first_order and first.ordered_at:
        month = first.ordered_at.astimezone(tz).strftime("%Y-%m")
        out.append(Earned(config.first_order.format(month=month), f"首单 {first.order_id}", first.order_id))
    for count in sorted(config.counts, key=lambda c: c.min_orders, reverse=True):
        if len(orders) >= count.min_orders:
            out.append(Earned(count.tag, f"{_ids(orders)}（共 {len(orders)} 笔）", last))
            break
    times = [o.ordered_at for o in orders if o.ordered_at]
    if len(times) >= 2:
        average = (times[-1] - times[0]).total_seconds() / 86400 / (len(times) - 1)
        for frequency in sorted(config.frequency, key=lambda f: f.max_days_between):
            if average <= frequency.max_days_between:
                out.append(Earned(frequency.tag, f"{_ids(orders)}：平均 {average:.0f} 天一单", last))
                break
    spent = sum(o.amount_cents for o in orders)
    for grade in sorted(config.value_grades, key=lambda g: g.min_spent, reverse=True):
        if spent >= round(grade.min_spent * 100):
            out.append(Earned(grade.tag, f"{_ids(orders)}：累计 {spent / 100:.2f} 元", last))
            break
    if config.category_affinity:
        categories: Counter[str] = Counter()
        for order in orders:
            for item in order.items or ():
                if category := str(item.get("category") or "").strip():
                    categories[category] += int(item.get("qty") or 1)
        total = sum(categories.values())
        for category, qty in categories.most_common():
            if qty >= config.affinity_min_items and qty / total >= config.affinity_min_share:
                tag = config.category_affinity.format(category=category)
                out.append(Earned(tag, f"{_ids(orders)}：{category} {qty}/{total} 件", last))
    if len(orders) >= config.behaviour_min_orders:
        discounted = [o for o in orders if o.discounted]
        if config.discount_lover and len(discounted) / len(orders) >= config.behaviour_min_share:
            evidence = f"{_ids(discounted)}：{len(discounted)}/{len(orders)} 笔为优惠购买"
            out.append(Earned(config.discount_lover, evidence, discounted[-1].order_id))
        fresh = [o for o in orders if any(item.get("new") for item in o.items or ())]
        if config.new_arrival_follower and len(fresh) / len(orders) >= config.behaviour_min_share:
            evidence = f"{_ids(fresh)}：{len(fresh)}/{len(orders)} 笔含新品"
            out.append(Earned(config.new_arrival_follower, evidence, fresh[-1].order_id))
    return out


def paid_orders(session: Session, contact_id: int) -> list[Order]:
    return list(
        session.execute(
            select(Order)
            .where(Order.contact_id == contact_id, Order.status == "paid")
            .order_by(Order.ordered_at, Order.order_id)
        ).scalars()
    )


def refresh(
    session: Session, log: EventLog, config: PurchaseTags, contact_id: int, now: datetime, tz: tzinfo
) -> None:
    """Bring the contact's purchase tags in line with its paid orders."""
    earned = {e.tag: e for e in earned_tags(config, paid_orders(session, contact_id), tz)}
    for tag in taglib.tags_by_source(session, contact_id, SOURCE) - set(earned):
        taglib.remove_tag(session, log, contact_id, tag, now=now, source=SOURCE, ref="orders changed")
    for tag, why in earned.items():
        taglib.add_tag(
            session, log, contact_id, tag, source=SOURCE, now=now, evidence=why.evidence,
            evidence_ref=f"order:{why.order_id}",
        )  # fmt: skip


# the events that name the order behind a contact's move: its own purchase, or the order
# of someone it brought in (a referral converted)
_ORDER_EVENTS = (
    ContactEventKind.FIRST_PURCHASE,
    ContactEventKind.PURCHASE,
    ContactEventKind.REFERRAL_CONVERTED,
)


def tier_causes(
    events: Sequence[ContactEventRecorded],
    contact_ids: Iterable[int],
    trigger: str,
    orders: Mapping[int, str] | None = None,
) -> dict[tuple[str, str | None], list[int]]:
    """The contacts grouped by what moved them, each citing its own evidence: the latest
    order of its own in this unit of work (`orders`: contact → the order it bought or had
    refunded, else the latest purchase or referral event naming it) as `订单 A1001`; else
    its own latest event (a message, an expired tag). Never another contact's: in one
    import of many buyers each tier change cites the buyer's own order.

    Returns {(trigger text, evidence ref): contact ids}."""
    own: dict[int, str] = {}
    latest: dict[int, str] = {}
    for event in events:
        if not event.ref:
            continue
        latest[event.contact_id] = event.ref
        if event.kind in _ORDER_EVENTS:
            own[event.contact_id] = event.ref
    own.update(orders or {})
    groups: dict[tuple[str, str | None], list[int]] = {}
    for contact_id in contact_ids:
        order = own.get(contact_id)
        key = (f"{trigger} {order}", order) if order else (trigger, latest.get(contact_id))
        groups.setdefault(key, []).append(contact_id)
    return groups
