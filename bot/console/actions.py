"""What the console changes, each one transaction: pausing and resuming an account (the same
`delivery_pauses` rows `sopbot pause` and `#pause` write), resuming an SOP the retention
brake stopped, and opting a contact out or back in (as a 退订 rule does: the flag and an
`opted_out` / `opted_in` contact event, which the reports count)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from bot.delivery import control
from bot.events import ContactEventKind, ContactEventRecorded
from bot.store import Database
from bot.store.eventlog import EventLog
from bot.store.models import Contact

BY = "console"  # `paused_by`, and the ref of the contact events the console records

Publish = Callable[[Sequence[ContactEventRecorded]], None]


def pause_account(database: Database, account_id: str, reason: str, now: datetime) -> None:
    with database.session() as session:
        control.pause(session, account_id, reason, BY, now)


def resume_account(database: Database, account_id: str) -> bool:
    """True when the account was paused (its own pause; the pause of all accounts stays)."""
    with database.session() as session:
        return control.resume(session, account_id)


def set_opted_out(
    database: Database, contact_id: int, opted_out: bool, now: datetime, *, relay: bool
) -> tuple[bool | None, list[ContactEventRecorded]]:
    """Opt a contact out (or back in): (None, []) when there is no such contact, (False, [])
    when it already was so, else (True, the events to publish). Inside the daemon the caller
    publishes them to the account's reaction lanes (after the commit, from the event loop);
    from `sopbot console` alone they are left for the daemon to relay (`relay`)."""
    with database.session() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            return None, []
        if contact.opted_out == opted_out:
            return False, []
        events = EventLog(session, relay=relay)
        events.know(contact_id, contact.account_id)
        contact.opted_out = opted_out
        contact.updated_at = now
        kind = ContactEventKind.OPTED_OUT if opted_out else ContactEventKind.OPTED_IN
        events.record(contact_id, kind, now, detail="操作员在控制台设置 set by an operator", ref=BY)
        events.flush()
    return True, events.events


def resume_sop(database: Database, sop_id: str, now: datetime) -> bool:
    """Lift the retention brake on an SOP; False when it was not braked."""
    from bot.retention import store

    with database.session() as session:
        return bool(store.resume_sop(session, sop_id, BY, now))
