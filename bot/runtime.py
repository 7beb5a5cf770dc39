"""What the daemon's parts share: settings, database, clock, the task supervisor and the
running accounts; and the shape of a daemon service."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.clock import Clock
from bot.config.settings import AccountSettings, Settings
from bot.events import ContactEventRecorded
from bot.instance import new_instance_id
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
    instance_id: str = field(default_factory=new_instance_id)
    # accounts whose lease this daemon holds → until when (as last renewed); None: no leases
    # are kept (a daemon's parts driven on their own, in tests and benchmarks)
    leases: dict[str, datetime] | None = None
    stopping: threading.Event = field(default_factory=threading.Event)

    def may_send(self, account_id: str, now: datetime) -> bool:
        """Fencing: send only while the account's lease has more than a third of it left, so
        that a daemon which cannot renew stops before another one may take the account."""
        if self.leases is None:
            return True
        until = self.leases.get(account_id)
        margin = timedelta(seconds=self.settings.delivery.lease / 3)
        return until is not None and until - now > margin

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
