"""The recorder's writes: what the transport reports about people, rooms and messages,
stored in the caller's transaction (functions never commit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from bot.store.models import Contact, InboundMessage, Room, RoomMember
from bot.store.upsert import insert_new, upsert
from bot.wechat.types import ContactInfo, Message, RoomInfo


def upsert_contact(
    session: Session, account_id: str, info: ContactInfo, now: datetime, *, first_tier: str = "basic"
) -> int:
    """Store what the transport says about a person; returns our contact id. A new contact
    starts on `first_tier` (the ladder's first level)."""
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
        "tier": first_tier,
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


def is_member(session: Session, room_id: int, wxid: str) -> bool:
    """Whether `wxid` is in the room now (known as a member and not left)."""
    found = session.execute(
        select(RoomMember.left_at).where(RoomMember.room_id == room_id, RoomMember.member_wxid == wxid)
    ).first()
    return found is not None and found[0] is None


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


_REFRESHED = ("name", "alias", "weixin", "phone", "gender", "city")


@dataclass(frozen=True)
class Known:
    """What the database holds about the account's contacts, for a bulk sync to compare."""

    ids: dict[str, int]  # wxid → contact id
    fields: dict[str, tuple[object, ...]]  # wxid → (name, alias, weixin, phone, gender, city, is_friend)


def known_contacts(session: Session, account_id: str) -> Known:
    rows = session.execute(
        select(Contact.wxid, Contact.id, *(getattr(Contact, f) for f in _REFRESHED), Contact.is_friend).where(
            Contact.account_id == account_id
        )
    ).all()
    return Known({r[0]: int(r[1]) for r in rows}, {r[0]: tuple(r[2:]) for r in rows})


def sync_contacts(
    session: Session,
    account_id: str,
    people: Sequence[ContactInfo],
    known: Known,
    now: datetime,
    *,
    first_tier: str,
) -> list[int]:
    """Store a chunk of a contact sync with a few statements instead of one per person:
    new people inserted, changed ones updated (with the same rules as `upsert_contact`: a
    missing field keeps what was known, a group member view never downgrades a friend),
    unchanged ones left alone. Updates `known`; returns the contact ids in order."""
    fresh: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    for info in people:
        before = known.fields.get(info.wxid)
        if before is None:
            fresh.append({
                "account_id": account_id, "wxid": info.wxid, "name": info.name, "alias": info.alias,
                "weixin": info.weixin, "phone": info.phone, "gender": info.gender, "city": info.city,
                "is_friend": info.is_friend, "blocked": False, "opted_out": False, "tier": first_tier,
                "first_seen_at": now, "updated_at": now,
            })  # fmt: skip
            continue
        reported = [getattr(info, f) for f in _REFRESHED]
        kept = [
            new if new is not None or field == "name" else old
            for field, new, old in zip(_REFRESHED, reported, before[:-1], strict=True)
        ]
        after = (*kept, bool(before[-1]) or info.is_friend)
        if after != before:
            known.fields[info.wxid] = after
            columns = dict(zip((*_REFRESHED, "is_friend"), after, strict=True))
            changed.append({"b_id": known.ids[info.wxid], **columns, "b_now": now})
    if fresh:
        insert_new(session, Contact.__table__, fresh, conflict=["account_id", "wxid"])
        wxids = [str(row["wxid"]) for row in fresh]
        for start in range(0, len(wxids), 500):
            for wxid, contact_id in session.execute(
                select(Contact.wxid, Contact.id).where(
                    Contact.account_id == account_id, Contact.wxid.in_(wxids[start : start + 500])
                )
            ):
                known.ids[wxid] = int(contact_id)
        for row in fresh:
            known.fields[str(row["wxid"])] = (*(row[f] for f in _REFRESHED), row["is_friend"])
    if changed:
        table = Contact.__table__
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(**{f: bindparam(f) for f in (*_REFRESHED, "is_friend")}, updated_at=bindparam("b_now"))
        )
        session.execute(statement, changed, execution_options={"synchronize_session": False})
    return [known.ids[info.wxid] for info in people]
