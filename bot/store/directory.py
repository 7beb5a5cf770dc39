"""Who the account knows: accounts, contacts, rooms, members, inbound messages, tags.

Functions take an open session and the clock's `now`; they never commit (the caller's
`Database.session()` block does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session

from bot.store.models import (
    Account,
    Contact,
    ContactEvent,
    ContactTag,
    InboundMessage,
    Room,
    RoomMember,
    Tag,
    TierChange,
)
from bot.store.upsert import upsert
from bot.wechat.types import ContactInfo, Message, RoomInfo


def ensure_account(session: Session, account_id: str, *, name: str, transport: str, now: datetime) -> None:
    upsert(
        session,
        Account,
        {"id": account_id, "name": name, "transport": transport, "status": "offline", "updated_at": now},
        conflict=["id"],
        update=["name", "transport", "updated_at"],
    )


def mark_online(session: Session, account_id: str, me: ContactInfo | None, now: datetime) -> None:
    values: dict[str, object] = {"updated_at": now}
    if me is not None:
        values |= {"status": "online", "self_wxid": me.wxid, "self_name": me.name, "last_login_at": now}
    else:
        values |= {"status": "offline"}
    session.execute(update(Account).where(Account.id == account_id).values(**values))


def upsert_contact(session: Session, account_id: str, info: ContactInfo, now: datetime) -> int:
    """Store what the transport says about a person; returns our contact id."""
    values = {
        "account_id": account_id,
        "wxid": info.wxid,
        "name": info.name,
        "alias": info.alias,
        "weixin": info.weixin,
        "phone": info.phone,
        "gender": info.gender,
        "city": info.city,
        "is_friend": info.is_friend,
        "first_seen_at": now,
        "updated_at": now,
    }
    refreshed = ["name", "updated_at"] + [
        column for column in ("alias", "weixin", "phone", "gender", "city") if values[column] is not None
    ]
    if info.is_friend:
        refreshed.append("is_friend")  # a group member view never downgrades a friend
    contact_id = upsert(
        session, Contact, values, conflict=["account_id", "wxid"], update=refreshed, returning=Contact.id
    )
    assert contact_id is not None
    return int(contact_id)


def contact_id_for(session: Session, account_id: str, wxid: str) -> int | None:
    return session.execute(
        select(Contact.id).where(Contact.account_id == account_id, Contact.wxid == wxid)
    ).scalar_one_or_none()


def upsert_room(session: Session, account_id: str, room: RoomInfo, now: datetime) -> int:
    values = {
        "account_id": account_id,
        "room_wxid": room.room_wxid,
        "topic": room.topic,
        "owner_wxid": room.owner_wxid,
        "member_count": len(room.member_wxids),
        "dissolved": False,
        "first_seen_at": now,
        "updated_at": now,
    }
    room_id = upsert(
        session,
        Room,
        values,
        conflict=["account_id", "room_wxid"],
        update=["topic", "owner_wxid", "member_count", "dissolved", "updated_at"],
        returning=Room.id,
    )
    assert room_id is not None
    return int(room_id)


def set_room_topic(session: Session, room_id: int, topic: str, now: datetime) -> None:
    session.execute(update(Room).where(Room.id == room_id).values(topic=topic, updated_at=now))


def record_member(
    session: Session,
    room_id: int,
    member: ContactInfo,
    contact_id: int | None,
    *,
    joined_at: datetime | None,
    inviter_wxid: str | None = None,
) -> None:
    """A member is in the room; a join event supplies the time and inviter."""
    values = {
        "room_id": room_id,
        "member_wxid": member.wxid,
        "contact_id": contact_id,
        "display_name": member.name,
        "inviter_wxid": inviter_wxid,
        "joined_at": joined_at,
        "left_at": None,
    }
    refreshed = ["contact_id", "display_name", "left_at"]
    if joined_at is not None:
        refreshed += ["joined_at", "inviter_wxid"]
    upsert(session, RoomMember, values, conflict=["room_id", "member_wxid"], update=refreshed)


def record_member_left(session: Session, room_id: int, member_wxid: str, now: datetime) -> None:
    session.execute(
        update(RoomMember)
        .where(RoomMember.room_id == room_id, RoomMember.member_wxid == member_wxid)
        .values(left_at=now)
    )


def record_message(
    session: Session, account_id: str, message: Message, contact_id: int, room_id: int | None, now: datetime
) -> int | None:
    """Store an inbound message once; returns its id, or None if it was already stored."""
    message_id = upsert(
        session,
        InboundMessage,
        {
            "account_id": account_id,
            "transport_msg_id": message.msg_id,
            "contact_id": contact_id,
            "room_id": room_id,
            "kind": message.kind.value,
            "text": message.text,
            "mentions_self": message.mentions_self,
            "sent_at": message.sent_at,
            "received_at": now,
        },
        conflict=["account_id", "transport_msg_id"],
        returning=InboundMessage.id,
    )
    if message_id is not None:
        session.execute(
            update(Contact).where(Contact.id == contact_id).values(last_message_at=message.sent_at)
        )
    return message_id


def record_event(
    session: Session,
    contact_id: int,
    kind: str,
    at: datetime,
    *,
    detail: str | None = None,
    ref: str | None = None,
) -> None:
    session.add(ContactEvent(contact_id=contact_id, kind=kind, at=at, detail=detail, ref=ref))


def mark_friend_added(session: Session, contact_id: int, now: datetime) -> None:
    session.execute(
        update(Contact)
        .where(Contact.id == contact_id, Contact.friend_added_at.is_(None))
        .values(friend_added_at=now)
    )


def ensure_tag(session: Session, name: str, category: str | None = None) -> int:
    tag_id = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one_or_none()
    if tag_id is None:
        upsert(session, Tag, {"name": name, "category": category}, conflict=["name"])
        tag_id = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one()
    return int(tag_id)


def tag_contact(
    session: Session,
    contact_id: int,
    tag: str,
    *,
    source: str,
    now: datetime,
    evidence: str | None = None,
    evidence_ref: str | None = None,
    expires_at: datetime | None = None,
) -> bool:
    """Put `tag` on the contact; returns True when it is new. An existing tag keeps its
    first evidence but takes the later expiry."""
    tag_id = ensure_tag(session, tag)
    existing = session.get(ContactTag, (contact_id, tag_id))
    if existing is not None:
        if expires_at is None or (existing.expires_at and existing.expires_at < expires_at):
            existing.expires_at = expires_at
        return False
    session.add(
        ContactTag(
            contact_id=contact_id,
            tag_id=tag_id,
            source=source,
            evidence=evidence,
            evidence_ref=evidence_ref,
            added_at=now,
            expires_at=expires_at,
        )
    )
    return True


def set_tier(
    session: Session,
    contact_id: int,
    tier: str,
    *,
    cause: str,
    now: datetime,
    evidence_ref: str | None = None,
) -> bool:
    """Move the contact to `tier`, recording the change and its cause. False if unchanged."""
    contact = session.get(Contact, contact_id)
    if contact is None or contact.tier == tier:
        return False
    session.add(
        TierChange(
            contact_id=contact_id,
            from_tier=contact.tier,
            to_tier=tier,
            cause=cause,
            evidence_ref=evidence_ref,
            changed_at=now,
        )
    )
    contact.tier = tier
    contact.tier_since = now
    return True


@dataclass(frozen=True)
class ContactRow:
    """A contact as the operator sees it in `sopbot contacts`."""

    id: int
    account_id: str
    wxid: str
    name: str
    alias: str | None
    tier: str
    tags: tuple[str, ...]
    is_friend: bool
    opted_out: bool
    last_message_at: datetime | None


def list_contacts(session: Session, account_id: str | None = None) -> list[ContactRow]:
    query = select(Contact).order_by(Contact.account_id, Contact.id)
    if account_id:
        query = query.where(Contact.account_id == account_id)
    contacts: Sequence[Contact] = session.execute(query).scalars().all()
    tag_rows = session.execute(
        select(ContactTag.contact_id, Tag.name).join(Tag, Tag.id == ContactTag.tag_id).order_by(Tag.name)
    ).all()
    tags: dict[int, list[str]] = {}
    for contact_id, tag_name in tag_rows:
        tags.setdefault(contact_id, []).append(tag_name)
    return [
        ContactRow(
            id=c.id or 0,
            account_id=c.account_id,
            wxid=c.wxid,
            name=c.name,
            alias=c.alias,
            tier=c.tier,
            tags=tuple(tags.get(c.id or 0, ())),
            is_friend=c.is_friend,
            opted_out=c.opted_out,
            last_message_at=c.last_message_at,
        )
        for c in contacts
    ]


def count_rows(session: Session, model: type) -> int:
    return int(session.execute(select(func.count()).select_from(model)).scalar_one())
