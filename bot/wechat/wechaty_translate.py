"""python-wechaty objects -> sopbot's own types. Ids pass through the identity map, so
everything past this module sees sopbot's stable ids, never a puppet's current ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.wechat.types import ContactInfo, Message, MessageKind, RoomInfo
from bot.wechat.wechaty_identity import IdentityMap, Seen

# wechaty-grpc MessageType values (after python-wechaty's own remapping of the TS numbers)
_KINDS = {
    1: MessageKind.FILE,  # attachment
    2: MessageKind.VOICE,  # audio
    4: MessageKind.EMOTICON,
    5: MessageKind.IMAGE,
    6: MessageKind.TEXT,
    7: MessageKind.VIDEO,
    10: MessageKind.MINI_PROGRAM,
    14: MessageKind.LINK,
}
_GENDERS = {1: "male", 2: "female"}


def message_kind(value: Any) -> MessageKind:
    return _KINDS.get(int(value), MessageKind.OTHER)


def _text(value: Any) -> str | None:
    text = str(value or "").strip()
    return text or None


def seen(payload: Any) -> Seen:
    return Seen(
        puppet_id=payload.id,
        weixin=_text(getattr(payload, "weixin", None)),
        alias=_text(getattr(payload, "alias", None)),
        name=_text(getattr(payload, "name", None)),
        avatar=_text(getattr(payload, "avatar", None)),
    )


def contact(payload: Any, identities: IdentityMap, now: datetime) -> ContactInfo:
    """A ContactPayload (gRPC) as our ContactInfo, under sopbot's id for the person."""
    phones = [p for p in (getattr(payload, "phone", None) or []) if p]
    return ContactInfo(
        wxid=identities.resolve(seen(payload), now),
        name=payload.name or payload.id,
        alias=_text(payload.alias),
        weixin=_text(payload.weixin),
        phone=phones[0] if phones else None,
        gender=_GENDERS.get(int(payload.gender or 0)),
        city=_text(payload.city),
        is_friend=bool(payload.friend),
    )


def room(payload: Any, identities: IdentityMap) -> RoomInfo:
    """A RoomPayload as our RoomInfo; members not resolved yet keep their puppet id."""
    return RoomInfo(
        room_wxid=payload.id,
        topic=payload.topic or "",
        owner_wxid=identities.canonical(payload.owner_id) if payload.owner_id else None,
        member_wxids=tuple(identities.canonical(m) for m in payload.member_ids),
    )


def sent_at(timestamp: int, fallback: datetime) -> datetime:
    """Gateways send seconds or milliseconds."""
    if not timestamp:
        return fallback
    seconds = timestamp / 1000 if timestamp > 10**11 else timestamp
    return datetime.fromtimestamp(seconds, UTC)


def message_text(payload: Any, kind: MessageKind) -> str:
    """What is worth keeping of a message's text: the words, a link, a file name."""
    if kind is MessageKind.TEXT or kind is MessageKind.LINK or kind is MessageKind.MINI_PROGRAM:
        return payload.text or ""
    if kind is MessageKind.FILE:
        return payload.filename or payload.text or ""
    return ""


def message(
    payload: Any,
    talker: ContactInfo,
    room_info: RoomInfo | None,
    *,
    self_puppet_id: str,
    now: datetime,
) -> Message:
    kind = message_kind(payload.type)
    return Message(
        msg_id=payload.id,
        talker=talker,
        kind=kind,
        text=message_text(payload, kind),
        sent_at=sent_at(payload.timestamp, now),
        room=room_info,
        mentions_self=self_puppet_id in (payload.mention_ids or []),
    )
