"""Per-account pace: a minimum interval plus random jitter between sends, and hourly and
daily caps over rolling windows. A new account's daily cap follows its warm-up schedule
(`bot.delivery.warmup`); risk signals slow an account down by a factor
(`bot.delivery.health`)."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.delivery.warmup import WarmUp

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Pace:
    min_interval: float
    jitter: float
    hourly_cap: int
    daily_cap: int
    warmup: WarmUp | None = None

    @property
    def unpaced(self) -> bool:
        return self.min_interval == 0 and self.jitter == 0


class Pacer:
    """Remembers the account's recent sends and says when the next one may go."""

    def __init__(
        self, pace: Pace, rng: random.Random | None = None, history: Iterable[datetime] = ()
    ) -> None:
        self.pace = pace
        self.rng = rng or random.Random()
        self._sent: list[datetime] = sorted(history)
        self._next_at: datetime | None = None
        self.slowdown = 1  # set by the account's health check: ×1, ×2, ×4, ×8 slower
        if self._sent:
            self._next_at = self._sent[-1] + timedelta(seconds=pace.min_interval)

    def daily_cap(self, now: datetime) -> int:
        """The rolling 24-h cap in force at `now`: the warm-up day's, slowed down."""
        full = self.pace.daily_cap
        cap = full if self.pace.warmup is None else self.pace.warmup.cap(now, full)
        return max(1, cap // self.slowdown)

    @property
    def hourly_cap(self) -> int:
        return max(1, self.pace.hourly_cap // self.slowdown)

    def _forget_before(self, now: datetime) -> None:
        old = bisect_right(self._sent, now - DAY)
        if old:
            del self._sent[:old]

    def _sent_since(self, moment: datetime) -> int:
        return len(self._sent) - bisect_right(self._sent, moment)

    def sent_since(self, moment: datetime) -> int:
        """Sends remembered after `moment` (the last 24 h at most)."""
        return self._sent_since(moment)

    def next_allowed(self, now: datetime) -> datetime:
        """The earliest moment (≥ now) the next send may happen."""
        self._forget_before(now)
        candidates = [now]
        if self._next_at is not None:
            candidates.append(self._next_at)
        daily, hourly = self.daily_cap(now), self.hourly_cap
        if len(self._sent) >= daily:
            free = self._sent[-daily] + DAY
            warmup = self.pace.warmup
            if warmup is not None and warmup.active(now):
                free = min(free, warmup.next_day_start(now))  # tomorrow's cap may be higher
            candidates.append(free)
        if self._sent_since(now - HOUR) >= hourly:
            candidates.append(self._sent[-hourly] + HOUR)
        return max(candidates)

    def interval_allows(self, now: datetime) -> bool:
        """Whether the interval since the last send has passed (the caps aside)."""
        return self._next_at is None or self._next_at <= now

    def allowance(self, now: datetime) -> int:
        """How many sends may go out right now, back to back (0: wait until `next_allowed`)."""
        if self.next_allowed(now) > now:
            return 0
        if not self.pace.unpaced:
            return 1
        hourly_left = self.hourly_cap - self._sent_since(now - HOUR)
        return max(0, min(hourly_left, self.daily_cap(now) - len(self._sent)))

    def record(self, sent_at: datetime) -> None:
        warmup = self.pace.warmup
        if warmup is not None and warmup.first_day is None:  # the first send starts the warm-up
            self.pace = replace(self.pace, warmup=warmup.started(sent_at))
        if self._sent and sent_at < self._sent[-1]:
            self._sent.insert(bisect_right(self._sent, sent_at), sent_at)
        else:
            self._sent.append(sent_at)
        gap = (self.pace.min_interval + self.rng.uniform(0, self.pace.jitter)) * self.slowdown
        self._next_at = sent_at + timedelta(seconds=gap)
