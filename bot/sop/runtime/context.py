"""What a template sees: plain data about the recipient, the day, the SOP and the catalog.

    contact   name, alias, display_name, tier, tier_name, tags, days_since_joined,
              last_order (date, days_ago, amount, products) or none, total_spent, order_count,
              birthday (as stored: 05-20, 农历08-15), birthday_text (农历八月十五), city,
              gender, fields (every profile field by name; a missing one is "")
                                                                (none for a group)
    group     name, type, tags, member_count                    (none for a contact)
    today     date, year, month, day, weekday, weekday_name, is_working_day, holiday,
              festival, festivals, next_festival (name, date, days), days_to_next_festival
    sop       id, name;  step  id, name
    catalog   pick(n, tag), first(tag), get(id), items — priced for the recipient's tier

`CONTEXT_SCHEMA` lists every variable and attribute; `sopbot check` rejects templates that
use anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from bot.birthdays import describe as describe_birthday
from bot.calendar import Calendar
from bot.config.units import WEEKDAY_CN, WEEKDAYS
from bot.sop.authoring.catalog import CatalogFile, CatalogView
from bot.sop.authoring.loader import Sop, Step
from bot.sop.authoring.targeting import Tiers
from bot.sop.runtime.records import ContactRecord, RoomRecord

_WEEKDAY_NAMES = {number: name for name, number in WEEKDAYS.items()}

# Every variable → its attributes (None: a plain value). Templates are linted against it.
CONTEXT_SCHEMA: dict[str, frozenset[str] | None] = {
    "contact": frozenset(
        {
            "name",
            "alias",
            "display_name",
            "tier",
            "tier_name",
            "tags",
            "days_since_joined",
            "last_order",
            "total_spent",
            "order_count",
            "birthday",
            "birthday_text",
            "city",
            "gender",
            "fields",
        }
    ),
    "group": frozenset({"name", "type", "tags", "member_count"}),
    "today": frozenset(
        {
            "date",
            "year",
            "month",
            "day",
            "weekday",
            "weekday_name",
            "is_working_day",
            "holiday",
            "festival",
            "festivals",
            "next_festival",
            "days_to_next_festival",
        }
    ),
    "sop": frozenset({"id", "name"}),
    "step": frozenset({"id", "name"}),
    "catalog": frozenset({"pick", "first", "get", "items"}),
}
NESTED_SCHEMA: dict[str, frozenset[str]] = {
    "last_order": frozenset({"date", "days_ago", "amount", "products"}),
    "next_festival": frozenset({"name", "date", "days"}),
}
ITEM_FIELDS = frozenset(
    {
        "id",
        "name",
        "price",
        "list_price",
        "discounted",
        "benefit",
        "description",
        "image",
        "url",
        "tags",
        "currency",
    }
)


def _yuan(cents: int) -> int | float:
    return cents // 100 if cents % 100 == 0 else cents / 100


def day_context(calendar: Calendar, day: date) -> dict[str, Any]:
    """`today`: the date seen in the SOP's time zone, with festival facts."""
    festivals = [f.name for f in calendar.festivals_on(day)]
    info = calendar.day_info(day)
    try:
        upcoming, when = calendar.next_festival(day)
        next_festival: dict[str, Any] | None = {
            "name": upcoming.name,
            "date": when.isoformat(),
            "days": (when - day).days,
        }
    except ValueError:
        next_festival = None
    return {
        "date": day.isoformat(),
        "year": day.year,
        "month": day.month,
        "day": day.day,
        "weekday": WEEKDAY_CN[day.weekday()],
        "weekday_name": _WEEKDAY_NAMES[day.weekday()],
        "is_working_day": info.is_working_day,
        "holiday": info.holiday_name or "",
        "festival": "、".join(festivals),
        "festivals": festivals,
        "next_festival": next_festival,
        "days_to_next_festival": next_festival["days"] if next_festival else None,
    }


def contact_context(contact: ContactRecord, tiers: Tiers, day: date, tz: Any) -> dict[str, Any]:
    joined = contact.joined_at.astimezone(tz).date() if contact.joined_at else None
    last_order = None
    if contact.last_order_at is not None:
        ordered = contact.last_order_at.astimezone(tz).date()
        last_order = {
            "date": ordered.isoformat(),
            "days_ago": (day - ordered).days,
            "amount": _yuan(contact.last_order_cents),
            "products": list(contact.last_order_items),
        }
    return {
        "name": contact.name,
        "alias": contact.alias or "",
        "display_name": contact.alias or contact.name,
        "tier": contact.tier,
        "tier_name": tiers.name(contact.tier),
        "tags": sorted(contact.tags),
        "days_since_joined": (day - joined).days if joined else None,
        "last_order": last_order,
        "total_spent": _yuan(contact.total_spent_cents),
        "order_count": contact.order_count,
        "birthday": contact.birthday or "",
        "birthday_text": describe_birthday(contact.birthday),
        "city": contact.profile.get("城市", ""),
        "gender": contact.profile.get("性别", ""),
        "fields": ProfileFields(contact.profile),
    }


class ProfileFields(dict[str, str]):
    """`contact.fields.会员卡号`: a field this contact lacks is empty text, not an error (fields
    come from imports and differ from one contact to the next)."""

    def __missing__(self, key: str) -> str:
        return ""


def group_context(room: RoomRecord) -> dict[str, Any]:
    return {
        "name": room.topic,
        "type": room.group_type or "",
        "tags": sorted(room.tags),
        "member_count": room.member_count,
    }


@dataclass
class ContextFactory:
    """Builds contexts for one occurrence: the shared parts once, the recipient per call."""

    sop: Sop
    step: Step
    local: datetime  # the occurrence, in the SOP's time zone
    calendar: Calendar
    catalog: CatalogFile
    tiers: Tiers

    def __post_init__(self) -> None:
        self.day = self.local.date()
        self._shared = {
            "today": day_context(self.calendar, self.day),
            "sop": {"id": self.sop.id, "name": self.sop.spec.name},
            "step": {"id": self.step.id, "name": self.step.spec.name or self.step.id},
        }
        self._catalogs: dict[str | None, CatalogView] = {}

    def catalog_for(self, tier: str | None) -> CatalogView:
        if tier not in self._catalogs:
            self._catalogs[tier] = CatalogView(self.catalog, self.day, tier)
        return self._catalogs[tier]

    def for_contact(self, contact: ContactRecord) -> dict[str, Any]:
        return {
            **self._shared,
            "contact": contact_context(contact, self.tiers, self.day, self.sop.tz),
            "group": None,
            "catalog": self.catalog_for(contact.tier),
        }

    def for_room(self, room: RoomRecord) -> dict[str, Any]:
        return {
            **self._shared,
            "contact": None,
            "group": group_context(room),
            "catalog": self.catalog_for(None),
        }


def sample_contact(tier: str, now: datetime, orders: int = 3) -> ContactRecord:
    """A made-up contact for previews and the check's dry render, with `orders` paid orders
    (`Tiers.sample_orders`: what the tier takes at least)."""
    return ContactRecord(
        id=0,
        account_id="main",
        wxid="wxid_sample",
        name="王芳",
        alias="王姐",
        tier=tier,
        tags=frozenset({"活动喜好型", "新品关注型"}),
        birthday="03-08",
        profile={"城市": "上海", "性别": "女", "生日": "03-08", "会员卡号": "VIP0042"},
        joined_at=now - timedelta(days=42),
        total_spent_cents=42_900 * orders,
        order_count=orders,
        last_order_at=now - timedelta(days=12) if orders else None,
        last_order_cents=39_900 if orders else 0,
        last_order_items=("羊绒围巾",) if orders else (),
    )


def sample_room(group_type: str | None) -> RoomRecord:
    topic = f"【{group_type}】小美好物分享群" if group_type else "小美好物分享群"
    return RoomRecord(0, "main", "sample@chatroom", topic, group_type, 86, frozenset())
