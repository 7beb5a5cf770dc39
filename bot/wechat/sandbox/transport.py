"""The sandbox transport: an in-process WeChat that behaves like the real one at the
boundary (same events, same errors) and records everything the bot sends.

Tests drive it directly (`say`, `request_friend`, `invite`, `unfriend`, …) and read `sent`;
the daemon lets it `autoplay` a stream of realistic events from the demo population, whose
people also react to what the bot sends them (`bot.wechat.sandbox.customers`) and buy in
the sandbox shop (`bot.wechat.sandbox.shop`).

Unlike wechaty, the sandbox reports some deletions (删粉) as an event, `FriendRemoved`; a
deleted contact's sends are refused and the contact list shows them as no friend.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TextIO

from bot.clock import Clock, SystemClock
from bot.wechat.sandbox.customers import Customers
from bot.wechat.sandbox.population import BOT_ME, PERSONAS, ROOMS
from bot.wechat.sandbox.shop import SandboxShop
from bot.wechat.transport import (
    EventHandler,
    RecipientGoneError,
    SendReceipt,
    TransportError,
)
from bot.wechat.types import (
    ContactInfo,
    Content,
    Event,
    FriendAdded,
    FriendRemoved,
    FriendRequest,
    LoggedIn,
    LoggedOut,
    Message,
    MessageKind,
    MessageReceived,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomTopicChanged,
    Target,
)

log = logging.getLogger("bot.wechat.sandbox")


@dataclass(frozen=True)
class SentRecord:
    """One send the bot made, as the sandbox received it."""

    seq: int
    msg_id: str
    target: Target
    content: Content
    at: datetime
    ref: str | None = None


class SandboxTransport:
    """A simulated WeChat account. Not thread-safe: use it from one event loop."""

    name = "sandbox"
    capabilities = frozenset({"tags"})

    def __init__(
        self,
        account_id: str = "main",
        *,
        clock: Clock | None = None,
        seed: int = 2026,
        populate: bool = True,
        journal: Path | None = None,
        extra_contacts: int = 0,
        send_delay: float = 0.0,
    ) -> None:
        self.account_id = account_id
        self.clock = clock or SystemClock()
        self.me = BOT_ME
        self.random = random.Random(seed)
        self.sent: list[SentRecord] = []
        self.blocked: set[str] = set()
        self._handler: EventHandler | None = None
        self._contacts: dict[str, ContactInfo] = {}
        self._rooms: dict[str, RoomInfo] = {}
        self._requests: dict[str, tuple[ContactInfo, str]] = {}
        self._failures: list[TransportError] = []
        self._ids = itertools.count(1)
        self.online = False
        if journal is not None:  # its friendships outlive the process: a missing friend is gone
            self.capabilities = frozenset({"tags", "contact_list"})
        # The journal plays WeChat's server side: it outlives a crash of the bot process,
        # so after a restart the sandbox can say for sure whether a message went out.
        self.journal = journal
        self.send_delay = send_delay  # a real gateway's round trip, for fault tests
        self._journal_refs: set[str] = set()
        self._journal_file: TextIO | None = None
        self._journal_read = 0  # bytes of the journal already loaded
        self._friendships: dict[str, tuple[str, bool]] = {}  # wxid → (name, friend), journalled
        self._load_journal()
        for number in range(1, extra_contacts + 1):
            contact = ContactInfo(wxid=f"wxid_demo_{number:06d}", name=f"测试客户{number:06d}")
            self._contacts[contact.wxid] = contact
        if populate:
            for persona in PERSONAS:
                self._contacts[persona.contact.wxid] = persona.contact
            for room in ROOMS:
                self._rooms[room.room_wxid] = room
        self.customers = Customers(self, seed, populate=populate)
        # WeChat's server side remembers who became a friend and who deleted the account
        for wxid, (name, friend) in self._friendships.items():
            contact = self._contacts.get(wxid) or ContactInfo(wxid=wxid, name=name)
            self._contacts[wxid] = replace(contact, is_friend=friend)
            if not friend:
                self.blocked.add(wxid)
                self.customers.left(wxid)

    # -- the Transport protocol --------------------------------------------------------

    async def start(self, handler: EventHandler) -> None:
        self._handler = handler
        self.online = True
        log.info("sandbox account %s logged in as %s", self.account_id, self.me.name)
        await self._emit(LoggedIn(self.account_id, self.me))

    async def stop(self) -> None:
        if self._journal_file is not None:
            self._journal_file.close()
            self._journal_file = None
        if self.online:
            self.online = False
            await self._emit(LoggedOut(self.account_id, "stopped"))
        self._handler = None

    async def send(self, target: Target, content: Content, *, ref: str | None = None) -> SendReceipt:
        if not self.online:
            raise TransportError("sandbox account is not logged in")
        if self.send_delay:
            await asyncio.sleep(self.send_delay)
        if self._failures:
            raise self._failures.pop(0)
        known = self._rooms if target.is_room else self._contacts
        if target.wxid not in known or target.wxid in self.blocked:
            kind = "room" if target.is_room else "contact"
            raise RecipientGoneError(f"{kind} {target.wxid} is gone or has blocked the account")
        seq = len(self.sent) + 1
        record = SentRecord(seq, f"sandbox-sent-{seq}", target, content, self.clock.now(), ref)
        self.sent.append(record)
        if ref is not None:
            self._journal_refs.add(ref)
        self._journal_write(
            {"ref": ref, "to": target.wxid, "room": target.is_room, "at": record.at.isoformat()}
        )
        self.customers.heard(record)  # the recipient may answer, buy, or leave, a little later
        return SendReceipt(record.msg_id)

    def _journal_write(self, entry: dict[str, object]) -> None:
        if self.journal is None:
            return
        if self._journal_file is None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self._journal_file = self.journal.open("a", encoding="utf-8", buffering=1)
        self._journal_file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    async def was_sent(self, ref: str) -> bool | None:
        if ref not in self._journal_refs:
            self._load_journal()  # another process may share the journal
        if ref in self._journal_refs:
            return True
        return False if self.journal is not None else None

    def _load_journal(self) -> None:
        if self.journal is None or not self.journal.exists():
            return
        with self.journal.open("rb") as file:
            file.seek(self._journal_read)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
        self._journal_read += len(complete)
        for line in complete.decode("utf-8").splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if ref := entry.get("ref"):
                self._journal_refs.add(ref)
            elif wxid := entry.get("friend"):
                self._friendships[wxid] = (str(entry.get("name") or wxid), bool(entry.get("is_friend")))

    async def contacts(self) -> Sequence[ContactInfo]:
        return list(self._contacts.values())

    async def rooms(self) -> Sequence[RoomInfo]:
        return list(self._rooms.values())

    async def room_members(self, room_wxid: str) -> Sequence[ContactInfo]:
        room = self._rooms[room_wxid]
        return [self._contact(wxid) for wxid in room.member_wxids if wxid != self.me.wxid]

    async def accept_friend(self, request_id: str) -> None:
        contact, hello = self._requests.pop(request_id)
        contact = replace(contact, is_friend=True)
        self._contacts[contact.wxid] = contact
        self.blocked.discard(contact.wxid)
        self._journal_friendship(contact)
        self.customers.befriended(contact.wxid)
        await self._emit(FriendAdded(self.account_id, contact, hello))

    def _journal_friendship(self, contact: ContactInfo) -> None:
        entry = {"friend": contact.wxid, "name": contact.name, "is_friend": contact.is_friend}
        self._journal_write(entry | {"at": self.clock.now().isoformat()})

    async def add_tag(self, wxid: str, tag: str) -> None:
        contact = self._contact(wxid)
        if tag not in contact.tags:
            self._contacts[wxid] = replace(contact, tags=(*contact.tags, tag))

    async def remove_tag(self, wxid: str, tag: str) -> None:
        contact = self._contact(wxid)
        self._contacts[wxid] = replace(contact, tags=tuple(t for t in contact.tags if t != tag))

    # -- what tests (and autoplay) make happen -----------------------------------------

    def sent_to(self, wxid: str) -> list[SentRecord]:
        return [record for record in self.sent if record.target.wxid == wxid]

    def fail_next(self, error: TransportError, times: int = 1) -> None:
        """The next `times` sends raise `error`."""
        self._failures.extend([error] * times)

    def contact(self, wxid: str) -> ContactInfo:
        return self._contact(wxid)

    async def say(
        self,
        wxid: str,
        text: str,
        *,
        room: str | None = None,
        kind: MessageKind = MessageKind.TEXT,
        mentions_self: bool = False,
    ) -> Message:
        """`wxid` says `text` to the bot (1:1) or in `room`."""
        message = Message(
            msg_id=f"sandbox-in-{next(self._ids)}",
            talker=self._contact(wxid),
            kind=kind,
            text=text,
            sent_at=self.clock.now(),
            room=self._rooms[room] if room else None,
            mentions_self=mentions_self,
        )
        await self._emit(MessageReceived(self.account_id, message))
        return message

    async def request_friend(self, wxid: str, name: str, hello: str = "") -> str:
        """A stranger asks to become a friend; returns the request id."""
        contact = self._contacts.get(wxid) or ContactInfo(wxid=wxid, name=name, is_friend=False)
        request_id = f"sandbox-req-{next(self._ids)}"
        self._requests[request_id] = (contact, hello)
        await self._emit(FriendRequest(self.account_id, request_id, contact, hello))
        return request_id

    async def invite(self, room_wxid: str, invitees: Sequence[ContactInfo], inviter: str | None) -> None:
        """`inviter` brings `invitees` into the room."""
        room = self._rooms[room_wxid]
        for person in invitees:
            self._contacts.setdefault(person.wxid, replace(person, is_friend=False))
        members = tuple(dict.fromkeys((*room.member_wxids, *(p.wxid for p in invitees))))
        room = replace(room, member_wxids=members)
        self._rooms[room_wxid] = room
        who = self._contact(inviter) if inviter else None
        await self._emit(RoomJoined(self.account_id, room, tuple(invitees), who, self.clock.now()))

    async def leave(self, room_wxid: str, wxid: str) -> None:
        room = self._rooms[room_wxid]
        room = replace(room, member_wxids=tuple(m for m in room.member_wxids if m != wxid))
        self._rooms[room_wxid] = room
        await self._emit(RoomLeft(self.account_id, room, (self._contact(wxid),), None, self.clock.now()))

    async def rename(self, room_wxid: str, topic: str, changer: str | None = None) -> None:
        """`changer` renames the room."""
        room = self._rooms[room_wxid]
        self._rooms[room_wxid] = replace(room, topic=topic)
        who = self._contact(changer) if changer else None
        await self._emit(RoomTopicChanged(self.account_id, self._rooms[room_wxid], room.topic, topic, who))

    async def unfriend(self, wxid: str, *, tell: bool = True) -> None:
        """`wxid` deletes the account (删粉): sends to them are refused from now on and the
        contact list shows them as no friend. With `tell` the sandbox reports it
        (`FriendRemoved`), as a transport that learns of deletions would; without, sopbot
        finds out by itself (a refused send, the next contact sync)."""
        contact = replace(self._contact(wxid), is_friend=False)
        self._contacts[wxid] = contact
        self.blocked.add(wxid)
        self._journal_friendship(contact)
        self.customers.left(wxid)
        log.info("sandbox: %s deleted the account%s", contact.name, "" if tell else " (silently)")
        if tell:
            await self._emit(FriendRemoved(self.account_id, contact, self.clock.now()))

    def add_contact(self, contact: ContactInfo) -> None:
        self._contacts[contact.wxid] = contact

    def add_room(self, room: RoomInfo) -> None:
        self._rooms[room.room_wxid] = room

    def knows(self, wxid: str) -> bool:
        return wxid in self._contacts

    def room(self, room_wxid: str) -> RoomInfo | None:
        return self._rooms.get(room_wxid)

    def rooms_known(self) -> list[RoomInfo]:
        return list(self._rooms.values())

    def rooms_of(self, wxid: str) -> list[str]:
        return [r.room_wxid for r in self._rooms.values() if wxid in r.member_wxids]

    async def autoplay(self, interval: float, *, shop: SandboxShop | None = None) -> None:
        """Produce a believable stream of events until cancelled: every `interval` seconds
        or so, what the customers had coming (answers, orders, deletions) and one new thing.
        With a `shop`, customers buy there."""
        if shop is not None:
            self.customers.shop = shop
        while True:
            await asyncio.sleep(interval * self.random.uniform(0.5, 1.5))
            if self.online:
                await self.tick()

    async def tick(self) -> None:
        """One step of the simulated customers (what `autoplay` does each time)."""
        await self.customers.tick()

    async def _random_event(self) -> None:
        await self.customers.random_event()

    # -- internals ---------------------------------------------------------------------

    def _contact(self, wxid: str) -> ContactInfo:
        if wxid == self.me.wxid:
            return self.me
        try:
            return self._contacts[wxid]
        except KeyError:
            raise KeyError(f"sandbox has no contact {wxid!r}") from None

    async def _emit(self, event: Event) -> None:
        if self._handler is not None:
            await self._handler(event)
