"""`sopbot preview`: the exact text a step would send, rendered by the daemon's fan-out
code for a real contact or group, or for a sample contact at a tier."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from bot.config.units import format_duration
from bot.delivery.outbox import PlannedMessage
from bot.sop.authoring.loader import Sop, SopSet, Step
from bot.sop.authoring.triggers import fire_times
from bot.sop.runtime.audience import ContactRecord, RoomRecord, step_miss
from bot.sop.runtime.context import sample_contact, sample_room
from bot.sop.runtime.fanout import build_fanout, occurrence_key
from bot.wechat.types import Content, Image, LinkCard, Text


@dataclass(frozen=True)
class PreviewItem:
    step: Step
    at: datetime
    scheduled: bool  # False: the step does not fire that day (shown anyway)
    recipient: str
    text: str | None  # None when it could not be rendered, or the recipient gets nothing
    error: str | None = None
    nothing: str | None = None  # why this recipient gets nothing from the step


def lifecycle_when(step: Step, lang: str = "en") -> str:
    """When a lifecycle step sends, in words: `after 14 silent days`, `沉默 14 天后`."""
    spec, zh = step.spec, lang == "zh"
    if spec.silent is not None:
        return f"沉默 {spec.silent.days} 天后" if zh else f"after {spec.silent.days} silent days"
    if spec.no_order is not None:
        days = spec.no_order.days
        return f"最后一单 {days} 天后" if zh else f"{days} days after the last paid order"
    after = format_duration(spec.after or timedelta(0))
    event = step.event.kind.value if step.event is not None else "the event"
    at = f" {spec.at[0]:%H:%M}" if spec.at else ""
    return f"{event} 之后 {after}{at}" if zh else f"{after} after {event}{at}"


def show_part(part: Content) -> str:
    match part:
        case Text(text=text):
            return text
        case Image(url=url):
            return f"[图片] {url}"
        case LinkCard(title=title, url=url, description=description):
            return f"[链接] {title} | {url} | {description}"
    return repr(part)


def show_message(message: PlannedMessage) -> str:
    return "\n---\n".join(show_part(part) for part in message.parts)


def step_times(sop: Sop, step: Step, day: date) -> list[datetime]:
    """When the step fires on `day`, in the SOP's time zone."""
    if step.trigger is None:
        return []
    first = datetime.combine(day, time(0), sop.tz)
    return [
        t.astimezone(sop.tz) for t in fire_times(step.trigger, first, first + timedelta(days=1, seconds=-1))
    ]


def default_recipients(
    sopset: SopSet, sop: Sop, step: Step, now: datetime, tier: str | None
) -> list[ContactRecord | RoomRecord]:
    """Sample recipients: a contact at `tier`, else one per tier (or group type) reached."""
    if step.to == "groups":
        types = set(sopset.groups.types)
        for layer in step.layers:
            if layer.group_types is not None:
                types &= layer.group_types
        return [sample_room(t) for t in sorted(types)] or [sample_room(None)]
    if tier is not None:
        return [sample_contact(tier, now, sopset.tiers.sample_orders(tier))]
    samples = [sample_contact(t, now, sopset.tiers.sample_orders(t)) for t in sopset.tiers.ids]
    reached = [sample for sample in samples if _miss(step, sample) is None]
    return reached or [sample for sample in samples if step_miss(step, sample) is None] or samples


def _miss(step: Step, person: ContactRecord | RoomRecord, day: date | None = None) -> str | None:
    """Why the step does not reach this recipient: its audience, or (a `no_order` step) no
    paid order to lapse from."""
    if step.spell == "no_order" and isinstance(person, ContactRecord) and not person.order_count:
        return "no paid order: a no_order step is for buyers"
    return step_miss(step, person, day)


def _as_due(step: Step, person: ContactRecord | RoomRecord, at: datetime) -> ContactRecord | RoomRecord:
    """A sample buyer as a `no_order` step finds them: the latest order one span ago."""
    span = step.spec.span
    if step.spell == "no_order" and span is not None and isinstance(person, ContactRecord):
        return replace(person, last_order_at=at - span)
    return person


def preview(
    sopset: SopSet,
    sop: Sop,
    day: date,
    now: datetime,
    *,
    recipients: list[ContactRecord | RoomRecord] | None = None,
    tier: str | None = None,
) -> list[PreviewItem]:
    items: list[PreviewItem] = []
    firing = [(step, step_times(sop, step, day)) for step in sop.steps]
    any_firing = any(times for _, times in firing)
    for step, times in firing:
        if any_firing and not times:
            continue
        scheduled = bool(times) or step.is_lifecycle
        moments = times or [datetime.combine(day, (step.spec.at or [time(10)])[0], sop.tz)]
        people = recipients if recipients is not None else default_recipients(sopset, sop, step, now, tier)
        if step.to == "groups":
            people = [p for p in people if isinstance(p, RoomRecord)]
        else:
            people = [p for p in people if isinstance(p, ContactRecord)]
        for at in moments:
            for person in people:
                label = (
                    f"{person.name} ({sopset.tiers.name(person.tier)})"
                    if isinstance(person, ContactRecord)
                    else f"{person.topic} ({person.group_type or '-'})"
                )
                real = recipients is not None or isinstance(
                    person, ContactRecord
                )  # sample groups fit by make
                if real and (miss := _miss(step, person, at.date())):
                    items.append(PreviewItem(step, at, scheduled, label, None, nothing=miss))
                    continue
                if recipients is None:
                    person = _as_due(step, person, at)
                fanout = build_fanout(sopset, sop, step, at, occurrence_key(at, sop), [person], not_before=at)
                if fanout.messages:
                    items.append(PreviewItem(step, at, scheduled, label, show_message(fanout.messages[0])))
                else:
                    items.append(PreviewItem(step, at, scheduled, label, None, "; ".join(fanout.failures)))
    return items
