"""The tiers and tag expressions of the tagging feature (`bot.signals`), as the SOP runtime
uses them: tier ids with display names, and tag expressions compiled to predicates."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.signals.expr import parse
from bot.signals.tiers_ladder import DEFAULT_LADDER, TierLadder

TagTest = Callable[[Any], bool]  # a SubjectLike (tier, tags, flags) → matches


DEFAULT_FEWEST_ORDERS = {"basic": 0, "prospect": 0, "customer": 1, "repeat": 2, "koc": 2}


@dataclass(frozen=True)
class Tiers:
    """The tier ladder from shallow to deep: ids and Chinese display names."""

    ladder: TierLadder = field(default=DEFAULT_LADDER)
    fewest_orders: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_FEWEST_ORDERS), hash=False)

    def sample_orders(self, tier_id: str) -> int:
        """Paid orders of a made-up contact at this tier: the fewest the tier can be reached
        with (a 基础用户 sample has bought nothing)."""
        return self.fewest_orders.get(tier_id, 0)

    @property
    def ids(self) -> list[str]:
        return list(self.ladder.ids)

    def name(self, tier_id: str) -> str:
        try:
            return self.ladder.name(tier_id)
        except KeyError:
            return tier_id

    def resolve(self, text: str) -> str:
        """A tier by id or display name; ValueError listing the known ones otherwise."""
        found = self.ladder.resolve(str(text))
        if found is None:
            known = ", ".join(f"{tier_id} {name}" for tier_id, name in self.ladder.pairs())
            raise ValueError(f"unknown tier {text!r} (known: {known})")
        return found


def load_tiers(settings: Any = None) -> Tiers:
    """The tier ladder configured in settings (`[tiers]`: default five tiers, AIPL or the
    operator's own levels), as the tagging feature computes tiers."""
    if settings is None:
        return Tiers()
    from bot.signals.tier_policy import TierPolicy, preset_levels

    fewest = {
        level.id: min((max(r.min_orders, r.min_lifetime_orders) for r in level.when), default=0)
        for level in preset_levels(settings.tiers)
    }
    return Tiers(TierPolicy.from_settings(settings.tiers).ladder, fewest)


def compile_expr(text: str, tiers: Tiers) -> TagTest:
    """A tag expression (`活动喜好型 and not 免打扰`, `tier >= customer and tag:新品关注型`) as a
    predicate; ValueError ('at column N: reason') when it does not parse."""
    return parse(str(text), tiers.ladder, bare_tags=True).compile()
