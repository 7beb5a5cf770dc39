"""Who the account knows: accounts, contacts, rooms, members, inbound messages, tags.

Functions take an open session and the clock's `now`; they never commit (the caller's
`Database.session()` block does)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from bot.contact_fields import profile
from bot.store.models import (
    Account,
    Contact,
    ContactTag,
    Room,
    RoomMember,
    Tag,
)
from bot.store.upsert import upsert


def ensure_account(session: Session, account_id: str, *, name: str, transport: str, now: datetime) -> None:
    upsert(
        session,
        Account,
        {"id": account_id, "name": name, "transport": transport, "status": "offline", "updated_at": now},
        conflict=["id"],
        update=["name", "transport", "updated_at"],
    )


def mark_online(session: Session, account_id: str, me: tuple[str, str] | None, now: datetime) -> None:
    """The account logged in as `me` = (wxid, name), or logged out (None)."""
    values: dict[str, object] = {"updated_at": now}
    if me is not None:
        values |= {"status": "online", "self_wxid": me[0], "self_name": me[1], "last_login_at": now}
    else:
        values |= {"status": "offline"}
    session.execute(update(Account).where(Account.id == account_id).values(**values))


def contact_id_for(session: Session, account_id: str, wxid: str) -> int | None:
    return session.execute(
        select(Contact.id).where(Contact.account_id == account_id, Contact.wxid == wxid)
    ).scalar_one_or_none()


def reachable_friend_id(session: Session, account_id: str, wxid: str) -> int | None:
    """The contact, if the account can write to them 1:1: a friend who has not blocked it."""
    return session.execute(
        select(Contact.id).where(
            Contact.account_id == account_id,
            Contact.wxid == wxid,
            Contact.is_friend.is_(True),
            Contact.blocked.is_(False),
        )
    ).scalar_one_or_none()


def set_room_topic(session: Session, room_id: int, topic: str, now: datetime) -> None:
    session.execute(update(Room).where(Room.id == room_id).values(topic=topic, updated_at=now))


def record_member_left(session: Session, room_id: int, member_wxid: str, now: datetime) -> None:
    session.execute(
        update(RoomMember)
        .where(RoomMember.room_id == room_id, RoomMember.member_wxid == member_wxid)
        .values(left_at=now)
    )


def ensure_tag(session: Session, name: str, category: str | None = None) -> int:
    tag_id = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one_or_none()
    if tag_id is None:
        upsert(session, Tag, {"name": name, "category": category}, conflict=["name"])
        tag_id = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one()
    return int(tag_id)


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
    profile: dict[str, str]  # 城市, 性别, 生日 and the operator's own fields, by name


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
            profile=profile(c.city, c.gender, c.birthday, c.custom_fields),
        )
        for c in contacts
    ]
