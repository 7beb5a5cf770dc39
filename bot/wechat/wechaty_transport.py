"""The wechaty transport: a real WeChat account through a wechaty puppet-service gateway
(PadLocal, WorkPro/WXWork, wechaty-puppet-xp, a self-run gateway), with python-wechaty
0.10.7 as the client.

- Events arrive in order through one queue (see `wechaty_session`), are translated to our
  types (`wechaty_translate`) under stable ids (`wechaty_identity`) and handed on.
- A supervisor watches the connection: the event stream ending, or the gateway missing a
  ping (`health_interval`), means it is gone; it reconnects with exponential backoff
  (0.5 s doubling up to `reconnect_max`) instead of the library's fixed 60 s. While it is
  down `online` is False, so the delivery worker leaves planned messages in the outbox.
- The first connection's failure (wrong token, unreachable endpoint, TLS mismatch) raises
  ConnectError with one line; later drops are logged and retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, replace
from typing import Any, TypeVar

from bot.clock import Clock
from bot.config.settings import AccountSettings, Settings
from bot.store import Database
from bot.supervisor import Supervisor
from bot.wechat import wechaty_qr as qr
from bot.wechat import wechaty_translate as tr
from bot.wechat.transport import (
    ConnectError,
    EventHandler,
    SendReceipt,
    TransientSendError,
    TransportError,
)
from bot.wechat.types import (
    ConnectionChanged,
    ContactInfo,
    Content,
    Event,
    FriendAdded,
    FriendRequest,
    Image,
    LinkCard,
    LoggedIn,
    LoggedOut,
    MessageReceived,
    RoomInfo,
    RoomJoined,
    RoomLeft,
    RoomTopicChanged,
    ScanRequired,
    Target,
    Text,
)
from bot.wechat.wechaty_errors import connect_error, error_text, send_error
from bot.wechat.wechaty_identity import IdentityMap
from bot.wechat.wechaty_loader import hide_stray_env, load, remember_secret
from bot.wechat.wechaty_session import GatewaySession, RawEvent

log = logging.getLogger("bot.wechat.wechaty")

AT_SEPARATOR = "\u2005"  # WeChat puts this (a four-per-em space) after each @name
FIRST_LOGIN_WAIT = 10.0  # seconds start() waits for the login event before returning
CONNECT_TIMEOUT = 15.0
CALL_TIMEOUT = 15.0  # a gateway call that takes longer is cut off (sends: `call_timeout`)
T = TypeVar("T")
PAYLOAD_CONCURRENCY = 16
_FRIENDSHIP_CONFIRM, _FRIENDSHIP_RECEIVE = 1, 2
_CONTACT_OFFICIAL = 2
_SCAN_STATUS = {0: "unknown", 1: "cancel", 2: "waiting", 3: "scanned", 4: "confirmed", 5: "timeout"}


def url_file_box(url: str) -> str:
    """A FileBox JSON for a file at `url`, as TS gateways read it: python-wechaty's own
    FileBox writes the pre-2022 shape (`remoteUrl`), which file-box 1.x rejects ("no url");
    both keys are sent so older gateways read it too."""
    name = url.rsplit("/", 1)[-1].split("?", 1)[0] or "image.jpg"
    box = {"type": 2, "boxType": 2, "name": name, "url": url, "remoteUrl": url, "headers": {}, "metadata": {}}
    return json.dumps(box, ensure_ascii=False)


class WechatyTransport:
    """One WeChat account behind a puppet-service gateway."""

    name = "wechaty"
    capabilities = frozenset({"tags", "contact_list"})

    def __init__(
        self,
        account: AccountSettings,
        settings: Settings,
        clock: Clock,
        *,
        database: Database | None = None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.account_id = account.id
        self.account = account
        self.settings = settings
        self.clock = clock
        self.online = False
        self.me: ContactInfo | None = None
        self.identities = IdentityMap(account.id, database)
        self.qr_path = settings.data_path / f"login-qr-{account.id}.png"
        self._handler: EventHandler | None = None
        self._session: GatewaySession | None = None
        self._queue: asyncio.Queue[RawEvent] = asyncio.Queue()
        self._supervisor = supervisor or Supervisor()  # the daemon's, or one of its own
        self._tasks: list[str] = []  # names of this transport's supervised tasks
        self._self_id: str | None = None  # the bot's puppet id
        self._logged_in = asyncio.Event()
        self._connected = False
        self._requests: dict[str, str] = {}  # friendship id -> hello
        self._welcomed: set[str] = set()  # puppet ids FriendAdded was already reported for
        self.login_count = 0
        self.reconnect_attempts = 0  # tries since start, successful or not
        self.reconnects = 0
        self.answered_pings = 0  # health checks the gateway answered in time
        self.missed_pings = 0

    # -- the Transport protocol --------------------------------------------------------

    async def start(self, handler: EventHandler) -> None:
        self._handler = handler
        token = self.account.token()
        if not self.account.endpoint:
            raise self._error('set endpoint = "host:port" of the wechaty gateway for this account')
        if token is None:
            raise self._error(f"no token: set the environment variable {self.account.token_env}")
        stray = hide_stray_env()
        if stray:
            log.warning("ignoring %s from the environment (the account's token and endpoint are used)",
                        ", ".join(sorted(stray)))  # fmt: skip
        remember_secret(token.get_secret_value())
        wechaty = load(self.settings.data_path / "wechaty")
        self._session = GatewaySession(
            wechaty,
            name=f"sopbot-{self.account_id}",
            endpoint=self.account.endpoint,
            token=token.get_secret_value(),
            tls=self.account.tls,
            tls_server_name=self.account.tls_server_name,
            tls_ca_file=self.settings.path(self.account.tls_ca_file) if self.account.tls_ca_file else None,
            sink=self._queue.put_nowait,
        )
        await asyncio.to_thread(self.identities.load)
        self._spawn(self._consume, "events", f"reading account {self.account_id}'s WeChat events")
        try:
            await self._first_connect()
        except BaseException:
            await self.stop()
            raise
        self._spawn(self._supervise, "connection", f"watching the connection of account {self.account_id}")

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for name in tasks:
            await self._supervisor.cancel(name)
        if self._session is not None:
            await self._session.close()
        if self.online:
            self.online = False
            await self._emit(LoggedOut(self.account_id, "stopped"))
        self._handler = None

    async def send(self, target: Target, content: Content, *, ref: str | None = None) -> SendReceipt:
        if not self.online or self._session is None:
            raise TransientSendError(f"account {self.account_id} is not logged in")
        puppet = self._session.puppet
        to = target.wxid if target.is_room else self.identities.puppet_id(target.wxid)
        try:
            if isinstance(content, Text):
                text, mention_ids = content.text, None
                if target.is_room and content.mentions:
                    mention_ids = [self.identities.puppet_id(w) for w in content.mentions]
                    names = [await self._name(m) for m in mention_ids]
                    text = AT_SEPARATOR.join(f"@{n}" for n in names) + " " + text
                msg_id = await _deadline(
                    puppet.message_send_text(to, text, mention_ids), self.account.call_timeout
                )
            elif isinstance(content, Image):
                response = await _deadline(
                    puppet.puppet_stub.message_send_file(
                        conversation_id=to, filebox=url_file_box(content.url)
                    ),
                    self.account.call_timeout,
                )
                msg_id = response.id
            elif isinstance(content, LinkCard):
                from wechaty_puppet import UrlLinkPayload

                card = UrlLinkPayload(
                    url=content.url,
                    title=content.title,
                    thumbnailUrl=content.thumbnail_url or None,
                    description=content.description or None,
                )
                msg_id = await _deadline(
                    puppet.message_send_url(to, json.dumps(asdict(card), ensure_ascii=False)),
                    self.account.call_timeout,
                )
            else:
                raise TransportError(f"cannot send {type(content).__name__}")
        except TransportError:
            raise
        except Exception as error:
            raise send_error(error, target.wxid) from None
        return SendReceipt(msg_id or None)

    async def was_sent(self, ref: str) -> bool | None:
        return None  # a puppet-service gateway keeps no record we could ask

    async def contacts(self) -> Sequence[ContactInfo]:
        puppet = self._puppet()
        ids = [i for i in await _deadline(puppet.contact_list()) if i != self._self_id and "@" not in i]
        payloads = await self._gather([lambda i=i: self._contact_payload(i) for i in ids])
        people = [p for p in payloads if p is not None and int(p.type or 0) != _CONTACT_OFFICIAL]
        now = self.clock.now()
        found = [tr.contact(p, self.identities, now) for p in people]
        await asyncio.to_thread(self.identities.flush)
        return found

    async def rooms(self) -> Sequence[RoomInfo]:
        puppet = self._puppet()
        ids = list(await _deadline(puppet.room_list()))
        payloads = await self._gather([lambda i=i: self._room_payload(i, fresh=True) for i in ids])
        return [tr.room(p, self.identities) for p in payloads if p is not None]

    async def room_members(self, room_wxid: str) -> Sequence[ContactInfo]:
        puppet = self._puppet()
        ids = [i for i in await _deadline(puppet.room_members(room_wxid)) if i != self._self_id]
        payloads = await self._gather([lambda i=i: self._contact_payload(i) for i in ids])
        now = self.clock.now()
        members = [tr.contact(p, self.identities, now) for p in payloads if p is not None]
        await asyncio.to_thread(self.identities.flush)
        return members

    async def accept_friend(self, request_id: str) -> None:
        puppet = self._puppet()
        try:
            request = await _deadline(puppet.friendship_payload(request_id))
            await _deadline(puppet.friendship_accept(request_id))
        except Exception as error:
            raise TransportError(
                f"could not accept friend request {request_id}: {error_text(error)}"
            ) from None
        hello = self._requests.pop(request_id, request.hello or "")
        contact = await self._contact(request.contact_id, fresh=True)
        self._welcomed.add(request.contact_id)
        await self._emit(FriendAdded(self.account_id, replace(contact, is_friend=True), hello))

    async def add_tag(self, wxid: str, tag: str) -> None:
        await self._tag(wxid, tag, add=True)

    async def remove_tag(self, wxid: str, tag: str) -> None:
        await self._tag(wxid, tag, add=False)

    async def set_alias(self, wxid: str, alias: str) -> None:
        """Set the operator's remark name (备注) for a contact in WeChat."""
        session = self._require_session()
        contact = session.bot.Contact.load(self.identities.puppet_id(wxid))
        try:
            await _deadline(contact.alias(alias))
        except Exception as error:
            raise TransportError(f"could not set the remark of {wxid}: {error_text(error)}") from None

    # -- connection ----------------------------------------------------------------------

    async def _first_connect(self) -> None:
        session = self._require_session()
        endpoint = self.account.endpoint or ""
        try:
            stream = await _deadline(session.connect(), CONNECT_TIMEOUT)
        except Exception as error:
            raise await self._classify(error) from None
        login = asyncio.create_task(self._logged_in.wait())
        try:
            await asyncio.wait({stream, login}, timeout=FIRST_LOGIN_WAIT, return_when=asyncio.FIRST_COMPLETED)
        finally:
            login.cancel()
        if stream.done():
            error = stream.exception() if not stream.cancelled() else None
            raise await self._classify(error or ConnectionError("the gateway closed the event stream"))
        if not await session.healthy():
            raise self._error(f"the gateway at {endpoint} did not answer in time")
        self._connected = True
        if not self._logged_in.is_set():
            log.info("account %s: connected to %s; waiting for the WeChat account to log in", self.account_id,
                     endpoint)  # fmt: skip

    async def _classify(self, error: BaseException) -> ConnectError:
        found = await asyncio.to_thread(
            connect_error,
            error,
            endpoint=self.account.endpoint or "",
            token_env=self.account.token_env,
            tls=self.account.tls,
        )
        return self._error(str(found))

    async def _supervise(self) -> None:
        session = self._require_session()
        while True:
            reason = await self._watch(session)
            await self._lost(reason)
            await self._reconnect(session)

    async def _watch(self, session: GatewaySession) -> str:
        """Returns why the connection is considered dead."""
        interval = self.account.health_interval
        while True:
            stream = session.stream
            if stream is None:
                return "no connection"
            done, _ = await asyncio.wait({stream}, timeout=interval)
            if done:
                error = None if stream.cancelled() else stream.exception()
                return error_text(error) if error else "the gateway closed the event stream"
            if not await session.healthy(timeout=min(2.0, interval)):
                self.missed_pings += 1
                return "the gateway did not answer a ping"
            self.answered_pings += 1

    async def _lost(self, reason: str) -> None:
        self._connected = False
        log.warning("account %s: connection to %s lost (%s); reconnecting", self.account_id,
                    self.account.endpoint, reason)  # fmt: skip
        await self._emit(ConnectionChanged(self.account_id, False, reason))
        await self._offline(f"connection lost: {reason}")

    async def _offline(self, reason: str) -> None:
        """The account is not logged in any more (if it was)."""
        was_online, self.online = self.online, False
        self._logged_in.clear()
        if was_online:
            await self._emit(LoggedOut(self.account_id, reason))

    async def _reconnect(self, session: GatewaySession) -> None:
        delay, attempt = 0.5, 0
        while True:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            attempt += 1
            self.reconnect_attempts += 1
            try:
                stream = await _deadline(session.connect(), CONNECT_TIMEOUT)
                done, _ = await asyncio.wait({stream}, timeout=min(2.0, self.account.health_interval))
                if done:
                    error = None if stream.cancelled() else stream.exception()
                    raise error or ConnectionError("the gateway closed the event stream")
                if not await session.healthy():
                    raise TimeoutError("the gateway did not answer a ping")
            except Exception as error:
                # the attempt may have logged in before it failed: it is not online after all
                await self._offline(f"reconnect failed: {error_text(error)}")
                level = logging.INFO if attempt < 5 else logging.WARNING
                log.log(level, "account %s: reconnect %d failed (%s); next try in %.1fs", self.account_id,
                        attempt, error_text(error), min(delay * 2, self.account.reconnect_max))  # fmt: skip
                delay = min(delay * 2, self.account.reconnect_max)
                continue
            self._connected = True
            self.reconnects += 1
            log.info("account %s: reconnected to %s after %d tries", self.account_id, self.account.endpoint,
                     attempt)  # fmt: skip
            await self._emit(ConnectionChanged(self.account_id, True))
            return

    # -- events --------------------------------------------------------------------------

    async def _consume(self) -> None:
        handlers: dict[str, Callable[[Any], Awaitable[None]]] = {
            "login": self._on_login,
            "logout": self._on_logout,
            "scan": self._on_scan,
            "message": self._on_message,
            "friendship": self._on_friendship,
            "room-join": self._on_room_join,
            "room-leave": self._on_room_leave,
            "room-topic": self._on_room_topic,
            "error": self._on_error,
        }
        this = asyncio.current_task()
        while this is None or not this.cancelling():  # a cancellation a library call swallowed
            _generation, name, payload = await self._queue.get()
            try:
                await handlers[name](payload)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("account %s: could not handle a %s event: %s", self.account_id, name,
                            error_text(error))  # fmt: skip

    async def _on_login(self, payload: Any) -> None:
        self._self_id = payload.contact_id
        self.identities.new_session()
        self.me = await self._contact(payload.contact_id, fresh=True)
        self.online = True
        await self._emit(LoggedIn(self.account_id, self.me))
        self.login_count += 1
        self._logged_in.set()

    async def _on_logout(self, payload: Any) -> None:
        if not self.online:
            return
        self.online = False
        self._logged_in.clear()
        await self._emit(LoggedOut(self.account_id, str(getattr(payload, "data", "") or "logged out")))

    async def _on_scan(self, payload: Any) -> None:
        status = _SCAN_STATUS.get(int(getattr(payload.status, "value", payload.status) or 0), "unknown")
        code = payload.qrcode or ""
        if code and status in ("waiting", "timeout", "unknown"):
            path = await asyncio.to_thread(qr.show, code, self.qr_path)
            log.warning("account %s needs a QR scan to log in: %s", self.account_id, path)
        else:
            log.info("account %s: login scan %s", self.account_id, status)
        await self._emit(ScanRequired(self.account_id, code, status))

    async def _on_message(self, payload: Any) -> None:
        puppet = self._puppet()
        message = await _deadline(puppet.message_payload(payload.message_id))
        if not message.from_id or message.from_id == self._self_id:
            return  # our own send, echoed back
        talker = await self._contact(message.from_id)
        room = None
        if message.room_id:
            room_payload = await self._room_payload(message.room_id)
            room = tr.room(room_payload, self.identities) if room_payload is not None else None
        now = self.clock.now()
        item = tr.message(message, talker, room, self_puppet_id=self._self_id or "", now=now)
        await self._emit(MessageReceived(self.account_id, item))

    async def _on_friendship(self, payload: Any) -> None:
        puppet = self._puppet()
        request = await _deadline(puppet.friendship_payload(payload.friendship_id))
        kind = int(request.type or 0)
        if kind == _FRIENDSHIP_RECEIVE:
            contact = await self._contact(request.contact_id, fresh=True)
            self._requests[payload.friendship_id] = request.hello or ""
            await self._emit(
                FriendRequest(self.account_id, payload.friendship_id, replace(contact, is_friend=False),
                              request.hello or "")
            )  # fmt: skip
        elif kind == _FRIENDSHIP_CONFIRM and request.contact_id not in self._welcomed:
            contact = await self._contact(request.contact_id, fresh=True)
            self._welcomed.add(request.contact_id)
            await self._emit(
                FriendAdded(self.account_id, replace(contact, is_friend=True), request.hello or "")
            )

    async def _on_room_join(self, payload: Any) -> None:
        room = await self._room(payload.room_id)
        invitees = tuple([await self._contact(i, fresh=True) for i in payload.invited_ids])
        inviter = await self._contact(payload.inviter_id) if payload.inviter_id else None
        at = tr.sent_at(payload.timestamp or 0, self.clock.now())
        await self._emit(RoomJoined(self.account_id, room, invitees, inviter, at))

    async def _on_room_leave(self, payload: Any) -> None:
        room = await self._room(payload.room_id)
        leavers = tuple([await self._contact(i) for i in payload.removed_ids])
        remover = await self._contact(payload.remover_id) if payload.remover_id else None
        at = tr.sent_at(payload.timestamp or 0, self.clock.now())
        await self._emit(RoomLeft(self.account_id, room, leavers, remover, at))

    async def _on_room_topic(self, payload: Any) -> None:
        room = await self._room(payload.room_id)
        changer = await self._contact(payload.changer_id) if payload.changer_id else None
        await self._emit(
            RoomTopicChanged(self.account_id, room, payload.old_topic or "", payload.new_topic or "", changer)
        )

    async def _on_error(self, payload: Any) -> None:
        data = getattr(payload, "data", payload)
        if data:
            log.warning("account %s: the gateway reported an error: %s", self.account_id, data)

    # -- helpers -------------------------------------------------------------------------

    def _error(self, reason: str) -> ConnectError:
        return ConnectError(f"account {self.account_id}: {reason}")

    def _require_session(self) -> GatewaySession:
        if self._session is None:
            raise TransportError(f"account {self.account_id} has not started")
        return self._session

    def _puppet(self) -> Any:
        session = self._require_session()
        if not self._connected and not self.online:
            raise TransientSendError(f"account {self.account_id} is not connected")
        return session.puppet

    def _spawn(self, factory: Callable[[], Awaitable[None]], what: str, doing: str) -> None:
        name = f"wechaty-{what}-{self.account_id}"
        self._supervisor.spawn(name, factory, doing=doing)
        self._tasks.append(name)

    async def _emit(self, event: Event) -> None:
        if self._handler is not None:
            await self._handler(event)

    async def _gather(self, calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
        limit = asyncio.Semaphore(PAYLOAD_CONCURRENCY)

        async def one(call: Callable[[], Awaitable[Any]]) -> Any:
            async with limit:
                try:
                    return await call()
                except Exception as error:
                    log.info(
                        "account %s: a payload could not be loaded: %s", self.account_id, error_text(error)
                    )
                    return None

        return list(await asyncio.gather(*(one(c) for c in calls)))

    async def _contact_payload(self, puppet_id: str, *, fresh: bool = False) -> Any:
        # The per-connection Contact pool caches payloads; events that change a contact pass fresh.
        contact = self._require_session().bot.Contact.load(puppet_id)
        if fresh or not contact.is_ready():
            contact.payload = await _deadline(self._session.puppet.contact_payload(puppet_id))  # type: ignore[union-attr]
        return contact.payload

    async def _room_payload(self, room_id: str, *, fresh: bool = False) -> Any:
        # Room.ready(force_sync=True) returns early when a payload is cached: refresh by hand.
        room = self._require_session().bot.Room.load(room_id)
        if fresh or not room.is_ready():
            room.payload = await _deadline(self._session.puppet.room_payload(room_id))  # type: ignore[union-attr]
        return room.payload

    async def _contact(self, puppet_id: str, *, fresh: bool = False) -> ContactInfo:
        payload = await self._contact_payload(puppet_id, fresh=fresh)
        contact = tr.contact(payload, self.identities, self.clock.now())
        await asyncio.to_thread(self.identities.flush)
        return contact

    async def _room(self, room_id: str) -> RoomInfo:
        return tr.room(await self._room_payload(room_id, fresh=True), self.identities)

    async def _name(self, puppet_id: str) -> str:
        payload = await self._contact_payload(puppet_id)
        return str(payload.name or puppet_id)

    async def _tag(self, wxid: str, tag: str, *, add: bool) -> None:
        session = self._require_session()
        contact = session.bot.Contact.load(self.identities.puppet_id(wxid))
        label = session.bot.Tag.load(tag)
        try:
            await _deadline(label.add(contact) if add else label.remove(contact))
        except Exception as error:
            verb = "add" if add else "remove"
            raise TransportError(f"could not {verb} tag {tag!r} for {wxid}: {error_text(error)}") from None


async def _deadline(call: Awaitable[T], seconds: float = CALL_TIMEOUT) -> T:
    """Every call to the gateway gets a deadline: a gateway that accepts the connection but
    stops answering must not hold a caller forever (TimeoutError past it). Not
    `asyncio.wait_for`: on Python 3.11 it can swallow a cancellation that arrives as the call
    finishes, and a task cancelled at shutdown then runs on."""
    async with asyncio.timeout(seconds):
        return await call


__all__ = ["WechatyTransport"]
