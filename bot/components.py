"""The daemon's components, in start order. Each feature adds its component here."""

from __future__ import annotations

from bot.delivery.admin import AdminCommands
from bot.delivery.worker import DeliveryWorker
from bot.runtime import BotContext, Component


def build_components(context: BotContext) -> list[Component]:
    delivery = DeliveryWorker(context)
    components: list[Component] = [delivery, AdminCommands(context, delivery)]
    return components
