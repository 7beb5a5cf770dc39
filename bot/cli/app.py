"""`sopbot` – run the bot and look after it from the terminal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from bot import __version__
from bot.cli import (
    console_cmd,
    contact_cmd,
    contacts_cmd,
    db_cmd,
    orders_cmd,
    outbox_cmd,
    people_cmd,
    report_cmd,
    sop_cmds,
    sop_group,
    status_cmd,
)
from bot.cli.context import CliState, fail
from bot.config.errors import ConfigError
from bot.orders.columns import columns_help
from bot.people.columns import columns_help as contact_columns_help

app = typer.Typer(
    name="sopbot",
    help="sopbot: WeChat 私域运营 bot. Runs your SOP files for every contact at a safe pace.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db_cmd.app, name="db")
app.add_typer(sop_group.app, name="sop")
app.command("contacts")(contacts_cmd.contacts)
app.command("contact")(contact_cmd.contact)
app.command("import-orders", epilog=columns_help())(orders_cmd.import_orders)
app.command("import-contacts", epilog=contact_columns_help())(people_cmd.import_contacts)
app.command("check")(sop_cmds.check)
app.command("preview")(sop_cmds.preview_cmd)
app.command("plan")(sop_cmds.plan_cmd)
app.command("outbox")(outbox_cmd.outbox)
app.command("pause")(outbox_cmd.pause)
app.command("resume")(outbox_cmd.resume)
app.command("status")(status_cmd.status)
app.command("console")(console_cmd.console)
app.command("report")(report_cmd.report)


@app.callback()
def _root(
    ctx: typer.Context,
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", "-s", help="Settings file (default: ./settings.toml, or $SOPBOT_SETTINGS)."
        ),
    ] = None,
) -> None:
    ctx.obj = CliState(settings_path=settings)


@app.command()
def run(ctx: typer.Context) -> None:
    """Run the bot: log in to every configured account and work until Ctrl-C / SIGTERM."""
    import asyncio

    from bot.clock import SystemClock
    from bot.daemon import Daemon
    from bot.logs import setup_logging
    from bot.sop.authoring.check import check_all
    from bot.store.schema import SchemaOutOfDate
    from bot.wechat.transport import ConnectError

    state: CliState = ctx.obj
    settings = state.settings()
    # Every operator file is checked before anything starts or is written, and every
    # problem is listed, as `sopbot check` does.
    _, issues = check_all(settings, SystemClock().now())
    if issues:
        for issue in issues:
            typer.echo(str(issue), err=True)
        fail(f"{len(issues)} problem(s) in the SOP, template or tag files; nothing was started")
    setup_logging(settings.log_level, settings.log_format, settings.tz)
    try:
        code = asyncio.run(Daemon(settings).run_forever())
    except (SchemaOutOfDate, ConnectError) as error:
        fail(str(error))
    if code:
        raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print the sopbot version."""
    typer.echo(f"sopbot {__version__} (Python {sys.version.split()[0]})")


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Show the effective settings (file + environment); secrets are masked."""
    state: CliState = ctx.obj
    settings = state.settings()
    typer.echo(f"# from {settings.source} and the environment")
    for key, value in settings.model_dump(mode="json").items():
        typer.echo(f"{key} = {value!r}")
    for account in settings.accounts:
        token = account.token()
        shown = "(not set)" if token is None else f"{token!s} (set, {len(token.get_secret_value())} chars)"
        typer.echo(f"accounts[{account.id}] token from ${account.token_env}: {shown}")


def main() -> None:
    try:
        app()
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise SystemExit(2) from None


__all__ = ["app", "main"]
