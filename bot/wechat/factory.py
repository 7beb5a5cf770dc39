"""Builds the transport an account's settings ask for."""

from __future__ import annotations

from bot.clock import Clock
from bot.config.settings import AccountSettings, Settings
from bot.wechat.transport import ConnectError, Transport


def build_transport(account: AccountSettings, settings: Settings, clock: Clock) -> Transport:
    if account.transport == "sandbox":
        from bot.wechat.sandbox import SandboxTransport

        return SandboxTransport(account.id, clock=clock, seed=settings.sandbox.seed)
    if account.transport == "wechaty":
        try:
            from bot.wechat.wechaty_transport import WechatyTransport
        except ImportError as error:
            raise ConnectError(
                f"account {account.id}: the wechaty transport is unavailable ({error})"
            ) from None
        return WechatyTransport(account, settings, clock)
    raise ConnectError(f"account {account.id}: unknown transport {account.transport!r}")
