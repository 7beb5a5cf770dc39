"""Per-account pace: a minimum interval plus random jitter between sends, and hourly and
daily caps over rolling windows."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Pace:
    min_interval: float
    jitter: float
    hourly_cap: int
    daily_cap: int

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
        if self._sent:
            self._next_at = self._sent[-1] + timedelta(seconds=pace.min_interval)

    def _forget_before(self, now: datetime) -> None:
        old = bisect_right(self._sent, now - DAY)
        if old:
            del self._sent[:old]

    def _sent_since(self, moment: datetime) -> int:
        return len(self._sent) - bisect_right(self._sent, moment)

    def next_allowed(self, now: datetime) -> datetime:
        """The earliest moment (≥ now) the next send may happen."""
        self._forget_before(now)
        candidates = [now]
        if self._next_at is not None:
            candidates.append(self._next_at)
        if len(self._sent) >= self.pace.daily_cap:
            candidates.append(self._sent[-self.pace.daily_cap] + DAY)
        if self._sent_since(now - HOUR) >= self.pace.hourly_cap:
            candidates.append(self._sent[-self.pace.hourly_cap] + HOUR)
        return max(candidates)

    def allowance(self, now: datetime) -> int:
        """How many sends may go out right now, back to back (0: wait until `next_allowed`)."""
        if self.next_allowed(now) > now:
            return 0
        if not self.pace.unpaced:
            return 1
        hourly_left = self.pace.hourly_cap - self._sent_since(now - HOUR)
        return max(0, min(hourly_left, self.pace.daily_cap - len(self._sent)))

    def record(self, sent_at: datetime) -> None:
        if self._sent and sent_at < self._sent[-1]:
            self._sent.insert(bisect_right(self._sent, sent_at), sent_at)
        else:
            self._sent.append(sent_at)
        gap = self.pace.min_interval + self.rng.uniform(0, self.pace.jitter)
        self._next_at = sent_at + timedelta(seconds=gap)
