"""One transport contract, two transports: the sandbox and wechaty (through the real Node
gateway over gRPC). Whatever the bot relies on must hold on both, so the sandbox stays
honest."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot.clock import FrozenClock
from bot.config.settings import AccountSettings, Settings
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.types import (
    ContactInfo,
    Event,
    FriendAdded,
    FriendRequest,
    LoggedIn,
    MessageKind,
    MessageReceived,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomTopicChanged,
    Target,
    Text,
)
from tests.gateway.harness import Gateway
from tests.support import T0
from tests.waiting import PATIENCE, wait_for

T = TypeVar("T")
E = TypeVar("E")


class LoopThread:
    """An event loop in a background thread, as the daemon runs it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = PATIENCE) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Backend:
    """A started transport, the events it reported, and a way to make WeChat things happen."""

    kind: str
    me: str
    friend: str
    room: str
    room_members: frozenset[str]

    def __init__(self, transport: Any, loop: LoopThread) -> None:
        self.transport = transport
        self.loop = loop
        self.events: list[Event] = []

    async def _collect(self, event: Event) -> None:
        self.events.append(event)

    def start(self) -> None:
        self.loop.run(self.transport.start(self._collect))

    def stop(self) -> None:
        self.loop.run(self.transport.stop())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coroutine)

    def wait_event(self, kind: type[E], where: Callable[[E], bool] = lambda e: True) -> E:
        def found() -> E | None:
            return next((e for e in self.events if isinstance(e, kind) and where(e)), None)

        return wait_for(found, what=kind.__name__)

    # driven per backend
    def say(self, wxid: str, text: str, *, room: str | None = None, mention_self: bool = False) -> None:
        raise NotImplementedError

    def request_friend(self, wxid: str, name: str, hello: str) -> None:
        raise NotImplementedError

    def invite(self, room: str, wxid: str, name: str, inviter: str) -> None:
        raise NotImplementedError

    def leave(self, room: str, wxid: str) -> None:
        raise NotImplementedError

    def rename(self, room: str, topic: str) -> None:
        raise NotImplementedError

    def sent_texts(self) -> list[tuple[str, str]]:
        raise NotImplementedError

    def tags(self, wxid: str) -> set[str]:
        raise NotImplementedError


class SandboxBackend(Backend):
    kind = "sandbox"
    me = "wxid_sopbot_guide"
    friend = "wxid_wang_fang"
    room = "10003@chatroom"
    room_members = frozenset({"wxid_wang_fang", "wxid_li_na", "wxid_feng_xiao", "wxid_deng_chao"})

    def __init__(self, loop: LoopThread) -> None:
        super().__init__(SandboxTransport("main", clock=FrozenClock(T0)), loop)
        self.sandbox: SandboxTransport = self.transport

    def say(self, wxid: str, text: str, *, room: str | None = None, mention_self: bool = False) -> None:
        self.run(self.sandbox.say(wxid, text, room=room, mentions_self=mention_self))

    def request_friend(self, wxid: str, name: str, hello: str) -> None:
        self.run(self.sandbox.request_friend(wxid, name, hello))

    def invite(self, room: str, wxid: str, name: str, inviter: str) -> None:
        self.run(self.sandbox.invite(room, [ContactInfo(wxid, name, is_friend=False)], inviter))

    def leave(self, room: str, wxid: str) -> None:
        self.run(self.sandbox.leave(room, wxid))

    def rename(self, room: str, topic: str) -> None:
        if room not in {r.room_wxid for r in self.run(self.sandbox.rooms())}:
            self.sandbox.add_room(RoomInfo(room, "旧群名", self.me, (self.me, self.friend)))
        self.run(self.sandbox.rename(room, topic, self.friend))

    def sent_texts(self) -> list[tuple[str, str]]:
        return [(r.target.wxid, r.content.text) for r in self.sandbox.sent if isinstance(r.content, Text)]

    def tags(self, wxid: str) -> set[str]:
        return set(self.sandbox.contact(wxid).tags)


class WechatyBackend(Backend):
    kind = "wechaty"
    me = "wxid_sopbot"
    friend = "wxid_zhangwei"
    room = "r_vip@chatroom"
    room_members = frozenset({"wxid_zhangwei", "wxid_wangfang", "wxid_lina"})

    def __init__(self, loop: LoopThread, gateway: Gateway, folder: Path) -> None:
        from bot.wechat.wechaty_transport import WechatyTransport

        account = AccountSettings(id="main", transport="wechaty", endpoint=gateway.endpoint)
        os.environ[account.token_env] = gateway.token
        settings = Settings(data_dir=folder, base_dir=folder)
        super().__init__(WechatyTransport(account, settings, FrozenClock(T0)), loop)
        self.gateway = gateway
        self.since = gateway.health()["seq"]

    def say(self, wxid: str, text: str, *, room: str | None = None, mention_self: bool = False) -> None:
        body: dict[str, Any] = {"from": wxid, "text": text}
        if room:
            body["room"] = room
        if mention_self:
            body["mentions"] = [self.me]
        self.gateway.post("/say", **body)

    def request_friend(self, wxid: str, name: str, hello: str) -> None:
        self.gateway.post("/friendship", **{"from": wxid, "name": name, "hello": hello})

    def invite(self, room: str, wxid: str, name: str, inviter: str) -> None:
        self.gateway.post("/contact", id=wxid, name=name, friend=False)
        self.gateway.post("/room-join", room=room, invitees=[wxid], inviter=inviter)

    def leave(self, room: str, wxid: str) -> None:
        self.gateway.post("/room-leave", room=room, removees=[wxid])

    def rename(self, room: str, topic: str) -> None:
        self.gateway.post("/room-topic", room=room, topic=topic, changer=self.friend)

    def sent_texts(self) -> list[tuple[str, str]]:
        return [(r["to"], r["text"]) for r in self.gateway.sent(since=self.since, kind="text")]

    def tags(self, wxid: str) -> set[str]:
        return set(next(c for c in self.gateway.contacts() if c["id"] == wxid)["tags"])


@pytest.fixture(params=["sandbox", pytest.param("wechaty", marks=pytest.mark.gateway)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    loop = LoopThread()
    chosen: Backend
    if request.param == "sandbox":
        chosen = SandboxBackend(loop)
    else:
        chosen = WechatyBackend(loop, request.getfixturevalue("gateway"), tmp_path)
    chosen.start()
    try:
        yield chosen
    finally:
        chosen.stop()
        loop.close()


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def test_start_logs_in_and_reports_who_we_are(backend: Backend) -> None:
    login = backend.wait_event(LoggedIn)
    assert login.me.wxid == backend.me
    assert backend.transport.online is True


def test_contacts_rooms_and_members_are_listed(backend: Backend) -> None:
    contacts = {c.wxid: c for c in backend.run(backend.transport.contacts())}
    assert backend.friend in contacts and backend.me not in contacts
    assert contacts[backend.friend].is_friend and contacts[backend.friend].name
    rooms = {r.room_wxid: r for r in backend.run(backend.transport.rooms())}
    assert rooms[backend.room].topic
    members = {m.wxid for m in backend.run(backend.transport.room_members(backend.room))}
    assert members == backend.room_members


def test_a_one_to_one_message_arrives_as_text(backend: Backend) -> None:
    backend.say(backend.friend, "这款多少钱？")
    event = backend.wait_event(MessageReceived)
    message = event.message
    assert (message.talker.wxid, message.text, message.kind) == (
        backend.friend,
        "这款多少钱？",
        MessageKind.TEXT,
    )
    assert message.room is None and message.mentions_self is False


def test_a_group_message_knows_its_room_and_mentions(backend: Backend) -> None:
    backend.say(backend.friend, "有优惠吗", room=backend.room, mention_self=True)
    message = backend.wait_event(MessageReceived).message
    assert message.room is not None and message.room.room_wxid == backend.room
    assert message.talker.wxid == backend.friend
    assert message.mentions_self is True
    assert message.text.endswith("有优惠吗")


def test_sends_text_to_a_contact_and_to_a_room(backend: Backend) -> None:
    backend.wait_event(LoggedIn)
    backend.run(backend.transport.send(Target.contact(backend.friend), Text("新品到了")))
    backend.run(backend.transport.send(Target.room(backend.room), Text("群福利")))
    wait_for(lambda: len(backend.sent_texts()) >= 2, what="two sends")
    assert backend.sent_texts() == [(backend.friend, "新品到了"), (backend.room, "群福利")]
    # our own messages come back from WeChat as echoes: never reported as inbound
    assert not [e for e in backend.events if isinstance(e, MessageReceived)]


def test_a_friend_request_is_reported_and_accepted(backend: Backend) -> None:
    stranger = unique("wxid_stranger")
    backend.request_friend(stranger, "乔悦", "小红书上看到你们")
    request = backend.wait_event(FriendRequest)
    assert (request.contact.wxid, request.hello, request.contact.is_friend) == (
        stranger,
        "小红书上看到你们",
        False,
    )
    backend.run(backend.transport.accept_friend(request.request_id))
    added = backend.wait_event(FriendAdded)
    assert (added.contact.wxid, added.hello, added.contact.is_friend) == (stranger, "小红书上看到你们", True)


def test_a_room_join_names_the_inviter(backend: Backend) -> None:
    newcomer = unique("wxid_new")
    backend.invite(backend.room, newcomer, "方琳", backend.friend)
    joined = backend.wait_event(RoomJoined)
    assert joined.room.room_wxid == backend.room
    assert [p.wxid for p in joined.invitees] == [newcomer]
    assert joined.inviter is not None and joined.inviter.wxid == backend.friend
    assert newcomer in joined.room.member_wxids


def test_a_room_leave_is_reported(backend: Backend) -> None:
    newcomer = unique("wxid_brief")
    backend.invite(backend.room, newcomer, "过客", backend.friend)
    backend.wait_event(RoomJoined)
    backend.leave(backend.room, newcomer)
    left = backend.wait_event(RoomLeft)
    assert [p.wxid for p in left.leavers] == [newcomer]
    assert newcomer not in left.room.member_wxids


def test_a_topic_change_is_reported(backend: Backend) -> None:
    room = unique("r_topic") + "@chatroom"
    if isinstance(backend, WechatyBackend):
        backend.gateway.post("/room", id=room, topic="旧群名", memberIdList=[backend.me, backend.friend])
    backend.rename(room, "新群名")
    changed = backend.wait_event(RoomTopicChanged)
    assert (changed.room.room_wxid, changed.old_topic, changed.new_topic) == (room, "旧群名", "新群名")
    assert changed.changer is not None and changed.changer.wxid == backend.friend


def test_tags_are_added_and_removed(backend: Backend) -> None:
    backend.wait_event(LoggedIn)
    backend.run(backend.transport.add_tag(backend.friend, "已购会员"))
    assert "已购会员" in backend.tags(backend.friend)
    backend.run(backend.transport.remove_tag(backend.friend, "已购会员"))
    assert "已购会员" not in backend.tags(backend.friend)
