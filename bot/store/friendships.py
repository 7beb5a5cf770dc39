"""Friendships begin and end here: the one place that turns a contact's `is_friend` on or
off and records it, FRIEND_ADDED with how the contact came (`AddSource`) or FRIEND_DELETED
with how the deletion (删粉) was seen (`DeletionSeen`). Writes in the caller's transaction.

A deletion is recorded once: only a contact who is a friend can stop being one, and the
update that ends it says which rows it changed (two paths that see the same deletion at
once, a refused send and a sync, record it once between them). A contact who deleted the
account is also `blocked` (never sent to again) until a new friendship begins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from bot.events import AddSource, ContactEventKind, DeletionSeen
from bot.store.eventlog import EventLog
from bot.store.models import Contact, ContactEvent

_CHUNK = 500


def befriend(
    session: Session,
    events: EventLog,
    contact_id: int,
    source: AddSource,
    at: datetime,
    *,
    ref: str | None = None,
) -> None:
    """A friendship begins (or begins again, after a deletion): the contact is a friend, may
    be sent to, and its friendship starts `at`."""
    session.execute(
        update(Contact)
        .where(Contact.id == contact_id)
        .values(is_friend=True, blocked=False, friend_added_at=at, updated_at=at)
        .execution_options(synchronize_session=False)
    )
    events.record(contact_id, ContactEventKind.FRIEND_ADDED, at, detail=source.value, ref=ref)


def found_friends(events: EventLog, contact_ids: Sequence[int], at: datetime, *, ref: str | None) -> None:
    """Friends a contact sync found (already friends when sopbot first looked): recorded
    with source `sync` and their friendship left as the sync stored it (when it began is not
    known)."""
    for contact_id in contact_ids:
        events.record(contact_id, ContactEventKind.FRIEND_ADDED, at, detail=AddSource.SYNC.value, ref=ref)


def unfriend(
    session: Session, events: EventLog, contact_ids: Sequence[int], how: DeletionSeen, at: datetime
) -> list[int]:
    """The contacts deleted the account: those that were friends stop being friends, are
    blocked, and get one FRIEND_DELETED each. Returns their ids (the others were no friends:
    nothing to record)."""
    ended: list[int] = []
    for start in range(0, len(contact_ids), _CHUNK):
        chunk = list(contact_ids[start : start + _CHUNK])
        rows = session.execute(
            update(Contact)
            .where(Contact.id.in_(chunk), Contact.is_friend.is_(True))
            .values(is_friend=False, blocked=True, updated_at=at)
            .returning(Contact.id, Contact.account_id)
            .execution_options(synchronize_session=False)
        ).all()
        for contact_id, account_id in sorted(rows):
            events.know(int(contact_id), str(account_id))
            events.record(int(contact_id), ContactEventKind.FRIEND_DELETED, at, detail=how.value)
            ended.append(int(contact_id))
    return ended


def ever_friends(session: Session, contact_id: int) -> bool:
    """Whether the contact was a friend before (a FRIEND_ADDED is on record)."""
    found = session.execute(
        select(ContactEvent.id)
        .where(
            ContactEvent.contact_id == contact_id, ContactEvent.kind == ContactEventKind.FRIEND_ADDED.value
        )
        .limit(1)
    ).first()
    return found is not None
