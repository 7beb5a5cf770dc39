"""Builds the transport an account's settings ask for."""

from __future__ import annotations

from bot.clock import Clock
from bot.config.settings import AccountSettings, Settings
from bot.store import Database
from bot.supervisor import Supervisor
from bot.wechat.transport import ConnectError, Transport


def build_transport(
    account: AccountSettings,
    settings: Settings,
    clock: Clock,
    database: Database | None = None,
    *,
    supervisor: Supervisor | None = None,
) -> Transport:
    if account.transport == "sandbox":
        from bot.wechat.sandbox import SandboxTransport

        sandbox = settings.sandbox
        journal = settings.path(sandbox.journal) if sandbox.journal else None
        if journal is not None and len(settings.accounts) > 1:
            journal = journal.with_name(f"{journal.stem}-{account.id}{journal.suffix}")
        return SandboxTransport(
            account.id, clock=clock, seed=sandbox.seed, journal=journal, extra_contacts=sandbox.extra_contacts,
            send_delay=sandbox.send_delay,
        )  # fmt: skip
    if account.transport == "wechaty":
        try:
            from bot.wechat.wechaty_transport import WechatyTransport
        except ImportError as error:
            raise ConnectError(
                f"account {account.id}: the wechaty transport is unavailable ({error})"
            ) from None
        return WechatyTransport(account, settings, clock, database=database, supervisor=supervisor)
    raise ConnectError(f"account {account.id}: unknown transport {account.transport!r}")
