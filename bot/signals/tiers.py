"""Relationship tiers: the ladder from settings (`[tiers]`), the facts about a contact in
the current period, and the recomputation that moves contacts and says why.

A contact is at the deepest tier whose requirements it meets (any one of a tier's `when`
alternatives; the first tier needs nothing). Lapsed buyers fall back to the tier their
recent behaviour earns (in the default ladder: `prospect`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlmodel import Session

from bot.events import ContactEventKind
from bot.signals.tier_policy import Facts, TierPolicy, explain_requirement, meets, preset_levels
from bot.store.eventlog import EventLog
from bot.store.models import Contact, ContactTag, InboundMessage, Order, Referral, Tag, TierChange
from bot.store.upsert import insert_for

__all__ = [
    "Facts",
    "TierMove",
    "TierPolicy",
    "explain_requirement",
    "gather_facts",
    "meets",
    "preset_levels",
    "recompute",
]

PAID = "paid"
MANUAL_SOURCES = ("wechat", "manual")  # an operator's own tier tag is a floor
CHUNK = 5000


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def gather_facts(
    session: Session, policy: TierPolicy, now: datetime, contact_ids: Sequence[int] | None
) -> dict[int, Facts]:
    """Facts for the given contacts (None: every contact), in a few grouped queries."""
    start = now - policy.period
    raw: dict[int, dict[str, Any]] = {}

    def slot(contact_id: int) -> dict[str, Any]:
        return raw.setdefault(contact_id, {"tags": set(), "manual_tags": set()})

    scopes: Iterable[Sequence[int] | None] = [None] if contact_ids is None else _chunks(contact_ids)
    for ids in scopes:
        paid = Order.status == PAID
        recent = paid & (Order.ordered_at >= start)
        orders = select(
            Order.contact_id,
            func.sum(case((recent, 1), else_=0)),
            func.sum(case((paid, 1), else_=0)),
            func.sum(case((recent, Order.amount_cents), else_=0)),
        ).where(Order.contact_id.is_not(None))
        messages = select(InboundMessage.contact_id, func.count()).where(InboundMessage.sent_at >= start)
        referrals = select(Referral.referrer_id, func.count()).where(Referral.converted_at >= start)
        tags = (
            select(ContactTag.contact_id, Tag.name, ContactTag.source)
            .join(Tag, Tag.id == ContactTag.tag_id)
            .where(or_(ContactTag.expires_at.is_(None), ContactTag.expires_at > now))
        )
        if ids is not None:
            orders = orders.where(Order.contact_id.in_(ids))
            messages = messages.where(InboundMessage.contact_id.in_(ids))
            referrals = referrals.where(Referral.referrer_id.in_(ids))
            tags = tags.where(ContactTag.contact_id.in_(ids))
        for contact_id, recent_n, lifetime_n, spent in session.execute(orders.group_by(Order.contact_id)):
            row = slot(contact_id)
            row |= {"orders": int(recent_n or 0), "lifetime_orders": int(lifetime_n or 0)}
            row["spent_cents"] = int(spent or 0)
        for contact_id, count in session.execute(messages.group_by(InboundMessage.contact_id)):
            if contact_id is not None:
                slot(contact_id)["messages"] = int(count)
        for contact_id, count in session.execute(referrals.group_by(Referral.referrer_id)):
            slot(contact_id)["referrals"] = int(count)
        for contact_id, name, source in session.execute(tags):
            row = slot(contact_id)
            row["tags"].add(name)
            if source in MANUAL_SOURCES:
                row["manual_tags"].add(name)
    return {
        contact_id: Facts(
            **{k: v for k, v in row.items() if k not in ("tags", "manual_tags")},
            tags=frozenset(row["tags"]),
            manual_tags=frozenset(row["manual_tags"]),
        )
        for contact_id, row in raw.items()
    }


@dataclass(frozen=True)
class TierMove:
    contact_id: int
    from_tier: str
    to_tier: str
    cause: str


def recompute(
    session: Session,
    policy: TierPolicy,
    now: datetime,
    log: EventLog,
    *,
    contact_ids: Sequence[int] | None = None,
    trigger: str = "重新计算",
    evidence_ref: str | None = None,
) -> list[TierMove]:
    """Move the given contacts (None: all) to the tier their facts earn; record each move
    in the tier history with its cause and as a TIER_CHANGED event."""
    if contact_ids is not None and not contact_ids:
        return []
    facts = gather_facts(session, policy, now, contact_ids)
    current = select(Contact.id, Contact.tier, Contact.account_id)
    rows: list[Any] = []
    if contact_ids is None:
        rows = list(session.execute(current))
    else:
        for ids in _chunks(list(dict.fromkeys(contact_ids))):
            rows += session.execute(current.where(Contact.id.in_(ids))).all()
    empty = Facts()
    moves: list[TierMove] = []
    for contact_id, tier, account_id in rows:
        new, reason = policy.decide(facts.get(contact_id, empty))
        if new != tier:
            cause = f"{trigger}：{policy.name(new)}（{reason}）"
            moves.append(TierMove(contact_id, tier, new, cause))
            log.know(contact_id, account_id)
    if not moves:
        return moves
    session.execute(
        update(Contact).execution_options(synchronize_session=False),
        [{"id": m.contact_id, "tier": m.to_tier, "tier_since": now} for m in moves],
    )
    session.execute(
        insert_for(session, TierChange.__table__),
        [
            {
                "contact_id": m.contact_id,
                "from_tier": m.from_tier,
                "to_tier": m.to_tier,
                "cause": m.cause,
                "evidence_ref": evidence_ref,
                "changed_at": now,
            }
            for m in moves
        ],
    )
    for move in moves:
        log.record(move.contact_id, ContactEventKind.TIER_CHANGED, now, detail=move.to_tier, ref=evidence_ref)
    return moves
