"""Who an SOP step reaches: a snapshot of the directory (contacts with tags and order
totals, groups with their types) and the pure selection over it.

The daemon takes a fresh snapshot per occurrence; `sopbot plan` takes one and selects
from it for every day it shows. Both go through `select_contacts` / `select_rooms`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import and_, func, select
from sqlmodel import Session

from bot.birthdays import birthday_matches
from bot.contact_fields import profile
from bot.sop.authoring.groups import GroupTyping, any_matches
from bot.sop.authoring.loader import AudienceLayer, Step
from bot.sop.runtime.records import ContactRecord, Directory, LeftOut, RoomRecord
from bot.store.models import Contact, ContactTag, Order, Room, Tag

__all__ = [
    "ContactRecord",
    "Directory",
    "LeftOut",
    "RoomRecord",
    "load_directory",
    "select_contacts",
    "step_miss",
]

PAID = "paid"


def load_directory(
    session: Session,
    groups: GroupTyping,
    *,
    accounts: Iterable[str] | None = None,
    contact_ids: Iterable[int] | None = None,
    with_contacts: bool = True,
    with_rooms: bool = True,
    left_out: bool = False,
) -> Directory:
    """Everyone an SOP may reach: friends who have not blocked us or opted out, and live
    groups. `contact_ids` limits the snapshot (a lifecycle sweep needs a few people);
    `left_out` also loads the friends who blocked us or opted out, apart, so a run can
    say whom it left out."""
    wanted_accounts = list(accounts) if accounts is not None else None
    wanted_ids = list(contact_ids) if contact_ids is not None else None
    query = select(
        Contact.id,
        Contact.account_id,
        Contact.wxid,
        Contact.name,
        Contact.alias,
        Contact.tier,
        Contact.birthday,
        func.coalesce(Contact.friend_added_at, Contact.first_seen_at),
        Contact.blocked,
        Contact.opted_out,
        Contact.city,
        Contact.gender,
        Contact.custom_fields,
    ).where(Contact.is_friend.is_(True))
    if not left_out:
        query = query.where(Contact.blocked.is_(False), Contact.opted_out.is_(False))
    if wanted_accounts is not None:
        query = query.where(Contact.account_id.in_(wanted_accounts))
    if wanted_ids is not None:
        query = query.where(Contact.id.in_(wanted_ids))
    rows = session.execute(query.order_by(Contact.id)).all() if with_contacts else []
    ids = {row[0] for row in rows} if wanted_ids is not None else None
    tags = _tags(session, ids) if rows else {}
    orders = _orders(session, ids) if rows else {}
    contacts: list[ContactRecord] = []
    unreachable: list[tuple[ContactRecord, LeftOut]] = []
    for (
        cid,
        account,
        wxid,
        name,
        alias,
        tier,
        birthday,
        joined,
        blocked,
        opted_out,
        city,
        gender,
        own,
    ) in rows:
        record = ContactRecord(
            cid,
            account,
            wxid,
            name,
            alias,
            tier,
            tags.get(cid, frozenset()),
            birthday,
            joined,
            *orders.get(cid, (0, 0, None, 0, ())),
            profile=profile(city, gender, birthday, own),
        )
        if blocked:  # the delivery worker's order: blocked before opted out
            unreachable.append((record, LeftOut.BLOCKED))
        elif opted_out:
            unreachable.append((record, LeftOut.OPTED_OUT))
        else:
            contacts.append(record)
    rooms: list[RoomRecord] = []
    if with_rooms:
        room_query = select(Room).where(Room.dissolved.is_(False))
        if wanted_accounts is not None:
            room_query = room_query.where(Room.account_id.in_(wanted_accounts))
        for room in session.execute(room_query.order_by(Room.id)).scalars():
            rule = groups.classify(room.topic)
            rooms.append(
                RoomRecord(
                    room.id or 0,
                    room.account_id,
                    room.room_wxid,
                    room.topic,
                    rule.type if rule else room.group_type,
                    room.member_count,
                    frozenset(rule.tags) if rule else frozenset(),
                )
            )
    return Directory(contacts, rooms, unreachable)


def _tags(session: Session, ids: set[int] | None) -> dict[int, frozenset[str]]:
    query = select(ContactTag.contact_id, Tag.name).join(Tag, Tag.id == ContactTag.tag_id)
    if ids is not None:
        query = query.where(ContactTag.contact_id.in_(ids))
    grouped: dict[int, set[str]] = {}
    for contact_id, name in session.execute(query):
        grouped.setdefault(contact_id, set()).add(name)
    return {cid: frozenset(names) for cid, names in grouped.items()}


def _orders(
    session: Session, ids: set[int] | None
) -> dict[int, tuple[int, int, datetime | None, int, tuple[str, ...]]]:
    """Per contact: total paid, order count, and the latest order's time, amount, items."""
    totals = (
        select(
            Order.contact_id,
            func.sum(Order.amount_cents).label("spent"),
            func.count().label("orders"),
            func.max(Order.ordered_at).label("last_at"),
        )
        .where(Order.status == PAID, Order.contact_id.is_not(None))
        .group_by(Order.contact_id)
    )
    if ids is not None:
        totals = totals.where(Order.contact_id.in_(ids))
    sub = totals.subquery()
    query = select(
        sub.c.contact_id, sub.c.spent, sub.c.orders, sub.c.last_at, Order.amount_cents, Order.items
    ).join(
        Order,
        and_(Order.contact_id == sub.c.contact_id, Order.ordered_at == sub.c.last_at, Order.status == PAID),
        isouter=True,
    )
    out: dict[int, tuple[int, int, datetime | None, int, tuple[str, ...]]] = {}
    for contact_id, spent, count, last_at, amount, items in session.execute(query):
        names = tuple(
            str(item.get("name", "")) for item in items or () if isinstance(item, dict) and item.get("name")
        )
        out[contact_id] = (int(spent or 0), int(count or 0), last_at, int(amount or 0), names)
    return out


def contact_miss(layer: AudienceLayer, contact: ContactRecord) -> str | None:
    """Why a contact is not in this audience layer; None when it is."""
    if layer.accounts is not None and contact.account_id not in layer.accounts:
        return f"account {contact.account_id} is not in {sorted(layer.accounts)}"
    if layer.tiers is not None and contact.tier not in layer.tiers:
        return f"tier {contact.tier} is not among {sorted(layer.tiers)}"
    if contact.tier in layer.exclude_tiers:
        return f"tier {contact.tier} is excluded"
    if layer.tags is not None and not layer.tags(contact):
        return "the tags condition does not hold"
    if layer.exclude is not None and layer.exclude(contact):
        return "the exclude condition holds"
    return None


def room_miss(layer: AudienceLayer, room: RoomRecord) -> str | None:
    """Why a group is not in this audience layer; None when it is."""
    if layer.accounts is not None and room.account_id not in layer.accounts:
        return f"account {room.account_id} is not in {sorted(layer.accounts)}"
    if layer.group_types is not None and room.group_type not in layer.group_types:
        return f"group type {room.group_type or '(none)'} is not among {sorted(layer.group_types)}"
    if layer.group_names and not any_matches(layer.group_names, room.topic):
        return "the group name matches none of group_names"
    if layer.group_tags is not None and not (layer.group_tags & room.tags):
        return "the group has none of group_tags"
    if layer.exclude_groups and any_matches(layer.exclude_groups, room.topic):
        return "the group name matches exclude_groups"
    return None


def select_contacts(directory: Directory, step: Step, day: date | None = None) -> list[ContactRecord]:
    """The contacts a step reaches (on `day`, for birthday steps)."""
    return [c for c in directory.contacts if step_miss(step, c, day) is None]


def step_miss(step: Step, recipient: ContactRecord | RoomRecord, day: date | None = None) -> str | None:
    """Why a step does not reach this contact or group (on `day`); None when it does.
    Fan-out and `sopbot preview` both decide through here."""
    if isinstance(recipient, RoomRecord):
        misses = (room_miss(layer, recipient) for layer in step.layers)
    else:
        misses = (contact_miss(layer, recipient) for layer in step.layers)
    for number, miss in enumerate(misses):
        if miss is not None:
            where = "the SOP's audience" if number == 0 else "the step's audience"
            return f"{where}: {miss}"
    if step.spec.birthday and day is not None and isinstance(recipient, ContactRecord):
        days = [day - timedelta(days=shift) for shift in step.spec.offset or [0]]
        if not any(birthday_matches(recipient.birthday, d) for d in days):
            return f"no birthday on {day:%m-%d} (birthday: {recipient.birthday or 'not set'})"
    return None


def select_rooms(directory: Directory, step: Step) -> list[RoomRecord]:
    return [r for r in directory.rooms if step_miss(step, r) is None]
