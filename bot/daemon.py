"""The daemon: wires transports, storage and handlers together, and owns start-up and
shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal

from bot import __version__
from bot.clock import Clock, SystemClock
from bot.components import build_components
from bot.config.settings import AccountSettings, Settings
from bot.dispatch import Dispatcher
from bot.friendship import FriendshipPolicy
from bot.recorder import Recorder
from bot.runtime import AccountRuntime, BotContext, Component
from bot.signals.tiers import TierPolicy
from bot.store import Database
from bot.store import directory as d
from bot.store.schema import ensure_schema
from bot.wechat.factory import build_transport
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.transport import Transport

log = logging.getLogger("bot.daemon")


class Daemon:
    def __init__(
        self,
        settings: Settings,
        *,
        database: Database | None = None,
        clock: Clock | None = None,
        transports: dict[str, Transport] | None = None,
        autoplay: bool = True,
        background: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.database = database or Database(settings.resolved_database_url)
        self.autoplay = autoplay
        self._given_transports = transports or {}
        self.context = BotContext(settings, self.database, self.clock, background=background)
        self.accounts: dict[str, AccountRuntime] = self.context.accounts
        self.components: list[Component] = []
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        log.info("sopbot %s starting; database %s", __version__, self.database.display_url)
        ensure_schema(self.database)
        self.components = build_components(self.context)
        for account in self.settings.accounts:
            await self._start_account(account)
        for component in self.components:
            await component.start()

    async def _start_account(self, account: AccountSettings) -> None:
        transport = self._given_transports.get(account.id) or build_transport(
            account, self.settings, self.clock, self.database
        )
        with self.database.session() as session:
            d.ensure_account(
                session,
                account.id,
                name=account.name or account.id,
                transport=account.transport,
                now=self.clock.now(),
            )
        dispatcher = Dispatcher()
        tiers = TierPolicy.from_settings(self.settings.tiers)
        Recorder(
            self.database,
            transport,
            self.clock,
            ladder=tiers.ladder,
            respect_wechat_tags=tiers.respect_manual,
        ).attach(dispatcher)
        FriendshipPolicy(transport, auto_accept=self.settings.friendship.auto_accept).attach(dispatcher)
        runtime = AccountRuntime(account, transport, dispatcher)
        self.accounts[account.id] = runtime
        for component in self.components:
            component.attach(runtime)
        if isinstance(transport, SandboxTransport):
            log.info(
                "account %s: no WeChat token configured, running on the built-in sandbox WeChat "
                '(set transport = "wechaty" and %s for a real account)',
                account.id,
                account.token_env,
            )
        await transport.start(dispatcher.publish)
        if self.autoplay and self.settings.sandbox.autoplay and isinstance(transport, SandboxTransport):
            runtime.tasks.append(
                asyncio.create_task(
                    transport.autoplay(self.settings.sandbox.event_interval), name=f"autoplay-{account.id}"
                )
            )

    async def stop(self) -> None:
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:
                log.exception("component %s did not stop cleanly", component.name)
        for runtime in self.accounts.values():
            for task in runtime.tasks:
                task.cancel()
            await asyncio.gather(*runtime.tasks, return_exceptions=True)
            try:
                await runtime.transport.stop()
            except Exception:
                log.exception("account %s did not stop cleanly", runtime.settings.id)
        self.database.dispose()
        log.info("sopbot stopped")

    def request_stop(self) -> None:
        self._stopping.set()

    async def run_forever(self) -> None:
        """Run until SIGINT/SIGTERM (or `request_stop`), then shut down cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self.start()
            await self._stopping.wait()
            log.info("shutting down")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await self.stop()
