"""Loss alerts (删粉预警): deletions piling up on an account within an hour or a day, or after
one SOP's messages within a day, alert the admins once per spike (`bot.retention.spikes`).

| kind | counts | window | threshold |
| --- | --- | --- | --- |
| `account_hour` | deletions on the account (however seen) | 1 h | `alert_hour` |
| `account_day` | the same | 24 h | `alert_day` |
| `sop_day` | deletions blamed on the SOP's messages (last touch within `[results] deletion_window`) | 24 h | `alert_sop` |

Each alert is stored in `alerts` (its key names the spike), logged as a WARNING and sent to
every admin once, through the account concerned when the admin is its contact."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlmodel import Session

from bot.config.settings import Settings
from bot.events import ContactEventKind
from bot.results.rollups import load_touches
from bot.retention import store
from bot.retention.notify import tell_each_admin_once
from bot.retention.spikes import Spike, crossings, spikes
from bot.retention.store import AlertScope
from bot.store import Database
from bot.store.models import Alert, Contact, ContactEvent

log = logging.getLogger("bot.retention")

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
ACCOUNT_HOUR = "account_hour"
ACCOUNT_DAY = "account_day"
SOP_DAY = "sop_day"

_E: Any = ContactEvent.__table__
_C: Any = Contact.__table__


@dataclass(frozen=True)
class Deletion:
    id: int
    account_id: str
    at: datetime
    sop_id: str | None  # the SOP blamed (last touch), if any


@dataclass(frozen=True)
class Watch:
    scope: AlertScope
    window: timedelta
    threshold: int
    deletions: list[Deletion]


def check_alerts(database: Database, settings: Settings, now: datetime) -> list[Alert]:
    """One look: every spike not alerted yet is recorded and sent; one that goes on is
    extended (no second message). Returns the new alerts."""
    with database.session(read_only=True) as session:
        deletions = recent_deletions(session, settings, now)
    due = []
    for watch in watches(deletions, settings):
        found = crossings([(d.at, d.id) for d in watch.deletions], watch.window, watch.threshold)
        if fresh := [c for c in found if c.at > now - watch.window]:
            due.append((watch, fresh))
    if not due:  # the usual case: no write transaction at all
        return []
    raised = []
    with database.session(background=True) as session:
        for watch, fresh in due:
            latest = store.latest_alert(session, watch.scope)
            for spike in spikes(fresh, watch.window, latest.window_end if latest else None):
                if spike.continues and latest is not None and latest.id is not None:
                    store.extend_alert(session, latest.id, spike.last.at, spike.peak)
                    continue
                alert = _alert(watch, spike, settings, now)
                if store.record_alert(session, alert):
                    _tell(session, settings, watch, alert, now)
                    raised.append(alert)
    return raised


def recent_deletions(session: Session, settings: Settings, now: datetime) -> list[Deletion]:
    """Deletions of the last two days (a day's window needs the day before it to count),
    with the SOP each is blamed on."""
    since = now - 2 * DAY
    rows = session.execute(
        select(_E.c.id, _E.c.contact_id, _E.c.at, _C.c.account_id)
        .join(_C, _C.c.id == _E.c.contact_id)
        .where(_E.c.kind == ContactEventKind.FRIEND_DELETED.value, _E.c.at > since, _E.c.at <= now)
    ).all()
    window = settings.results.deletion
    touches = load_touches(session, {r.contact_id for r in rows}, (), since - window, now)
    out = []
    for row in rows:
        touch = touches.latest_before(("c", row.contact_id), row.at, window)
        out.append(Deletion(row.id, row.account_id, row.at, touch.sop_id if touch else None))
    return out


def watches(deletions: Sequence[Deletion], settings: Settings) -> Iterator[Watch]:
    """What is watched: each account by the hour and by the day, each SOP by the day."""
    limits = settings.retention
    by_account: dict[str, list[Deletion]] = defaultdict(list)
    by_sop: dict[str, list[Deletion]] = defaultdict(list)
    for deletion in deletions:
        by_account[deletion.account_id].append(deletion)
        if deletion.sop_id is not None:
            by_sop[deletion.sop_id].append(deletion)
    for account_id, items in sorted(by_account.items()):
        yield Watch(AlertScope(ACCOUNT_HOUR, account_id=account_id), HOUR, limits.alert_hour, items)
        yield Watch(AlertScope(ACCOUNT_DAY, account_id=account_id), DAY, limits.alert_day, items)
    for sop_id, items in sorted(by_sop.items()):
        yield Watch(AlertScope(SOP_DAY, sop_id=sop_id), DAY, limits.alert_sop, items)


def _alert(watch: Watch, spike: Spike, settings: Settings, now: datetime) -> Alert:
    scope = watch.scope
    start = spike.last.at - watch.window
    inside = [d for d in watch.deletions if start < d.at <= spike.last.at]
    return Alert(
        key=f"{scope.kind}:{scope.account_id or scope.sop_id}:{spike.first.ref}",
        kind=scope.kind,
        account_id=scope.account_id,
        sop_id=scope.sop_id,
        count=spike.peak,
        threshold=watch.threshold,
        window_start=spike.first.start,
        window_end=spike.last.at,
        message=alert_text(watch, spike.peak, inside, settings.tz),
        created_at=now,
    )


def alert_text(watch: Watch, count: int, inside: Sequence[Deletion], tz: ZoneInfo) -> str:
    """What the admins read: how many, in which window, and where they came from."""
    scope = watch.scope
    span = "1 小时" if watch.window == HOUR else "24 小时"
    first, last = min(d.at for d in inside), max(d.at for d in inside)
    when = f"{first.astimezone(tz):%m-%d %H:%M}–{last.astimezone(tz):%H:%M}"
    if scope.kind == SOP_DAY:
        accounts = Counter(d.account_id for d in inside)
        lines = [
            f"【删粉预警】SOP {scope.sop_id}：发送后 24 小时内删粉，{span}内 {count} 人（预警线 {watch.threshold}）",
            f"{when}；按账号：" + "、".join(f"{a} {n}" for a, n in accounts.most_common()),
            "发送 #刹车 查看自动暂停的 SOP；需要时 #pause 暂停账号。sopbot sop brakes 查看详情",
        ]
    else:
        blamed = Counter(d.sop_id or "无 SOP 触达" for d in inside)
        lines = [
            f"【删粉预警】账号 {scope.account_id}：{span}内删粉 {count} 人（预警线 {watch.threshold}）",
            f"{when}；24 小时内的末次触达：" + "、".join(f"{s} {n}" for s, n in blamed.most_common(5)),
            "发送 #status 查看发送状态；#pause 暂停本账号",
        ]
    return "\n".join(lines)


def _tell(session: Session, settings: Settings, watch: Watch, alert: Alert, now: datetime) -> None:
    accounts = [alert.account_id] if alert.account_id else sorted({d.account_id for d in watch.deletions})
    told = tell_each_admin_once(session, settings, f"alert:{alert.key}", alert.message, now, prefer=accounts)
    log.warning(
        "deletion alert %s: %d deletions (threshold %d) %s; %d admin message(s) planned",
        alert.key, alert.count, alert.threshold, alert.message.splitlines()[0], told,
    )  # fmt: skip
