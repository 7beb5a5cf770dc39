"""The daemon: builds the shared services (`bot.flow`) and runs the accounts it holds
(`bot.accounts`), and owns start-up and shutdown.

Every long-lived task runs under one supervisor (`bot.supervisor`); tasks that keep crashing
stop the daemon with exit code 3. A stop signal (SIGINT, SIGTERM) is obeyed in every phase:
during start-up (a gateway that never answers, a long contact sync, recovery) the start is
cancelled, and the shutdown itself waits on nothing without a deadline."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import traceback

from bot import __version__
from bot.accounts import Accounts
from bot.clock import Clock, SystemClock
from bot.config.settings import Settings
from bot.delivery.outlook import outlook
from bot.flow import Services
from bot.runtime import AccountRuntime, BotContext
from bot.store import Database
from bot.store.schema import ensure_schema
from bot.supervisor import EXIT_TASK_CRASHED, Supervisor
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
        self.supervisor = supervisor or Supervisor()
        self.supervisor.on_fatal = self._fatal
        self.context = BotContext(
            settings, self.database, self.clock, self.supervisor, background=background,
            leases={} if background else None,
        )  # fmt: skip
        self.accounts: dict[str, AccountRuntime] = self.context.accounts
        self.services = Services.build(self.context)
        self.account_set = Accounts(self.context, self.services, transports=transports, autoplay=autoplay)
        self.services.monitor.started = lambda: self.account_set.started
        self._stopping = asyncio.Event()
        self.exit_code = 0

    async def start(self) -> None:
        log.info(
            "sopbot %s starting as %s; database %s", __version__, self.context.instance_id,
            self.database.display_url,
        )  # fmt: skip
        sys.setswitchinterval(SWITCH_INTERVAL)
        await asyncio.to_thread(ensure_schema, self.database)
        await self.account_set.start_all()
        for service in self.services.in_start_order():
            await service.start()
        self.account_set.started = True
        await self._say_outlook()
        if self.context.background:
            self.supervisor.spawn(
                "account-leases",
                self.account_set.keep,
                doing="renewing account leases, watching standby accounts",
            )
            self.supervisor.spawn("outlook", self._keep_saying_outlook, doing="saying what comes next")

    async def _say_outlook(self) -> None:
        """Accounts, queue, quiet hours and the next SOP send, in one log line."""
        now = self.context.clock.now()
        seen = await asyncio.to_thread(outlook, self.context, self.services.sop.next_send, now)
        log.info("%s", seen.describe(self.settings.tz))

    async def _keep_saying_outlook(self) -> None:
        while True:
            await asyncio.sleep(self.settings.delivery.outlook_interval)
            await self._say_outlook()

    async def stop(self) -> None:
        self.context.stopping.set()  # long units of work (a fan-out, a sync) end at their next chunk
        await self.supervisor.stop()
        for service in reversed(self.services.in_start_order()):
            try:
                await service.stop()
            except Exception:
                log.exception("service %s did not stop cleanly", service.name)
        await self.account_set.stop_transports()
        await self.account_set.release()
        self.database.dispose()
        log.info("sopbot stopped")

    def request_stop(self) -> None:
        self._stopping.set()

    def _fatal(self, reason: str) -> None:
        self.exit_code = EXIT_TASK_CRASHED
        self._stopping.set()

    async def run_forever(self) -> int:
        """Run until SIGINT/SIGTERM (or `request_stop`), then shut down cleanly. Returns the
        exit code: 0, or 3 when a task kept crashing. A stop requested while the daemon is
        still starting cancels the start."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        loop.add_signal_handler(signal.SIGUSR1, print_threads)
        loop.add_signal_handler(signal.SIGUSR2, print_tasks)
        try:
            starting = asyncio.ensure_future(self.start())
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({starting, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not starting.done():
                log.warning("stop requested while starting: start-up cancelled")
                starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            if starting.done() and not starting.cancelled() and starting.exception() is not None:
                stop.cancel()
                raise starting.exception()  # type: ignore[misc]
            await stop
            log.info("shutting down")
        finally:
            # the handlers stay while stopping: a second stop signal (an impatient Ctrl-C,
            # `timeout` signalling the child and its group) must not cut the clean stop short
            await self.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
                loop.remove_signal_handler(sig)
        return self.exit_code


def print_threads() -> None:
    """`kill -USR1 PID`: every thread's stack, to stderr. Printed by the event loop under the
    GIL (faulthandler's signal-time dump can crash a process whose threads are running)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        print(f"--- thread {names.get(ident, ident)}", file=sys.stderr)
        traceback.print_stack(frame, file=sys.stderr)
    sys.stderr.flush()


def print_tasks() -> None:
    """`kill -USR2 PID`: what every asyncio task is waiting on, to stderr."""
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()
