"""sopbot's own WeChat types. Transports translate to and from these; no client library
type ever crosses the boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class MessageKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    LINK = "link"
    MINI_PROGRAM = "mini_program"
    FILE = "file"
    VOICE = "voice"
    VIDEO = "video"
    EMOTICON = "emoticon"
    OTHER = "other"


@dataclass(frozen=True)
class ContactInfo:
    """A WeChat user as the transport sees it."""

    wxid: str
    name: str
    alias: str | None = None
    weixin: str | None = None
    phone: str | None = None
    gender: str | None = None
    city: str | None = None
    is_friend: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoomInfo:
    """A WeChat group as the transport sees it."""

    room_wxid: str
    topic: str
    owner_wxid: str | None = None
    member_wxids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Message:
    """An inbound message. `room` is None for a 1:1 chat."""

    msg_id: str
    talker: ContactInfo
    kind: MessageKind
    text: str
    sent_at: datetime
    room: RoomInfo | None = None
    mentions_self: bool = False


# -- Events: what a transport reports -------------------------------------------------


@dataclass(frozen=True)
class LoggedIn:
    account_id: str
    me: ContactInfo


@dataclass(frozen=True)
class LoggedOut:
    account_id: str
    reason: str = ""


@dataclass(frozen=True)
class ScanRequired:
    """The gateway wants the operator to scan a QR code to log in."""

    account_id: str
    qrcode: str
    status: str = "waiting"


@dataclass(frozen=True)
class MessageReceived:
    account_id: str
    message: Message


@dataclass(frozen=True)
class FriendRequest:
    account_id: str
    request_id: str
    contact: ContactInfo
    hello: str = ""


@dataclass(frozen=True)
class FriendAdded:
    account_id: str
    contact: ContactInfo
    hello: str = ""


@dataclass(frozen=True)
class FriendRemoved:
    """The contact deleted the account (删粉), as the transport saw it. Only transports
    that learn of it say so (the sandbox); wechaty has no such event, and sopbot also finds
    deletions when a send is refused and at a contact sync."""

    account_id: str
    contact: ContactInfo
    at: datetime


@dataclass(frozen=True)
class RoomJoined:
    account_id: str
    room: RoomInfo
    invitees: tuple[ContactInfo, ...]
    inviter: ContactInfo | None
    at: datetime


@dataclass(frozen=True)
class RoomLeft:
    account_id: str
    room: RoomInfo
    leavers: tuple[ContactInfo, ...]
    remover: ContactInfo | None
    at: datetime


@dataclass(frozen=True)
class RoomTopicChanged:
    account_id: str
    room: RoomInfo
    old_topic: str
    new_topic: str
    changer: ContactInfo | None


@dataclass(frozen=True)
class ConnectionChanged:
    """The link to the gateway went down or came back."""

    account_id: str
    connected: bool
    detail: str = ""


Event = (
    LoggedIn
    | LoggedOut
    | ScanRequired
    | MessageReceived
    | FriendRequest
    | FriendAdded
    | FriendRemoved
    | RoomJoined
    | RoomLeft
    | RoomTopicChanged
    | ConnectionChanged
)


# -- Outgoing content ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Who to send to: a contact (1:1) or a room."""

    wxid: str
    is_room: bool = False

    @classmethod
    def contact(cls, wxid: str) -> Target:
        return cls(wxid, False)

    @classmethod
    def room(cls, room_wxid: str) -> Target:
        return cls(room_wxid, True)


@dataclass(frozen=True)
class Text:
    text: str
    mentions: tuple[str, ...] = field(default=())  # wxids to @ in a room


@dataclass(frozen=True)
class Image:
    url: str


@dataclass(frozen=True)
class LinkCard:
    title: str
    url: str
    description: str = ""
    thumbnail_url: str = ""


Content = Text | Image | LinkCard
