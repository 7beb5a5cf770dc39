"""The daemon service that watches for people leaving: every `[retention] check_interval`
it runs the brake (`bot.retention.watch`) and the loss alerts (`bot.retention.alerts`) in a
worker thread. Its loop is supervised."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import DBAPIError, OperationalError

from bot.retention.alerts import check_alerts
from bot.retention.chat import ChatCommand, chat_commands
from bot.retention.watch import Trip, check_brakes
from bot.runtime import BotContext
from bot.store.models import Alert

log = logging.getLogger("bot.retention")


@dataclass
class Look:
    """What one look did."""

    trips: list[Trip] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


class RetentionService:
    name = "retention"

    def __init__(self, context: BotContext) -> None:
        self.context = context

    async def start(self) -> None:
        if self.context.background:
            self.context.supervisor.spawn(
                "retention", self._loop, doing="watching deletions and braking SOPs that drive people away"
            )

    async def stop(self) -> None:
        return None

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.check, self.context.clock.now())
            except (OperationalError, DBAPIError) as error:  # the database is away: not a crash
                log.warning("retention: database unavailable (%s); looking again later", type(error).__name__)
            await asyncio.sleep(self.context.settings.retention.check_interval)

    def check(self, now: datetime) -> Look:
        """One look at `now`: brake the SOPs that trip, alert the spikes not alerted yet."""
        settings, database = self.context.settings, self.context.database
        look = Look()
        if settings.retention.brake:
            look.trips = check_brakes(database, settings, now)
        look.alerts = check_alerts(database, settings, now)
        return look

    def chat_commands(self) -> dict[str, ChatCommand]:
        """The admins' #commands for the brake, for `bot.delivery.admin.AdminCommands`."""
        return chat_commands(self.context.database, self.context.clock)
