"""What followed each SOP's messages: the brake's counts, read from the raw tables with the
results' attribution (docs/metrics.md, "last touch").

- **Sends**: the SOP's 1:1 messages sent since it is watched from (`watch_start`).
- **Deletions**: FRIEND_DELETED events blamed on one of those messages: the latest SOP
  message to the contact before the deletion, within `[results] deletion_window`. Deletions
  found missing at a contact sync are left out: they happened at some unknown time before.
- **Opt-outs** and **complaints**: OPTED_OUT events, and 1:1 messages containing one of
  `[retention] complaint_words`, within `[results] reply_window` after one of those messages
  (again the latest before). Each message counts once: as an opt-out if it was followed by
  one, else as a complaint.

An SOP is watched from the later of `LOOKBACK` ago and its last resume: a resumed SOP is
judged on what it sent since, and an SOP that has run for months on the last week, so a
template that turned bad is not diluted by a year of good sends.

Only SOPs with at least one deletion, opt-out or complaint are counted (the others cannot
trip), so a look costs the deletions, opt-outs and complaints of a week plus one index range
per such SOP (`ix_outbox_sop_sent`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import Session

from bot.config.settings import Settings
from bot.delivery.health import complaint_clause
from bot.events import ContactEventKind, DeletionSeen
from bot.results.rollups import load_touches
from bot.retention.brake import SopCounts
from bot.retention.store import resumed_since
from bot.store.models import ContactEvent, InboundMessage, OutboxMessage

LOOKBACK = timedelta(days=7)

_E: Any = ContactEvent.__table__
_I: Any = InboundMessage.__table__
_O: Any = OutboxMessage.__table__


@dataclass(frozen=True)
class Watched:
    """An SOP's counts and the moment they start from."""

    sop_id: str
    counts: SopCounts
    since: datetime


def watch_start(now: datetime, resumed_at: datetime | None) -> datetime:
    """Where an SOP's counting starts: its last resume, or `LOOKBACK` ago if that is later."""
    floor = now - LOOKBACK
    return floor if resumed_at is None or resumed_at < floor else resumed_at


def count_sops(
    session: Session, settings: Settings, now: datetime, *, skip: Collection[str] = ()
) -> list[Watched]:
    """Every SOP (but those in `skip`) whose messages since its start were followed by a
    deletion, an opt-out or a complaint, with its counts."""
    floor = now - LOOKBACK
    resumed = resumed_since(session)
    # a deletion found missing at a contact sync happened at some unknown time before it:
    # blaming the SOP sent last before the sync would be a guess
    deletions = _events(session, ContactEventKind.FRIEND_DELETED, floor, now, but=DeletionSeen.SYNC_MISSING)
    opt_outs = _events(session, ContactEventKind.OPTED_OUT, floor, now)
    complaints = _complaints(session, settings.retention.complaint_words, floor, now)
    people = {contact for contact, _ in (*deletions, *opt_outs, *complaints)}
    if not people:
        return []
    touches = load_touches(session, people, (), floor, now)
    windows = settings.results

    def blamed(contact_id: int, at: datetime, window: timedelta) -> Any:
        touch = touches.latest_before(("c", contact_id), at, window)
        if touch is None or touch.sop_id in skip:
            return None
        return touch if touch.sent_at >= watch_start(now, resumed.get(touch.sop_id)) else None

    deleted: Counter[str] = Counter()
    for contact_id, at in deletions:
        if touch := blamed(contact_id, at, windows.deletion):
            deleted[touch.sop_id] += 1
    opted = _blamed_messages(opt_outs, blamed, windows.reply)
    complained = _blamed_messages(complaints, blamed, windows.reply)
    out = []
    for sop_id in sorted(set(deleted) | set(opted) | set(complained)):
        since = watch_start(now, resumed.get(sop_id))
        counts = SopCounts(
            sends=sends_since(session, sop_id, since, now),
            deletions=deleted[sop_id],
            opt_outs=len(opted[sop_id]),
            complaints=len(complained[sop_id] - opted[sop_id]),
        )
        out.append(Watched(sop_id, counts, since))
    return out


def _blamed_messages(
    happenings: list[tuple[int, datetime]], blamed: Any, window: timedelta
) -> dict[str, set[int]]:
    """SOP id → the ids of its messages that the happenings (opt-outs, complaints) followed."""
    out: dict[str, set[int]] = defaultdict(set)
    for contact_id, at in happenings:
        if touch := blamed(contact_id, at, window):
            out[touch.sop_id].add(touch.id)
    return out


def sends_since(session: Session, sop_id: str, since: datetime, until: datetime) -> int:
    """The SOP's messages sent 1:1 in [since, until]: an index-only range (`ix_outbox_sop_sent`)."""
    query = select(func.count()).where(
        _O.c.sop_id == sop_id,
        _O.c.state == "sent",
        _O.c.sent_at >= since,
        _O.c.sent_at <= until,
        _O.c.contact_id.is_not(None),
    )
    return int(session.execute(query).scalar_one())


def _events(
    session: Session, kind: ContactEventKind, since: datetime, until: datetime, *, but: str | None = None
) -> list[tuple[int, datetime]]:
    query = select(_E.c.contact_id, _E.c.at).where(
        _E.c.kind == kind.value, _E.c.at >= since, _E.c.at <= until
    )
    if but is not None:
        query = query.where(or_(_E.c.detail.is_(None), _E.c.detail != but))
    return [(contact_id, at) for contact_id, at in session.execute(query)]


def _complaints(
    session: Session, words: list[str], since: datetime, until: datetime
) -> list[tuple[int, datetime]]:
    """1:1 messages with a complaint word (as the account's health counts them)."""
    complaint = complaint_clause(_I.c.text, words)
    if complaint is None:
        return []
    query = select(_I.c.contact_id, _I.c.sent_at).where(
        and_(
            _I.c.room_id.is_(None),
            _I.c.contact_id.is_not(None),
            _I.c.sent_at >= since,
            _I.c.sent_at <= until,
            complaint,
        )
    )
    return [(contact_id, at) for contact_id, at in session.execute(query)]
