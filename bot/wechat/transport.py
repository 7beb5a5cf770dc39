"""The one protocol every WeChat transport implements."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.wechat.types import ContactInfo, Content, Event, RoomInfo, Target

EventHandler = Callable[[Event], Awaitable[None]]


class TransportError(Exception):
    """Base of everything a transport raises."""


class TransientSendError(TransportError):
    """The send may work if tried again later (timeout, connection dropped)."""


class DeliveryUncertainError(TransportError):
    """The send may or may not have reached WeChat (the connection dropped mid-call).
    At-most-once rows become `unknown` unless the transport can confirm; at-least-once
    rows are retried."""


class RiskControlError(TransportError):
    """WeChat pushed back: rate-limited, blocked or logged out. Stop sending on this
    account and tell the operator."""


class RecipientGoneError(TransportError):
    """The contact deleted or blocked us, or the room no longer exists."""


class ConnectError(TransportError):
    """Logging in failed: wrong token, unreachable endpoint, TLS mismatch."""


@dataclass(frozen=True)
class SendReceipt:
    """What the transport knows about a send that went out."""

    msg_id: str | None


class Transport(Protocol):
    """Events in, sends out. Implementations: `sandbox` and `wechaty`."""

    account_id: str
    name: str
    # "tags": WeChat contact tags can be set; "contact_list": `contacts()` is the account's
    # whole contact list, kept across restarts, so a friend missing from it deleted the account
    capabilities: frozenset[str]
    online: bool

    async def start(self, handler: EventHandler) -> None:
        """Connect and log in; from now on every event goes to `handler`."""
        ...

    async def stop(self) -> None: ...

    async def send(self, target: Target, content: Content, *, ref: str | None = None) -> SendReceipt:
        """Send one message. `ref` is the outbox's id for this part; a transport that can
        later tell whether it went out (`was_sent`) remembers it."""
        ...

    async def was_sent(self, ref: str) -> bool | None:
        """Whether the message sent under `ref` reached WeChat: True, False, or None when
        this transport cannot tell (then a crash mid-send leaves the row `unknown`)."""
        ...

    async def contacts(self) -> Sequence[ContactInfo]: ...

    async def rooms(self) -> Sequence[RoomInfo]: ...

    async def room_members(self, room_wxid: str) -> Sequence[ContactInfo]: ...

    async def accept_friend(self, request_id: str) -> None: ...

    async def add_tag(self, wxid: str, tag: str) -> None: ...

    async def remove_tag(self, wxid: str, tag: str) -> None: ...
