"""养号: a new account's daily cap rises over its first days.

Day 1 is the account's first day (`pacing.warmup_from`, or the local day sopbot first sent
from it: until it has sent, every day is day 1); on day n of a schedule of k days the cap is the schedule's n-th figure, and from
day k + 1 on the account's own `daily_cap`. The schedule never raises a cap above
`daily_cap`. A clock that reads earlier than day 1 gets day 1's cap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import Session

from bot.store.models import OutboxMessage


@dataclass(frozen=True)
class WarmUp:
    caps: tuple[int, ...]
    first_day: date | None  # None: the account has not sent yet, so today is day 1
    tz: ZoneInfo

    def day_number(self, now: datetime) -> int:
        """1 on the first day, 2 on the next, … (local days)."""
        if self.first_day is None:
            return 1
        return max(1, (now.astimezone(self.tz).date() - self.first_day).days + 1)

    def started(self, sent_at: datetime) -> WarmUp:
        """The schedule once the account has sent at `sent_at` (day 1 fixed by its first send)."""
        if self.first_day is not None:
            return self
        return replace(self, first_day=sent_at.astimezone(self.tz).date())

    def cap(self, now: datetime, full: int) -> int:
        """The daily cap in force at `now`, for an account whose full cap is `full`."""
        day = self.day_number(now)
        return min(full, self.caps[day - 1]) if day <= len(self.caps) else full

    def active(self, now: datetime) -> bool:
        return self.day_number(now) <= len(self.caps)

    def next_day_start(self, now: datetime) -> datetime:
        """Local midnight after `now`: when the cap may change."""
        tomorrow = now.astimezone(self.tz).date() + timedelta(days=1)
        return datetime.combine(tomorrow, time(0), self.tz)


def warm_up(caps: Sequence[int], first_day: date | None, tz: ZoneInfo) -> WarmUp | None:
    """The schedule for an account, or None when it has none. An account that has never sent
    has no first day yet: its first send makes it."""
    if not caps:
        return None
    return WarmUp(tuple(caps), first_day, tz)


def first_send_day(session: Session, account_id: str, tz: ZoneInfo) -> date | None:
    """The local day sopbot first sent from the account (any row ever sent, or in doubt)."""
    first = session.execute(
        select(func.min(OutboxMessage.sent_at)).where(
            OutboxMessage.account_id == account_id, OutboxMessage.sent_at.is_not(None)
        )
    ).scalar_one()
    return None if first is None else first.astimezone(tz).date()
