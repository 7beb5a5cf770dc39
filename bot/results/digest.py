"""The digest (数据订阅): a short summary of yesterday (or last week) sent to the admins in
WeChat, through the outbox like every other send.

`[results] digest = "daily" | "weekly" | "off"` and `digest_at = "09:00"`: at that local time
(weekly: on Mondays) every account sends its own figures to each admin (`[delivery] admins`)
it knows as a contact. The outbox key names the account, the period and the admin, so a
restart, a second daemon or a second check plans nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time

from bot.delivery.outbox import PlannedMessage, enqueue
from bot.policies import Category, Origin
from bot.results.model import Ratio, Report
from bot.results.periods import resolve
from bot.runtime import BotContext
from bot.store import directory as d
from bot.wechat.types import Text

log = logging.getLogger(__name__)
CHECK_EVERY = 60.0  # seconds between two looks at the clock


def _pct(ratio: Ratio) -> str:
    value = ratio.value
    return "—" if value is None else f"{value * 100:.1f}%"


def _yuan(cents: float) -> str:
    return f"¥{cents / 100:,.0f}"


def digest_text(report: Report, kind: str) -> str:
    """The message: a few lines an admin reads on a phone."""
    t, p = report.totals, report.performance
    title = "日报" if kind == "daily" else "周报"
    sent = sum(o.sent for o in report.sops if o.step_id is None)
    replied = sum(o.replied for o in report.sops if o.step_id is None)
    orders = sum(o.orders_last_touch for o in report.sops if o.step_id is None)
    amount = sum(o.amount_last_touch_cents for o in report.sops if o.step_id is None)
    account = f"账号 {report.account}" if report.account else "全部账号"
    return "\n".join(
        [
            f"【sopbot {title} {report.period.label}】{account}",
            f"客群资产 {t.assets_end}（+{t.added} / −{t.deleted}，删粉率 {_pct(t.delete_rate)}）",
            f"互动率 {_pct(t.interaction_rate)}",
            f"SOP 发送 {sent}，回复 {replied}，成交 {orders} 单 {_yuan(amount)}",
            f"私域业绩 {_yuan(p.value_cents)} = 可触达 {p.reachable} × 触达率 {_pct(p.reach_rate)}"
            f" × 转化率 {_pct(p.conversion_rate)} × 客单价 {_yuan(p.average_order_cents)}",
        ]
    )


class DigestService:
    """Looks at the clock every minute; when a digest is due, plans it for every admin."""

    name = "digest"

    def __init__(self, context: BotContext) -> None:
        self.context = context

    async def start(self) -> None:
        if self.context.background and self.context.settings.results.digest != "off":
            self.context.supervisor.spawn("results-digest", self._loop, doing="sending the data digest")

    async def stop(self) -> None:
        return None

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self.send_due, self.context.clock.now())
            await asyncio.sleep(CHECK_EVERY)

    def send_due(self, now: datetime) -> int:
        """Plan the digest if it is due at `now`; returns how many messages were new."""
        from bot.results.compute import make_report

        settings = self.context.settings
        kind = settings.results.digest
        local = now.astimezone(settings.tz)
        if kind == "off" or local.time() < _at(settings.results.digest_at):
            return 0
        if kind == "weekly" and local.weekday() != 0:
            return 0
        admins = list(settings.delivery.admins)
        if not admins:
            return 0
        period, previous = resolve(period="day" if kind == "daily" else "week", today=local.date())
        planned = 0
        for account in self.context.accounts:
            with self.context.database.session(read_only=True) as session:
                targets = [
                    c for wxid in admins if (c := d.reachable_friend_id(session, account, wxid)) is not None
                ]
            if not targets:
                continue
            if self._planned(account, period.label, targets):
                continue
            report = make_report(self.context.database, settings, period, account, now=now, previous=previous)
            text = digest_text(report, kind)
            messages = [_message(account, period.label, contact_id, text, now) for contact_id in targets]
            with self.context.database.session() as session:
                planned += enqueue(session, messages, now)
        if planned:
            log.info("data digest %s planned for %d admin(s)", period.label, planned)
        return planned

    def _planned(self, account: str, label: str, targets: list[int]) -> bool:
        from sqlalchemy import func, select

        from bot.store.models import OutboxMessage

        keys = [f"digest:{account}:{label}:{contact_id}" for contact_id in targets]
        with self.context.database.session(read_only=True) as session:
            found = session.execute(select(func.count()).where(OutboxMessage.key.in_(keys))).scalar_one()
        return found == len(keys)


def _message(account: str, label: str, contact_id: int, text: str, now: datetime) -> PlannedMessage:
    key = f"digest:{account}:{label}:{contact_id}"
    return PlannedMessage(
        key,
        account,
        Origin.ADMIN,
        [Text(text)],
        now,
        contact_id=contact_id,
        category=Category.REPLY,
        priority=50,
    )


def _at(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))
