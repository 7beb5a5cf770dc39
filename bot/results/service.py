"""The daemon service that keeps the daily rollups up to date as events arrive."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from bot.results import rollups
from bot.runtime import BotContext

log = logging.getLogger(__name__)


class RollupService:
    """Runs `rollups.update()` every `[results] rollup_interval` seconds, in a worker thread
    and as background writes (the pipeline's units go first). Its loop is supervised."""

    name = "results"

    def __init__(self, context: BotContext) -> None:
        self.context = context

    async def start(self) -> None:
        if self.context.background:
            self.context.supervisor.spawn("results-rollups", self._loop, doing="rolling up results per day")

    async def stop(self) -> None:
        return None

    async def _loop(self) -> None:
        while True:
            await self.update()
            await asyncio.sleep(self.context.settings.results.rollup_interval)

    async def update(self) -> Counter[str]:
        """Count what arrived since the last update; returns the rows read per source."""
        done = await asyncio.to_thread(
            rollups.update,
            self.context.database,
            self.context.settings,
            now=self.context.clock.now(),
            should_stop=self.context.stopping.is_set,
        )
        if sum(done.values()):
            log.debug("rollups: %s", ", ".join(f"{n} {source}" for source, n in sorted(done.items()) if n))
        return done
