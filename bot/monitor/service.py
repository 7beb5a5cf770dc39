"""The monitor as a daemon service: the HTTP server for `/healthz`, `/livez`, `/metrics`, and
the small loops that measure what only a running daemon knows (event-loop lag, reconnects)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from bot.monitor import metrics
from bot.monitor.health import health
from bot.monitor.server import MonitorServer, Page, json_page
from bot.runtime import BotContext

log = logging.getLogger("bot.monitor")
TICK = 1.0  # seconds between two event-loop lag measurements


class MonitorService:
    name = "monitor"

    def __init__(self, context: BotContext) -> None:
        self.context = context
        self.started: Callable[[], bool] = lambda: False  # the daemon says when it has started
        self.server: MonitorServer | None = None
        self._pollers: dict[str, Callable[[], None]] = {}

    async def start(self) -> None:
        config = self.context.settings.monitor
        if not config.enabled:
            return
        routes = {"/healthz": self._healthz, "/livez": self._livez, "/metrics": self._metrics}
        server = MonitorServer(routes, config.host, config.port)
        try:
            port = await server.start()
        except OSError as error:  # a second daemon on this machine: it keeps running, unwatched
            log.warning("monitor: cannot listen on %s:%s (%s); /healthz and /metrics are off", config.host,
                        config.port, error.strerror)  # fmt: skip
            return
        self.server = server
        log.info("monitor: /healthz, /livez and /metrics on http://%s:%d", config.host, port)
        if self.context.background:
            self.context.supervisor.spawn("monitor", self._measure, doing="measuring event-loop lag")

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def _measure(self) -> None:
        worst = 0.0
        while True:
            started = time.monotonic()
            await asyncio.sleep(TICK)
            lag = max(0.0, time.monotonic() - started - TICK)
            worst = max(worst, lag)
            metrics.LOOP_LAG.set(lag)
            metrics.LOOP_LAG_MAX.set(worst)
            self._poll_connections()

    def _poll_connections(self) -> None:
        for account_id, runtime in list(self.context.accounts.items()):
            poller = self._pollers.get(account_id)
            if poller is None:
                transport = runtime.transport
                poller = metrics.count_reconnects(
                    account_id, lambda t=transport: bool(getattr(t, "online", False))
                )
                self._pollers[account_id] = poller
            poller()

    def _healthz(self) -> Page:
        seen = health(self.context, self.started(), self.context.clock.now())
        return json_page(200 if seen.ready else 503, seen.body())

    def _livez(self) -> Page:
        return json_page(200, {"live": True})

    def _metrics(self) -> Page:
        return 200, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition(self.context)
