"""`sopbot plan`: what would go out, per day, SOP step, tier and group, with recipient
counts. Occurrences come from the same triggers the daemon schedules and recipients from
the same selection it fans out to."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import Session

from bot.sop.authoring.loader import Sop, SopSet, Step
from bot.sop.authoring.triggers import fire_times, weekday_template
from bot.sop.runtime.audience import ContactRecord, Directory
from bot.sop.runtime.fanout import recipients_for
from bot.sop.runtime.occurrences import pending_events


@dataclass(frozen=True)
class PlanEntry:
    at: datetime  # local time in the SOP's time zone
    sop: Sop
    step: Step
    template: str
    counts: Counter[str] = field(default_factory=Counter)  # tier name or group topic → recipients
    lifecycle: bool = False

    @property
    def day(self) -> date:
        return self.at.date()

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _count(sopset: SopSet, recipients: list[object]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for recipient in recipients:
        if isinstance(recipient, ContactRecord):
            counts[sopset.tiers.name(recipient.tier)] += 1
        else:
            counts[getattr(recipient, "topic", "?")] += 1
    return counts


def plan(
    sopset: SopSet,
    directory: Directory,
    start: date,
    days: int,
    *,
    session: Session | None = None,
    now: datetime | None = None,
    only_sop: str | None = None,
) -> list[PlanEntry]:
    """Every occurrence from `start` for `days` days, in time order (of one SOP with
    `only_sop`). With a session, the lifecycle messages already scheduled by recorded
    contact events are included."""
    entries: list[PlanEntry] = []
    for sop in sopset.enabled():
        if only_sop is not None and sop.id != only_sop:
            continue
        first = datetime.combine(start, time(0), sop.tz)
        last = datetime.combine(start + timedelta(days=days), time(0), sop.tz) - timedelta(seconds=1)
        for step in sop.steps:
            if not step.spec.enabled:
                continue
            if step.trigger is not None:
                for at in fire_times(step.trigger, first, last):
                    local = at.astimezone(sop.tz)
                    recipients = list(recipients_for(directory, step, at, sop))
                    if step.spec.birthday and not recipients:
                        continue  # a birthday step is a per-person date: show the days someone has one
                    template = weekday_template(step.spec, local.date())
                    entries.append(PlanEntry(local, sop, step, template, _count(sopset, recipients)))
            elif session is not None and step.event is not None:
                entries.extend(_lifecycle(sopset, directory, session, sop, step, first, last, now or first))
    entries.sort(key=lambda e: (e.at, e.sop.id, e.step.id))
    return entries


def _lifecycle(
    sopset: SopSet,
    directory: Directory,
    session: Session,
    sop: Sop,
    step: Step,
    first: datetime,
    last: datetime,
    now: datetime,
) -> list[PlanEntry]:
    reachable = {c.id: c for c in recipients_for(directory, step, first, sop) if isinstance(c, ContactRecord)}
    by_time: dict[datetime, list[ContactRecord]] = {}
    for item in pending_events(session, sop, step, max(now, first), until=last):
        if item.due >= first and item.contact_id in reachable:
            local = item.due.astimezone(sop.tz).replace(second=0, microsecond=0)
            by_time.setdefault(local, []).append(reachable[item.contact_id])
    template = step.spec.template or ""
    return [
        PlanEntry(at, sop, step, template, _count(sopset, list(people)), lifecycle=True)
        for at, people in sorted(by_time.items())
    ]
