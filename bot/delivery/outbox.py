"""The outbox ledger: every message any part of the bot wants to send is planned here
first, under a unique key, so it can be sent at most once and never silently dropped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from bot.delivery.payload import to_json
from bot.policies import Category, Guarantee, Origin, QuietPolicy
from bot.store.models import OutboxMessage
from bot.store.upsert import insert_new
from bot.wechat.types import Content


class OutboxState(StrEnum):
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"  # claimed, then the process died before the send was confirmed


def sop_key(sop_id: str, step_id: str, occurrence: str, recipient: str) -> str:
    """The idempotency key of an SOP send: (SOP, step, occurrence, recipient)."""
    return f"sop:{sop_id}:{step_id}:{occurrence}:{recipient}"


def reply_key(rule_id: str, account_id: str, inbound_msg_id: str) -> str:
    """The idempotency key of a rule reply: (rule, inbound message)."""
    return f"reply:{rule_id}:{account_id}:{inbound_msg_id}"


def recipient_ref(*, contact_id: int | None = None, room_id: int | None = None) -> str:
    if (contact_id is None) == (room_id is None):
        raise ValueError("a message goes to exactly one contact or one room")
    return f"contact:{contact_id}" if contact_id is not None else f"room:{room_id}"


@dataclass(frozen=True)
class PlannedMessage:
    """One message to one recipient, as a send path hands it to the outbox."""

    key: str
    account_id: str
    origin: Origin
    parts: Sequence[Content]
    not_before: datetime
    contact_id: int | None = None
    room_id: int | None = None
    category: Category = Category.MARKETING
    priority: int = 0
    sop_id: str | None = None
    step_id: str | None = None
    occurrence: str | None = None
    quiet_policy: QuietPolicy = QuietPolicy.WAIT
    guarantee: Guarantee = Guarantee.AT_MOST_ONCE
    expires_at: datetime | None = None  # not sent by then: skipped


def enqueue(session: Session, messages: Iterable[PlannedMessage], now: datetime, *, chunk: int = 2000) -> int:
    """Plan messages; a key that is already in the outbox is left alone (so re-running an
    occurrence, a reload or a retried webhook never plans a second copy). Returns how many
    rows were new."""
    inserted = 0
    batch: list[dict[str, object]] = []

    def flush() -> None:
        nonlocal inserted
        if batch:
            inserted += insert_new(session, OutboxMessage.__table__, batch, conflict=["key"])
            batch.clear()

    for message in messages:
        recipient_ref(contact_id=message.contact_id, room_id=message.room_id)
        batch.append(
            {
                "key": message.key,
                "account_id": message.account_id,
                "origin": Origin(message.origin).value,
                "sop_id": message.sop_id,
                "step_id": message.step_id,
                "occurrence": message.occurrence,
                "contact_id": message.contact_id,
                "room_id": message.room_id,
                "category": Category(message.category).value,
                "priority": message.priority,
                "payload": to_json(message.parts),
                "state": OutboxState.PLANNED.value,
                "attempts": 0,
                "not_before": message.not_before,
                "quiet_policy": QuietPolicy(message.quiet_policy).value,
                "guarantee": Guarantee(message.guarantee).value,
                "expires_at": message.expires_at,
                "parts_sent": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
        if len(batch) >= chunk:
            flush()
    flush()
    return inserted
