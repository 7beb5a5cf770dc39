"""Contact events produced inside one unit of work: written to `contact_events` with the
work, published to the account's pipeline only after the commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from bot.events import ContactEventKind, ContactEventRecorded
from bot.store.models import Contact, ContactEvent, EventRelay
from bot.store.upsert import insert_for


@dataclass
class EventLog:
    """What one unit of work did to contacts, in order. Call `flush()` before the commit."""

    session: Session
    relay: bool = False  # outside the daemon: leave the events for the daemon to publish
    events: list[ContactEventRecorded] = field(default_factory=list)
    _accounts: dict[int, str] = field(default_factory=dict)
    _pending: list[dict[str, Any]] = field(default_factory=list)

    def account_of(self, contact_id: int) -> str:
        if contact_id not in self._accounts:
            self._accounts[contact_id] = self.session.execute(
                select(Contact.account_id).where(Contact.id == contact_id)
            ).scalar_one()
        return self._accounts[contact_id]

    def know(self, contact_id: int, account_id: str) -> None:
        self._accounts[contact_id] = account_id

    def record(
        self,
        contact_id: int,
        kind: ContactEventKind,
        at: datetime,
        *,
        detail: str | None = None,
        ref: str | None = None,
    ) -> None:
        account = self.account_of(contact_id)
        self._pending.append(
            {"contact_id": contact_id, "kind": kind.value, "at": at, "detail": detail, "ref": ref}
        )
        self.events.append(ContactEventRecorded(account, contact_id, kind, at, detail, ref))

    def flush(self) -> None:
        if not self._pending:
            return
        table: Any = ContactEvent.__table__
        statement = insert_for(self.session, table)
        if self.relay:
            ids = [
                row[0]
                for row in self.session.execute(
                    statement.returning(table.c.id, sort_by_parameter_order=True), self._pending
                )
            ]
            accounts = [e.account_id for e in self.events[len(self.events) - len(self._pending) :]]
            relay: Any = EventRelay.__table__
            self.session.execute(
                insert_for(self.session, relay),
                [{"event_id": i, "account_id": a} for i, a in zip(ids, accounts, strict=True)],
            )
        else:
            self.session.execute(statement, self._pending)
        self._pending.clear()
