"""One SOP occurrence → one outbox row per recipient, recorded in the run ledger.

The ledger row (unique on SOP, step, occurrence) and the outbox rows (unique on SOP, step,
occurrence, recipient) are written in one transaction: a crash leaves neither, a second
scheduler or a re-run finds the ledger row and plans nothing.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from jinja2 import Template, TemplateError
from sqlalchemy import update
from sqlmodel import Session

from bot.delivery.outbox import Category, PlannedMessage, recipient_ref, sop_key
from bot.render import RenderError, parse_parts
from bot.sop.audience import ContactRecord, Directory, RoomRecord, select_contacts, select_rooms
from bot.sop.context import ContextFactory
from bot.sop.loader import Sop, SopSet, Step
from bot.sop.triggers import weekday_template
from bot.store.models import SopRun
from bot.store.upsert import insert_for

log = logging.getLogger("bot.sop")


class Decision(StrEnum):
    RAN = "ran"
    CAUGHT_UP = "caught_up"
    SKIPPED_MISSED = "skipped_missed"
    FAILED = "failed"


def occurrence_key(at: datetime, sop: Sop) -> str:
    """A calendar occurrence as the ledger and outbox keys name it: local time to the minute."""
    return at.astimezone(sop.tz).strftime("%Y-%m-%dT%H:%M")


def event_occurrence(event_id: int) -> str:
    """A lifecycle occurrence: the contact event it follows."""
    return f"ev{event_id}"


@dataclass
class Fanout:
    """The messages of one occurrence, and what could not be rendered."""

    messages: list[PlannedMessage] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    by_variant: Counter[str] = field(default_factory=Counter)


class _Templates:
    """Template lookup cached per (name, variant): one file check per tier, not per person."""

    def __init__(self, sopset: SopSet) -> None:
        self.renderer = sopset.renderer
        self._cache: dict[tuple[str, str | None], Template] = {}

    def get(self, name: str, variant: str | None) -> Template:
        key = (name, variant)
        if key not in self._cache:
            path = self.renderer.resolve(name, [variant] if variant else [])
            self._cache[key] = self.renderer.env.get_template(path)
        return self._cache[key]


def build_fanout(
    sopset: SopSet,
    sop: Sop,
    step: Step,
    at: datetime,
    occurrence: str,
    recipients: Iterable[ContactRecord | RoomRecord],
    *,
    not_before: datetime,
) -> Fanout:
    """Render the step for every recipient into planned outbox messages."""
    local = at.astimezone(sop.tz)
    factory = ContextFactory(sop, step, local, sopset.calendar, sopset.catalog, sopset.tiers)
    template_name = weekday_template(step.spec, local.date())
    templates = _Templates(sopset)
    category = Category(sop.spec.category)
    expires = at + step.spec.expires if step.spec.expires else None
    out = Fanout()
    for recipient in recipients:
        if isinstance(recipient, ContactRecord):
            variant, context = recipient.tier, factory.for_contact(recipient)
            ref = recipient_ref(contact_id=recipient.id)
            contact_id, room_id = recipient.id, None
        else:
            variant, context = recipient.group_type, factory.for_room(recipient)
            ref = recipient_ref(room_id=recipient.id)
            contact_id, room_id = None, recipient.id
        try:
            parts = parse_parts(templates.get(template_name, variant).render(context))
        except RenderError as error:
            out.failures.append(f"{ref}: {error.issue}")
            continue
        except TemplateError as error:
            out.failures.append(f"{ref}: {template_name}: {error}")
            continue
        if not parts:
            out.failures.append(f"{ref}: {template_name} renders to an empty message")
            continue
        out.by_variant[variant or ""] += 1
        out.messages.append(
            PlannedMessage(
                key=sop_key(sop.id, step.id, occurrence, ref),
                account_id=recipient.account_id,
                origin="sop",
                parts=parts,
                not_before=not_before,
                contact_id=contact_id,
                room_id=room_id,
                category=category,
                priority=sop.spec.priority,
                sop_id=sop.id,
                step_id=step.id,
                occurrence=occurrence,
                expires_at=expires,
            )
        )
    return out


def recipients_for(
    directory: Directory, step: Step, at: datetime, sop: Sop
) -> Sequence[ContactRecord | RoomRecord]:
    if step.to == "groups":
        return select_rooms(directory, step)
    return select_contacts(directory, step, at.astimezone(sop.tz).date())


def claim(
    session: Session,
    sop_id: str,
    step_id: str,
    occurrence: str,
    decision: Decision,
    now: datetime,
    detail: str | None = None,
) -> bool:
    """Write the ledger row; False when this occurrence was already decided."""
    statement = (
        insert_for(session, SopRun.__table__)
        .values(
            sop_id=sop_id,
            step_id=step_id,
            occurrence=occurrence,
            decision=decision.value,
            planned=0,
            detail=detail,
            decided_at=now,
        )
        .on_conflict_do_nothing(index_elements=["sop_id", "step_id", "occurrence"])
        .returning(SopRun.__table__.c.id)
    )
    return session.execute(statement).first() is not None


def finish(
    session: Session, sop_id: str, step_id: str, occurrence: str, planned: int, detail: str | None
) -> None:
    session.execute(
        update(SopRun)
        .where(SopRun.sop_id == sop_id, SopRun.step_id == step_id, SopRun.occurrence == occurrence)
        .values(planned=planned, detail=detail)
    )


def summary(fanout: Fanout, inserted: int, extra: str | None = None) -> str | None:
    notes = []
    if extra:
        notes.append(extra)
    if fanout.failures:
        shown = "; ".join(fanout.failures[:3])
        more = f" (+{len(fanout.failures) - 3} more)" if len(fanout.failures) > 3 else ""
        notes.append(f"{len(fanout.failures)} not rendered: {shown}{more}")
    if inserted < len(fanout.messages):
        notes.append(f"{len(fanout.messages) - inserted} already in the outbox")
    return "; ".join(notes) or None


def describe(counts: Counter[str], labels: dict[str, Any] | None = None) -> str:
    return ", ".join(f"{(labels or {}).get(k, k) or '-'} {n}" for k, n in sorted(counts.items()))
