"""`sopbot console` – the operator console alone, for when the daemon runs elsewhere: the
same pages and actions against the same database, without logging in to WeChat."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.context import CliState, fail

if TYPE_CHECKING:
    from bot.config.settings import Settings
    from bot.console.access import Access
    from bot.store import Database


def console(
    ctx: typer.Context,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Listen on this port instead of [console] port.")
    ] = None,
) -> None:
    """Serve the console in the browser (docs/console.md) until Ctrl-C / SIGTERM."""
    import asyncio

    from bot.console.access import resolve_access
    from bot.logs import setup_logging
    from bot.store import Database
    from bot.store.migrate import current_revision

    state: CliState = ctx.obj
    settings = state.settings()
    if port is not None:
        settings = settings.model_copy(update={"console": settings.console.model_copy(update={"port": port})})
    access = resolve_access(settings)  # a ConfigError is printed by main() with exit 2
    database = Database(settings.resolved_database_url)
    try:
        if current_revision(database) is None:
            fail("the database is empty: run `sopbot run` (or `sopbot db upgrade`) first")
        setup_logging(settings.log_level, settings.log_format, settings.tz)
        code = asyncio.run(_serve(settings, database, access))
    finally:
        database.dispose()
    if code:
        raise typer.Exit(code)


async def _serve(settings: Settings, database: Database, access: Access) -> int:
    import asyncio
    import logging
    import signal

    from bot.clock import SystemClock
    from bot.console.service import make_console, serve_console
    from bot.runtime import BotContext

    clock = SystemClock()
    context = BotContext(settings, database, clock)
    console = make_console(settings, database, clock, access, context)
    try:
        server = await serve_console(console)
    except OSError as error:
        config = settings.console
        logging.getLogger("bot.console").error(
            "console: cannot listen on %s:%s (%s)", config.host, config.port, error.strerror or error
        )
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    housekeeping = asyncio.create_task(server.keep_serving(), name="console")
    try:
        await stop.wait()
    finally:
        await console.charts.stop()
        await server.stop()
        housekeeping.cancel()
        await asyncio.gather(housekeeping, return_exceptions=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    logging.getLogger("bot.console").info("console stopped")
    return 0
