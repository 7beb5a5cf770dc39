"""What a report says: plain data, computed by `bot.results.compute` and shown by
`bot.report` (terminal tables, CSV, JSON, one self-contained HTML file). Every figure is
defined in docs/metrics.md with its formula and its Chinese and English name.

Money is in cents (分) as integers; rates are fractions 0..1 (None when the denominator is
0: "no data" is not "0 %"). Days are local dates in the configured time zone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class Period:
    start: date  # first day, inclusive
    end: date  # last day, inclusive
    label: str  # 2026-11, 2026-W48, 2026-11-01..2026-11-30

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


@dataclass(frozen=True)
class Ratio:
    """A rate with what it is made of, so a reader can check it."""

    numerator: float
    denominator: float

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class Totals:
    """Contact assets (客群资产) and their movement over the period."""

    assets_start: int  # friends at the start of the first day
    assets_end: int  # friends at the end of the last day
    added: int  # contacts who became friends in the period
    deleted: int  # friends who deleted the account (删粉) in the period
    added_by_source: dict[str, int] = field(default_factory=dict)  # request, group, referral, import, sync
    deleted_by_method: dict[str, int] = field(default_factory=dict)  # send_refused, sync_missing, transport
    active: int = 0  # contacts who wrote at least once (1:1 or in a group)
    add_rate: Ratio = field(default_factory=lambda: Ratio(0, 0))  # 加粉率
    delete_rate: Ratio = field(default_factory=lambda: Ratio(0, 0))  # 删粉率
    interaction_rate: Ratio = field(default_factory=lambda: Ratio(0, 0))  # 互动率


@dataclass
class DayPoint:
    """One day of the period (for the daily charts)."""

    day: date
    added: int = 0
    deleted: int = 0
    sent: int = 0
    replies: int = 0  # inbound messages counted as replies to an SOP message
    orders: int = 0
    amount_cents: int = 0
    messages: int = 0  # inbound messages (1:1 and in groups)


@dataclass(frozen=True)
class TierMove:
    """Contacts whose tier at the start of the period was `source` and at its end `target`
    (the same tier on both ends counts as staying)."""

    source: str
    target: str
    count: int


@dataclass
class StepOutcome:
    """One SOP step over the period (`step_id` None: the whole SOP)."""

    sop_id: str
    step_id: str | None
    name: str  # 每日精选 / 早安
    planned: int = 0
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by reason
    failed: int = 0
    unknown: int = 0
    reached: int = 0  # messages sent to a contact (1:1), one per message
    replied: int = 0  # messages sent (1:1 or to a group) answered within the reply window
    reply_rate: Ratio = field(default_factory=lambda: Ratio(0, 0))  # replied / sent
    orders_last_touch: int = 0
    amount_last_touch_cents: int = 0
    orders_first_touch: int = 0
    amount_first_touch_cents: int = 0
    deleted_24h: int = 0  # deletions attributed to this step (last touch) within 24 h
    deleted_7d: int = 0
    deletion_rate_24h: Ratio = field(default_factory=lambda: Ratio(0, 0))  # deleted_24h / reached
    left_out: dict[str, int] = field(default_factory=dict)  # opted out / blocked, from the run ledger
    pending: int = 0  # planned, not settled yet (waiting or being sent)
    deletion_rate_7d: Ratio = field(default_factory=lambda: Ratio(0, 0))  # deleted_7d / reached


@dataclass
class GroupLine:
    room_id: int
    topic: str
    group_type: str | None
    members: int  # at the end of the period
    joins: int
    leaves: int
    speakers: int  # members who wrote in the group in the period
    speak_share: Ratio = field(default_factory=lambda: Ratio(0, 0))


@dataclass
class TierOrders:
    tier: str  # the buyer's tier when the report is made
    orders: int
    amount_cents: int


@dataclass
class SuccessRates:
    lead: Ratio  # 引流成功率: friend requests and group invites that became contacts who stayed
    service: Ratio  # 服务成功率: questions answered within `service_minutes`, and a reply back
    conversion: Ratio  # 变现成功率: reached contacts who then bought
    service_answered: Ratio = field(default_factory=lambda: Ratio(0, 0))  # questions answered in time
    service_open: int = 0  # questions of the period still within their windows (not counted yet)


@dataclass
class Performance:
    """私域业绩 = reachable contacts × reach rate × conversion rate × average order value."""

    reachable: int  # friends not opted out, not blocked, at the end of the period
    reach_rate: Ratio  # reached by a marketing message / reachable
    conversion_rate: Ratio  # reached who bought (attributed) / reached
    average_order_cents: float  # attributed amount / attributed orders
    value_cents: float  # the product of the four


@dataclass
class ContactValue:
    """A contact's value (CLV): past orders, the period's, and what the people they
    referred bought."""

    contact_id: int
    name: str
    tier: str
    lifetime_cents: int
    period_cents: int
    referred_cents: int

    @property
    def total_cents(self) -> int:
        return self.lifetime_cents + self.referred_cents


@dataclass
class Report:
    period: Period
    account: str | None  # None: every account together
    accounts: list[str]
    generated_at: datetime
    tier_names: dict[str, str]  # id → 中文 name, in ladder order
    totals: Totals
    days: list[DayPoint]
    tiers_end: dict[str, int]  # tier id → contacts at the end, in ladder order
    migration: list[TierMove]
    tags_top: list[tuple[str, int]]  # the N most carried tags at the end
    sops: list[StepOutcome]
    groups: list[GroupLine]
    orders_by_tier: list[TierOrders]
    success: SuccessRates
    performance: Performance
    previous_performance: Performance | None  # the period before, same length
    top_values: list[ContactValue]
    windows: dict[str, float] = field(default_factory=dict)  # attribution windows used, in hours/days
    tag_days: dict[str, list[int]] = field(default_factory=dict)  # top tags: carriers at the end of each day

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (dates as ISO text, ratios with their value)."""
        return _plain(asdict(self)) | {"performance": _performance(self.performance)}


def _performance(p: Performance) -> dict[str, Any]:
    return _plain(asdict(p))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"numerator", "denominator"}:
            n, d = value["numerator"], value["denominator"]
            return {"numerator": n, "denominator": d, "value": n / d if d else None}
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value
