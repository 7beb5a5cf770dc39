"""The tier ladder's rules, with no storage: which tier a contact's facts earn, and why.

`bot.signals.tiers` gathers the facts from the database and moves contacts; this part is
what `sopbot check`, previews and the filter language need, so it stays light.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bot.config.settings import TierLevel, TierRequirement, TierSettings
from bot.signals.tiers_ladder import TierLadder


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
