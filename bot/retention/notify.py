"""Telling the admins (`[delivery] admins`) in WeChat, through the outbox like every send.

Each message has a key that names what it is about (a brake trip, an alert's spike) and the
admin, so a second look, a restart or a second daemon plans nothing twice."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session

from bot.config.settings import Settings
from bot.delivery.outbox import PlannedMessage, enqueue
from bot.policies import Category, Origin
from bot.store import directory as d
from bot.text import excerpt
from bot.wechat.types import Text

log = logging.getLogger("bot.retention")
PRIORITY = 90  # ahead of SOP messages, behind the answers to an admin's own #command


def tell_each_admin_once(
    session: Session, settings: Settings, key: str, text: str, now: datetime, *, prefer: Sequence[str] = ()
) -> int:
    """Each admin once, through the first account that has them as a friend (the `prefer`
    accounts first, then the accounts in settings order)."""
    accounts = list(dict.fromkeys([*prefer, *(a.id for a in settings.accounts)]))
    targets: list[tuple[str, int]] = []
    for wxid in settings.delivery.admins:
        for account_id in accounts:
            contact_id = d.reachable_friend_id(session, account_id, wxid)
            if contact_id is not None:
                targets.append((account_id, contact_id))
                break
        else:
            log.warning("admin %s is no friend of any account: not told %r", wxid, excerpt(text, 60))
    return _plan(session, targets, key, text, now)


def _plan(session: Session, targets: list[tuple[str, int]], key: str, text: str, now: datetime) -> int:
    messages = [
        PlannedMessage(
            f"{key}:{account_id}:{contact_id}",
            account_id,
            Origin.ADMIN,
            [Text(text)],
            now,
            contact_id=contact_id,
            category=Category.REPLY,
            priority=PRIORITY,
        )
        for account_id, contact_id in targets
    ]
    return enqueue(session, messages, now) if messages else 0
