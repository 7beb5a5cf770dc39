"""Pauses (operator or risk control) and the registry of live delivery workers."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlmodel import Session

from bot.instance import pid_alive, this_host
from bot.store.models import DeliveryPause, DeliveryWorker
from bot.store.upsert import upsert

ALL_ACCOUNTS = "*"


def pause(session: Session, scope: str, reason: str, by: str, now: datetime) -> None:
    upsert(
        session,
        DeliveryPause,
        {"scope": scope, "reason": reason, "paused_by": by, "paused_at": now},
        conflict=["scope"],
        update=["reason", "paused_by", "paused_at"],
    )


def resume(session: Session, scope: str) -> bool:
    return bool(session.execute(delete(DeliveryPause).where(DeliveryPause.scope == scope)).rowcount)


def pause_of(session: Session, account_id: str) -> DeliveryPause | None:
    """The pause that stops this account, if any (its own, or the global one)."""
    return (
        session.execute(
            select(DeliveryPause)
            .where(or_(DeliveryPause.scope == account_id, DeliveryPause.scope == ALL_ACCOUNTS))
            .order_by(DeliveryPause.scope.desc())
        )
        .scalars()
        .first()
    )


def pauses(session: Session) -> list[DeliveryPause]:
    return list(session.execute(select(DeliveryPause).order_by(DeliveryPause.scope)).scalars())


def register(session: Session, worker_id: str, now: datetime) -> None:
    session.add(
        DeliveryWorker(id=worker_id, host=this_host(), pid=os.getpid(), started_at=now, heartbeat_at=now)
    )


def heartbeat(session: Session, worker_id: str, now: datetime) -> None:
    worker = session.get(DeliveryWorker, worker_id)
    if worker is not None:
        worker.heartbeat_at = now


def unregister(session: Session, worker_id: str) -> None:
    session.execute(delete(DeliveryWorker).where(DeliveryWorker.id == worker_id))


def live_workers(session: Session, now: datetime, lease: timedelta) -> set[str]:
    """Workers that are alive: a fresh heartbeat, and on this host a running process."""
    alive: set[str] = set()
    host = this_host()
    for worker in session.execute(select(DeliveryWorker)).scalars():
        fresh = worker.heartbeat_at is not None and worker.heartbeat_at > now - lease
        if fresh and (worker.host != host or pid_alive(worker.pid)):
            alive.add(worker.id)
    return alive
