"""The daemon component for signals: runs the engine on transport events, mirrors tags to
WeChat, sweeps expired tags, and relays events recorded by `sopbot import-orders`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from sqlalchemy import delete, select

from bot.events import ContactEventKind, ContactEventRecorded
from bot.runtime import AccountRuntime, BotContext
from bot.signals.engine import SignalEngine
from bot.signals.mirror import TagMirror
from bot.store.models import ContactEvent, EventRelay
from bot.wechat.types import FriendAdded, LoggedIn, MessageReceived, RoomJoined

log = logging.getLogger("bot.signals")

RELAY_POLL = 2.0
SWEEP_EVERY = 600.0
RECOMPUTE_EVERY = 6 * 3600.0


class SignalsComponent:
    name = "signals"

    def __init__(self, context: BotContext, engine: SignalEngine | None = None) -> None:
        self.context = context
        self.engine = engine or SignalEngine(context.settings, context.database, context.clock)
        self.tasks: list[asyncio.Task[None]] = []

    def attach(self, account: AccountRuntime) -> None:
        account_id = account.account_id
        dispatcher = account.dispatcher

        async def on_message(event: MessageReceived) -> None:
            await self._run(self.engine.on_messages, account_id, [event.message])

        async def on_friend(event: FriendAdded) -> None:
            await self._run(self.engine.on_friend_added, account_id, event.contact.wxid, event.hello)

        async def on_join(event: RoomJoined) -> None:
            invitees = [p.wxid for p in event.invitees]
            inviter = event.inviter.wxid if event.inviter else None
            await self._run(self.engine.on_room_join, account_id, event.room.topic, invitees, inviter)

        async def on_login(_: LoggedIn) -> None:
            await self._run(self.engine.on_contacts_seen, None)

        dispatcher.subscribe(MessageReceived, on_message)
        dispatcher.subscribe(FriendAdded, on_friend)
        dispatcher.subscribe(RoomJoined, on_join)
        dispatcher.subscribe(LoggedIn, on_login)
        if self.context.settings.tiers.mirror_to_wechat:
            mirror = TagMirror(
                account.transport, self.context.database, self.context.clock, self.engine.policy
            )
            dispatcher.subscribe(ContactEventRecorded, mirror.on_event)

    async def _run(self, work: object, *args: object) -> None:
        events: list[ContactEventRecorded] = await asyncio.to_thread(work, *args)  # type: ignore[arg-type]
        await self.publish(events)

    async def publish(self, events: Sequence[ContactEventRecorded]) -> None:
        """Hand committed events to their account's dispatcher."""
        for event in events:
            runtime = self.context.accounts.get(event.account_id)
            if runtime is not None:
                await runtime.dispatcher.publish(event)

    async def start(self) -> None:
        if self.context.background:
            self.tasks.append(asyncio.create_task(self._loop(), name="signals-upkeep"))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks.clear()

    async def _loop(self) -> None:
        # the first full recompute waits a minute: start-up has enough to do
        since_sweep, since_recompute = SWEEP_EVERY, RECOMPUTE_EVERY - 60.0
        while True:
            try:
                await self.relay()
                if since_sweep >= SWEEP_EVERY:
                    since_sweep = 0.0
                    await self.publish(await asyncio.to_thread(self.engine.sweep))
                if since_recompute >= RECOMPUTE_EVERY:
                    # people with no new signal still lapse when the period moves on
                    since_recompute = 0.0
                    await self.publish(await asyncio.to_thread(self.engine.recompute_all, trigger="周期重算"))
            except Exception:
                log.exception("signals upkeep failed; trying again")
            await asyncio.sleep(RELAY_POLL)
            since_sweep += RELAY_POLL
            since_recompute += RELAY_POLL

    async def relay(self) -> int:
        """Publish events another process recorded (e.g. an order import); returns how many."""
        events = await asyncio.to_thread(self._take_relayed)
        await self.publish(events)
        return len(events)

    def _take_relayed(self) -> list[ContactEventRecorded]:
        with self.context.database.session() as session:
            rows = session.execute(
                select(ContactEvent, EventRelay.account_id)
                .join(EventRelay, EventRelay.event_id == ContactEvent.id)
                .where(EventRelay.account_id.in_(list(self.context.accounts)))
                .order_by(ContactEvent.id)
                .limit(1000)
            ).all()
            if not rows:
                return []
            session.execute(delete(EventRelay).where(EventRelay.event_id.in_([row[0].id for row in rows])))
        return [
            ContactEventRecorded(
                account, row.contact_id, ContactEventKind(row.kind), row.at, row.detail, row.ref
            )
            for row, account in rows
        ]
