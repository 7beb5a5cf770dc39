"""Rooms take their group type from `sop/groups.yaml` whenever rooms are synced, joined or
renamed, and when the mapping changes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import Session

from bot.sop.authoring.groups import GroupTyping
from bot.store.models import Room


def apply_group_types(session: Session, typing: GroupTyping, now: datetime) -> int:
    """Store each room's type by its topic; returns how many rooms changed. A room no
    pattern matches keeps the type it has."""
    changed = 0
    for room_id, topic, current in session.execute(select(Room.id, Room.topic, Room.group_type)):
        wanted = typing.type_of(topic)
        if wanted is not None and wanted != current:
            session.execute(update(Room).where(Room.id == room_id).values(group_type=wanted, updated_at=now))
            changed += 1
    return changed
