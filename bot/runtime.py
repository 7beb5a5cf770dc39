"""What the daemon's parts share: settings, database, clock, the task supervisor and the
running accounts; and the shape of a daemon service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.clock import Clock
from bot.config.settings import AccountSettings, Settings
from bot.events import ContactEventRecorded
from bot.pipeline import AccountPipeline
from bot.store import Database
from bot.supervisor import Supervisor
from bot.wechat.transport import Transport


@dataclass
class AccountRuntime:
    """Everything that runs for one WeChat account."""

    settings: AccountSettings
    transport: Transport
    pipeline: AccountPipeline

    @property
    def account_id(self) -> str:
        return self.settings.id


@dataclass
class BotContext:
    settings: Settings
    database: Database
    clock: Clock
    supervisor: Supervisor = field(default_factory=Supervisor)
    accounts: dict[str, AccountRuntime] = field(default_factory=dict)
    # False in tests that drive the services step by step (no background loops).
    background: bool = True

    def publish(self, events: Sequence[ContactEventRecorded]) -> None:
        """Committed contact events from outside a pipeline (webhook, upkeep), to their
        account's reaction lanes."""
        for event in events:
            runtime = self.accounts.get(event.account_id)
            if runtime is not None:
                runtime.pipeline.publish([event])


class Service(Protocol):
    """A part of the daemon that lives as long as it does (delivery worker, SOP scheduler,
    signals upkeep, webhook server). Its long-lived tasks go through the supervisor."""

    name: str

    async def start(self) -> None:
        """Called once every account's transport has started."""
        ...

    async def stop(self) -> None: ...
