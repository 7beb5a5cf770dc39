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

from bot.delivery.outbox import PlannedMessage, recipient_ref, sop_key
from bot.policies import Origin
from bot.render import PreparedTemplate, RenderError
from bot.sop.authoring.loader import Sop, SopSet, Step
from bot.sop.authoring.triggers import weekday_template
from bot.sop.runtime.audience import (
    ContactRecord,
    Directory,
    LeftOut,
    RoomRecord,
    select_contacts,
    select_rooms,
    step_miss,
)
from bot.sop.runtime.context import ContextFactory
from bot.sop.runtime.ledger import left_out_note

log = logging.getLogger("bot.sop")


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
    rendered: int = 0  # messages rendered, including those absorbed from other chunks
    left_out: Counter[LeftOut] = field(default_factory=Counter)  # of the whole occurrence

    def absorb(self, chunk: Fanout) -> None:
        """Count a chunk's results (its messages are already planned)."""
        self.failures += chunk.failures
        self.by_variant.update(chunk.by_variant)
        self.rendered += len(chunk.messages)


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
    prepared: dict[str | None, PreparedTemplate | RenderError] = {}  # per tier or group type
    category = sop.spec.category
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
        if variant not in prepared:
            try:
                prepared[variant] = sopset.renderer.prepare(template_name, [variant] if variant else [])
            except RenderError as error:
                prepared[variant] = error
        template = prepared[variant]
        try:
            if isinstance(template, RenderError):
                raise template
            parts = template.render(context).parts
        except RenderError as error:
            out.failures.append(f"{ref}: {error.issue}")
            continue
        out.by_variant[variant or ""] += 1
        out.messages.append(
            PlannedMessage(
                key=sop_key(sop.id, step.id, occurrence, ref),
                account_id=recipient.account_id,
                origin=Origin.SOP,
                parts=parts,
                not_before=not_before,
                contact_id=contact_id,
                room_id=room_id,
                category=category,
                priority=sop.spec.priority,
                sop_id=sop.id,
                step_id=step.id,
                occurrence=occurrence,
                quiet_policy=sop.spec.quiet_policy,
                guarantee=sop.spec.guarantee,
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


def left_out(
    directory: Directory, step: Step, at: datetime, sop: Sop, contact_ids: Iterable[int] | None = None
) -> Counter[LeftOut]:
    """The friends the step would reach if they had not opted out or blocked us, by reason
    (from a directory loaded with `left_out=True`; `contact_ids` limits it)."""
    if step.to == "groups":
        return Counter()
    wanted = set(contact_ids) if contact_ids is not None else None
    day = at.astimezone(sop.tz).date()
    return Counter(
        reason
        for contact, reason in directory.left_out
        if (wanted is None or contact.id in wanted) and step_miss(step, contact, day) is None
    )


def summary(fanout: Fanout, inserted: int, extra: str | None = None) -> str | None:
    """The ledger's note on an occurrence: `extra`, whom it left out and why (read back by
    `ledger.read_left_out`), what could not be rendered, what was planned before."""
    notes = []
    if extra:
        notes.append(extra)
    if note := left_out_note(fanout.left_out):
        notes.append(note)
    if fanout.failures:
        shown = "; ".join(fanout.failures[:3])
        more = f" (+{len(fanout.failures) - 3} more)" if len(fanout.failures) > 3 else ""
        notes.append(f"{len(fanout.failures)} not rendered: {shown}{more}")
    rendered = fanout.rendered + len(fanout.messages)
    if inserted < rendered:
        notes.append(f"{rendered - inserted} already in the outbox")
    return "; ".join(notes) or None
