"""The outbox pages' queries: rows by state, SOP, account, recipient and day, newest first and
paged by id; one row in full (text, reason, key, times), as `sopbot outbox --show` shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import Session

from bot.console.contacts import message_text
from bot.delivery.payload import summary
from bot.store.models import Contact, OutboxMessage, Room, SopRun

STATES = ("planned", "sending", "sent", "skipped", "failed", "unknown")
PAGE = 50


@dataclass(frozen=True)
class OutboxQuery:
    state: str | None = None
    sop: str | None = None
    account: str | None = None
    recipient: str = ""  # part of a name, 备注 or group name; a whole wxid
    contact_id: int | None = None
    start: date | None = None  # local days, both included, on the row's last change
    end: date | None = None
    before: int | None = None  # the page of rows older than this id


@dataclass(frozen=True)
class OutboxLine:
    id: int
    state: str
    at: datetime | None
    account_id: str
    recipient: str
    contact_id: int | None
    origin: str
    text: str  # the first characters
    reason: str | None


@dataclass(frozen=True)
class OutboxPage:
    rows: list[OutboxLine]
    counts: dict[str, int]  # by state, under every filter but the state
    next_before: int | None


def filters(session: Session, query: OutboxQuery, tz: tzinfo) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if query.account:
        found.append(OutboxMessage.account_id == query.account)
    if query.sop:
        found.append(OutboxMessage.sop_id == query.sop)
    if query.contact_id is not None:
        found.append(OutboxMessage.contact_id == query.contact_id)
    if query.recipient:
        needle = query.recipient.strip()
        people = select(Contact.id).where(
            or_(
                Contact.wxid == needle,
                Contact.name.contains(needle, autoescape=True),
                Contact.alias.contains(needle, autoescape=True),
            )
        )
        rooms = select(Room.id).where(
            or_(Room.room_wxid == needle, Room.topic.contains(needle, autoescape=True))
        )
        found.append(or_(OutboxMessage.contact_id.in_(people), OutboxMessage.room_id.in_(rooms)))
    if query.start is not None:
        found.append(OutboxMessage.updated_at >= datetime.combine(query.start, time(0), tz))
    if query.end is not None:
        found.append(OutboxMessage.updated_at < datetime.combine(query.end + timedelta(days=1), time(0), tz))
    return found


def page(session: Session, query: OutboxQuery, tz: tzinfo) -> OutboxPage:
    where = filters(session, query, tz)
    counts = {
        str(state): int(n)
        for state, n in session.execute(
            select(OutboxMessage.state, func.count()).where(*where).group_by(OutboxMessage.state)
        ).all()
    }
    statement = (
        select(OutboxMessage, Contact.name, Room.topic)
        .outerjoin(Contact, Contact.id == OutboxMessage.contact_id)
        .outerjoin(Room, Room.id == OutboxMessage.room_id)
        .where(*where)
        .order_by(OutboxMessage.id.desc())
        .limit(PAGE + 1)
    )
    if query.state:
        statement = statement.where(OutboxMessage.state == query.state)
    if query.before is not None:
        statement = statement.where(OutboxMessage.id < query.before)
    rows = session.execute(statement).all()
    lines = [_line(row, name, topic) for row, name, topic in rows[:PAGE]]
    more = len(rows) > PAGE
    return OutboxPage(lines, counts, lines[-1].id if more and lines else None)


def _line(row: OutboxMessage, name: str | None, topic: str | None) -> OutboxLine:
    return OutboxLine(
        row.id or 0,
        row.state,
        row.sent_at or row.updated_at or row.not_before,
        row.account_id,
        topic or name or "?",
        row.contact_id,
        f"{row.sop_id}/{row.step_id}" if row.sop_id else row.origin,
        summary(row.payload or [], limit=60),
        row.reason,
    )


@dataclass(frozen=True)
class OutboxDetail:
    row: OutboxMessage
    recipient: str
    text: str
    times: list[tuple[str, datetime | None]]


def detail(session: Session, row_id: int) -> OutboxDetail | None:
    row = session.get(OutboxMessage, row_id)
    if row is None:
        return None
    who: Any = session.get(Contact, row.contact_id) if row.contact_id else None
    if who is None and row.room_id:
        who = session.get(Room, row.room_id)
    name = getattr(who, "name", None) or getattr(who, "topic", None) or "?"
    times = [
        ("planned", row.created_at),
        ("due", row.not_before),
        ("sent", row.sent_at),
        ("changed", row.updated_at),
    ]
    return OutboxDetail(row, name, message_text(row.payload), times)


def known_sops(session: Session, from_files: list[str]) -> list[str]:
    """SOP ids for the filter: the files' and the run ledger's (a scan of the outbox for its
    ids would read millions of rows)."""
    known = set(from_files)
    known |= {str(i) for i in session.execute(select(SopRun.sop_id).distinct()).scalars() if i}
    return sorted(known)
