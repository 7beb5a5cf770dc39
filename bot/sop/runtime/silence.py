"""Silence and lapse: lifecycle steps that fire once per *spell*.

- `silent: 14d` — the contact has sent us nothing for 14 days. The spell begins at their
  last message (`contacts.last_message_at`: inbound only, 1:1 or in a group; our own sends
  never count), or at the start of the friendship when that is later (a new friend, or a
  friend again after deleting us), or, for someone who never wrote, when sopbot first saw
  them (a friend found by the first contact sync).
- `no_order: 30d` — a buyer's latest paid order is 30 days old and no newer one came.
  The spell begins at that order; refunded and cancelled orders are no orders.

A message from the contact (or a new paid order) ends the spell and starts the next one,
so each step fires again after another N quiet days. The run ledger names each spell by
contact and anchor (`silent:42:20261124T020000`, UTC to the second): a step is decided
once per spell whatever restarts, kills or second daemons happen, and each step of a
win-back sequence (14d, 30d, 60d) once per spell.

The sweep reads one indexed range query per step: the contacts whose spell reaches its
length within the lifecycle lookback, with the decided ones left out by the ledger's
unique index (never a loop over every contact). The decisions follow the other lifecycle
steps (`bot.sop.runtime.occurrences.plan_due`): on time, caught up within `grace`, or
skipped and recorded; opted-out and blocked friends are left out with the reason.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.orm import aliased
from sqlmodel import Session

from bot import spells
from bot.sop.authoring.loader import Sop, SopSet, Step
from bot.sop.runtime.audience import PAID
from bot.sop.runtime.occurrences import (
    LIFECYCLE_LOOKBACK,
    PLAN_CHUNK,
    UNNAMED,
    Planner,
    RunResult,
    due_at,
    plan_due,
)
from bot.store import Database
from bot.store.models import Contact, Order, SopRun

log = logging.getLogger("bot.sop")

SILENT = "silent"
NO_ORDER = "no_order"
_PREFIX = {SILENT: spells.SILENT, NO_ORDER: spells.ORDER}  # in the occurrence: silent:42:… / order:42:…
_STAMP = spells.STAMP
# More results than this from one sweep of a step are logged as one line of counts.
LOG_EACH_UP_TO = 20


@dataclass(frozen=True)
class DueSpell:
    """A spell that has reached the step's length: the contact, when the spell began, when
    the step is due, and the spell's name in the ledger."""

    contact_id: int
    anchor: datetime
    due: datetime
    occurrence: str


def spell_occurrence(kind: str, contact_id: int, anchor: datetime) -> str:
    """The ledger's name for a spell (at most 33 characters: the column holds 40). The
    sweep computes the same text in SQL; this is the reference for everything else."""
    return spells.spell_name(_PREFIX[kind], contact_id, anchor)


def silent_since() -> Any:
    """SQL: when each contact's current silence began (see the module docstring)."""
    return case(
        (Contact.friend_added_at > Contact.last_message_at, Contact.friend_added_at),
        else_=func.coalesce(Contact.last_message_at, Contact.friend_added_at, Contact.first_seen_at),
    )


def _silent_between(low: datetime, high: datetime) -> Any:
    """`silent_since()` within [low, high], written as three ranges of indexed columns
    (ix_contacts_last_message_at, _friend_added_at, _first_seen_at; 0010_silence), one
    per case of the anchor, so the database reads index ranges instead of every contact."""
    last, added, seen = Contact.last_message_at, Contact.friend_added_at, Contact.first_seen_at
    return or_(
        and_(last.between(low, high), or_(added.is_(None), added <= last)),
        and_(added.between(low, high), or_(last.is_(None), last < added)),
        # (coalesce: not `last IS NULL`, which a planner may read through the index of
        # every contact who never wrote instead of this narrow range)
        and_(seen.between(low, high), func.coalesce(last, added).is_(None)),
    )


def _utc_stamp(session: Session, moment: Any) -> Any:
    """SQL: a UTC timestamp as `spell_occurrence` writes it (seconds cut, not rounded)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", moment), 'YYYYMMDD"T"HH24MISS')
    return func.strftime(_STAMP, moment)  # SQLite keeps UTC as text: 2026-11-24 02:00:00.000000


def _occurrence_sql(session: Session, kind: str, contact_id: Any, anchor: Any) -> Any:
    return literal(f"{_PREFIX[kind]}:") + cast(contact_id, String) + ":" + _utc_stamp(session, anchor)


def pending_spells(
    session: Session,
    sop: Sop,
    step: Step,
    now: datetime,
    *,
    until: datetime | None = None,
    contact_ids: Sequence[int] | None = None,
    undecided: bool = True,
) -> list[DueSpell]:
    """The spells whose step is due in [now - lookback, until] (until defaults to now),
    for friends (of `contact_ids`, if given), not yet decided: one query."""
    kind = step.spell
    assert kind is not None
    until = until or now
    query = spells_query(session, sop, step, now, until, contact_ids=contact_ids, undecided=undecided)
    out = []
    for contact_id, anchor in session.execute(query):
        due = due_at(anchor, step, sop)
        if now - LIFECYCLE_LOOKBACK <= due <= until:
            out.append(DueSpell(contact_id, anchor, due, spell_occurrence(kind, contact_id, anchor)))
    out.sort(key=lambda spell: (spell.due, spell.contact_id))
    return out


def spells_query(
    session: Session,
    sop: Sop,
    step: Step,
    now: datetime,
    until: datetime,
    *,
    contact_ids: Sequence[int] | None = None,
    undecided: bool = True,
) -> Select[tuple[int, datetime]]:
    """SQL: (contact id, anchor) of the spells whose step may be due in [now - lookback,
    until]: anchors in an index range, widened by a day when `at` moves the due time."""
    kind, span = step.spell, step.spec.span
    assert kind is not None and span is not None
    slack = timedelta(days=1) if step.spec.at else timedelta(0)
    low, high = now - LIFECYCLE_LOOKBACK - span - slack, until - span + slack
    anchor: Any
    if kind == SILENT:
        anchor, contact_id = silent_since(), Contact.id
        query = select(Contact.id, anchor).where(_silent_between(low, high), Contact.is_friend.is_(True))
    else:
        newer = aliased(Order)
        anchor, contact_id = Order.ordered_at, Order.contact_id
        # orders alone in FROM: the planner starts from the range of ordered_at, never
        # from every contact
        query = (
            select(Order.contact_id, Order.ordered_at)
            .distinct()  # two paid orders at the same moment are one spell
            .where(
                Order.status == PAID,
                Order.ordered_at.between(low, high),
                ~exists().where(
                    newer.contact_id == Order.contact_id,
                    newer.status == PAID,
                    newer.ordered_at > Order.ordered_at,
                ),
                exists().where(Contact.id == Order.contact_id, Contact.is_friend.is_(True)),
            )
        )
    if contact_ids is not None:
        query = query.where(contact_id.in_(list(contact_ids)))
    if undecided:
        occurrence = _occurrence_sql(session, kind, contact_id, anchor)
        decided = exists().where(
            SopRun.sop_id == sop.id, SopRun.step_id == step.id, SopRun.occurrence == occurrence
        )
        query = query.where(~decided)
    return query


def run_spell_step(
    database: Database,
    sopset: SopSet,
    sop: Sop,
    step: Step,
    now: datetime,
    planner: Planner = UNNAMED,
) -> list[RunResult]:
    """Decide and plan every spell of a `silent` / `no_order` step that has come due, a
    chunk of contacts per transaction. Each chunk looks again inside its transaction, so a
    contact who wrote (or ordered) since the first look is not sent the old spell's
    message; a daemon that stops mid-way leaves the rest to the next sweep."""
    with database.session(read_only=True) as session:
        first_look = pending_spells(session, sop, step, now)
    people = list(dict.fromkeys(spell.contact_id for spell in first_look))
    results: list[RunResult] = []
    for start in range(0, len(people), PLAN_CHUNK):
        if planner.stopping is not None and planner.stopping.is_set():
            log.info("SOP %s/%s: stopped after %d of %d contacts; the next sweep goes on",
                     sop.id, step.id, start, len(people))  # fmt: skip
            break
        chunk = people[start : start + PLAN_CHUNK]
        with database.session(background=True) as session:
            due = pending_spells(session, sop, step, now, contact_ids=chunk)
            results += plan_due(session, sopset, sop, step, now, due)
    _log(sop, step, results)
    return results


def _log(sop: Sop, step: Step, results: list[RunResult]) -> None:
    if len(results) <= LOG_EACH_UP_TO:
        for result in results:
            log.info("SOP %s", result)
        return
    decisions = Counter(result.decision.value for result in results if result.decision)
    shown = ", ".join(f"{n} {decision}" for decision, n in sorted(decisions.items()))
    planned = sum(result.planned for result in results)
    log.info("SOP %s/%s: %d spells decided (%s), %d planned", sop.id, step.id, len(results), shown, planned)
