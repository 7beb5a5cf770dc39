"""Things that happen to a contact, recorded in `contact_events` and published to the
account's pipeline. Lifecycle SOPs are anchored on these kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ContactEventKind(StrEnum):
    FRIEND_ADDED = "friend_added"  # detail: the source (AddSource)
    FRIEND_DELETED = "friend_deleted"  # detail: how it was detected (DeletionSeen); 删粉
    JOINED_GROUP = "joined_group"
    LEFT_GROUP = "left_group"
    FIRST_PURCHASE = "first_purchase"
    PURCHASE = "purchase"
    TIER_CHANGED = "tier_changed"  # detail: the new tier id
    TAG_ADDED = "tag_added"  # detail: the tag
    TAG_REMOVED = "tag_removed"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    FIELD_SET = "field_set"  # detail: 生日=05-20 (a tag rule's set_field, or an import)
    REFERRAL_CONVERTED = "referral_converted"  # on the referrer; ref: the buyer's order


class AddSource(StrEnum):
    """How a contact became a friend (the `detail` of FRIEND_ADDED)."""

    REQUEST = "request"  # their friend request, accepted
    REFERRAL = "referral"  # their friend request carried a referral code
    GROUP = "group"  # met in a group first, then added
    IMPORT = "import"  # brought in by an import
    SYNC = "sync"  # already a friend at the first contact-list sync


class DeletionSeen(StrEnum):
    """How a deletion (删粉) was detected (the `detail` of FRIEND_DELETED)."""

    SEND_REFUSED = "send_refused"  # a send answered "not a friend"
    SYNC_MISSING = "sync_missing"  # gone from the contact list at a sync
    TRANSPORT = "transport"  # the transport's own event


# The `ref` of events kept in the history that lifecycle steps do not follow: where a contact
# starts (first seen with WeChat tags that place it), and the tag mirror's note of the tier tag
# it put on WeChat.
INITIAL_STATE_REF = "initial"
MIRROR_REF = "mirror"
HISTORY_ONLY_REFS = (INITIAL_STATE_REF, MIRROR_REF)


@dataclass(frozen=True)
class ContactEventRecorded:
    """Published after a contact event was committed to the database."""

    account_id: str
    contact_id: int
    kind: ContactEventKind
    at: datetime
    detail: str | None = None
    ref: str | None = None


@dataclass
class Outcome:
    """What one unit of work did, for whoever runs it: the contact events it committed (to
    publish now), how many outbox rows it planned (the delivery worker is woken), and
    whether the later stages should leave the event alone (`halt`: e.g. a redelivery)."""

    events: list[ContactEventRecorded] = field(default_factory=list)
    planned: int = 0
    halt: bool = False
