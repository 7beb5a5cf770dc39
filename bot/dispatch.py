"""A small event bus: handlers subscribe to event types and run in registration order.

A failing handler is logged with the event it failed on and never stops the others or the
daemon."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("bot.dispatch")

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None]]


class Dispatcher:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}

    def subscribe(self, event_type: type[E], handler: Callable[[E], Awaitable[None]]) -> None:
        self._handlers.setdefault(event_type, []).append(handler)

    async def publish(self, event: object) -> None:
        for handler in self._handlers.get(type(event), ()):
            try:
                await handler(event)
            except Exception:
                name = getattr(handler, "__qualname__", repr(handler))
                log.exception("handler %s failed on %s", name, type(event).__name__)
