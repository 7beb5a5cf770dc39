"""Adding and removing tags with their evidence, and the events that go with it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlmodel import Session

from bot.events import ContactEventKind
from bot.signals import sql
from bot.store import directory as d
from bot.store.eventlog import EventLog
from bot.store.models import ContactTag, Tag

_TAG_IDS: dict[tuple[int, str], int] = {}  # (engine id, tag name) → tag id; tags are never deleted


def tag_id(session: Session, name: str) -> int:
    """The tag's id, created if need be. Only ids another transaction committed are shared
    across sessions: an id this transaction just created does not exist for anyone else
    until it commits (and never, if it rolls back) — handing it to a concurrent sync of
    another account broke its foreign key on PostgreSQL."""
    key = (id(session.get_bind().engine), name)
    cached = _TAG_IDS.get(key)
    if cached is not None:
        return cached
    created: set[str] = session.info.setdefault("sopbot_new_tags", set())
    found = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one_or_none()
    if found is not None:
        if name not in created:
            _TAG_IDS[key] = int(found)
        return int(found)
    created.add(name)
    return d.ensure_tag(session, name)


def add_tag(
    session: Session,
    log: EventLog,
    contact_id: int,
    tag: str,
    *,
    source: str,
    now: datetime,
    evidence: str | None = None,
    evidence_ref: str | None = None,
    expires_at: datetime | None = None,
    known: dict[tuple[int, int], datetime | None] | None = None,
    defer: list[dict[str, Any]] | None = None,
) -> bool:
    """Put `tag` on the contact (a TAG_ADDED event when it is new). `known`: the
    contact's tags as (contact, tag id) → expiry, loaded up front for a batch. Like
    `directory.tag_contact`: an existing tag keeps its first evidence but takes the later
    expiry (none = never). Written with plain statements: this runs for every rule hit."""
    tid = tag_id(session, tag)
    connection = session.connection()
    key = {"contact": contact_id, "tag": tid}
    if known is not None:
        existing: Any = (known[(contact_id, tid)],) if (contact_id, tid) in known else None
    else:
        existing = connection.execute(sql.TAG_EXPIRY, key).first()
    if existing is not None:
        current = existing[0]
        if current is not None and (expires_at is None or current < expires_at):
            connection.execute(sql.SET_TAG_EXPIRY, {**key, "expires": expires_at})
            if known is not None:
                known[(contact_id, tid)] = expires_at
        return False
    if known is not None:
        known[(contact_id, tid)] = expires_at
    row = {
        **key,
        "source": source,
        "evidence": evidence,
        "ref": evidence_ref,
        "added": now,
        "expires": expires_at,
    }
    if defer is not None:
        defer.append(row)  # written in one statement with the batch (`known` makes it safe)
    else:
        connection.execute(sql.ADD_TAG, row)
    log.record(contact_id, ContactEventKind.TAG_ADDED, now, detail=tag, ref=evidence_ref)
    return True


def remove_tag(
    session: Session,
    log: EventLog,
    contact_id: int,
    tag: str,
    *,
    now: datetime,
    ref: str | None = None,
    source: str | None = None,
) -> bool:
    """Take `tag` off the contact (only one from `source`, when given)."""
    tag_id = session.execute(select(Tag.id).where(Tag.name == tag)).scalar_one_or_none()
    if tag_id is None:
        return False
    statement = delete(ContactTag).where(ContactTag.contact_id == contact_id, ContactTag.tag_id == tag_id)
    if source is not None:
        statement = statement.where(ContactTag.source == source)
    if session.execute(statement).rowcount == 0:  # type: ignore[attr-defined]
        return False
    log.record(contact_id, ContactEventKind.TAG_REMOVED, now, detail=tag, ref=ref)
    return True


def tags_by_source(session: Session, contact_id: int, source: str) -> set[str]:
    return set(
        session.execute(
            select(Tag.name)
            .join(ContactTag, ContactTag.tag_id == Tag.id)
            .where(ContactTag.contact_id == contact_id, ContactTag.source == source)
        ).scalars()
    )


def live_tags(session: Session, contact_id: int, now: datetime) -> list[str]:
    return list(
        session.execute(
            select(Tag.name)
            .join(ContactTag, ContactTag.tag_id == Tag.id)
            .where(
                ContactTag.contact_id == contact_id,
                or_(ContactTag.expires_at.is_(None), ContactTag.expires_at > now),
            )
            .order_by(Tag.name)
        ).scalars()
    )


def expire_tags(session: Session, log: EventLog, now: datetime) -> int:
    """Remove tags whose time is up; returns how many."""
    rows = session.execute(
        select(ContactTag.contact_id, Tag.name)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(ContactTag.expires_at.is_not(None), ContactTag.expires_at <= now)
    ).all()
    for contact_id, name in rows:
        remove_tag(session, log, contact_id, name, now=now, ref="expired")
    return len(rows)
