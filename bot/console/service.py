"""The console as a daemon service (`[console]`, on by default on 127.0.0.1:8780), and the
one way both `sopbot run` and `sopbot console` put it together.

Who may log in is decided when the service is built, before anything starts: a console bound
beyond loopback without its token refuses the daemon's start with the line of `host` in
settings.toml (bot/console/access.py). A port already taken is logged and the daemon runs on
without its console, as it does without its monitor."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from bot.clock import Clock
from bot.config.settings import Settings
from bot.console.access import Access, resolve_access, write_token_file
from bot.console.actions import Publish
from bot.console.app import Console, build_app
from bot.console.dashboard import ChartCache
from bot.console.server import ConsoleServer
from bot.console.sessions import Sessions
from bot.console.sops import SopSource
from bot.console.uploads import Uploads
from bot.runtime import BotContext
from bot.signals.engine import SignalEngine
from bot.sop.authoring.loader import SopSet
from bot.store import Database

log = logging.getLogger("bot.console")


def make_console(
    settings: Settings,
    database: Database,
    clock: Clock,
    access: Access,
    context: BotContext,
    *,
    running_sops: Callable[[], SopSet | None] | None = None,
    engine: SignalEngine | None = None,
    publish: Publish | None = None,
    started: Callable[[], bool] = lambda: True,
    in_daemon: bool = False,
) -> Console:
    made: list[SignalEngine] = [engine] if engine is not None else []

    def signal_engine() -> SignalEngine:
        if not made:
            made.append(SignalEngine(settings, database, clock))
        return made[0]

    return Console(
        settings=settings,
        database=database,
        clock=clock,
        access=access,
        sessions=Sessions(access.token, settings.console.session_hours),
        context=context,
        sops=SopSource(settings, clock, running_sops),
        charts=ChartCache(settings, database, clock, update_rollups=not in_daemon),
        uploads=Uploads(clock),
        engine=signal_engine,
        publish=publish,
        started=started,
        in_daemon=in_daemon,
    )


async def serve_console(console: Console) -> ConsoleServer:
    """Listen on `[console] host:port`; the generated token (if any) is written beside the
    data and the log says where; OSError when the port cannot be had."""
    config = console.settings.console
    server = ConsoleServer(build_app(console), config.host, config.port)
    port = await server.start()
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    if console.access.generated:
        try:
            path = write_token_file(console.access, console.settings.data_path, port)
        except BaseException:
            await server.stop()  # nobody could log in: no console rather than a locked one
            raise
        console.token_path = path
        log.info(
            "console on http://%s:%d: $%s is not set; this run's login token is in %s (readable by this "
            "user only)", shown_host, port, console.access.token_env, _shown(path, console.settings.base_dir),
        )  # fmt: skip
    else:
        log.info("console on http://%s:%d (log in with $%s)", shown_host, port, console.access.token_env)
    return server


def _shown(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


class ConsoleService:
    name = "console"

    def __init__(
        self,
        context: BotContext,
        *,
        running_sops: Callable[[], SopSet | None],
        engine: SignalEngine,
        started: Callable[[], bool],
    ) -> None:
        self.context = context
        self.running_sops = running_sops
        self.engine = engine
        self.started = started
        self.console: Console | None = None
        self.server: ConsoleServer | None = None
        # decided now, before the daemon starts anything: a console open to the network
        # without its token stops the start here, with the line of `host` in settings.toml
        self.access = resolve_access(context.settings) if context.settings.console.enabled else None

    async def start(self) -> None:
        if self.access is None:
            return
        context = self.context
        console = make_console(
            context.settings, context.database, context.clock, self.access, context,
            running_sops=self.running_sops, engine=self.engine, publish=context.publish,
            started=self.started, in_daemon=True,
        )  # fmt: skip
        config = context.settings.console
        try:
            self.server = await serve_console(console)
        except OSError as error:  # a second daemon on this machine: it runs on without a console
            log.warning(
                "console: cannot listen on %s:%s (%s); the console is off", config.host, config.port,
                error.strerror or error,
            )  # fmt: skip
            return
        self.console = console
        if context.background:
            context.supervisor.spawn("console", self.server.keep_serving, doing="serving the console")

    async def stop(self) -> None:
        if self.console is not None:
            await self.console.charts.stop()
        if self.server is not None:
            await self.server.stop()
