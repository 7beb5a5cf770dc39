"""Account health: risk signals slow an account down before WeChat has to stop it.

The rule (docs/pacing.md), looked at every `CHECK_EVERY` per account over the last 24 h:

    signals = deletions (删粉, however seen) + complaints (a 1:1 message with one of
              `[retention] complaint_words`) + sends WeChat refused with a risk-smelling
              error (频繁, 限制, frequency, …; remembered by the running daemon)
    rate    = signals / max(sends in the last 24 h, RATE_FLOOR)

    slowdown ×8  when signals ≥ 10 and rate ≥ 4 %
             ×4  when signals ≥ 5  and rate ≥ 2 %
             ×2  when signals ≥ 3  and rate ≥ 1 %
             ×1  otherwise

A slowdown of ×k multiplies the interval and jitter between sends by k and divides the
hourly and daily caps by k. As old signals leave the 24-h window the account speeds up
again. The pause stays where it was: WeChat's own push-back (a risk-control error) pauses
the account until an operator resumes it."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlmodel import Session

from bot.events import ContactEventKind
from bot.store.models import Contact, ContactEvent, InboundMessage

WINDOW = timedelta(hours=24)
CHECK_EVERY = timedelta(seconds=60)
RATE_FLOOR = 200  # a quiet account needs this many sends' worth of signals before a rate counts
LEVELS: tuple[tuple[int, int, float], ...] = (  # (slowdown, at least signals, at least rate)
    (8, 10, 0.04),
    (4, 5, 0.02),
    (2, 3, 0.01),
)
_RISKY = re.compile(r"频繁|过于频繁|限制|风控|受限|frequen|rate.?limit|too many|restrict", re.IGNORECASE)


@dataclass(frozen=True)
class Signals:
    deletions: int = 0
    complaints: int = 0
    refusals: int = 0  # sends refused with a risk-smelling error
    sends: int = 0

    @property
    def total(self) -> int:
        return self.deletions + self.complaints + self.refusals

    @property
    def rate(self) -> float:
        return self.total / max(self.sends, RATE_FLOOR)


@dataclass(frozen=True)
class Health:
    slowdown: int
    signals: Signals

    @property
    def reason(self) -> str:
        s = self.signals
        return (
            f"24 小时内删粉 {s.deletions}、投诉 {s.complaints}、发送受限 {s.refusals}，"
            f"发送 {s.sends} 条（{s.rate:.1%}）"
        )


def assess(signals: Signals) -> Health:
    for slowdown, at_least, rate in LEVELS:
        if signals.total >= at_least and signals.rate >= rate:
            return Health(slowdown, signals)
    return Health(1, signals)


def smells_of_risk(reason: str) -> bool:
    """Whether a refused send's error reads like WeChat limiting the account."""
    return bool(_RISKY.search(reason))


class Refusals:
    """The risk-smelling refusals an account met, over the last window (kept in memory: a
    restarted daemon starts from none)."""

    def __init__(self) -> None:
        self._at: deque[datetime] = deque()

    def add(self, at: datetime) -> None:
        self._at.append(at)

    def since(self, moment: datetime) -> int:
        while self._at and self._at[0] < moment:
            self._at.popleft()
        return len(self._at)


def complaint_clause(text: Any, words: Sequence[str]) -> ColumnElement[bool] | None:
    """What makes a message a complaint: it contains one of `[retention] complaint_words` as
    typed (None when there are none). The account's health and the SOP brake both count by it."""
    chosen = [w for w in words if w.strip()]
    return or_(*(text.contains(w, autoescape=True) for w in chosen)) if chosen else None


def count_signals(
    session: Session, account_id: str, now: datetime, complaint_words: list[str]
) -> tuple[int, int]:
    """Deletions and complaints on the account in the last window."""
    since = now - WINDOW
    deletions = session.execute(
        select(func.count())
        .select_from(ContactEvent)
        .join(Contact, Contact.id == ContactEvent.contact_id)
        .where(
            ContactEvent.kind == ContactEventKind.FRIEND_DELETED.value,
            ContactEvent.at >= since,
            Contact.account_id == account_id,
        )
    ).scalar_one()
    complaints = 0
    complaint = complaint_clause(InboundMessage.text, complaint_words)
    if complaint is not None:
        complaints = session.execute(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                and_(
                    InboundMessage.room_id.is_(None),
                    InboundMessage.sent_at >= since,
                    InboundMessage.account_id == account_id,
                    complaint,
                )
            )
        ).scalar_one()
    return int(deletions), int(complaints)
