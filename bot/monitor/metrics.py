"""What `/metrics` says, in the Prometheus text format (prometheus_client, the usual client
library): counters the daemon's parts bump as things happen, and figures read at scrape time
from the database and the running accounts.

    sopbot_outbox_messages{account,state}         rows of the outbox by state (sent, skipped …)
    sopbot_queue_depth{account}                   rows planned and not yet sent
    sopbot_account_held{account}                  1 when this daemon holds the account's lease
    sopbot_account_online{account}                1 when its WeChat connection is up
    sopbot_pacer_waits_total{account}             times a send waited for the pace (interval, caps)
    sopbot_reconnects_total{account}              connections that came back after a loss
    sopbot_lease_changes_total{account,change}    acquired, taken_over, lost, released
    sopbot_event_loop_lag_seconds                 how late the event loop woke a 1 s timer, last
    sopbot_event_loop_lag_max_seconds             ... and the worst since the daemon started
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from bot.runtime import BotContext

REGISTRY = CollectorRegistry(auto_describe=True)
PACER_WAITS = Counter("sopbot_pacer_waits", "Sends that waited for the pace.", ["account"], registry=REGISTRY)
RECONNECTS = Counter("sopbot_reconnects", "Connections back after a loss.", ["account"], registry=REGISTRY)
LEASE_CHANGES = Counter(
    "sopbot_lease_changes", "Account lease changes.", ["account", "change"], registry=REGISTRY
)
PACE_SLOWDOWN = Gauge(
    "sopbot_pace_slowdown", "How many times slower risk signals make the account send (1: normal).",
    ["account"], registry=REGISTRY,
)  # fmt: skip
LOOP_LAG = Gauge("sopbot_event_loop_lag_seconds", "Event-loop lag, last measured.", registry=REGISTRY)
LOOP_LAG_MAX = Gauge("sopbot_event_loop_lag_max_seconds", "Worst event-loop lag.", registry=REGISTRY)


class DaemonCollector(Collector):
    """Figures read when Prometheus scrapes: the outbox from the database, the accounts from
    the running daemon."""

    def __init__(self, context: BotContext) -> None:
        self.context = context

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from sqlalchemy import func, select

        from bot.store.models import OutboxMessage

        by_state = GaugeMetricFamily(
            "sopbot_outbox_messages", "Outbox rows by state.", labels=["account", "state"]
        )
        queue = GaugeMetricFamily("sopbot_queue_depth", "Rows planned, not yet sent.", labels=["account"])
        with self.context.database.session(read_only=True) as session:
            counts = session.execute(
                select(OutboxMessage.account_id, OutboxMessage.state, func.count()).group_by(
                    OutboxMessage.account_id, OutboxMessage.state
                )
            ).all()
        planned: dict[str, int] = {}
        for account, state, count in counts:
            by_state.add_metric([account, state], count)
            if state == "planned":
                planned[account] = count
        held = GaugeMetricFamily("sopbot_account_held", "This daemon holds the lease.", labels=["account"])
        online = GaugeMetricFamily(
            "sopbot_account_online", "The WeChat connection is up.", labels=["account"]
        )
        for account in self.context.settings.accounts:
            queue.add_metric([account.id], planned.get(account.id, 0))
            runtime = self.context.accounts.get(account.id)
            held.add_metric([account.id], 1 if runtime is not None else 0)
            up = runtime is not None and bool(getattr(runtime.transport, "online", False))
            online.add_metric([account.id], 1 if up else 0)
        yield from (by_state, queue, held, online)


def exposition(context: BotContext) -> bytes:
    """The whole `/metrics` page for this daemon."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(context))
    return generate_latest(REGISTRY) + generate_latest(registry)


def count_reconnects(account_id: str, online_now: Callable[[], bool]) -> Callable[[], None]:
    """A poller for transports without connection events: call it periodically; a change
    from offline to online counts as a reconnect (the first connection does not)."""
    seen = {"online": online_now(), "ever": online_now()}

    def poll() -> None:
        now = online_now()
        if now and not seen["online"] and seen["ever"]:
            RECONNECTS.labels(account_id).inc()
        seen["ever"] = seen["ever"] or now
        seen["online"] = now

    return poll
