"""The outbox ledger's state changes: claim, sent, retry, failed, skipped, recovered.

Claiming is the exactly-once hinge: inside one transaction the worker picks due rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's `BEGIN IMMEDIATE` serialises writers),
applies the delivery rules, and moves the rows it will send to `sending` under its own
worker id. A row is only ever sent by the worker that moved it to `sending`."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlmodel import Session

from bot.delivery.outbox import OutboxState
from bot.delivery.policy import (
    Candidate,
    Counts,
    Recipient,
    Rules,
    Ruling,
    Verdict,
    decide,
    is_capped,
    local_day_start,
)
from bot.policies import Category, Guarantee, Origin, QuietPolicy
from bot.spells import ORDER, SILENT, parse_spell
from bot.store.models import Contact, Order, OutboxMessage, Room, SopBrake

T = OutboxMessage.__table__
COUNTED_STATES = (OutboxState.SENT.value, OutboxState.SENDING.value, OutboxState.UNKNOWN.value)
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Claimed:
    """A row this worker moved to `sending` and must now send."""

    id: int
    key: str
    account_id: str
    contact_id: int | None
    room_id: int | None
    payload: list[dict[str, Any]]
    parts_sent: int
    attempts: int
    guarantee: Guarantee
    category: Category
    target_wxid: str = ""
    target_name: str = ""


@dataclass
class ClaimResult:
    claimed: list[Claimed] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    deferred: list[tuple[int, datetime, str]] = field(default_factory=list)


_COLUMNS = (
    T.c.id, T.c.key, T.c.account_id, T.c.contact_id, T.c.room_id, T.c.payload, T.c.parts_sent,
    T.c.attempts, T.c.guarantee, T.c.category, T.c.priority, T.c.quiet_policy, T.c.expires_at,
    T.c.occurrence,
)  # fmt: skip


@dataclass
class _Recipients:
    contacts: dict[int, Recipient] = field(default_factory=dict)
    rooms: dict[int, Recipient] = field(default_factory=dict)
    contact_wxids: dict[int, str] = field(default_factory=dict)
    room_wxids: dict[int, str] = field(default_factory=dict)
    names: dict[tuple[str, int], str] = field(default_factory=dict)

    def wxid(self, contact_id: int | None, room_id: int | None) -> str:
        if room_id is not None:
            return self.room_wxids.get(room_id, "")
        return self.contact_wxids.get(contact_id or 0, "")

    def name(self, contact_id: int | None, room_id: int | None) -> str:
        if room_id is not None:
            return self.names.get(("room", room_id), "")
        return self.names.get(("contact", contact_id or 0), "")


def _recipients(session: Session, rows: Sequence[Any]) -> _Recipients:
    found = _Recipients()
    contact_ids = {r.contact_id for r in rows if r.contact_id is not None}
    room_ids = {r.room_id for r in rows if r.room_id is not None}
    if contact_ids:
        query = select(
            Contact.id, Contact.wxid, Contact.name, Contact.blocked, Contact.opted_out, Contact.is_friend
        ).where(Contact.id.in_(contact_ids))
        for cid, wxid, name, blocked, opted_out, is_friend in session.execute(query):
            found.contacts[cid] = Recipient(True, blocked=blocked, opted_out=opted_out, is_friend=is_friend)
            found.contact_wxids[cid] = wxid
            found.names[("contact", cid)] = name
    if room_ids:
        query = select(Room.id, Room.room_wxid, Room.topic, Room.dissolved).where(Room.id.in_(room_ids))
        for rid, wxid, topic, dissolved in session.execute(query):
            found.rooms[rid] = Recipient(True, dissolved=dissolved)
            found.room_wxids[rid] = wxid
            found.names[("room", rid)] = topic
    return found


def _spells_over(session: Session, rows: Sequence[Any]) -> dict[int, str]:
    """Rows planned for a spell of silence or lapse (`bot.spells`) that ended while they
    waited — the contact wrote, or ordered, again — with the reason to skip them: a "we miss
    you" to someone who wrote an hour ago is worse than none."""
    spells = {row.id: spell for row in rows if (spell := parse_spell(row.occurrence)) is not None}
    if not spells:
        return {}
    silent = {s.contact_id for s in spells.values() if s.kind == SILENT}
    buyers = {s.contact_id for s in spells.values() if s.kind == ORDER}
    last_said: dict[int, datetime] = {}
    last_order: dict[int, datetime] = {}
    if silent:
        query = select(Contact.id, Contact.last_message_at).where(
            Contact.id.in_(silent), Contact.last_message_at.is_not(None)
        )
        last_said = dict(session.execute(query).all())  # type: ignore[arg-type]
    if buyers:
        query = (
            select(Order.contact_id, func.max(Order.ordered_at))
            .where(Order.contact_id.in_(buyers), Order.status == "paid")
            .group_by(Order.contact_id)
        )
        last_order = {cid: at for cid, at in session.execute(query) if at is not None}
    over: dict[int, str] = {}
    for row_id, spell in spells.items():
        later = spell.anchor + timedelta(seconds=1)  # the name keeps whole seconds
        if spell.kind == SILENT and (said := last_said.get(spell.contact_id)) and said >= later:
            over[row_id] = "the contact wrote again before it went out: the silence is over"
        elif spell.kind == ORDER and (bought := last_order.get(spell.contact_id)) and bought >= later:
            over[row_id] = "the contact ordered again before it went out: the lapse is over"
    return over


def _claimed(row: Any, recipients: _Recipients, attempts: int) -> Claimed:
    return Claimed(
        row.id, row.key, row.account_id, row.contact_id, row.room_id, row.payload or [], row.parts_sent,
        attempts, Guarantee(row.guarantee), Category(row.category), recipients.wxid(row.contact_id, row.room_id),
        recipients.name(row.contact_id, row.room_id),
    )  # fmt: skip


def _sent_since(column: Any, ids: set[int], since: datetime, categories: Sequence[str]) -> Any:
    moment = func.coalesce(T.c.sent_at, T.c.claimed_at)
    return (
        select(column, func.count())
        .where(column.in_(ids), T.c.state.in_(COUNTED_STATES), T.c.category.in_(categories), moment >= since)
        .group_by(column)
    )


def braked_sop_ids(session: Session) -> frozenset[str]:
    """SOPs the automatic brake holds (`bot.retention`, state `paused`): their planned rows
    wait, untouched, until the SOP is resumed."""
    query = select(SopBrake.sop_id).where(SopBrake.state == "paused")
    return frozenset(session.execute(query).scalars())


def _not_held(held_sops: Collection[str]) -> Any:
    """Rows of no braked SOP (a row of no SOP at all is never held)."""
    return or_(T.c.sop_id.is_(None), T.c.sop_id.not_in(sorted(held_sops)))


def _counts(
    session: Session, rows: Sequence[Any], now: datetime, rules: Rules, held_sops: Collection[str] = ()
) -> dict[str, Any]:
    capped = [Category.MARKETING] if rules.lifecycle_exempt else [Category.MARKETING, Category.LIFECYCLE]
    day_start = local_day_start(now, rules.tz)
    day_end = day_start + timedelta(days=1)
    contact_ids = {r.contact_id for r in rows if r.contact_id is not None and r.category in capped}
    room_ids = {r.room_id for r in rows if r.room_id is not None and r.category != Category.REPLY}
    today: Counter[int] = Counter()
    week: Counter[int] = Counter()
    rooms_today: Counter[int] = Counter()
    pending: dict[int, Counter[int]] = defaultdict(Counter)
    if contact_ids:
        today.update(dict(session.execute(_sent_since(T.c.contact_id, contact_ids, day_start, capped)).all()))
        week.update(dict(session.execute(_sent_since(T.c.contact_id, contact_ids, now - WEEK, capped)).all()))
        waiting = (
            select(T.c.contact_id, T.c.priority, func.count())
            .where(
                T.c.contact_id.in_(contact_ids),
                T.c.state == OutboxState.PLANNED.value,
                T.c.category.in_(capped),
                T.c.not_before < day_end,
            )
            .group_by(T.c.contact_id, T.c.priority)
        )
        if held_sops:  # rows a brake holds take no slot from the others
            waiting = waiting.where(_not_held(held_sops))
        for cid, priority, count in session.execute(waiting):
            pending[cid][priority] += count
    if room_ids:
        rooms_today.update(
            dict(
                session.execute(
                    _sent_since(T.c.room_id, room_ids, day_start, [Category.MARKETING, Category.LIFECYCLE])
                ).all()
            )
        )
    return {"today": today, "week": week, "rooms_today": rooms_today, "pending": pending}


def claim_due(
    session: Session,
    account_id: str,
    now: datetime,
    limit: int,
    worker_id: str,
    rules: Rules,
    *,
    scan: int = 1000,
    origins: Sequence[Origin] | None = None,
    held_sops: Collection[str] = (),
) -> ClaimResult:
    """Look at up to `scan` due rows of the account in priority order, decide each, and claim
    up to `limit` to send; rows to skip or defer are settled on the way. Rows of the
    `held_sops` (braked SOPs) are not looked at: they stay planned, as they are."""
    query = select(*_COLUMNS).where(
        T.c.state == OutboxState.PLANNED.value, T.c.account_id == account_id, T.c.not_before <= now
    )
    if origins is not None:
        query = query.where(T.c.origin.in_(origins))
    if held_sops:
        query = query.where(_not_held(held_sops))
    due = session.execute(
        query.order_by(T.c.priority.desc(), T.c.not_before, T.c.id)
        .limit(max(limit, scan))
        .with_for_update(skip_locked=True)
    ).all()
    result = ClaimResult()
    if not due:
        return result
    recipients = _recipients(session, due)
    counts = _counts(session, due, now, rules, held_sops)
    spells_over = _spells_over(session, due)
    for row in due:
        if len(result.claimed) >= limit:
            break
        if row.id in spells_over:
            result.skipped.append((row.id, spells_over[row.id]))
            continue
        candidate = Candidate(
            Category(row.category),
            row.priority,
            QuietPolicy(row.quiet_policy),
            row.expires_at,
            row.room_id is not None,
        )
        if candidate.to_room:
            recipient = recipients.rooms.get(row.room_id, Recipient(False))
            seen = Counts(today=counts["rooms_today"][row.room_id])
        else:
            recipient = recipients.contacts.get(row.contact_id, Recipient(False))
            pending: Counter[int] = counts["pending"][row.contact_id]
            if is_capped(candidate, rules):
                pending[row.priority] -= 1  # this row is no longer waiting, whatever is decided
            higher = sum(n for p, n in pending.items() if p > row.priority)
            seen = Counts(counts["today"][row.contact_id], counts["week"][row.contact_id], higher)
        decision: Ruling = decide(candidate, recipient, seen, now, rules)
        if decision.verdict is Verdict.SKIP:
            result.skipped.append((row.id, decision.reason))
        elif decision.verdict is Verdict.DEFER:
            assert decision.until is not None
            result.deferred.append((row.id, decision.until, decision.reason))
        else:
            if candidate.to_room:
                counts["rooms_today"][row.room_id] += candidate.category is not Category.REPLY
            elif is_capped(candidate, rules):
                counts["today"][row.contact_id] += 1
                counts["week"][row.contact_id] += 1
            result.claimed.append(_claimed(row, recipients, row.attempts + 1))
    _write(
        session,
        [{"b_id": c.id, "attempts": c.attempts} for c in result.claimed],
        state=OutboxState.SENDING.value,
        claimed_by=worker_id,
        claimed_at=now,
        updated_at=now,
        attempts=bindparam("attempts"),
        reason=None,
    )
    _write(
        session,
        [{"b_id": i, "reason": reason} for i, reason in result.skipped],
        state=OutboxState.SKIPPED.value,
        reason=bindparam("reason"),
        updated_at=now,
    )
    _write(
        session,
        [{"b_id": i, "until": until, "reason": reason} for i, until, reason in result.deferred],
        not_before=bindparam("until"),
        reason=bindparam("reason"),
        updated_at=now,
    )
    return result


def _write(session: Session, params: list[dict[str, Any]], **values: Any) -> None:
    if params:
        statement = update(T).where(T.c.id == bindparam("b_id")).values(**values)
        session.execute(statement, params, execution_options={"synchronize_session": False})


def mark_sent(session: Session, sent: Iterable[tuple[int, datetime, str | None, int]]) -> None:
    """Rows whose every part went out: (id, sent_at, transport message id, parts)."""
    _write(
        session,
        [{"b_id": i, "sent": at, "msg": msg, "parts": parts} for i, at, msg, parts in sent],
        state=OutboxState.SENT.value,
        sent_at=bindparam("sent"),
        transport_msg_id=bindparam("msg"),
        parts_sent=bindparam("parts"),
        updated_at=bindparam("sent"),
        reason=None,
    )


def mark_progress(session: Session, row_id: int, parts_sent: int, now: datetime) -> None:
    session.execute(update(T).where(T.c.id == row_id).values(parts_sent=parts_sent, updated_at=now))


def set_state(
    session: Session,
    row_ids: Iterable[int],
    state: OutboxState,
    reason: str,
    now: datetime,
    *,
    not_before: datetime | None = None,
) -> None:
    values: dict[str, Any] = {"state": state.value, "reason": reason, "updated_at": now}
    if not_before is not None:
        values["not_before"] = not_before
    if state is OutboxState.PLANNED:
        values |= {"claimed_by": None, "claimed_at": None}
    _write(session, [{"b_id": i} for i in row_ids], **values)


def take_orphans(
    session: Session,
    me: str,
    live_workers: set[str],
    account_ids: Sequence[str],
    *,
    mine_too: bool = False,
    limit: int = 1000,
) -> list[Claimed]:
    """Rows left in `sending` by workers that are gone (and, with `mine_too`, by this worker
    itself, e.g. a lane that crashed mid-batch), claimed for this worker so that no other
    live worker resolves them too."""
    owners = [w for w in live_workers if w != me or not mine_too]
    rows = session.execute(
        select(*_COLUMNS, T.c.claimed_by)
        .where(
            T.c.state == OutboxState.SENDING.value,
            T.c.account_id.in_(account_ids),
            or_(T.c.claimed_by.is_(None), T.c.claimed_by.not_in(owners)),
        )
        .order_by(T.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    _write(session, [{"b_id": r.id} for r in rows], claimed_by=me)
    recipients = _recipients(session, rows)
    return [_claimed(r, recipients, r.attempts) for r in rows]


def state_counts(session: Session, account_id: str | None = None) -> dict[str, int]:
    query = select(T.c.state, func.count()).group_by(T.c.state)
    if account_id:
        query = query.where(T.c.account_id == account_id)
    return dict(session.execute(query).all())


def held_by_account(session: Session, held_sops: Collection[str]) -> dict[str, int]:
    """Planned rows per account that a brake holds back."""
    if not held_sops:
        return {}
    query = (
        select(T.c.account_id, func.count())
        .where(T.c.state == OutboxState.PLANNED.value, T.c.sop_id.in_(sorted(held_sops)))
        .group_by(T.c.account_id)
    )
    return {str(account): int(count) for account, count in session.execute(query).all()}


def waiting_for_quiet_hours(session: Session, now: datetime, until: datetime) -> int:
    """Planned rows that quiet hours hold back: due after `now`, by the time they end."""
    query = select(func.count()).where(
        T.c.state == OutboxState.PLANNED.value, T.c.not_before > now, T.c.not_before <= until
    )
    return int(session.execute(query).scalar_one())


def queued_by_account(session: Session) -> dict[str, int]:
    """Planned rows per account."""
    query = (
        select(T.c.account_id, func.count())
        .where(T.c.state == OutboxState.PLANNED.value)
        .group_by(T.c.account_id)
    )
    return {str(account): int(count) for account, count in session.execute(query).all()}


def recent_sends(session: Session, account_id: str, since: datetime) -> list[datetime]:
    """When the account sent, for its pacer after a restart or a hand-over between daemons.
    A send whose outcome is uncertain (`sending`, left by a daemon that died, or `unknown`)
    may have gone out: it counts, at its row's last write, so the interval and the caps
    hold across a kill -9 too."""
    sent = session.execute(
        select(T.c.sent_at).where(
            T.c.account_id == account_id, T.c.state == OutboxState.SENT.value, T.c.sent_at >= since
        )
    ).scalars()
    uncertain = session.execute(
        select(T.c.updated_at).where(
            T.c.account_id == account_id,
            T.c.state.in_([OutboxState.SENDING.value, OutboxState.UNKNOWN.value]),
            T.c.updated_at >= since,
        )
    ).scalars()
    return [*sent, *(at for at in uncertain if at is not None)]
