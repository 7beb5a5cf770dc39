"""Running SOP occurrences: which are due, what is decided for each (run on time, catch up
within the grace window, or skip and record), and the fan-out into the outbox.

Synchronous and clock-free: every function takes `now`. The SOP service calls these
from a worker thread; tests call them directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import String, and_, cast, exists, literal, or_, select
from sqlmodel import Session

from bot.delivery.control import live_workers
from bot.delivery.outbox import enqueue
from bot.events import HISTORY_ONLY_REFS
from bot.policies import OnMissed
from bot.sop.authoring.loader import Sop, SopSet, Step
from bot.sop.authoring.triggers import fire_times
from bot.sop.runtime.audience import load_directory, select_contacts
from bot.sop.runtime.fanout import (
    Fanout,
    build_fanout,
    event_occurrence,
    left_out,
    occurrence_key,
    recipients_for,
    summary,
)
from bot.sop.runtime.ledger import (
    RunDecision,
    failed,
    finish,
    record_failure,
    record_finished,
    record_occurrence,
    retry_failed,
    unfinished,
)
from bot.store import Database
from bot.store.models import ContactEvent, SopRun

log = logging.getLogger("bot.sop")

# A run this late is still "on time" (the scheduler woke late, the sweep runs each minute).
ON_TIME = timedelta(minutes=5)


@dataclass(frozen=True)
class Planner:
    """Who plans occurrences (this daemon's instance id, kept in the ledger so that another
    daemon resumes an unfinished occurrence only once its planner is gone) and the signal to
    stop mid-way (the daemon is stopping: the next start finishes the planning)."""

    name: str | None = None
    stopping: threading.Event | None = None


UNNAMED = Planner()

# A daemon whose heartbeat is older than this is gone (its unfinished planning is resumed).
LIVENESS = timedelta(seconds=30)
# Recipients rendered and planned per transaction.
PLAN_CHUNK = 250
# Missed calendar occurrences older than this are not looked at (nor recorded).
CALENDAR_LOOKBACK = timedelta(days=35)
# Lifecycle messages due longer ago than this are not looked at (nor recorded).
LIFECYCLE_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class RunResult:
    sop_id: str
    step_id: str
    occurrence: str
    decision: RunDecision | None  # None: this occurrence had been decided before
    planned: int = 0
    detail: str | None = None

    def __str__(self) -> str:
        what = self.decision.value if self.decision else "already decided"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.sop_id}/{self.step_id} @ {self.occurrence}: {what}, {self.planned} planned{extra}"


def decide(times: list[datetime], now: datetime, sop: Sop) -> list[tuple[datetime, RunDecision, str | None]]:
    """What to do with each due occurrence of one calendar step: on-time ones run; after
    downtime only the latest missed one within the grace window is caught up (and only
    if nothing ran on time), the older ones are recorded as superseded or skipped."""
    grace = sop.spec.grace if sop.spec.on_missed is OnMissed.CATCH_UP else timedelta(0)
    on_time = [at for at in times if now - at <= ON_TIME]
    catchable = [at for at in times if ON_TIME < now - at <= grace]
    chosen = on_time[-1] if on_time else (catchable[-1] if catchable else None)
    out: list[tuple[datetime, RunDecision, str | None]] = []
    for at in times:
        late = now - at
        if at in on_time:
            out.append((at, RunDecision.RAN, None))
        elif at == chosen:
            out.append((at, RunDecision.CAUGHT_UP, f"{_minutes(late)} late, within grace {_minutes(grace)}"))
        elif at in catchable and chosen is not None:
            out.append((at, RunDecision.SKIPPED_MISSED, f"superseded by {occurrence_key(chosen, sop)}"))
        elif sop.spec.on_missed is OnMissed.CATCH_UP:
            out.append(
                (at, RunDecision.SKIPPED_MISSED, f"{_minutes(late)} late, beyond grace {_minutes(grace)}")
            )
        else:
            out.append((at, RunDecision.SKIPPED_MISSED, f"{_minutes(late)} late; on_missed: skip"))
    return out


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def due_times(step: Step, since: datetime, now: datetime) -> list[datetime]:
    """Fire times of a calendar step after `since`, up to `now`."""
    assert step.trigger is not None
    start = max(since + timedelta(seconds=1), now - CALENDAR_LOOKBACK)
    return list(fire_times(step.trigger, start, now))


def run_calendar_step(
    database: Database,
    sopset: SopSet,
    sop: Sop,
    step: Step,
    since: datetime,
    now: datetime,
    planner: Planner = UNNAMED,
) -> list[RunResult]:
    """Decide and run every occurrence of a step in (since, now]."""
    results = []
    for at, decision, detail in decide(due_times(step, since, now), now, sop):
        if decision in (RunDecision.RAN, RunDecision.CAUGHT_UP):
            results.append(execute_or_fail(database, sopset, sop, step, at, decision, now, detail, planner))
        else:
            occurrence = occurrence_key(at, sop)
            with database.session() as session:
                fresh = record_finished(session, sop.id, step.id, occurrence, decision, now, detail)
            results.append(RunResult(sop.id, step.id, occurrence, decision if fresh else None, 0, detail))
    for result in results:
        log.info("SOP %s", result)
    return results


def execute(
    database: Database,
    sopset: SopSet,
    sop: Sop,
    step: Step,
    at: datetime,
    decision: RunDecision,
    now: datetime,
    detail: str | None = None,
    planner: Planner = UNNAMED,
) -> RunResult:
    """Run one calendar occurrence: decide it in the ledger, then plan its messages."""
    occurrence = occurrence_key(at, sop)
    with database.session() as session:
        if not record_occurrence(session, sop.id, step.id, occurrence, decision, now, detail, planner.name):
            return RunResult(sop.id, step.id, occurrence, None)
    return plan_occurrence(database, sopset, sop, step, at, decision, now, detail, planner)


def execute_or_fail(
    database: Database,
    sopset: SopSet,
    sop: Sop,
    step: Step,
    at: datetime,
    decision: RunDecision,
    now: datetime,
    detail: str | None = None,
    planner: Planner = UNNAMED,
) -> RunResult:
    """`execute`, and if it raises, the failure in the ledger (retried within the SOP's
    grace by `retry_failures`). Raises only if even the failure cannot be recorded."""
    try:
        return execute(database, sopset, sop, step, at, decision, now, detail, planner)
    except Exception as error:
        return _failed(database, sop, step, at, now, error)


def _failed(
    database: Database, sop: Sop, step: Step, at: datetime, now: datetime, error: Exception
) -> RunResult:
    occurrence = occurrence_key(at, sop)
    reason = str(getattr(error, "orig", None) or error).split("\n")[
        0
    ]  # a database error: its own words, no SQL
    text = f"{type(error).__name__}: {' '.join(reason.split())[:300]}"
    log.error("SOP %s/%s @ %s failed: %s; retried within its grace %s", sop.id, step.id, occurrence, text,
              _minutes(sop.spec.grace), exc_info=error)  # fmt: skip
    with database.session() as session:
        record_failure(session, sop.id, step.id, occurrence, text, now)
    return RunResult(sop.id, step.id, occurrence, RunDecision.FAILED, 0, text)


def retry_failures(
    database: Database, sopset: SopSet, now: datetime, planner: Planner = UNNAMED
) -> list[RunResult]:
    """Try the failed calendar occurrences again while they are within their SOP's grace;
    past it, they are recorded as missed, with the error."""
    with database.session(read_only=True) as session:
        runs = failed(session)
    results = []
    for run in runs:
        sop = sopset.sops.get(run.sop_id)
        step = next((s for s in sop.steps if s.id == run.step_id), None) if sop else None
        if sop is None or step is None:
            continue
        at = datetime.strptime(run.occurrence, "%Y-%m-%dT%H:%M").replace(tzinfo=sop.tz)
        late = now - at
        if late > max(sop.spec.grace, ON_TIME):
            with database.session() as session:
                note = f"failed ({run.detail}); not retried after its grace {_minutes(sop.spec.grace)}"
                retry_failed(session, sop.id, step.id, run.occurrence, RunDecision.SKIPPED_MISSED, now, note)
                finish(session, sop.id, step.id, run.occurrence, 0, note, now)
            results.append(RunResult(sop.id, step.id, run.occurrence, RunDecision.SKIPPED_MISSED, 0, note))
            continue
        decision = RunDecision.RAN if late <= ON_TIME else RunDecision.CAUGHT_UP
        detail = f"try {run.attempts + 1}, after: {run.detail}"
        with database.session() as session:
            if not retry_failed(
                session, sop.id, step.id, run.occurrence, decision, now, detail, planner.name
            ):
                continue
        try:
            result = plan_occurrence(database, sopset, sop, step, at, decision, now, detail, planner)
        except Exception as error:
            result = _failed(database, sop, step, at, now, error)
        results.append(result)
    for result in results:
        log.info("SOP %s", result)
    return results


def plan_occurrence(
    database: Database,
    sopset: SopSet,
    sop: Sop,
    step: Step,
    at: datetime,
    decision: RunDecision,
    now: datetime,
    detail: str | None = None,
    planner: Planner = UNNAMED,
) -> RunResult:
    """Render the occurrence for its audience and put the messages in the outbox, a chunk
    per transaction (a 100,000-contact fan-out never holds the database for long), then
    mark it finished in the ledger. Safe to run again after a crash: the outbox keys make
    every message once, so an interrupted occurrence is resumed by planning it again."""
    occurrence = occurrence_key(at, sop)
    with database.session(read_only=True) as session:
        directory = load_directory(
            session, sopset.groups, with_contacts=step.to == "contacts", with_rooms=step.to == "groups",
            left_out=True,
        )  # fmt: skip
    recipients = list(recipients_for(directory, step, at, sop))
    not_before = at if decision == RunDecision.RAN else now
    total = Fanout(left_out=left_out(directory, step, at, sop))
    inserted = 0
    for start in range(0, len(recipients), PLAN_CHUNK):
        if planner.stopping is not None and planner.stopping.is_set():
            note = f"stopped after {start} of {len(recipients)} recipients; the next start plans the rest"
            log.info("SOP %s/%s @ %s: %s", sop.id, step.id, occurrence, note)
            return RunResult(sop.id, step.id, occurrence, decision, inserted, note)
        fanout = build_fanout(
            sopset, sop, step, at, occurrence, recipients[start : start + PLAN_CHUNK], not_before=not_before
        )
        with database.session(background=True) as session:
            inserted += enqueue(session, fanout.messages, now)
        total.absorb(fanout)
    note = summary(total, inserted, detail)
    with database.session() as session:
        finish(session, sop.id, step.id, occurrence, inserted, note, now)
    return RunResult(sop.id, step.id, occurrence, decision, inserted, note)


def resume_unfinished(
    database: Database, sopset: SopSet, now: datetime, planner: Planner = UNNAMED
) -> list[RunResult]:
    """Finish planning the calendar occurrences a dead daemon left half planned (not those
    another live daemon is planning right now)."""
    with database.session(read_only=True) as session:
        runs = unfinished(session)
        live = live_workers(session, now, LIVENESS) - {planner.name}
    results = []
    for run in runs:
        if run.planner in live:
            continue
        sop = sopset.sops.get(run.sop_id)
        step = next((s for s in sop.steps if s.id == run.step_id), None) if sop else None
        if sop is None or step is None or step.trigger is None:
            with database.session() as session:
                note = "its SOP or step is no longer in sop/: the rows planned before the stop stay"
                finish(session, run.sop_id, run.step_id, run.occurrence, run.planned, note, now)
            continue
        at = datetime.strptime(run.occurrence, "%Y-%m-%dT%H:%M").replace(tzinfo=sop.tz)
        decision = RunDecision(run.decision)
        result = plan_occurrence(
            database, sopset, sop, step, at, decision, now, "resumed after a stop", planner
        )
        results.append(result)
        log.info("SOP %s", result)
    return results


# -------------------------------------------------------------------------- lifecycle


def due_at(anchor: datetime, step: Step, sop: Sop) -> datetime:
    """When a lifecycle step is due after its anchor (an event, the start of a silence, a
    latest order): its span (`after`, `silent`, `no_order`) later, or on that day at `at`
    (never before the anchor itself)."""
    span = step.spec.span or timedelta(0)
    if step.spec.at:
        day = anchor.astimezone(sop.tz).date() + timedelta(days=span.days)
        return max(datetime.combine(day, step.spec.at[0], sop.tz), anchor)
    return anchor + span


class DueItem(Protocol):
    """A lifecycle message that has come due for one contact, named in the ledger by its
    occurrence (`ev12` for an event, `silent:42:20261124T020000` for a spell)."""

    @property
    def contact_id(self) -> int: ...
    @property
    def due(self) -> datetime: ...
    @property
    def occurrence(self) -> str: ...


@dataclass(frozen=True)
class DueEvent:
    event_id: int
    contact_id: int
    event_at: datetime
    due: datetime

    @property
    def occurrence(self) -> str:
        return event_occurrence(self.event_id)


def pending_events(
    session: Session, sop: Sop, step: Step, now: datetime, *, until: datetime | None = None,
    contact_ids: list[int] | None = None, undecided: bool = True,
) -> list[DueEvent]:  # fmt: skip
    """Events a lifecycle step follows whose message is due in [now - lookback, until]
    (until defaults to now), not yet decided."""
    event = step.event
    assert event is not None and step.spec.after is not None
    until = until or now
    slack = timedelta(days=1)  # an `at` time moves the due time within the day
    query = select(ContactEvent.id, ContactEvent.contact_id, ContactEvent.at).where(
        ContactEvent.kind == event.kind.value,
        ContactEvent.at >= now - LIFECYCLE_LOOKBACK - step.spec.after - slack,
        ContactEvent.at <= until - step.spec.after + slack,
        or_(ContactEvent.ref.is_(None), ContactEvent.ref.not_in(HISTORY_ONLY_REFS)),
    )
    if event.to is not None:
        query = query.where(ContactEvent.detail == event.to)
    if event.tag is not None:
        query = query.where(ContactEvent.detail == event.tag)
    if contact_ids is not None:
        query = query.where(ContactEvent.contact_id.in_(contact_ids))
    if undecided:
        decided = exists().where(
            and_(
                SopRun.sop_id == sop.id,
                SopRun.step_id == step.id,
                SopRun.occurrence == literal("ev") + cast(ContactEvent.id, String),
            )
        )
        query = query.where(~decided)
    out = []
    for event_id, contact_id, at in session.execute(query.order_by(ContactEvent.at, ContactEvent.id)):
        due = due_at(at, step, sop)
        if now - LIFECYCLE_LOOKBACK <= due <= until:
            out.append(DueEvent(event_id, contact_id, at, due))
    return out


def run_lifecycle_step(
    database: Database,
    sopset: SopSet,
    sop: Sop,
    step: Step,
    now: datetime,
    contact_ids: list[int] | None = None,
) -> list[RunResult]:
    """Plan the step for every contact event that has come due."""
    with database.session() as session:
        due = pending_events(session, sop, step, now, contact_ids=contact_ids)
        results = plan_due(session, sopset, sop, step, now, due) if due else []
    for result in results:
        log.info("SOP %s", result)
    return results


def plan_due(
    session: Session, sopset: SopSet, sop: Sop, step: Step, now: datetime, due: Sequence[DueItem]
) -> list[RunResult]:
    """Decide each due lifecycle message in the ledger (on time, caught up within `grace`,
    or skipped: `on_missed`) and plan the ones that run, in the caller's transaction: the
    ledger row and the outbox row are written together, so each is decided once."""
    results: list[RunResult] = []
    runnable: list[tuple[DueItem, RunDecision, str | None]] = []
    for item in due:
        late = now - item.due
        if late <= ON_TIME:
            runnable.append((item, RunDecision.RAN, None))
        elif sop.spec.on_missed is OnMissed.CATCH_UP and late <= sop.spec.grace:
            runnable.append((item, RunDecision.CAUGHT_UP, f"{_minutes(late)} late, within grace"))
        else:
            detail = f"{_minutes(late)} late" + (
                "" if sop.spec.on_missed is OnMissed.CATCH_UP else "; on_missed: skip"
            )
            if record_finished(
                session, sop.id, step.id, item.occurrence, RunDecision.SKIPPED_MISSED, now, detail
            ):
                results.append(
                    RunResult(sop.id, step.id, item.occurrence, RunDecision.SKIPPED_MISSED, 0, detail)
                )
    if not runnable:
        return results
    people = sorted({item.contact_id for item, _, _ in runnable})
    directory = load_directory(session, sopset.groups, contact_ids=people, with_rooms=False, left_out=True)
    reachable = {c.id: c for c in select_contacts(directory, step)}
    for item, decision, detail in runnable:
        occurrence = item.occurrence
        if not record_occurrence(session, sop.id, step.id, occurrence, decision, now, detail):
            continue
        contact = reachable.get(item.contact_id)
        if contact is None:
            why = left_out(directory, step, item.due, sop, [item.contact_id])
            note = summary(Fanout(left_out=why), 0, detail) if why else None
            note = note or "contact is not in the audience (or not a reachable friend)"
            finish(session, sop.id, step.id, occurrence, 0, note, now)
            results.append(RunResult(sop.id, step.id, occurrence, decision, 0, note))
            continue
        not_before = item.due if decision == RunDecision.RAN else now
        fanout = build_fanout(sopset, sop, step, item.due, occurrence, [contact], not_before=not_before)
        inserted = enqueue(session, fanout.messages, now)
        note = summary(fanout, inserted, detail)
        finish(session, sop.id, step.id, occurrence, inserted, note, now)
        results.append(RunResult(sop.id, step.id, occurrence, decision, inserted, note))
    return results
