"""The order webhook as a daemon service (off unless `[webhook] enabled = true`)."""

from __future__ import annotations

import asyncio
import os

from bot.config.errors import ConfigError, ConfigIssue
from bot.orders.model import OrderIn
from bot.runtime import BotContext
from bot.signals.engine import SignalEngine
from bot.webhook.server import WebhookServer


class WebhookService:
    name = "webhook"

    def __init__(self, context: BotContext, engine: SignalEngine) -> None:
        self.context = context
        self.engine = engine
        self.server: WebhookServer | None = None

    async def start(self) -> None:
        config = self.context.settings.webhook
        if not config.enabled:
            return
        secret = os.environ.get(config.secret_env, "")
        if not secret:
            raise ConfigError(
                [
                    ConfigIssue(
                        f"environment {config.secret_env}",
                        None,
                        "webhook.enabled",
                        "is true but the secret is not set",
                    )
                ]
            )
        self.server = WebhookServer(
            self._store,
            secret=secret.encode(),
            tz=self.context.settings.tz,
            host=config.host,
            port=config.port,
            max_body=config.max_body_bytes,
            signature_header=config.signature_header,
        )
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    async def _store(self, orders: list[OrderIn]) -> dict[str, int]:
        report = await asyncio.to_thread(self.engine.ingest_orders, orders, source="webhook")
        self.context.publish(report.events)
        return dict(report.outcomes)
