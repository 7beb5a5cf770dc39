"""The daemon's components, in start order. Each feature adds its component here."""

from __future__ import annotations

from bot.delivery.admin import AdminCommands
from bot.delivery.worker import DeliveryWorker
from bot.runtime import BotContext, Component
from bot.signals.component import SignalsComponent
from bot.sop.service import SopService
from bot.webhook.component import WebhookComponent


def build_components(context: BotContext) -> list[Component]:
    delivery = DeliveryWorker(context)
    components: list[Component] = [delivery, AdminCommands(context, delivery)]
    components.append(SopService(context))
    signals = SignalsComponent(context)
    components += [signals, WebhookComponent(context, signals)]
    return components
