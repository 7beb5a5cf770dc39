"""Signals in the daemon: the `signals` stage of every account's pipeline (tag rules on a
message, referrals and orders on a new friend or group join, orders linked on login), and
the upkeep that runs beside it (expired tags, the periodic tier recompute, and events
recorded by `sopbot import-orders` in another process)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import delete, select

from bot.events import ContactEventKind, ContactEventRecorded, Outcome
from bot.runtime import BotContext
from bot.signals.engine import SignalEngine
from bot.store.models import ContactEvent, EventRelay
from bot.wechat.types import FriendAdded, LoggedIn, MessageReceived, RoomJoined

log = logging.getLogger("bot.signals")

RELAY_POLL = 2.0
SWEEP_EVERY = 600.0
RECOMPUTE_EVERY = 6 * 3600.0


class SignalsStage:
    """Units of work of the `signals` stage; each returns what it committed."""

    def __init__(self, engine: SignalEngine) -> None:
        self.engine = engine

    def message(self, event: MessageReceived) -> Outcome:
        return self.engine.on_messages(event.account_id, [event.message])

    def friend_added(self, event: FriendAdded) -> Outcome:
        return Outcome(self.engine.on_friend_added(event.account_id, event.contact.wxid, event.hello))

    def room_join(self, event: RoomJoined) -> Outcome:
        invitees = [p.wxid for p in event.invitees]
        inviter = event.inviter.wxid if event.inviter else None
        return Outcome(self.engine.on_room_join(event.account_id, event.room.topic, invitees, inviter))

    def contacts_seen(self, _event: LoggedIn) -> Outcome:
        return Outcome(self.engine.on_contacts_seen(None))


class SignalsUpkeep:
    """A daemon service: sweeps expired tags, recomputes every tier now and then, relays
    events recorded outside the daemon. Its loop is supervised (restarted after a crash)."""

    name = "signals"

    def __init__(self, context: BotContext, engine: SignalEngine) -> None:
        self.context = context
        self.engine = engine

    async def start(self) -> None:
        if self.context.background:
            self.context.supervisor.spawn(
                "signals-upkeep", self._loop, doing="sweeping tags, recomputing tiers, relaying events"
            )

    async def stop(self) -> None:
        return None

    async def _loop(self) -> None:
        # the first full recompute waits a minute: start-up has enough to do
        since_sweep, since_recompute = SWEEP_EVERY, RECOMPUTE_EVERY - 60.0
        while True:
            await self.relay()
            if since_sweep >= SWEEP_EVERY:
                since_sweep = 0.0
                self.context.publish(await asyncio.to_thread(self.engine.sweep))
            if since_recompute >= RECOMPUTE_EVERY:
                # people with no new signal still lapse when the period moves on
                since_recompute = 0.0
                self.context.publish(await asyncio.to_thread(self.engine.recompute_all, trigger="周期重算"))
            await asyncio.sleep(RELAY_POLL)
            since_sweep += RELAY_POLL
            since_recompute += RELAY_POLL

    async def relay(self) -> int:
        """Publish events another process recorded (e.g. an order import); returns how many."""
        events = await asyncio.to_thread(self._take_relayed)
        self.context.publish(events)
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
