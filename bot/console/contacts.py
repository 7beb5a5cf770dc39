"""The contacts pages' queries: a page of contacts by name and by the filter language, paged
by id (keyset: the 2,000th page costs what the first does), and one contact's whole story
with the conversation both ways."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlmodel import Session

from bot.console.filters import compile_filter, subject_of
from bot.delivery.payload import from_json
from bot.signals import profile
from bot.signals.expr import Expr
from bot.sop.views.preview import show_part
from bot.store.models import Contact, ContactTag, InboundMessage, OutboxMessage, Room, Tag

PAGE = 50
COUNT_CAP = 10_000  # "10,000+": a count never scans more than this
SCAN_BUDGET = 5_000  # rows checked in Python for one page when the filter is not exact
CHUNK = 500
CONVERSATION = 200  # messages each way on a contact's page

_COLUMNS = (
    Contact.id, Contact.account_id, Contact.wxid, Contact.name, Contact.alias, Contact.tier,
    Contact.is_friend, Contact.opted_out, Contact.blocked, Contact.last_message_at,
    Contact.city, Contact.gender, Contact.birthday, Contact.custom_fields,
)  # fmt: skip


@dataclass(frozen=True)
class ContactQuery:
    text: str = ""  # part of a name or 备注, or a whole wxid / 微信号
    where: Expr | None = None
    account: str | None = None
    tier: str | None = None  # a tier id
    after: int | None = None  # the page after this contact id
    before: int | None = None  # the page before this contact id


@dataclass(frozen=True)
class ContactLine:
    id: int
    account_id: str
    wxid: str
    name: str
    alias: str | None
    tier: str
    tags: tuple[str, ...]
    is_friend: bool
    opted_out: bool
    blocked: bool
    last_message_at: datetime | None


@dataclass(frozen=True)
class ContactPage:
    rows: list[ContactLine]
    next_after: int | None  # cursor of the next page, None on the last one
    prev_before: int | None  # cursor of the page before, None on the first one
    total: int | None  # None: not counted (rows checked one by one)
    total_capped: bool  # more than COUNT_CAP
    scanned_to: int | None  # the check budget ended this page at this id


def search(session: Session, query: ContactQuery, tier_spellings: Sequence[str] = ()) -> ContactPage:
    conditions: list[ColumnElement[bool]] = []
    if query.text:
        needle = query.text.strip()
        conditions.append(
            or_(
                Contact.name.contains(needle, autoescape=True),
                Contact.alias.contains(needle, autoescape=True),
                Contact.wxid == needle,
                Contact.weixin == needle,
            )
        )
    if query.account:
        conditions.append(Contact.account_id == query.account)
    if query.tier:
        conditions.append(Contact.tier.in_(list(tier_spellings) or [query.tier]))
    exact = True
    if query.where is not None:
        compiled = compile_filter(query.where, session)
        conditions.append(compiled.where)
        exact = compiled.exact
    backward = query.before is not None and query.after is None
    if exact:
        rows, more = _page(session, conditions, query, backward)
        scanned_to = None
    else:
        assert query.where is not None
        rows, more, scanned_to = _checked_page(session, conditions, query, query.where, backward)
    if backward:
        rows.reverse()
    lines = _lines(session, rows)
    next_after, prev_before = _cursors(query, lines, more, scanned_to, backward)
    total = _count(session, conditions) if exact else None
    return ContactPage(
        lines,
        next_after,
        prev_before,
        None if total is None else min(total, COUNT_CAP),
        total is not None and total > COUNT_CAP,
        scanned_to,
    )


def _cursors(
    query: ContactQuery, lines: list[ContactLine], more: bool, scanned_to: int | None, backward: bool
) -> tuple[int | None, int | None]:
    """(after, before) of the links to the next and the previous page. A page the check
    budget ended early continues from the last id looked at, not the last one shown."""
    if backward:
        assert query.before is not None
        next_after = lines[-1].id if lines else query.before - 1
        prev_before = (scanned_to or (lines[0].id if lines else None)) if more else None
        return next_after, prev_before
    next_after = (scanned_to or (lines[-1].id if lines else None)) if more else None
    prev_before = None
    if query.after is not None:
        prev_before = lines[0].id if lines else query.after + 1
    return next_after, prev_before


def _ordered(conditions: list[ColumnElement[bool]], query: ContactQuery, backward: bool) -> Any:
    statement = select(*_COLUMNS).where(*conditions)
    if backward:
        return statement.where(Contact.id < query.before).order_by(Contact.id.desc())
    if query.after is not None:
        statement = statement.where(Contact.id > query.after)
    return statement.order_by(Contact.id)


def _page(
    session: Session, conditions: list[ColumnElement[bool]], query: ContactQuery, backward: bool
) -> tuple[list[Any], bool]:
    rows = list(session.execute(_ordered(conditions, query, backward).limit(PAGE + 1)).all())
    return rows[:PAGE], len(rows) > PAGE


def _checked_page(
    session: Session,
    conditions: list[ColumnElement[bool]],
    query: ContactQuery,
    expr: Expr,
    backward: bool,
) -> tuple[list[Any], bool, int | None]:
    """Rows the SQL pre-selected, each checked with the expression, until a page is full or
    SCAN_BUDGET rows were looked at (then the page ends early and says where)."""
    check = expr.compile()
    found: list[Any] = []
    scanned = 0
    cursor: int | None = query.before if backward else query.after
    while True:
        step = ContactQuery(after=None if backward else cursor, before=cursor if backward else None)
        chunk = list(session.execute(_ordered(conditions, step, backward).limit(CHUNK)).all())
        if not chunk:
            return found, False, None
        ids = [row.id for row in chunk]
        tags = _tags(session, ids)
        ordered = _ordered_ids(session, ids)
        for row in chunk:
            scanned += 1
            cursor = row.id
            if check(subject_of(row, frozenset(tags.get(row.id, ())), row.id in ordered)):
                found.append(row)
                if len(found) > PAGE:
                    return found[:PAGE], True, None
        if len(chunk) < CHUNK:
            return found, False, None
        if scanned >= SCAN_BUDGET:
            return found, True, cursor


def _count(session: Session, conditions: list[ColumnElement[bool]]) -> int:
    capped = select(Contact.id).where(*conditions).limit(COUNT_CAP + 1).subquery()
    return int(session.execute(select(func.count()).select_from(capped)).scalar_one())


def _tags(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    if not ids:
        return out
    rows = session.execute(
        select(ContactTag.contact_id, Tag.name)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(ContactTag.contact_id.in_(ids))
        .order_by(Tag.name)
    )
    for contact_id, name in rows:
        out.setdefault(contact_id, []).append(name)
    return out


def _ordered_ids(session: Session, ids: list[int]) -> set[int]:
    from bot.store.models import Order

    query = select(Order.contact_id).where(Order.contact_id.in_(ids)).distinct()
    return {int(cid) for cid in session.execute(query).scalars() if cid is not None}


def _lines(session: Session, rows: list[Any]) -> list[ContactLine]:
    tags = _tags(session, [row.id for row in rows])
    return [_line(row, tuple(tags.get(row.id, ()))) for row in rows]


def _line(row: Any, tags: tuple[str, ...]) -> ContactLine:
    return ContactLine(
        row.id, row.account_id, row.wxid, row.name, row.alias, row.tier, tags,
        bool(row.is_friend), bool(row.opted_out), bool(row.blocked), row.last_message_at,
    )  # fmt: skip


# -- one contact -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """One message of the conversation, either way."""

    at: datetime | None
    inbound: bool
    text: str
    room: str | None  # the group it was said in, None for 1:1
    sop: str | None = None  # what sent it: `sop/step`, or the origin (reply, admin …)
    state: str | None = None  # outbox state of what we sent
    reason: str | None = None
    outbox_id: int | None = None


@dataclass(frozen=True)
class ContactStory:
    profile: profile.Profile
    conversation: list[Said]
    rooms: dict[int, str]


def story(session: Session, contact_id: int) -> ContactStory | None:
    contact = session.get(Contact, contact_id)
    if contact is None:
        return None
    loaded = profile.load(session, contact)
    said = list(
        session.execute(
            select(InboundMessage)
            .where(InboundMessage.contact_id == contact_id)
            .order_by(InboundMessage.sent_at.desc(), InboundMessage.id.desc())
            .limit(CONVERSATION)
        ).scalars()
    )
    sent = list(
        session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.contact_id == contact_id)
            .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
            .limit(CONVERSATION)
        ).scalars()
    )
    room_ids = {m.room_id for m in said if m.room_id is not None}
    rooms = (
        {int(i): str(t) for i, t in session.execute(select(Room.id, Room.topic).where(Room.id.in_(room_ids)))}
        if room_ids
        else {}
    )
    theirs = [
        Said(m.sent_at or m.received_at, True, m.text, rooms.get(m.room_id) if m.room_id else None)
        for m in said
    ]
    ours = [
        Said(
            m.sent_at or m.not_before or m.created_at,
            False,
            message_text(m.payload),
            None,
            f"{m.sop_id}/{m.step_id}" if m.sop_id else m.origin,
            m.state,
            m.reason,
            m.id,
        )
        for m in sent
    ]
    conversation = sorted([*theirs, *ours], key=lambda s: (s.at is None, s.at or datetime.min), reverse=True)
    # each side is cut at its newest CONVERSATION messages: below the later of the two cuts
    # one side would show with the other's messages missing, so the story stops there
    cuts = [min(times) for side in (theirs, ours) if len(side) >= CONVERSATION and (times := _times(side))]
    if cuts:
        floor = max(cuts)
        conversation = [s for s in conversation if s.at is None or s.at >= floor]
    return ContactStory(loaded, conversation, rooms)


def _times(side: list[Said]) -> list[datetime]:
    return [s.at for s in side if s.at is not None]


def message_text(payload: list[dict[str, Any]] | None) -> str:
    """A planned message in full, as `sopbot outbox --show` prints it."""
    return "\n---\n".join(show_part(part) for part in from_json(payload or []))
