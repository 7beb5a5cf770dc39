"""The daemon: builds every account's pipeline and the shared services (`bot.flow`), and
owns start-up and shutdown. Every long-lived task runs under one supervisor
(`bot.supervisor`); a task that crashes and cannot be restarted stops the daemon with exit
code 3 (see `bot.supervisor` for when that is)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from bot import __version__
from bot.clock import Clock, SystemClock
from bot.config.settings import AccountSettings, Settings
from bot.flow import Services, account_pipeline
from bot.runtime import AccountRuntime, BotContext
from bot.store import Database
from bot.store import directory as d
from bot.store.schema import ensure_schema
from bot.supervisor import EXIT_TASK_CRASHED, Supervisor
from bot.wechat.factory import build_transport
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.transport import Transport

log = logging.getLogger("bot.daemon")

# How long a thread may hold the GIL while another wants it (CPython's default: 5 ms). The
# event loop and the pipeline's units do many short steps, each of which gives the GIL up
# and must get it back; behind a CPU-bound thread (a 100,000-contact fan-out) every such
# step would wait up to the full interval. 0.5 ms keeps inbound messages answered in
# milliseconds while a fan-out runs (bench/bench_pipeline.py), for a few % of throughput.
SWITCH_INTERVAL = 0.0005


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
        supervisor: Supervisor | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.database = database or Database(settings.resolved_database_url)
        self.autoplay = autoplay
        self._given_transports = transports or {}
        self.supervisor = supervisor or Supervisor()
        self.supervisor.on_fatal = self._fatal
        self.context = BotContext(settings, self.database, self.clock, self.supervisor, background=background)
        self.accounts: dict[str, AccountRuntime] = self.context.accounts
        self.services = Services.build(self.context)
        self._stopping = asyncio.Event()
        self.exit_code = 0

    async def start(self) -> None:
        log.info("sopbot %s starting; database %s", __version__, self.database.display_url)
        sys.setswitchinterval(SWITCH_INTERVAL)
        await asyncio.to_thread(ensure_schema, self.database)
        for account in self.settings.accounts:
            await self._start_account(account)
        for service in self.services.in_start_order():
            await service.start()

    async def _start_account(self, account: AccountSettings) -> None:
        transport = self._given_transports.get(account.id) or build_transport(
            account, self.settings, self.clock, self.database, supervisor=self.supervisor
        )
        await asyncio.to_thread(self._ensure_account, account)
        pipeline = account_pipeline(account, transport, self.services, self.context)
        self.accounts[account.id] = AccountRuntime(account, transport, pipeline)
        pipeline.start(self.supervisor)
        if isinstance(transport, SandboxTransport):
            log.info(
                "account %s: no WeChat token configured, running on the built-in sandbox WeChat "
                '(set transport = "wechaty" and %s for a real account)',
                account.id,
                account.token_env,
            )
        await transport.start(pipeline.submit)
        await pipeline.drained()  # the login and its contact sync: services start on a synced account
        if self.autoplay and self.settings.sandbox.autoplay and isinstance(transport, SandboxTransport):
            interval = self.settings.sandbox.event_interval
            self.supervisor.spawn(
                f"sandbox-autoplay-{account.id}", lambda: transport.autoplay(interval),
                doing="playing the sandbox's simulated customers",
            )  # fmt: skip

    def _ensure_account(self, account: AccountSettings) -> None:
        with self.database.session() as session:
            d.ensure_account(
                session, account.id, name=account.name or account.id, transport=account.transport,
                now=self.clock.now(),
            )  # fmt: skip

    async def stop(self) -> None:
        await self.supervisor.stop()
        for service in reversed(self.services.in_start_order()):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s did not stop cleanly", service.name)
        for runtime in self.accounts.values():
            try:
                await runtime.transport.stop()
            except Exception:
                log.exception("account %s did not stop cleanly", runtime.settings.id)
        self.database.dispose()
        log.info("sopbot stopped")

    def request_stop(self) -> None:
        self._stopping.set()

    def _fatal(self, reason: str) -> None:
        self.exit_code = EXIT_TASK_CRASHED
        self._stopping.set()

    async def run_forever(self) -> int:
        """Run until SIGINT/SIGTERM (or `request_stop`), then shut down cleanly. Returns the
        exit code: 0, or 3 when a task that cannot be restarted crashed."""
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
        return self.exit_code
