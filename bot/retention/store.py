"""The brake's and the alerts' rows (`sop_brakes`, `alerts`): read by the CLI, the admin
chat commands and the console; written by the retention service and by a resume.

Writes are conditional, so two daemons (or a daemon and `sopbot sop resume`) acting at once
agree: a brake trips once per trip, a resume lifts only a brake that is on, an alert key is
recorded once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, or_, select, update
from sqlmodel import Session

from bot.retention.brake import SopCounts
from bot.store.models import Alert, OutboxMessage, SopBrake
from bot.store.upsert import insert_new

PAUSED = "paused"  # bot.delivery.ledger.braked_sop_ids reads the same state
RESUMED = "resumed"


def braked_sops(session: Session) -> list[SopBrake]:
    """The SOPs the brake holds now, the latest trip first."""
    query = select(SopBrake).where(SopBrake.state == PAUSED).order_by(SopBrake.tripped_at.desc())
    return list(session.execute(query).scalars())


def brake_of(session: Session, sop_id: str) -> SopBrake | None:
    """The SOP's brake row (paused, or resumed: then counting starts at `resumed_at`)."""
    return session.get(SopBrake, sop_id)


def resumed_since(session: Session) -> dict[str, datetime]:
    """SOP id → when its brake was last lifted: the brake counts its sends from then on."""
    query = select(SopBrake.sop_id, SopBrake.resumed_at).where(
        SopBrake.state == RESUMED, SopBrake.resumed_at.is_not(None)
    )
    return {str(sop_id): at for sop_id, at in session.execute(query).all()}


def resume_sop(session: Session, sop_id: str, by: str, now: datetime) -> bool:
    """Lift the SOP's brake; its waiting rows go out again. False when it was not braked."""
    lifted = session.execute(
        update(SopBrake)
        .where(SopBrake.sop_id == sop_id, SopBrake.state == PAUSED)
        .values(state=RESUMED, resumed_at=now, resumed_by=by[:64])
        .execution_options(synchronize_session=False)
    )
    return bool(lifted.rowcount)


def trip(
    session: Session, sop_id: str, reason: str, counts: SopCounts, now: datetime, counted_from: datetime
) -> bool:
    """Pause the SOP, unless its brake is on already or it was resumed after `counted_from`
    (the counts are then stale). True when this call tripped it."""
    values = {
        "state": PAUSED,
        "reason": reason,
        "tripped_at": now,
        "sends": counts.sends,
        "deletions": counts.deletions,
        "opt_outs": counts.opt_outs,
        "complaints": counts.complaints,
    }
    if insert_new(session, SopBrake.__table__, [{"sop_id": sop_id, **values}], conflict=["sop_id"]):
        return True
    again = session.execute(
        update(SopBrake)
        .where(
            SopBrake.sop_id == sop_id,
            SopBrake.state == RESUMED,
            or_(SopBrake.resumed_at.is_(None), SopBrake.resumed_at <= counted_from),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(again.rowcount)


def waiting_rows(session: Session, sop_id: str) -> int:
    """The SOP's planned rows: what a brake holds back."""
    query = select(func.count()).where(OutboxMessage.sop_id == sop_id, OutboxMessage.state == "planned")
    return int(session.execute(query).scalar_one())


# -- alerts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertScope:
    """What an alert counts: `kind` (account_hour, account_day, sop_day) on an account or an SOP."""

    kind: str
    account_id: str | None = None
    sop_id: str | None = None


def recent_alerts(session: Session, limit: int = 20) -> list[Alert]:
    """The latest loss alerts, newest first."""
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.id.desc()).limit(limit)
    return list(session.execute(query).scalars())


def latest_alert(session: Session, scope: AlertScope) -> Alert | None:
    """The scope's latest alert: its `window_end` says how far its spike has reached."""
    query = (
        select(Alert)
        .where(
            Alert.kind == scope.kind,
            _is(Alert.account_id, scope.account_id),
            _is(Alert.sop_id, scope.sop_id),
        )
        .order_by(Alert.window_end.desc(), Alert.id.desc())
        .limit(1)
    )
    return session.execute(query).scalars().first()


def record_alert(session: Session, alert: Alert) -> bool:
    """Store a new alert; False when its key (its spike) is recorded already."""
    row = alert.model_dump(exclude={"id"})
    return bool(insert_new(session, Alert.__table__, [row], conflict=["key"]))


def extend_alert(session: Session, alert_id: int, window_end: datetime, count: int) -> None:
    """The spike goes on: the alert's window reaches `window_end`, its count is the largest seen."""
    session.execute(
        update(Alert)
        .where(Alert.id == alert_id, or_(Alert.window_end.is_(None), Alert.window_end < window_end))
        .values(window_end=window_end, count=case((Alert.count < count, count), else_=Alert.count))
        .execution_options(synchronize_session=False)
    )


def _is(column: Any, value: str | None) -> Any:
    return column.is_(None) if value is None else column == value
