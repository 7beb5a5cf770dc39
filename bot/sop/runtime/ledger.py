"""The SOP run ledger (`sop_runs`): one row per SOP occurrence with what was decided for
it. Every write to the table is here. The row is unique on (SOP, step, occurrence), so
an occurrence is decided once, whichever daemon or restart gets there first."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select, update
from sqlmodel import Session

from bot.sop.authoring.loader import Sop, Step
from bot.sop.runtime.audience import LeftOut
from bot.store.models import SopRun
from bot.store.upsert import insert_for


class RunDecision(StrEnum):
    RAN = "ran"
    CAUGHT_UP = "caught_up"
    SKIPPED_MISSED = "skipped_missed"
    FAILED = "failed"


def record_occurrence(
    session: Session,
    sop_id: str,
    step_id: str,
    occurrence: str,
    decision: RunDecision,
    now: datetime,
    detail: str | None = None,
    planner: str | None = None,
) -> bool:
    """Write the occurrence's ledger row; False when it was already decided (by this
    daemon earlier, or by another one)."""
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
            planner=planner,
        )
        .on_conflict_do_nothing(index_elements=["sop_id", "step_id", "occurrence"])
        .returning(SopRun.__table__.c.id)
    )
    return session.execute(statement).first() is not None


def record_finished(
    session: Session,
    sop_id: str,
    step_id: str,
    occurrence: str,
    decision: RunDecision,
    now: datetime,
    detail: str | None = None,
) -> bool:
    """An occurrence decided and done in one go (skipped, or planned in the same
    transaction); False when it was already decided."""
    if not record_occurrence(session, sop_id, step_id, occurrence, decision, now, detail):
        return False
    finish(session, sop_id, step_id, occurrence, 0, detail, now)
    return True


def record_failure(
    session: Session, sop_id: str, step_id: str, occurrence: str, error: str, now: datetime
) -> None:
    """The occurrence could not be planned: say so (it is retried within the SOP's grace)."""
    table = SopRun.__table__
    statement = insert_for(session, table).values(
        sop_id=sop_id, step_id=step_id, occurrence=occurrence, decision=RunDecision.FAILED.value,
        planned=0, detail=error, decided_at=now, finished_at=now, attempts=1,
    )  # fmt: skip
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["sop_id", "step_id", "occurrence"],
            set_={
                "decision": RunDecision.FAILED.value,
                "detail": error,
                "decided_at": now,
                "finished_at": now,
            },
        )
    )


def retry_failed(
    session: Session,
    sop_id: str,
    step_id: str,
    occurrence: str,
    decision: RunDecision,
    now: datetime,
    detail: str,
    planner: str | None = None,
) -> bool:
    """Take a failed occurrence up again (False: it is not failed any more, someone else
    retried it)."""
    taken = session.execute(
        update(SopRun)
        .where(
            SopRun.sop_id == sop_id, SopRun.step_id == step_id, SopRun.occurrence == occurrence,
            SopRun.decision == RunDecision.FAILED.value,
        )
        .values(
            decision=decision.value, detail=detail, decided_at=now, finished_at=None,
            attempts=SopRun.attempts + 1, planner=planner,
        )
    )  # fmt: skip
    return bool(taken.rowcount)


def failed(session: Session) -> list[SopRun]:
    """Calendar occurrences whose last try failed."""
    return list(
        session.execute(
            select(SopRun)
            .where(SopRun.decision == RunDecision.FAILED.value, SopRun.occurrence.not_like("ev%"))
            .order_by(SopRun.id)
        ).scalars()
    )


def finish(
    session: Session,
    sop_id: str,
    step_id: str,
    occurrence: str,
    planned: int,
    detail: str | None,
    now: datetime,
) -> None:
    """The occurrence's planning is over: how many rows it planned, and any note."""
    session.execute(
        update(SopRun)
        .where(SopRun.sop_id == sop_id, SopRun.step_id == step_id, SopRun.occurrence == occurrence)
        .values(planned=planned, detail=detail, finished_at=now)
    )


def unfinished(session: Session) -> list[SopRun]:
    """Calendar occurrences whose planning started and never finished (the daemon died)."""
    return list(
        session.execute(
            select(SopRun)
            .where(
                SopRun.finished_at.is_(None),
                SopRun.decision.in_([RunDecision.RAN.value, RunDecision.CAUGHT_UP.value]),
                SopRun.occurrence.not_like("ev%"),
            )
            .order_by(SopRun.id)
        ).scalars()
    )


def last_occurrence(session: Session, sop: Sop, step: Step) -> datetime | None:
    """The latest calendar occurrence in the ledger for a step, as a time."""
    latest = session.execute(
        select(func.max(SopRun.occurrence)).where(
            SopRun.sop_id == sop.id, SopRun.step_id == step.id, SopRun.occurrence.not_like("ev%")
        )
    ).scalar()
    if not latest:
        return None
    try:
        return datetime.strptime(latest, "%Y-%m-%dT%H:%M").replace(tzinfo=sop.tz)
    except ValueError:
        return None


# -------------------------------------------------------------------------- left out

# in a run's detail: "left out 3: 2 opted out, 1 blocked" (the one place that writes and
# reads it; the ledger has no column of its own for it)
_LEFT_OUT = re.compile(r"left out \d+: ((?:\d+ [a-z ]+?)(?:, \d+ [a-z ]+?)*)(?=;|$)")
_COUNT = re.compile(r"(\d+) ([a-z ]+)")


def left_out_note(counts: Mapping[LeftOut, int]) -> str | None:
    """How many contacts an occurrence left out and why, for its detail; None for nobody."""
    counts = {reason: n for reason, n in counts.items() if n}
    if not counts:
        return None
    reasons = ", ".join(f"{counts[reason]} {reason.value}" for reason in LeftOut if reason in counts)
    return f"left out {sum(counts.values())}: {reasons}"


def read_left_out(detail: str | None) -> Counter[LeftOut]:
    """The counts `left_out_note` wrote into a run's detail (empty when there are none)."""
    found: Counter[LeftOut] = Counter()
    notes = _LEFT_OUT.findall(detail or "")
    if notes:
        known = {reason.value: reason for reason in LeftOut}
        for number, label in _COUNT.findall(notes[-1]):
            if label in known:
                found[known[label]] += int(number)
    return found


@dataclass(frozen=True)
class RunTotals:
    """What the runs decided in a period planned and whom they left out."""

    runs: int
    planned: int
    left_out: Counter[LeftOut]
    leaving_out: list[SopRun]  # the newest runs that left someone out


def run_totals(
    session: Session, since: datetime | None, sop_id: str | None = None, newest: int = 5
) -> RunTotals:
    """Runs decided since a moment (ever, for None), of one SOP if given: how many, the
    messages they planned, the contacts they left out by reason, and the `newest` runs
    that left someone out."""
    where = []
    if since is not None:
        where.append(SopRun.decided_at >= since)
    if sop_id is not None:
        where.append(SopRun.sop_id == sop_id)
    runs, planned = session.execute(
        select(func.count(), func.coalesce(func.sum(SopRun.planned), 0)).select_from(SopRun).where(*where)
    ).one()
    leaving = session.execute(
        select(SopRun)
        .where(*where, SopRun.detail.contains("left out ", autoescape=True))
        .order_by(SopRun.decided_at.desc(), SopRun.id.desc())
    ).scalars()
    left_out: Counter[LeftOut] = Counter()
    newest_runs = []
    for run in leaving:
        counts = read_left_out(run.detail)
        if counts:
            left_out.update(counts)
            if len(newest_runs) < newest:
                newest_runs.append(run)
    return RunTotals(int(runs), int(planned), left_out, newest_runs)
