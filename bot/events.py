"""Things that happen to a contact, recorded in `contact_events` and published on the
account's dispatcher. Lifecycle SOPs are anchored on these kinds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class ContactEventKind(StrEnum):
    FRIEND_ADDED = "friend_added"
    JOINED_GROUP = "joined_group"
    LEFT_GROUP = "left_group"
    FIRST_PURCHASE = "first_purchase"
    PURCHASE = "purchase"
    TIER_CHANGED = "tier_changed"  # detail: the new tier id
    TAG_ADDED = "tag_added"  # detail: the tag
    TAG_REMOVED = "tag_removed"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    REFERRAL_CONVERTED = "referral_converted"  # on the referrer; ref: the buyer's order


@dataclass(frozen=True)
class ContactEventRecorded:
    """Published after a contact event was committed to the database."""

    account_id: str
    contact_id: int
    kind: ContactEventKind
    at: datetime
    detail: str | None = None
    ref: str | None = None
