"""What the daemon's parts share: settings, database, clock and the running accounts;
and the shape of a daemon component."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from bot.clock import Clock
from bot.config.settings import AccountSettings, Settings
from bot.dispatch import Dispatcher
from bot.store import Database
from bot.wechat.transport import Transport


@dataclass
class AccountRuntime:
    """Everything that runs for one WeChat account."""

    settings: AccountSettings
    transport: Transport
    dispatcher: Dispatcher
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def account_id(self) -> str:
        return self.settings.id


@dataclass
class BotContext:
    settings: Settings
    database: Database
    clock: Clock
    accounts: dict[str, AccountRuntime] = field(default_factory=dict)
    # False in tests that drive components step by step (no background loops).
    background: bool = True


class Component(Protocol):
    """A part of the daemon that lives as long as it does (rule engine, scheduler,
    delivery worker, webhook server, …)."""

    name: str

    def attach(self, account: AccountRuntime) -> None:
        """Called for each account before its transport starts: subscribe to its events."""
        ...

    async def start(self) -> None:
        """Called once every account has started."""
        ...

    async def stop(self) -> None: ...
