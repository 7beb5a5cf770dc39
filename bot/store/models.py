"""The tables. Every timestamp is timezone-aware UTC (see `UTCDateTime`).

Schema changes go through Alembic migrations in `bot/store/migrations/`, never through
`create_all` on a live database.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class Account(SQLModel, table=True):
    """A WeChat account the bot logs in to (one per `[[accounts]]` in settings)."""

    __tablename__ = "accounts"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(default="")
    transport: str = Field(default="sandbox", max_length=16)
    self_wxid: str | None = Field(default=None, max_length=128)
    self_name: str | None = None
    status: str = Field(default="offline", max_length=16)  # offline | online | paused
    paused_reason: str | None = None
    last_login_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class Contact(SQLModel, table=True):
    """A person the account knows: a friend, or someone met in a group."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "wxid", name="uq_contacts_account_wxid"),
        Index("ix_contacts_account_tier", "account_id", "tier"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    wxid: str = Field(max_length=128, description="The transport's current id for the contact.")
    name: str = Field(default="")
    alias: str | None = Field(default=None, description="The operator's remark name (备注).")
    weixin: str | None = Field(default=None, max_length=64, description="微信号, a stable handle.")
    phone: str | None = Field(default=None, max_length=32, index=True)
    unionid: str | None = Field(default=None, max_length=64, index=True)
    gender: str | None = Field(default=None, max_length=8)
    city: str | None = None
    is_friend: bool = Field(default=False)
    blocked: bool = Field(default=False, description="Deleted us or blocked us: never send.")
    opted_out: bool = Field(default=False, description="Said 退订/TD: no marketing messages.")
    tier: str = Field(default="basic", max_length=32)
    tier_since: datetime | None = _ts()
    birthday: str | None = Field(
        default=None, max_length=16, description="MM-DD, YYYY-MM-DD, or lunar 农历MM-DD (bot.birthdays)"
    )
    # 0007_contact_fields: the operator's own fields (会员卡号, 职业 …) by name; 城市/性别/生日
    # have their columns
    custom_fields: dict[str, str] | None = _json()
    first_seen_at: datetime | None = _ts()
    friend_added_at: datetime | None = _ts()
    last_message_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class Room(SQLModel, table=True):
    """A WeChat group (群)."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("account_id", "room_wxid", name="uq_rooms_account_wxid"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    room_wxid: str = Field(max_length=128)
    topic: str = Field(default="")
    owner_wxid: str | None = Field(default=None, max_length=128)
    group_type: str | None = Field(default=None, max_length=64, description="e.g. 精英会员群")
    member_count: int = Field(default=0)
    dissolved: bool = Field(default=False)
    first_seen_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class RoomMember(SQLModel, table=True):
    __tablename__ = "room_members"

    room_id: int = Field(foreign_key="rooms.id", primary_key=True)
    member_wxid: str = Field(primary_key=True, max_length=128)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    display_name: str = Field(default="")
    inviter_wxid: str | None = Field(default=None, max_length=128, index=True)
    joined_at: datetime | None = _ts()
    left_at: datetime | None = _ts()


class InboundMessage(SQLModel, table=True):
    """A message someone sent to the bot, 1:1 or in a group."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        UniqueConstraint("account_id", "transport_msg_id", name="uq_inbound_account_msg"),
        Index("ix_inbound_contact_time", "contact_id", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    transport_msg_id: str = Field(max_length=128)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id")
    room_id: int | None = Field(default=None, foreign_key="rooms.id", index=True)
    kind: str = Field(default="text", max_length=16)  # text | image | link | mini_program | file | other
    text: str = Field(default="")
    mentions_self: bool = Field(default=False)
    sent_at: datetime | None = _ts()
    received_at: datetime | None = _ts()


class Tag(SQLModel, table=True):
    __tablename__ = "tags"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True)
    category: str | None = Field(default=None, max_length=32)
    description: str | None = None


class ContactTag(SQLModel, table=True):
    """A tag on a contact, with why it is there."""

    __tablename__ = "contact_tags"

    contact_id: int = Field(foreign_key="contacts.id", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", primary_key=True, index=True)
    source: str = Field(max_length=16)  # rule | order | referral | wechat | manual
    evidence: str | None = Field(default=None, description="Message excerpt, order id, …")
    evidence_ref: str | None = Field(default=None, max_length=128)
    added_at: datetime | None = _ts()
    expires_at: datetime | None = _ts(index=True)


class TierChange(SQLModel, table=True):
    """Tier history: every change with its cause."""

    __tablename__ = "tier_changes"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    from_tier: str | None = Field(default=None, max_length=32)
    to_tier: str = Field(max_length=32)
    cause: str = Field(default="")
    evidence_ref: str | None = Field(default=None, max_length=128)
    changed_at: datetime | None = _ts()


class ContactEvent(SQLModel, table=True):
    """Lifecycle events of a contact (friend added, joined a group, first purchase, …),
    the anchors of lifecycle SOPs."""

    __tablename__ = "contact_events"
    __table_args__ = (Index("ix_contact_events_kind_time", "kind", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id", index=True)
    kind: str = Field(max_length=32)
    at: datetime | None = _ts()
    detail: str | None = None
    ref: str | None = Field(default=None, max_length=128)


class PendingProfile(SQLModel, table=True):
    """A row of `sopbot import-contacts` whose person is not a contact yet: applied to the
    first contact that matches it when one appears (friend added, group join, sync)."""

    __tablename__ = "pending_profiles"

    id: int | None = Field(default=None, primary_key=True)
    account_id: str | None = Field(default=None, max_length=32)
    wxid: str | None = Field(default=None, max_length=128, index=True, description="wxid or 微信号")
    phone: str | None = Field(default=None, max_length=32, index=True)
    unionid: str | None = Field(default=None, max_length=64)
    alias: str | None = Field(default=None, description="备注")
    fields: dict[str, str] | None = _json()
    tags: list[str] | None = _json()
    source: str = Field(default="", description="file:line it came from")
    created_at: datetime | None = _ts()


class Order(SQLModel, table=True):
    """A purchase, from a CSV import or the order webhook. Idempotent on `order_id`."""

    __tablename__ = "orders"

    order_id: str = Field(primary_key=True, max_length=64)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    buyer_wxid: str | None = Field(default=None, max_length=128, index=True)
    buyer_phone: str | None = Field(default=None, max_length=32, index=True)
    buyer_unionid: str | None = Field(default=None, max_length=64, index=True)
    amount_cents: int = Field(default=0, sa_type=BigInteger)
    status: str = Field(default="paid", max_length=16)  # paid | refunded | cancelled
    discounted: bool = Field(default=False)
    referrer: str | None = Field(default=None, max_length=128)
    items: list[dict[str, Any]] | None = _json()
    ordered_at: datetime | None = _ts(index=True)
    source: str = Field(default="csv", max_length=16)
    imported_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    # signals (0002_signals): the account the order belongs to, when the shop knows it
    account_id: str | None = Field(default=None, max_length=32)


class OutboxMessage(SQLModel, table=True):
    """The delivery ledger: one row per (SOP, step, occurrence, recipient) or per
    (rule reply, inbound message). `key` is unique, so a message is planned once."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_account_sent", "account_id", "state", "sent_at"),
        Index("ix_outbox_contact_sent", "contact_id", "state", "sent_at"),
        # the claim order: an account's planned rows by priority, then due time
        Index("ix_outbox_claim", "account_id", "state", text("priority DESC"), "not_before", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    account_id: str = Field(foreign_key="accounts.id", max_length=32)
    origin: str = Field(max_length=16)  # bot.policies.Origin
    sop_id: str | None = Field(default=None, max_length=64)
    step_id: str | None = Field(default=None, max_length=64)
    occurrence: str | None = Field(default=None, max_length=40)
    contact_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    room_id: int | None = Field(default=None, foreign_key="rooms.id", index=True)
    category: str = Field(default="marketing", max_length=16)  # bot.policies.Category
    priority: int = Field(default=0)
    payload: list[dict[str, Any]] | None = _json()
    state: str = Field(default="planned", max_length=16)
    attempts: int = Field(default=0)
    not_before: datetime | None = _ts()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _ts()
    sent_at: datetime | None = _ts()
    transport_msg_id: str | None = Field(default=None, max_length=128)
    reason: str | None = None
    created_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()
    # delivery policy, chosen by the send path (0003_delivery)
    quiet_policy: str = Field(default="wait", max_length=8)  # bot.policies.QuietPolicy
    guarantee: str = Field(default="at_most_once", max_length=16)  # bot.policies.Guarantee
    expires_at: datetime | None = _ts()
    parts_sent: int = Field(default=0)


class DeliveryPause(SQLModel, table=True):
    """An operator's pause: `scope` is an account id, or `*` for every account."""

    __tablename__ = "delivery_pauses"

    scope: str = Field(primary_key=True, max_length=32)
    reason: str = Field(default="")
    paused_by: str = Field(default="operator", max_length=64)
    paused_at: datetime | None = _ts()


class DeliveryWorker(SQLModel, table=True):
    """A running delivery worker; rows it claimed are recovered once it is gone."""

    __tablename__ = "delivery_workers"

    id: str = Field(primary_key=True, max_length=64)
    host: str = Field(max_length=255)
    pid: int
    started_at: datetime | None = _ts()
    heartbeat_at: datetime | None = _ts()


class AccountLease(SQLModel, table=True):
    """Which daemon runs an account, until when. The holder renews it; another daemon takes
    the account over once it has expired (or at once, on the same host, when the holder's
    process is gone)."""

    __tablename__ = "account_leases"

    account_id: str = Field(primary_key=True, max_length=32)
    holder: str = Field(max_length=64, description="The daemon's instance id (host-pid-random).")
    host: str = Field(max_length=255)
    pid: int
    acquired_at: datetime | None = _ts()
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SopRun(SQLModel, table=True):
    """The SOP run ledger: one row per SOP occurrence, with what was decided for it."""

    __tablename__ = "sop_runs"
    __table_args__ = (UniqueConstraint("sop_id", "step_id", "occurrence", name="uq_sop_runs_occurrence"),)

    id: int | None = Field(default=None, primary_key=True)
    sop_id: str = Field(max_length=64)
    step_id: str = Field(max_length=64)
    occurrence: str = Field(max_length=40)
    decision: str = Field(max_length=16)  # ran | caught_up | skipped_missed | failed
    planned: int = Field(default=0)
    detail: str | None = None
    decided_at: datetime | None = _ts()
    # 0005_pipeline: a big occurrence is planned in chunks; None while that is under way (a
    # daemon that died meanwhile leaves it None, and the next start finishes the planning)
    finished_at: datetime | None = _ts()
    # 0006_leases: tries of an occurrence that failed (retried within the SOP's grace), and
    # the daemon planning it (an unfinished occurrence is resumed once that daemon is gone)
    attempts: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    planner: str | None = Field(default=None, max_length=64)


# -- signals (0002_signals) -----------------------------------------------------------


class RuleHit(SQLModel, table=True):
    """A tag rule matched a message; counted for `min_hits` within a window."""

    __tablename__ = "rule_hits"
    __table_args__ = (Index("ix_rule_hits_contact_rule_time", "contact_id", "rule_id", "hit_at"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contacts.id")
    rule_id: str = Field(max_length=64)
    hit_at: datetime | None = _ts()
    message_ref: str | None = Field(default=None, max_length=128)
    excerpt: str | None = None
    fired: bool = Field(default=False, description="The rule's actions ran on this hit.")


class Referral(SQLModel, table=True):
    """Someone brought someone in: a group invite, a referral code, an order's referrer.
    Converted when the referred person buys."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("referrer_id", "referred_key", name="uq_referrals_pair"),)

    id: int | None = Field(default=None, primary_key=True)
    referrer_id: int = Field(foreign_key="contacts.id", index=True)
    referred_key: str = Field(max_length=160, index=True)  # wxid:… | phone:… | unionid:…
    referred_id: int | None = Field(default=None, foreign_key="contacts.id", index=True)
    via: str = Field(max_length=16)  # room_invite | code | order
    ref: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = _ts()
    converted_at: datetime | None = _ts()
    converted_order_id: str | None = Field(default=None, max_length=64)


class ReferralCode(SQLModel, table=True):
    """A contact's own referral code, to put in posters and invite texts."""

    __tablename__ = "referral_codes"

    code: str = Field(primary_key=True, max_length=16)
    contact_id: int = Field(foreign_key="contacts.id", unique=True)
    created_at: datetime | None = _ts()


class EventRelay(SQLModel, table=True):
    """Contact events recorded outside the daemon (e.g. `sopbot import-orders`), waiting
    for the daemon to publish them to the account's pipeline."""

    __tablename__ = "event_relay"

    event_id: int = Field(foreign_key="contact_events.id", primary_key=True)
    account_id: str = Field(max_length=32)


# -- wechaty (0004_wechaty) -----------------------------------------------------------


class WechatIdentity(SQLModel, table=True):
    """Which puppet id stands for which of our contacts. Some puppets give a person a new id
    after a re-login; the wechaty transport matches the new id to the old person on stable
    fields (微信号, remark name, name + avatar) and keeps every id it has seen here."""

    __tablename__ = "wechat_identities"
    __table_args__ = (
        UniqueConstraint("account_id", "puppet_id", name="uq_wechat_identities_puppet"),
        Index("ix_wechat_identities_canonical", "account_id", "canonical_wxid"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(max_length=32)
    puppet_id: str = Field(
        max_length=128, description="The id the gateway uses for the person now or before."
    )
    canonical_wxid: str = Field(max_length=128, description="sopbot's id for the person (contacts.wxid).")
    weixin: str | None = Field(default=None, max_length=64)
    alias: str | None = None
    name: str | None = None
    avatar: str | None = None
    matched_by: str = Field(default="new", max_length=16)  # new | weixin | alias | name_avatar
    first_seen_at: datetime | None = _ts()
    last_seen_at: datetime | None = _ts()


# -- silence (0010_silence) ------------------------------------------------------------
# when a contact's silence began (`bot.sop.runtime.silence`): their last message, the start
# of the friendship, or when sopbot first saw them; the sweep reads a range of each
Index("ix_contacts_last_message_at", Contact.last_message_at)
Index("ix_contacts_friend_added_at", Contact.friend_added_at)
Index("ix_contacts_first_seen_at", Contact.first_seen_at)


# -- results (0008_rollups) ------------------------------------------------------------
# Derived from the tables above by `bot.results.rollups`, and rebuildable from them at any
# time (`sopbot report --rebuild`): nothing here is the only copy of a fact.

# a group's messages by time (replies to the group's SOP messages), and whether a member
# spoke in it in a period (one index-only probe per member)
Index("ix_inbound_room_time", InboundMessage.room_id, InboundMessage.sent_at)
Index(
    "ix_inbound_room_contact_time", InboundMessage.room_id, InboundMessage.contact_id, InboundMessage.sent_at
)
# who was sent a marketing message in a period: one index-only probe per contact
Index(
    "ix_outbox_contact_category_sent",
    OutboxMessage.contact_id,
    OutboxMessage.state,
    OutboxMessage.category,
    OutboxMessage.sent_at,
)


class DailyRollup(SQLModel, table=True):
    """A counter per account, local day, metric and key (a source, an SOP step, a tag …);
    see `bot.results.rollups` for the metrics."""

    __tablename__ = "daily_rollups"

    account_id: str = Field(primary_key=True, max_length=32)
    day: date = Field(primary_key=True)
    metric: str = Field(primary_key=True, max_length=32)
    key: str = Field(default="", primary_key=True, max_length=255)
    value: int = Field(default=0, sa_type=BigInteger)


class RollupMark(SQLModel, table=True):
    """How far the rollups have read a source table: the last row id (or time) counted."""

    __tablename__ = "rollup_marks"

    source: str = Field(primary_key=True, max_length=32)
    last_id: int = Field(default=0, sa_type=BigInteger)
    last_at: datetime | None = _ts()
    updated_at: datetime | None = _ts()


class RollupPending(SQLModel, table=True):
    """A row the rollups saw but could not count yet: an outbox row not settled, or an id a
    concurrent transaction may still commit (PostgreSQL hands out ids before the commit)."""

    __tablename__ = "rollup_pending"

    source: str = Field(primary_key=True, max_length=32)
    row_id: int = Field(primary_key=True, sa_type=BigInteger)
    since: datetime | None = _ts()


class OrderTouch(SQLModel, table=True):
    """An order of a known contact with the marketing messages it is attributed to: the
    latest (last touch) and the earliest (first touch) within the order window before it."""

    __tablename__ = "order_touches"
    __table_args__ = (Index("ix_order_touches_account_day", "account_id", "day"),)

    order_id: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(max_length=32)
    contact_id: int = Field(index=True)
    day: date
    ordered_at: datetime | None = _ts()
    amount_cents: int = Field(default=0, sa_type=BigInteger)
    paid: bool = Field(default=True)
    last_sop: str | None = Field(default=None, max_length=64)
    last_step: str | None = Field(default=None, max_length=64)
    last_sent_at: datetime | None = _ts()
    first_sop: str | None = Field(default=None, max_length=64)
    first_step: str | None = Field(default=None, max_length=64)
    first_sent_at: datetime | None = _ts()


# -- retention (0009_retention) --------------------------------------------------------
# the brake counts an SOP's 1:1 sends since a moment: one index-only range per SOP
Index(
    "ix_outbox_sop_sent",
    OutboxMessage.sop_id,
    OutboxMessage.state,
    OutboxMessage.sent_at,
    OutboxMessage.contact_id,
)


class SopBrake(SQLModel, table=True):
    """An SOP the automatic brake paused (`bot.retention`): its planned rows wait in the
    outbox until an operator resumes it. The row stays after a resume (state `resumed`):
    the brake counts the SOP's sends from `resumed_at` on."""

    __tablename__ = "sop_brakes"

    sop_id: str = Field(primary_key=True, max_length=64)
    state: str = Field(default="paused", max_length=16)  # paused | resumed
    reason: str = Field(default="")
    tripped_at: datetime | None = _ts()
    sends: int = Field(default=0)
    deletions: int = Field(default=0)
    opt_outs: int = Field(default=0)
    complaints: int = Field(default=0)
    resumed_at: datetime | None = _ts()
    resumed_by: str | None = Field(default=None, max_length=64)


class Alert(SQLModel, table=True):
    """A loss alert (删粉预警) sent to the admins: one per spike, `key` names the spike."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_kind_scope", "kind", "account_id", "sop_id", "window_end"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=255, unique=True)
    kind: str = Field(max_length=16)  # account_hour | account_day | sop_day
    account_id: str | None = Field(default=None, max_length=32)
    sop_id: str | None = Field(default=None, max_length=64)
    count: int = Field(default=0)
    threshold: int = Field(default=0)
    window_start: datetime | None = _ts()
    window_end: datetime | None = _ts()
    message: str = Field(default="")
    created_at: datetime | None = _ts()


# -- account health (0011_health) ------------------------------------------------------------
# an account's 1:1 messages of the last day, for its complaint count (bot/delivery/health.py)
Index("ix_inbound_account_time", InboundMessage.account_id, InboundMessage.sent_at)
