"""The recorder: the first stage of an account's pipeline. It writes down what the
transport reports (the login and the contact sync, people, rooms, members, messages) before
any later stage looks at the event.

Each handler but `login` is a unit of work: one transaction, run off the event loop, whose
contact events are published by the pipeline after the commit.

WeChat tags found at a contact sync are the operator's own reading of the person: they are
stored as `wechat` tags through the one tag writer, and a tag that names a tier is a floor
for the tier engine (`[tiers] respect_wechat_tags`), so the contact's tier is recomputed at
once. A contact seen for the first time starts where WeChat says it is: those tag and tier
events are recorded with `ref = "initial"`, kept in the history, and lifecycle steps do not
follow them (a first sync of 500 tagged KOCs is not 500 new KOCs)."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlmodel import Session

from bot.clock import Clock
from bot.events import (
    INITIAL_STATE_REF,
    AddSource,
    ContactEventKind,
    ContactEventRecorded,
    DeletionSeen,
    Outcome,
)
from bot.recorder import writes as w
from bot.signals import taglib
from bot.signals.tiers import TierPolicy, recompute
from bot.store import Database, friendships
from bot.store import directory as d
from bot.store.eventlog import EventLog
from bot.text import excerpt
from bot.wechat.transport import Transport
from bot.wechat.types import (
    ContactInfo,
    FriendAdded,
    FriendRemoved,
    FriendRequest,
    LoggedIn,
    LoggedOut,
    MessageReceived,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomTopicChanged,
)

log = logging.getLogger("bot.recorder")

WECHAT_SOURCE = "wechat"  # tags the operator put on the contact in WeChat
SYNC_CHUNK = 2000
# A contact list that lost more friends at once than this (and more than a fifth of them) is
# taken as incomplete (a gateway still loading its list), not as a wave of deletions.
SYNC_MISSING_FEW = 10
SYNC_MISSING_SHARE = 0.2
HELLO_REF = "hello:"  # the ref of FRIEND_ADDED: the greeting, shortened

# The contact whose referral code a greeting carries (the signal engine's `referrer_in`).
Referrer = Callable[[Session, str], int | None]


class Recorder:
    """One account's recorder (see the module docstring)."""

    def __init__(
        self,
        database: Database,
        transport: Transport,
        clock: Clock,
        policy: TierPolicy,
        *,
        stopping: threading.Event | None = None,
        referrer: Referrer | None = None,
    ) -> None:
        self.database = database
        self.transport = transport
        self.clock = clock
        self.policy = policy
        self.account_id = transport.account_id
        self.stopping = stopping or threading.Event()
        self.referrer = referrer

    # -- login and the contact sync (talks to the transport: an io step) -------------------

    async def login(self, event: LoggedIn) -> Outcome:
        contacts = list(await self.transport.contacts())
        rooms = list(await self.transport.rooms())
        members = {room.room_wxid: list(await self.transport.room_members(room.room_wxid)) for room in rooms}
        me = (event.me.wxid, event.me.name)
        outcome = await asyncio.to_thread(self.store_sync, me, contacts, rooms, members)
        log.info(
            "account %s online as %s: %d contacts, %d rooms synced",
            self.account_id, event.me.name, len(contacts), len(rooms),
        )  # fmt: skip
        return outcome

    def store_sync(
        self,
        me: tuple[str, str],
        contacts: Sequence[ContactInfo],
        rooms: Sequence[RoomInfo],
        members: dict[str, list[ContactInfo]],
    ) -> Outcome:
        """Every contact, room and member the transport knows: `SYNC_CHUNK` contacts per
        transaction (background writes, so the pipelines' own units go first), ending early
        when the daemon stops (the next login syncs again).

        Friendships follow the contact list (`contacts`, the account's own list; a room's
        member view never changes them): a friend the list shows for the first time gets a
        FRIEND_ADDED with source `sync` and `ref = "initial"` (history only: the first login
        greets nobody, and the friends found then are the baseline of the contact assets);
        once the whole list is stored, a friend it no longer shows as one has deleted the
        account (`sync_missing`), when the transport's list is the account's whole list,
        kept across restarts (capability `contact_list`: wechaty, the sandbox with a
        journal; a sandbox without one starts afresh each time)."""
        now = self.clock.now()
        first_tier = self.policy.ladder.ids[0]
        with self.database.session() as session:
            d.mark_online(session, self.account_id, me, now)
            known = w.known_contacts(session, self.account_id)
        events: list[ContactEventRecorded] = []
        found = 0
        for start in range(0, len(contacts), SYNC_CHUNK):
            if self.stopping.is_set():
                log.info(
                    "account %s: contact sync stopped at %d of %d", self.account_id, start, len(contacts)
                )
                return Outcome(events)
            chunk = contacts[start : start + SYNC_CHUNK]
            with self.database.session(background=True) as session:
                newcomers = {c.wxid for c in chunk if c.wxid not in known.ids}
                was_friend = {c.wxid: known.is_friend(c.wxid) for c in chunk}
                ids = w.sync_contacts(session, self.account_id, chunk, known, now, first_tier=first_tier)
                tagged = [(contact_id, c) for contact_id, c in zip(ids, chunk, strict=True) if c.tags]
                events += self._wechat_tags(session, tagged, newcomers, now)
                befriended = [
                    contact_id
                    for contact_id, c in dict(zip(ids, chunk, strict=True)).items()
                    if not was_friend[c.wxid] and known.is_friend(c.wxid)
                ]
                history = EventLog(session)  # history only: not published, nobody reacts
                for contact_id in befriended:
                    history.know(contact_id, self.account_id)
                friendships.found_friends(history, befriended, now, ref=INITIAL_STATE_REF)
                history.flush()
                found += len(befriended)
        if found:
            log.info("account %s: %d friends found by the contact sync", self.account_id, found)
        if "contact_list" in self.transport.capabilities and not self.stopping.is_set():
            events += self._missing_friends({c.wxid for c in contacts if c.is_friend}, now)
        with self.database.session(background=True) as session:
            for room in rooms:
                room_id = w.upsert_room(session, self.account_id, room, now)
                people = members.get(room.room_wxid, [])
                ids = w.sync_contacts(
                    session, self.account_id, people, known, now, first_tier=first_tier, friends=False
                )
                for member, member_id in zip(people, ids, strict=True):
                    w.record_member(session, room_id, member, member_id, joined_at=None)
        return Outcome(events)

    def _missing_friends(self, listed: set[str], now: datetime) -> list[ContactEventRecorded]:
        """Friends the whole contact list no longer shows as friends deleted the account. A
        list that lost too many at once (`SYNC_MISSING_FEW`, `SYNC_MISSING_SHARE`), or an
        empty one, is taken as incomplete: nobody's friendship ends."""
        with self.database.session(background=True) as session:
            friends = w.friend_ids(session, self.account_id)
            missing = [contact_id for wxid, contact_id in friends.items() if wxid not in listed]
            if not missing:
                return []
            if not listed or len(missing) > max(SYNC_MISSING_FEW, SYNC_MISSING_SHARE * len(friends)):
                log.warning(
                    "account %s: the contact list lacks %d of %d friends; taken as incomplete, "
                    "no deletion recorded", self.account_id, len(missing), len(friends),
                )  # fmt: skip
                return []
            events = EventLog(session)
            ended = friendships.unfriend(session, events, missing, DeletionSeen.SYNC_MISSING, now)
            events.flush()
        if ended:
            log.info("account %s: %d friends gone from the contact list (删粉)", self.account_id, len(ended))
        return events.events

    def _wechat_tags(
        self, session: Session, tagged: list[tuple[int, ContactInfo]], newcomers: set[str], now: datetime
    ) -> list[ContactEventRecorded]:
        """The operator's WeChat tags as `wechat` tags; a tier tag moves the tier (a floor)."""
        events = EventLog(session)
        first_sight: dict[bool, list[int]] = {True: [], False: []}
        for contact_id, contact in tagged:
            events.know(contact_id, self.account_id)
            initial = contact.wxid in newcomers
            ref = INITIAL_STATE_REF if initial else WECHAT_SOURCE
            for tag in contact.tags:
                taglib.add_tag(
                    session, events, contact_id, tag, source=WECHAT_SOURCE, now=now, evidence="微信标签",
                    evidence_ref=ref,
                )  # fmt: skip
            first_sight[initial].append(contact_id)
        for initial, ids in first_sight.items():
            recompute(
                session, self.policy, now, events, contact_ids=ids, trigger="微信标签",
                evidence_ref=INITIAL_STATE_REF if initial else WECHAT_SOURCE,
            )  # fmt: skip
        events.flush()
        return events.events

    # -- units of work -------------------------------------------------------------------

    def logout(self, event: LoggedOut) -> None:
        with self.database.session() as session:
            d.mark_online(session, self.account_id, None, self.clock.now())
        log.info("account %s offline%s", self.account_id, f": {event.reason}" if event.reason else "")

    def message(self, event: MessageReceived) -> Outcome:
        message = event.message
        now = self.clock.now()
        with self.database.session() as session:
            contact_id = w.upsert_contact(
                session, self.account_id, message.talker, now, first_tier=self.policy.ladder.ids[0]
            )
            room_id = w.upsert_room(session, self.account_id, message.room, now) if message.room else None
            stored = w.record_message(session, self.account_id, message, contact_id, room_id, now)
        if stored is None:
            log.debug("duplicate message %s ignored", message.msg_id)
            return Outcome(halt=True)  # a redelivery: the later stages saw it the first time
        where = f" in {message.room.topic}" if message.room else ""
        log.info(
            "message from %s%s: %s", message.talker.name, where, excerpt(message.text) or f"[{message.kind}]"
        )
        return Outcome()

    def friend_request(self, event: FriendRequest) -> None:
        log.info("friend request from %s: %s", event.contact.name, excerpt(event.hello) or "(no greeting)")

    def friend_added(self, event: FriendAdded) -> Outcome:
        """A new friendship: FRIEND_ADDED with its source (`AddSource`: a referral code in
        the greeting, a contact met in a group first, else the request) and the greeting as
        its ref. A friend the bot knows as one already (a transport telling twice) is not
        added again; one who had deleted the account is, with a new event."""
        now = self.clock.now()
        contact = event.contact
        with self.database.session() as session:
            before = w.friend_state(session, self.account_id, contact.wxid)
            contact_id = w.upsert_contact(
                session, self.account_id, contact, now, first_tier=self.policy.ladder.ids[0]
            )
            if before is not None and before.friend:
                log.info("%s is a friend already", contact.name)
                return Outcome()
            source = self._add_source(session, contact_id, event, met_before=before is not None)
            events = EventLog(session)
            events.know(contact_id, self.account_id)
            hello = f"{HELLO_REF}{excerpt(event.hello, 100)}" if event.hello.strip() else None
            friendships.befriend(session, events, contact_id, source, now, ref=hello)
            events.flush()
        again = " again" if before is not None and before.blocked else ""
        log.info("new friend%s %s (%s)", again, contact.name, source.value)
        return Outcome(events.events)

    def _add_source(
        self, session: Session, contact_id: int, event: FriendAdded, *, met_before: bool
    ) -> AddSource:
        if event.hello and self.referrer is not None and self.referrer(session, event.hello) is not None:
            return AddSource.REFERRAL
        if (
            met_before
            and not friendships.ever_friends(session, contact_id)
            and w.met_in_a_group(session, self.account_id, contact_id, event.contact.wxid)
        ):
            return AddSource.GROUP
        return AddSource.REQUEST

    def friend_removed(self, event: FriendRemoved) -> Outcome:
        """The transport saw the contact delete the account: FRIEND_DELETED (`transport`),
        unless the deletion was already seen another way."""
        with self.database.session() as session:
            before = w.friend_state(session, self.account_id, event.contact.wxid)
            if before is None:
                log.info("%s deleted the account (never a known contact)", event.contact.name)
                return Outcome()
            events = EventLog(session)
            events.know(before.contact_id, self.account_id)
            ended = friendships.unfriend(
                session, events, [before.contact_id], DeletionSeen.TRANSPORT, event.at
            )
            events.flush()
        if ended:
            log.info("%s deleted the account (删粉)", event.contact.name)
        else:
            log.info("%s deleted the account (already known)", event.contact.name)
        return Outcome(events.events)

    def room_join(self, event: RoomJoined) -> Outcome:
        now = self.clock.now()
        inviter = event.inviter.wxid if event.inviter else None
        with self.database.session() as session:
            room_id = w.upsert_room(session, self.account_id, event.room, now)
            events = EventLog(session)
            for person in event.invitees:
                contact_id = w.upsert_contact(
                    session, self.account_id, person, now, first_tier=self.policy.ladder.ids[0]
                )
                already = w.is_member(session, room_id, person.wxid)  # a join told twice (a replay)
                w.record_member(  # a replayed join keeps the first join's time and inviter
                    session, room_id, person, contact_id,
                    joined_at=None if already else event.at, inviter_wxid=None if already else inviter,
                )  # fmt: skip
                events.know(contact_id, self.account_id)
                if not already:
                    events.record(
                        contact_id,
                        ContactEventKind.JOINED_GROUP,
                        event.at,
                        detail=event.room.topic,
                        ref=inviter,
                    )
            events.flush()
        names = "、".join(p.name for p in event.invitees)
        by = f" (invited by {event.inviter.name})" if event.inviter else ""
        log.info("%s joined %s%s", names, event.room.topic, by)
        return Outcome(events.events)

    def room_leave(self, event: RoomLeft) -> None:
        now = self.clock.now()
        with self.database.session() as session:
            room_id = w.upsert_room(session, self.account_id, event.room, now)
            for person in event.leavers:
                d.record_member_left(session, room_id, person.wxid, event.at)
        log.info("%s left %s", "、".join(p.name for p in event.leavers), event.room.topic)

    def room_topic(self, event: RoomTopicChanged) -> None:
        now = self.clock.now()
        with self.database.session() as session:
            room_id = w.upsert_room(session, self.account_id, event.room, now)
            d.set_room_topic(session, room_id, event.new_topic, now)
        log.info("room %s renamed to %s", event.old_topic, event.new_topic)
