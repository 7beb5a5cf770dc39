"""Whether one planned message may go out now: pure rules, no I/O.

The order of the checks is the order an operator would ask: is it still wanted (expiry),
can it reach anyone (blocked, deleted, dissolved), may we (opt-out, quiet hours), and is
this person or group already hearing enough from us (caps, with priority)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.config.settings import QuietHours
from bot.policies import Category, QuietPolicy


class Verdict(StrEnum):
    SEND = "send"
    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True)
class Ruling:
    """What the rules decide for one planned message: send it, skip it (and why), or defer
    it (until when, and why)."""

    verdict: Verdict
    reason: str = ""
    until: datetime | None = None

    @classmethod
    def send(cls) -> Ruling:
        return cls(Verdict.SEND)

    @classmethod
    def skip(cls, reason: str) -> Ruling:
        return cls(Verdict.SKIP, reason)

    @classmethod
    def defer(cls, until: datetime, reason: str) -> Ruling:
        return cls(Verdict.DEFER, reason, until)


@dataclass(frozen=True)
class Rules:
    tz: ZoneInfo
    quiet: QuietHours
    replies_in_quiet_hours: bool
    contact_daily_cap: int
    contact_weekly_cap: int
    lifecycle_exempt: bool
    room_daily_cap: int


@dataclass(frozen=True)
class Candidate:
    """What the rules need to know about a planned message."""

    category: Category
    priority: int
    quiet_policy: QuietPolicy
    expires_at: datetime | None
    to_room: bool


@dataclass(frozen=True)
class Recipient:
    found: bool
    blocked: bool = False
    opted_out: bool = False
    is_friend: bool = True
    dissolved: bool = False


@dataclass(frozen=True)
class Counts:
    """Messages already sent (or in flight) to this recipient, and rivals still waiting."""

    today: int = 0
    week: int = 0
    higher_priority_today: int = 0  # planned capped messages due today that outrank this one


def local_day_start(moment: datetime, tz: ZoneInfo) -> datetime:
    local = moment.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def quiet_end(moment: datetime, rules: Rules) -> datetime:
    """The first moment after `moment` outside quiet hours."""
    local = moment.astimezone(rules.tz)
    end = local.replace(hour=rules.quiet.end.hour, minute=rules.quiet.end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end


def in_quiet_hours(moment: datetime, rules: Rules) -> bool:
    return rules.quiet.contains(moment.astimezone(rules.tz).time())


def is_capped(candidate: Candidate, rules: Rules) -> bool:
    """Whether per-contact caps apply to this message."""
    if candidate.category is Category.REPLY:
        return False
    return not (candidate.category is Category.LIFECYCLE and rules.lifecycle_exempt)


def decide(
    candidate: Candidate, recipient: Recipient, counts: Counts, now: datetime, rules: Rules
) -> Ruling:
    if candidate.expires_at is not None and now >= candidate.expires_at:
        return Ruling.skip(f"expired at {candidate.expires_at.astimezone(rules.tz):%Y-%m-%d %H:%M}")
    if not recipient.found:
        return Ruling.skip("recipient no longer exists")
    if candidate.to_room and recipient.dissolved:
        return Ruling.skip("group dissolved or the account left it")
    if not candidate.to_room:
        if recipient.blocked:
            return Ruling.skip("contact deleted or blocked the account")
        if not recipient.is_friend:
            return Ruling.skip("not a friend: cannot message 1:1")
        if recipient.opted_out and candidate.category is not Category.REPLY:
            return Ruling.skip("contact opted out (退订)")

    quiet_applies = candidate.category is not Category.REPLY or not rules.replies_in_quiet_hours
    if quiet_applies and in_quiet_hours(now, rules):
        if candidate.quiet_policy is QuietPolicy.SKIP:
            return Ruling.skip(f"inside quiet hours {rules.quiet}")
        until = quiet_end(now, rules)
        if candidate.expires_at is not None and until >= candidate.expires_at:
            return Ruling.skip(f"inside quiet hours {rules.quiet} until after it expires")
        return Ruling.defer(until, f"waiting for quiet hours {rules.quiet} to end")

    if candidate.to_room:
        if candidate.category is not Category.REPLY and counts.today >= rules.room_daily_cap:
            return Ruling.skip(f"group daily cap {rules.room_daily_cap} reached")
        return Ruling.send()

    if is_capped(candidate, rules):
        daily, weekly = rules.contact_daily_cap, rules.contact_weekly_cap
        if counts.today >= daily:
            return Ruling.skip(f"contact daily cap {daily} reached")
        if counts.week >= weekly:
            return Ruling.skip(f"contact weekly cap {weekly} reached")
        if counts.today + counts.higher_priority_today >= daily:
            return Ruling.skip(f"contact daily cap {daily}: today's slots go to higher-priority messages")
    return Ruling.send()
