"""`sopbot plan`: what would go out, per day, SOP step, tier and group, with recipient
counts. Occurrences come from the same triggers the daemon schedules and recipients from
the same selection it fans out to. Each day is headed by its 班/休 status, marked `(估)`
when no official schedule decided it (see `bot.calendar`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlmodel import Session

from bot.calendar import Calendar
from bot.config.units import WEEKDAY_CN
from bot.sop.authoring.loader import Sop, SopSet, Step
from bot.sop.authoring.triggers import fire_times, weekday_template
from bot.sop.runtime.audience import ContactRecord, Directory
from bot.sop.runtime.fanout import recipients_for
from bot.sop.runtime.occurrences import DueItem, pending_events
from bot.sop.runtime.silence import pending_spells


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
    contact events are included, and those of the spells of silence and lapse under way."""
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
            elif session is not None and step.is_lifecycle:
                since = max(now or first, first)
                due: Sequence[DueItem] = (
                    pending_spells(session, sop, step, since, until=last)
                    if step.spell is not None
                    else pending_events(session, sop, step, since, until=last)
                )
                entries.extend(_lifecycle(sopset, directory, sop, step, due, first))
    entries.sort(key=lambda e: (e.at, e.sop.id, e.step.id))
    return entries


def _lifecycle(
    sopset: SopSet, directory: Directory, sop: Sop, step: Step, due: Sequence[DueItem], first: datetime
) -> list[PlanEntry]:
    """The lifecycle messages already due from recorded events, or from the spells of
    silence and lapse under way (if the contact stays silent, or orders nothing, until then)."""
    reachable = {c.id: c for c in recipients_for(directory, step, first, sop) if isinstance(c, ContactRecord)}
    by_time: dict[datetime, list[ContactRecord]] = {}
    for item in due:
        if item.due >= first and item.contact_id in reachable:
            local = item.due.astimezone(sop.tz).replace(second=0, microsecond=0)
            by_time.setdefault(local, []).append(reachable[item.contact_id])
    template = step.spec.template or ""
    return [
        PlanEntry(at, sop, step, template, _count(sopset, list(people)), lifecycle=True)
        for at, people in sorted(by_time.items())
    ]


ESTIMATE_MARK = "(估)"


def render_plan(sopset: SopSet, entries: list[PlanEntry]) -> list[str]:
    """The plan as `sopbot plan` prints it: a header per day, a line per occurrence, and a
    legend line first when a day's 班/休 is estimated."""
    lines: list[str] = []
    current: date | None = None
    estimated: set[int] = set()
    for entry in entries:
        if entry.day != current:
            current = entry.day
            lines.append(day_header(sopset.calendar, current))
            if not sopset.calendar.day_info(current).official:
                estimated.add(current.year)
        counts = ", ".join(f"{label} {n}" for label, n in entry.counts.items())
        who = f"{entry.total}" + (f": {counts}" if counts else "")
        mark = f" ({_lifecycle_mark(entry.step)})" if entry.lifecycle else ""
        lines.append(
            f"  {entry.at:%H:%M}  {entry.sop.id}/{entry.step.id}  {entry.step.spec.name or entry.sop.spec.name}"
            f"  [{entry.template}]{mark}  → {who}"
        )
    if not entries:
        lines.append("nothing scheduled in this period")
    if estimated:
        lines.insert(0, estimate_legend(sopset.calendar, sorted(estimated)))
    return lines


def _lifecycle_mark(step: Step) -> str:
    spell, span = step.spell, step.spec.span
    if spell is None or span is None:
        return "lifecycle"
    return f"lifecycle: {spell} {span.days}d"


def day_header(calendar: Calendar, day: date) -> str:
    """`2027-10-04 周一 休(国庆节 补假)(估) · festivals`: 班/休, the holiday or 调休, and
    `(估)` when the day is estimated from the statutory rule."""
    info = calendar.day_info(day)
    status = "班" if info.is_working_day else "休"
    if info.holiday_name:
        status += f"({info.holiday_name}{' 补假' if info.is_makeup_day_off else ''})"
    elif info.is_makeup_workday:
        status += f"(调休补班 {info.makeup_for})"
    if not info.official:
        status += ESTIMATE_MARK
    festivals = "、".join(f.name for f in calendar.festivals_on(day))
    return f"{day.isoformat()} {WEEKDAY_CN[day.weekday()]} {status}" + (
        f" · {festivals}" if festivals else ""
    )


def estimate_legend(calendar: Calendar, years: list[int]) -> str:
    """The line explaining `(估)` for the estimated years shown."""
    parts = [f"{year} ({'、'.join(calendar.estimated_holidays(year))})" for year in years]
    return (
        f"# {ESTIMATE_MARK} = estimated 班/休 (statutory days off with 补假, no 调休): no official "
        f"schedule yet for {', '.join(parts)}; enter the State Council notice in sop/dates.yaml"
    )
