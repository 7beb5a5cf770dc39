"""Relationship tiers: the ladder from settings (`[tiers]`), the facts about a contact in
the current period, and the recomputation that moves contacts and says why.

A contact is at the deepest tier whose requirements it meets (any one of a tier's `when`
alternatives; the first tier needs nothing). Lapsed buyers fall back to the tier their
recent behaviour earns (in the default ladder: `prospect`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlmodel import Session

from bot.config.settings import TierLevel, TierRequirement, TierSettings
from bot.events import ContactEventKind
from bot.signals.tiers_ladder import TierLadder
from bot.store.eventlog import EventLog
from bot.store.models import Contact, ContactTag, InboundMessage, Order, Referral, Tag, TierChange
from bot.store.upsert import insert_for

PAID = "paid"
MANUAL_SOURCES = ("wechat", "manual")  # an operator's own tier tag is a floor
CHUNK = 5000


def preset_levels(settings: TierSettings) -> list[TierLevel]:
    if settings.levels:
        return list(settings.levels)
    interested = [TierRequirement(min_lifetime_orders=1)]
    if settings.prospect_min_messages:
        interested.insert(0, TierRequirement(min_messages=settings.prospect_min_messages))
    if settings.member_tags:
        interested.append(TierRequirement(tags=list(settings.member_tags)))
    repeat = TierRequirement(min_orders=settings.repeat_min_orders)
    if settings.ladder == "aipl":
        return [
            TierLevel(id="awareness", name="认知A"),
            TierLevel(id="interest", name="兴趣I", when=interested),
            TierLevel(id="purchase", name="购买P", when=[TierRequirement(min_orders=1)]),
            TierLevel(
                id="loyalty",
                name="忠诚L",
                when=[repeat, TierRequirement(min_orders=1, min_referrals=settings.koc_min_referrals)],
            ),
        ]
    return [
        TierLevel(id="basic", name="基础用户"),
        TierLevel(id="prospect", name="未购会员", when=interested),
        TierLevel(id="customer", name="已购会员", when=[TierRequirement(min_orders=1)]),
        TierLevel(id="repeat", name="复购会员", when=[repeat]),
        TierLevel(
            id="koc",
            name="品牌KOC",
            when=[
                TierRequirement(
                    min_orders=settings.repeat_min_orders, min_referrals=settings.koc_min_referrals
                )
            ],
        ),
    ]


@dataclass(frozen=True)
class Facts:
    """What counts for a contact's tier, in the current period unless said otherwise."""

    orders: int = 0
    lifetime_orders: int = 0
    spent_cents: int = 0
    messages: int = 0
    referrals: int = 0
    tags: frozenset[str] = frozenset()
    manual_tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class TierPolicy:
    levels: tuple[TierLevel, ...]
    period: timedelta
    respect_manual: bool = True
    ladder: TierLadder = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ladder", TierLadder.from_pairs((lvl.id, lvl.name) for lvl in self.levels))

    @classmethod
    def from_settings(cls, settings: TierSettings) -> TierPolicy:
        return cls(
            tuple(preset_levels(settings)), timedelta(days=settings.period_days), settings.respect_wechat_tags
        )

    @property
    def period_days(self) -> int:
        return self.period.days

    @property
    def message_ceiling(self) -> int:
        """The deepest rank messages alone can reach (-1: none). Above it, a message that
        changed no tag cannot move anyone (message counts only ever go up)."""
        ranks = [rank for rank, level in enumerate(self.levels) if any(r.min_messages for r in level.when)]
        return max(ranks, default=-1)

    def name(self, tier_id: str) -> str:
        return self.ladder.name(tier_id) if tier_id in self.ladder.ids else tier_id

    def decide(self, facts: Facts) -> tuple[str, str]:
        """The tier and a readable reason."""
        chosen, reason = self.levels[0].id, "已建立联系"
        for level in self.levels[1:]:
            for requirement in level.when:
                if meets(requirement, facts):
                    chosen, reason = level.id, explain_requirement(requirement, facts, self.period_days)
                    break
        if self.respect_manual:
            for tag in facts.manual_tags:
                floor = self.ladder.resolve(tag)
                if floor and self.ladder.rank(floor) > self.ladder.rank(chosen):
                    chosen, reason = floor, f"运营标记「{tag}」"
        return chosen, reason


def meets(requirement: TierRequirement, facts: Facts) -> bool:
    return (
        facts.orders >= requirement.min_orders
        and facts.lifetime_orders >= requirement.min_lifetime_orders
        and facts.messages >= requirement.min_messages
        and facts.referrals >= requirement.min_referrals
        and facts.spent_cents >= round(requirement.min_spent * 100)
        and (not requirement.tags or bool(facts.tags & set(requirement.tags)))
    )


def explain_requirement(requirement: TierRequirement, facts: Facts, days: int) -> str:
    parts = []
    if requirement.min_orders:
        parts.append(f"{days}天内已付款订单 {facts.orders} 笔")
    if requirement.min_referrals:
        parts.append(f"推荐 {facts.referrals} 人成交")
    if requirement.min_lifetime_orders and not requirement.min_orders:
        parts.append(f"曾购买 {facts.lifetime_orders} 笔")
    if requirement.min_messages:
        parts.append(f"{days}天内互动 {facts.messages} 次")
    if requirement.min_spent:
        parts.append(f"{days}天内消费 {facts.spent_cents / 100:.2f} 元")
    if requirement.tags:
        parts.append("标签 " + "、".join(sorted(facts.tags & set(requirement.tags))))
    return "，".join(parts)


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
