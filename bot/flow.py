"""The whole flow of events through the daemon, in one place.

Every account has a pipeline (`bot.pipeline.AccountPipeline`). Its inbound lane takes the
transport's events one at a time, in arrival order, and passes each through the stages
declared below, top to bottom. A `unit` step is one database transaction in a worker thread
(the event loop never waits on the database); an `io` step talks to WeChat. Contact events a
unit commits (tag added, tier changed, opted out, …) are published after the commit to the
account's reaction lanes, each with its own queue, so a slow reaction never holds up the
next inbound message. See docs/architecture.md for the path file by file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.config.settings import AccountSettings
from bot.console.service import ConsoleService
from bot.delivery.admin import AdminCommands
from bot.delivery.worker import DeliveryWorker
from bot.events import ContactEventRecorded
from bot.friendship import FriendshipPolicy
from bot.monitor.service import MonitorService
from bot.pipeline import AccountPipeline, Step, io, unit
from bot.recorder import Recorder
from bot.results.digest import DigestService
from bot.results.service import RollupService
from bot.retention.service import RetentionService
from bot.runtime import BotContext, Service
from bot.signals.engine import SignalEngine
from bot.signals.mirror import TagMirror
from bot.signals.service import SignalsStage, SignalsUpkeep
from bot.signals.tiers import TierPolicy
from bot.sop.runtime.service import SopService
from bot.webhook.service import WebhookService
from bot.wechat.transport import Transport
from bot.wechat.types import (
    FriendAdded,
    FriendRemoved,
    FriendRequest,
    LoggedIn,
    LoggedOut,
    MessageReceived,
    RoomJoined,
    RoomLeft,
    RoomTopicChanged,
)


@dataclass
class Services:
    """The parts every account shares; the daemon starts them in this order and stops them
    in reverse."""

    delivery: DeliveryWorker
    admin: AdminCommands
    sop: SopService
    signals: SignalsStage
    upkeep: SignalsUpkeep
    webhook: WebhookService
    policy: TierPolicy
    results: RollupService
    digest: DigestService
    monitor: MonitorService
    console: ConsoleService
    retention: RetentionService

    @classmethod
    def build(cls, context: BotContext) -> Services:
        engine = SignalEngine(context.settings, context.database, context.clock)
        sop = SopService(context)
        monitor = MonitorService(context)
        retention = RetentionService(context)
        return cls(
            delivery=DeliveryWorker(context),
            admin=AdminCommands(context, sop.next_send, retention.chat_commands()),
            sop=sop,
            signals=SignalsStage(engine),
            upkeep=SignalsUpkeep(context, engine),
            webhook=WebhookService(context, engine),
            policy=engine.policy,
            results=RollupService(context),
            digest=DigestService(context),
            monitor=monitor,
            console=ConsoleService(
                context, running_sops=lambda: sop.sopset, engine=engine, started=lambda: monitor.started()
            ),
            retention=retention,
        )

    def in_start_order(self) -> list[Service]:
        return [
            self.delivery, self.sop, self.upkeep, self.webhook, self.results, self.digest, self.retention, self.monitor,
            self.console,
        ]  # fmt: skip


def inbound_steps(
    recorder: Recorder, friendship: FriendshipPolicy, services: Services
) -> Mapping[type, Sequence[Step]]:
    """What happens to each transport event, stage by stage."""
    admin, signals, sop = services.admin, services.signals, services.sop
    return {
        LoggedIn: (
            io("recorder", recorder.login),  # contacts, rooms, members; WeChat tags → tags and tiers
            unit("signals", signals.contacts_seen),  # orders of unknown buyers that now match
            unit("sop", sop.rooms_changed),  # group types from sop/groups.yaml
        ),
        LoggedOut: (unit("recorder", recorder.logout),),
        MessageReceived: (
            unit("recorder", recorder.message),  # stored once; a redelivery stops here
            unit("admin", admin.command),  # #pause / #resume / #status from admins stop here
            unit("signals", signals.message),  # tag rules, replies, opt-out, tiers
        ),
        FriendRequest: (
            unit("recorder", recorder.friend_request),
            io("friendship", friendship.request),  # accepted when [friendship] auto_accept
        ),
        FriendAdded: (
            unit("recorder", recorder.friend_added),  # FRIEND_ADDED
            unit("signals", signals.friend_added),  # referral code in the greeting, earlier orders
        ),
        FriendRemoved: (unit("recorder", recorder.friend_removed),),  # FRIEND_DELETED (删粉)
        RoomJoined: (
            unit("recorder", recorder.room_join),  # members, JOINED_GROUP
            unit("signals", signals.room_join),  # the inviter's referrals
            unit("sop", sop.rooms_changed),
        ),
        RoomLeft: (unit("recorder", recorder.room_leave),),
        RoomTopicChanged: (unit("recorder", recorder.room_topic), unit("sop", sop.rooms_changed)),
    }


def reaction_steps(
    mirror: TagMirror | None, services: Services
) -> Mapping[str, Mapping[type, Sequence[Step]]]:
    """What follows a committed contact event; each lane keeps its own order."""
    lanes: dict[str, Mapping[type, Sequence[Step]]] = {
        "sop-lifecycle": {ContactEventRecorded: (io("sop", services.sop.contact_event),)},
    }
    if mirror is not None:
        lanes["tag-mirror"] = {ContactEventRecorded: (io("tag-mirror", mirror.on_event),)}
    return lanes


def account_pipeline(
    account: AccountSettings, transport: Transport, services: Services, context: BotContext
) -> AccountPipeline:
    settings = context.settings
    recorder = Recorder(
        context.database, transport, context.clock, services.policy, stopping=context.stopping,
        referrer=services.signals.engine.referrer_in,  # a new friend's source: referral
    )  # fmt: skip
    friendship = FriendshipPolicy(transport, auto_accept=settings.friendship.auto_accept)
    mirror = (
        TagMirror(transport, context.database, context.clock, services.policy)
        if settings.tiers.mirror_to_wechat
        else None
    )
    return AccountPipeline(
        account.id,
        inbound_steps(recorder, friendship, services),
        reaction_steps(mirror, services),
        wake_delivery=services.delivery.wake,
    )
