"""What an SOP reaches, as plain records: a snapshot of contacts and groups taken from the
database by `bot.sop.runtime.audience`, kept apart so templates can be checked and previewed
without loading the database layer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class ContactRecord:
    id: int
    account_id: str
    wxid: str
    name: str
    alias: str | None
    tier: str
    tags: frozenset[str]
    birthday: str | None
    joined_at: datetime | None
    total_spent_cents: int = 0
    order_count: int = 0
    last_order_at: datetime | None = None
    last_order_cents: int = 0
    last_order_items: tuple[str, ...] = ()
    profile: Mapping[str, str] = field(default_factory=dict)  # 城市, 性别, 生日 and custom fields

    @property
    def flags(self) -> dict[str, bool]:
        """Yes/no fields of the tag expression language (the snapshot holds only friends
        who can be reached)."""
        return {"opted_out": False, "blocked": False, "is_friend": True, "has_ordered": self.order_count > 0}


@dataclass(frozen=True, slots=True)
class RoomRecord:
    id: int
    account_id: str
    room_wxid: str
    topic: str
    group_type: str | None
    member_count: int
    tags: frozenset[str]


class LeftOut(StrEnum):
    """Why a friend is not in the snapshot an SOP reaches (counted in the run ledger)."""

    OPTED_OUT = "opted out"  # said 退订 / TD
    BLOCKED = "blocked"  # deleted or blocked the account


@dataclass
class Directory:
    contacts: list[ContactRecord]
    rooms: list[RoomRecord]
    # with `load_directory(left_out=True)`: the friends an SOP may not reach, and why
    left_out: list[tuple[ContactRecord, LeftOut]] = field(default_factory=list)
