"""The transport boundary: our own WeChat types and the one protocol every transport
implements. Nothing outside this package imports a WeChat client library."""

from bot.wechat.transport import Transport, TransportError
from bot.wechat.types import (
    ContactInfo,
    Content,
    Event,
    Image,
    LinkCard,
    Message,
    MessageKind,
    RoomInfo,
    Target,
    Text,
)

__all__ = [
    "ContactInfo",
    "Content",
    "Event",
    "Image",
    "LinkCard",
    "Message",
    "MessageKind",
    "RoomInfo",
    "Target",
    "Text",
    "Transport",
    "TransportError",
]
