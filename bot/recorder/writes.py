"""The recorder's writes: what the transport reports about people, rooms and messages,
stored in the caller's transaction (functions never commit)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, or_, select, update
from sqlmodel import Session

from bot.store.models import Contact, InboundMessage, Room, RoomMember
from bot.store.upsert import insert_for, insert_new, upsert
from bot.wechat.types import ContactInfo, Message, RoomInfo


def upsert_contact(
    session: Session, account_id: str, info: ContactInfo, now: datetime, *, first_tier: str = "basic"
) -> int:
    """Store what the transport says about a person; returns our contact id. A new contact
    starts on `first_tier` (the ladder's first level). A view that says "friend" makes a
    known contact a friend, except one who deleted the account (`blocked`): only a new
    friendship (`bot.store.friendships.befriend`) undoes a deletion."""
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
    table: Any = Contact.__table__
    statement = insert_for(session, table).values(**values)
    changes: dict[str, Any] = {name: statement.excluded[name] for name in refreshed}
    if info.is_friend:  # a group member view never downgrades a friend
        changes["is_friend"] = case((table.c.blocked, table.c.is_friend), else_=statement.excluded.is_friend)
    statement = statement.on_conflict_do_update(index_elements=["account_id", "wxid"], set_=changes)
    contact_id = session.execute(statement.returning(table.c.id)).scalar_one()
    return int(contact_id)


@dataclass(frozen=True)
class FriendState:
    """A contact as it was before an event changed it."""

    contact_id: int
    is_friend: bool
    blocked: bool  # deleted or blocked the account

    @property
    def friend(self) -> bool:
        return self.is_friend and not self.blocked


def friend_state(session: Session, account_id: str, wxid: str) -> FriendState | None:
    row = session.execute(
        select(Contact.id, Contact.is_friend, Contact.blocked).where(
            Contact.account_id == account_id, Contact.wxid == wxid
        )
    ).first()
    return FriendState(int(row[0]), bool(row[1]), bool(row[2])) if row is not None else None


def met_in_a_group(session: Session, account_id: str, contact_id: int, wxid: str) -> bool:
    """Whether the contact was ever seen as a member of one of the account's groups."""
    found = session.execute(
        select(RoomMember.room_id)
        .join(Room, Room.id == RoomMember.room_id)
        .where(
            Room.account_id == account_id,
            or_(RoomMember.contact_id == contact_id, RoomMember.member_wxid == wxid),
        )
        .limit(1)
    ).first()
    return found is not None


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
        # only ever later: a message delivered late with an older time must not move a
        # silence back (it names the spell a win-back message belongs to)
        session.execute(
            update(Contact)
            .where(
                Contact.id == contact_id,
                or_(Contact.last_message_at.is_(None), Contact.last_message_at < message.sent_at),
            )
            .values(last_message_at=message.sent_at)
        )
    return message_id


_REFRESHED = ("name", "alias", "weixin", "phone", "gender", "city")


@dataclass(frozen=True)
class Known:
    """What the database holds about the account's contacts, for a bulk sync to compare."""

    ids: dict[str, int]  # wxid → contact id
    fields: dict[str, tuple[object, ...]]  # wxid → (name, alias, weixin, phone, gender, city, is_friend)
    blocked: set[str]  # wxids of contacts who deleted or blocked the account

    def is_friend(self, wxid: str) -> bool:
        known = self.fields.get(wxid)
        return known is not None and bool(known[-1])


def known_contacts(session: Session, account_id: str) -> Known:
    rows = session.execute(
        select(
            Contact.wxid,
            Contact.id,
            *(getattr(Contact, f) for f in _REFRESHED),
            Contact.is_friend,
            Contact.blocked,
        ).where(Contact.account_id == account_id)
    ).all()
    return Known(
        {r[0]: int(r[1]) for r in rows}, {r[0]: tuple(r[2:-1]) for r in rows}, {r[0] for r in rows if r[-1]}
    )


def sync_contacts(
    session: Session,
    account_id: str,
    people: Sequence[ContactInfo],
    known: Known,
    now: datetime,
    *,
    first_tier: str,
    friends: bool = True,
) -> list[int]:
    """Store a chunk of a contact sync with a few statements instead of one per person:
    new people inserted, changed ones updated (with the same rules as `upsert_contact`: a
    missing field keeps what was known, a group member view never downgrades a friend, a
    contact who deleted the account stays deleted), unchanged ones left alone. `friends`:
    the chunk is the account's own contact list, whose `is_friend` counts; a room's member
    view (False) leaves friendship as it is (a new member is stored as no friend). Updates
    `known`; returns the contact ids in order."""
    fresh: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    for info in people:
        before = known.fields.get(info.wxid)
        if before is None:
            fresh.append({
                "account_id": account_id, "wxid": info.wxid, "name": info.name, "alias": info.alias,
                "weixin": info.weixin, "phone": info.phone, "gender": info.gender, "city": info.city,
                "is_friend": info.is_friend and friends, "blocked": False, "opted_out": False, "tier": first_tier,
                "first_seen_at": now, "updated_at": now,
            })  # fmt: skip
            continue
        reported = [getattr(info, f) for f in _REFRESHED]
        kept = [
            new if new is not None or field == "name" else old
            for field, new, old in zip(_REFRESHED, reported, before[:-1], strict=True)
        ]
        befriended = friends and info.is_friend and info.wxid not in known.blocked
        after = (*kept, bool(before[-1]) or befriended)
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
            .values(
                **{f: bindparam(f) for f in _REFRESHED},
                # a deletion seen meanwhile (a refused send) is not undone by this sync
                is_friend=case((table.c.blocked, table.c.is_friend), else_=bindparam("is_friend")),
                updated_at=bindparam("b_now"),
            )
        )
        session.execute(statement, changed, execution_options={"synchronize_session": False})
    return [known.ids[info.wxid] for info in people]


def friend_ids(session: Session, account_id: str) -> dict[str, int]:
    """The account's friends: wxid → contact id."""
    rows = session.execute(
        select(Contact.wxid, Contact.id).where(Contact.account_id == account_id, Contact.is_friend.is_(True))
    )
    return {str(wxid): int(contact_id) for wxid, contact_id in rows}
