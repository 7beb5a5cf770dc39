"""Keeps the database in step with what the transport reports: the account's login,
contacts, rooms, members and inbound messages."""

from __future__ import annotations

import asyncio
import logging

from bot.clock import Clock
from bot.dispatch import Dispatcher
from bot.events import ContactEventKind, ContactEventRecorded
from bot.signals.tiers_ladder import DEFAULT_LADDER, TierLadder
from bot.store import Database
from bot.store import directory as d
from bot.wechat.transport import Transport
from bot.wechat.types import (
    ContactInfo,
    FriendAdded,
    FriendRequest,
    LoggedIn,
    LoggedOut,
    MessageReceived,
    RoomJoined,
    RoomLeft,
    RoomTopicChanged,
)

log = logging.getLogger("bot.recorder")


def tier_tags(ladder: TierLadder) -> dict[str, str]:
    """WeChat tags an operator already uses for tiers (the ladder's display names): a
    contact carrying one starts at that tier."""
    return {name: tier_id for tier_id, name in ladder.pairs()}


def excerpt(text: str, limit: int = 40) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class Recorder:
    """Subscribes to transport events and writes them down."""

    def __init__(
        self,
        database: Database,
        transport: Transport,
        clock: Clock,
        *,
        ladder: TierLadder = DEFAULT_LADDER,
        respect_wechat_tags: bool = True,
    ) -> None:
        self.database = database
        self.transport = transport
        self.clock = clock
        # with `respect_wechat_tags = false` the tier engine alone decides tiers
        self.tier_tags = tier_tags(ladder) if respect_wechat_tags else {}
        self.account_id = transport.account_id
        self.dispatcher: Dispatcher | None = None

    async def _published(self, events: list[ContactEventRecorded]) -> None:
        """Publish contact events once their transaction has committed."""
        if self.dispatcher is not None:
            for event in events:
                await self.dispatcher.publish(event)

    def attach(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        dispatcher.subscribe(LoggedIn, self.on_login)
        dispatcher.subscribe(LoggedOut, self.on_logout)
        dispatcher.subscribe(MessageReceived, self.on_message)
        dispatcher.subscribe(FriendRequest, self.on_friend_request)
        dispatcher.subscribe(FriendAdded, self.on_friend_added)
        dispatcher.subscribe(RoomJoined, self.on_room_join)
        dispatcher.subscribe(RoomLeft, self.on_room_leave)
        dispatcher.subscribe(RoomTopicChanged, self.on_room_topic)

    async def on_login(self, event: LoggedIn) -> None:
        with self.database.session() as session:
            d.mark_online(session, self.account_id, event.me, self.clock.now())
        contacts, rooms = await self.sync()
        log.info(
            "account %s online as %s: %d contacts, %d rooms synced",
            self.account_id,
            event.me.name,
            contacts,
            rooms,
        )

    async def sync(self) -> tuple[int, int]:
        """Bring every contact, room and member the transport knows into the database."""
        contacts = list(await self.transport.contacts())
        rooms = list(await self.transport.rooms())
        members = {room.room_wxid: list(await self.transport.room_members(room.room_wxid)) for room in rooms}
        await asyncio.to_thread(self._store_sync, contacts, rooms, members)
        return len(contacts), len(rooms)

    def _store_sync(
        self, contacts: list[ContactInfo], rooms: list, members: dict[str, list[ContactInfo]]
    ) -> None:
        now = self.clock.now()
        with self.database.session() as session:
            for contact in contacts:
                contact_id = d.upsert_contact(session, self.account_id, contact, now)
                self._mirror_wechat_tags(session, contact_id, contact)
            for room in rooms:
                room_id = d.upsert_room(session, self.account_id, room, now)
                for member in members.get(room.room_wxid, ()):
                    member_id = d.upsert_contact(session, self.account_id, member, now)
                    d.record_member(session, room_id, member, member_id, joined_at=None)

    def _mirror_wechat_tags(self, session, contact_id: int, contact: ContactInfo) -> None:
        now = self.clock.now()
        for tag in contact.tags:
            if d.tag_contact(
                session, contact_id, tag, source="wechat", now=now, evidence="WeChat contact tag"
            ):
                tier = self.tier_tags.get(tag)
                if tier:
                    d.set_tier(session, contact_id, tier, cause=f"WeChat tag {tag}", now=now)

    async def on_logout(self, event: LoggedOut) -> None:
        with self.database.session() as session:
            d.mark_online(session, self.account_id, None, self.clock.now())
        log.info("account %s offline%s", self.account_id, f": {event.reason}" if event.reason else "")

    async def on_message(self, event: MessageReceived) -> None:
        message = event.message
        now = self.clock.now()
        with self.database.session() as session:
            contact_id = d.upsert_contact(session, self.account_id, message.talker, now)
            room_id = d.upsert_room(session, self.account_id, message.room, now) if message.room else None
            stored = d.record_message(session, self.account_id, message, contact_id, room_id, now)
        where = f" in {message.room.topic}" if message.room else ""
        if stored is None:
            log.debug("duplicate message %s ignored", message.msg_id)
            return
        log.info(
            "message from %s%s: %s", message.talker.name, where, excerpt(message.text) or f"[{message.kind}]"
        )

    async def on_friend_request(self, event: FriendRequest) -> None:
        log.info("friend request from %s: %s", event.contact.name, excerpt(event.hello) or "(no greeting)")

    async def on_friend_added(self, event: FriendAdded) -> None:
        now = self.clock.now()
        kind = ContactEventKind.FRIEND_ADDED
        with self.database.session() as session:
            contact_id = d.upsert_contact(session, self.account_id, event.contact, now)
            d.record_event(session, contact_id, kind, now, detail=event.hello or None)
            d.mark_friend_added(session, contact_id, now)
        log.info("new friend %s", event.contact.name)
        await self._published(
            [ContactEventRecorded(self.account_id, contact_id, kind, now, event.hello or None)]
        )

    async def on_room_join(self, event: RoomJoined) -> None:
        now = self.clock.now()
        kind = ContactEventKind.JOINED_GROUP
        inviter = event.inviter.wxid if event.inviter else None
        recorded: list[ContactEventRecorded] = []
        with self.database.session() as session:
            room_id = d.upsert_room(session, self.account_id, event.room, now)
            for person in event.invitees:
                contact_id = d.upsert_contact(session, self.account_id, person, now)
                d.record_member(
                    session, room_id, person, contact_id, joined_at=event.at, inviter_wxid=inviter
                )
                d.record_event(session, contact_id, kind, event.at, detail=event.room.topic, ref=inviter)
                recorded.append(
                    ContactEventRecorded(
                        self.account_id, contact_id, kind, event.at, event.room.topic, inviter
                    )
                )
        names = "、".join(p.name for p in event.invitees)
        by = f" (invited by {event.inviter.name})" if event.inviter else ""
        log.info("%s joined %s%s", names, event.room.topic, by)
        await self._published(recorded)

    async def on_room_leave(self, event: RoomLeft) -> None:
        now = self.clock.now()
        with self.database.session() as session:
            room_id = d.upsert_room(session, self.account_id, event.room, now)
            for person in event.leavers:
                d.record_member_left(session, room_id, person.wxid, event.at)
        log.info("%s left %s", "、".join(p.name for p in event.leavers), event.room.topic)

    async def on_room_topic(self, event: RoomTopicChanged) -> None:
        now = self.clock.now()
        with self.database.session() as session:
            room_id = d.upsert_room(session, self.account_id, event.room, now)
            d.set_room_topic(session, room_id, event.new_topic, now)
        log.info("room %s renamed to %s", event.old_topic, event.new_topic)
