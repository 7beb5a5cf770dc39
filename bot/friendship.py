"""What the bot does with friend requests."""

from __future__ import annotations

import logging

from bot.wechat.transport import Transport, TransportError
from bot.wechat.types import FriendRequest

log = logging.getLogger("bot.friendship")


class FriendshipPolicy:
    """Accepts friend requests when the operator allows it (`[friendship] auto_accept`)."""

    def __init__(self, transport: Transport, *, auto_accept: bool) -> None:
        self.transport = transport
        self.auto_accept = auto_accept

    async def request(self, event: FriendRequest) -> None:
        if not self.auto_accept:
            log.info("friend request from %s left for the operator (auto_accept is off)", event.contact.name)
            return
        try:
            await self.transport.accept_friend(event.request_id)
        except TransportError as error:
            log.warning("could not accept friend request from %s: %s", event.contact.name, error)
