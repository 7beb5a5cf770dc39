"""Inbound latency under load: from a message arriving on the sandbox WeChat to its tag
rule's reply being queued in the outbox (the account's inbound lane has stored it, run the
admin check and the rules), on an idle daemon and while the same daemon fans one SOP step
out to 100,000 contacts and drains the outbox as fast as the delivery rules allow.

    python bench/bench_pipeline.py [--contacts 100000] [--interval 0.05]

Target (issue 9): p99 ≤ 300 ms under load, on SQLite. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_fanout import FILES, seed
from sqlalchemy import func, select

from bot.clock import SystemClock
from bot.config.settings import load_settings
from bot.daemon import Daemon
from bot.sop.runtime.ledger import RunDecision
from bot.sop.runtime.occurrences import execute
from bot.store import Database
from bot.store.migrate import upgrade
from bot.store.models import OutboxMessage
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.types import ContactInfo, MessageReceived

REPO = Path(__file__).resolve().parent.parent
SETTINGS = """
log_level = "WARNING"
[sandbox]
autoplay = false
[delivery]
quiet_hours = "00:00-00:00"
min_interval = 0
jitter = 0
hourly_cap = 10000000
daily_cap = 10000000
contact_daily_cap = 100
contact_weekly_cap = 100
"""
TALKERS = 2000  # each message comes from another contact, so every one gets its reply


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Probe:
    """Says something on the sandbox and notes when the inbound lane finished with it."""

    def __init__(self, daemon: Daemon, transport: SandboxTransport) -> None:
        self.transport = transport
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.talker = 0
        self.pipeline = daemon.accounts["main"].pipeline
        self.pipeline.observe(self._handled)

    def _handled(self, event: object) -> None:
        if isinstance(event, MessageReceived) and event.message.msg_id in self.sent_at:
            self.latencies.append(time.perf_counter() - self.sent_at.pop(event.message.msg_id))

    async def say(self) -> None:
        self.talker += 1
        started = time.perf_counter()
        message = await self.transport.say(f"wxid_{self.talker}", "这款多少钱？")
        self.sent_at[message.msg_id] = started

    async def run(self, until: asyncio.Future[object] | None, count: int, interval: float) -> list[float]:
        self.latencies = []
        sent = 0
        while sent < count if until is None else not until.done():
            await self.say()
            sent += 1
            await asyncio.sleep(interval)
        await self.pipeline.drained()
        return self.latencies


def outbox_state(database: Database) -> dict[str, int]:
    with database.session(read_only=True) as session:
        rows = session.execute(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state))
        return dict(rows.all())


async def scenario(root: Path, contacts: int, interval: float) -> None:
    settings = load_settings(root / "settings.toml")
    database = Database(settings.resolved_database_url)
    transport = SandboxTransport("main", clock=SystemClock(), populate=False)
    for number in range(1, TALKERS + 1):
        transport.add_contact(ContactInfo(f"wxid_{number}", f"客户{number}"))
    daemon = Daemon(settings, database=database, transports={"main": transport}, autoplay=False)
    await daemon.start()
    try:
        probe = Probe(daemon, transport)
        idle = await probe.run(None, 200, interval)
        sopset = daemon.services.sop.sopset
        assert sopset is not None
        sop = sopset.sops["daily"]
        now = datetime.now(UTC)
        started = time.perf_counter()
        fanout = asyncio.ensure_future(
            asyncio.to_thread(execute, database, sopset, sop, sop.steps[0], now, RunDecision.RAN, now)
        )
        loaded = await probe.run(fanout, 0, interval)
        fanout_took = time.perf_counter() - started
        result = fanout.result()
        drained = outbox_state(database)
    finally:
        await daemon.stop()
    print(f"fan-out: {result.planned:,} messages planned in {fanout_took:.1f}s while messages kept arriving")
    print(f"outbox while it ran: {drained}")
    for label, values in (("idle daemon", idle), ("during the fan-out and drain", loaded)):
        print(
            f"{label:<30} {len(values):4d} messages: p50 {percentile(values, 0.5) * 1000:6.1f} ms, "
            f"p99 {percentile(values, 0.99) * 1000:6.1f} ms, max {max(values) * 1000:6.1f} ms"
        )
    print(f"ratio p99 loaded / idle: {percentile(loaded, 0.99) / percentile(idle, 0.99):.1f} × (target p99 ≤ 300 ms)")
    print(f"median reply latency idle {statistics.median(idle) * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between inbound messages")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, text in FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        shutil.copy(REPO / "sop" / "tags.yaml", root / "sop" / "tags.yaml")
        for template in (REPO / "templates" / "default").glob("reply_*.j2"):
            shutil.copy(template, root / "templates" / "default")
        (root / "settings.toml").write_text(SETTINGS, encoding="utf-8")
        database = Database(f"sqlite:///{root / 'data' / 'sopbot.db'}")
        upgrade(database)
        seed(database, args.contacts)
        database.dispose()
        asyncio.run(scenario(root, args.contacts, args.interval))


if __name__ == "__main__":
    main()
