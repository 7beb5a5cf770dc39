"""Drain a 100,000-row outbox through the sandbox WeChat with pacing disabled.

Prints rows/s for the full delivery path (claim under the rules, send, record) and the
ratio to a bare baseline measured in the same run: the same sandbox sends in a plain loop
with no ledger. Targets (issue 6): >= 2,000 rows/s, ledger <= 3x the bare loop.

    python bench/bench_delivery.py [--rows 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.clock import FrozenClock
from bot.config.settings import load_settings
from bot.delivery.outbox import PlannedMessage, enqueue, recipient_ref, sop_key
from bot.delivery.worker import DeliveryWorker
from bot.pipeline import AccountPipeline
from bot.policies import Origin
from bot.runtime import AccountRuntime, BotContext
from bot.store import Database
from bot.store import directory as d
from bot.store.migrate import upgrade
from bot.store.models import Contact
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.types import Target, Text

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, outside quiet hours
TEXT = "【每日精选】羊绒围巾今日会员价 199 元，回复“围巾”了解详情"
SETTINGS = """
[delivery]
min_interval = 0
jitter = 0
hourly_cap = 10000000
daily_cap = 10000000
"""


def wxid(n: int) -> str:
    return f"wxid_demo_{n:06d}"


async def bare_loop(rows: int) -> float:
    transport = SandboxTransport("main", populate=False, extra_contacts=rows, clock=FrozenClock(NOW))
    await transport.start(_ignore)
    started = time.perf_counter()
    for n in range(1, rows + 1):
        await transport.send(Target(wxid(n)), Text(TEXT), ref=f"sop:daily:pick:2026-11-24:contact:{n}#0")
    return time.perf_counter() - started


async def _ignore(_event: object) -> None:
    return None


def prepare(folder: Path, url: str | None, rows: int) -> tuple[Database, object]:
    (folder / "settings.toml").write_text(SETTINGS, encoding="utf-8")
    settings = load_settings(folder / "settings.toml")
    database = Database(url or f"sqlite:///{folder / 'bench.db'}")
    upgrade(database)
    with database.session() as s:
        d.ensure_account(s, "main", name="main", transport="sandbox", now=NOW)
        s.execute(
            Contact.__table__.insert(),
            [{"account_id": "main", "wxid": wxid(n), "name": f"客户{n}", "is_friend": True, "tier": "basic",
              "blocked": False, "opted_out": False} for n in range(1, rows + 1)],
        )  # fmt: skip
    with database.session() as s:
        ids = dict(s.execute(Contact.__table__.select().with_only_columns(Contact.wxid, Contact.id)).all())
        messages = (
            PlannedMessage(
                sop_key("daily", "pick", "2026-11-24", recipient_ref(contact_id=ids[wxid(n)])),
                "main",
                Origin.SOP,
                [Text(TEXT)],
                NOW,
                contact_id=ids[wxid(n)],
            )
            for n in range(1, rows + 1)
        )
        assert enqueue(s, messages, NOW) == rows
    return database, settings


async def ledger_drain(database: Database, settings: object, rows: int) -> tuple[float, int]:
    clock = FrozenClock(NOW)
    transport = SandboxTransport("main", populate=False, extra_contacts=rows, clock=clock)
    await transport.start(_ignore)
    context = BotContext(settings, database, clock, background=False)  # type: ignore[arg-type]
    pipeline = AccountPipeline("main", {}, {}, wake_delivery=lambda: None)
    context.accounts["main"] = AccountRuntime(settings.accounts[0], transport, pipeline)  # type: ignore[attr-defined]
    worker = DeliveryWorker(context, rng=random.Random(1))
    await worker.start()
    started = time.perf_counter()
    while True:
        result = await worker.step("main")
        if not (result.sent or result.skipped or result.deferred or result.retried or result.failed):
            break
    elapsed = time.perf_counter() - started
    await worker.stop()
    return elapsed, len(transport.sent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database, settings = prepare(Path(tmp), args.database_url, args.rows)
        bare = asyncio.run(bare_loop(args.rows))
        elapsed, sent = asyncio.run(ledger_drain(database, settings, args.rows))
        database.dispose()
    assert sent == args.rows, f"only {sent} of {args.rows} rows were sent"
    print(f"backend              {database.dialect}")
    print(f"rows                 {args.rows:,}")
    print(f"bare sandbox loop    {bare:8.2f} s  {args.rows / bare:12,.0f} rows/s")
    print(
        f"outbox ledger drain  {elapsed:8.2f} s  {args.rows / elapsed:12,.0f} rows/s   (target >= 2,000 rows/s)"
    )
    print(f"ledger / bare        {elapsed / bare:8.2f} x   (target <= 3x)")


if __name__ == "__main__":
    main()
