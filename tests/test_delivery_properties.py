"""Property tests: over random mixes of SOP messages, caps, paces and clocks, the delivery
rules always hold."""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.clock import FrozenClock
from bot.config.settings import load_settings
from bot.delivery.outbox import PlannedMessage, enqueue
from bot.delivery.policy import in_quiet_hours, local_day_start
from bot.delivery.worker import DeliveryWorker
from bot.pipeline import AccountPipeline
from bot.policies import Category, Origin, QuietPolicy
from bot.recorder import Recorder
from bot.runtime import AccountRuntime, BotContext
from bot.signals.tiers import TierPolicy
from bot.store import Database
from bot.store import directory as d
from bot.store.migrate import upgrade
from bot.store.models import Contact, OutboxMessage
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.types import Text

START = datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
CONTACTS = 4


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "sopbot.db"
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    return path


message = st.tuples(
    st.integers(0, CONTACTS - 1),  # recipient
    st.sampled_from(["marketing", "marketing", "lifecycle", "reply"]),
    st.integers(0, 3),  # priority
    st.integers(0, 2 * 24 * 60),  # due, minutes after START
    st.sampled_from(["wait", "skip"]),
)
scenario = st.fixed_dictionaries(
    {
        "messages": st.lists(message, min_size=1, max_size=40),
        "daily": st.integers(1, 3),
        "weekly": st.integers(1, 6),
        "min_interval": st.sampled_from([0.0, 5.0, 30.0, 300.0]),
        "jitter": st.sampled_from([0.0, 3.0, 60.0]),
        "quiet": st.sampled_from(["22:00-08:00", "21:30-09:15", "00:00-06:00", "13:00-14:00"]),
        "opted_out": st.sets(st.integers(0, CONTACTS - 1), max_size=2),
        "ticks": st.lists(st.integers(1, 2 * 3600), min_size=1, max_size=40),
        "seed": st.integers(0, 2**16),
    }
)


def run_scenario(template: Path, case: dict) -> tuple[list, dict[int, OutboxMessage], object]:  # type: ignore[type-arg]
    folder = Path(tempfile.mkdtemp())
    try:
        shutil.copy(template, folder / "sopbot.db")
        (folder / "settings.toml").write_text(
            f"""
[delivery]
quiet_hours = "{case["quiet"]}"
replies_in_quiet_hours = true
min_interval = {case["min_interval"]}
jitter = {case["jitter"]}
contact_daily_cap = {case["daily"]}
contact_weekly_cap = {case["weekly"]}
""",
            encoding="utf-8",
        )
        config = load_settings(folder / "settings.toml")
        database = Database(f"sqlite:///{folder / 'sopbot.db'}")
        clock = FrozenClock(START)
        sent, rows = asyncio.run(_drive(config, database, clock, case))
        database.dispose()
        return sent, rows, config
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _drive(config, database, clock, case):  # type: ignore[no-untyped-def]
    transport = SandboxTransport("main", clock=clock, populate=False, extra_contacts=CONTACTS)
    context = BotContext(config, database, clock, background=False)
    with database.session() as s:
        d.ensure_account(s, "main", name="main", transport="sandbox", now=START)
    recorder = Recorder(database, transport, clock, TierPolicy.from_settings(config.tiers))
    recorder.store_sync(("wxid_bot", "bot"), await transport.contacts(), [], {})

    async def ignore(_event: object) -> None:
        return None

    await transport.start(ignore)
    pipeline = AccountPipeline("main", {}, {}, wake_delivery=lambda: None)
    context.accounts["main"] = AccountRuntime(config.accounts[0], transport, pipeline)
    contacts = {i: f"wxid_demo_{i + 1:06d}" for i in range(CONTACTS)}
    with database.session() as s:
        ids = {i: d.contact_id_for(s, "main", wxid) for i, wxid in contacts.items()}
        for i in case["opted_out"]:
            s.execute(update(Contact).where(Contact.id == ids[i]).values(opted_out=True))
        planned = [
            PlannedMessage(
                key=f"sop:s{n}:step:occ:{who}",
                account_id="main",
                origin=Origin.SOP,
                parts=[Text(f"m{n}")],
                not_before=START + timedelta(minutes=due),
                contact_id=ids[who],
                category=Category(category),
                priority=priority,
                quiet_policy=QuietPolicy(quiet),
                sop_id=f"s{n}",
            )
            for n, (who, category, priority, due, quiet) in enumerate(case["messages"])
        ]
        enqueue(s, planned, START)
    worker = DeliveryWorker(context, rng=random.Random(case["seed"]))
    await worker.start()
    # random clock jumps first, then a steady drain until everything due has settled
    for tick in [*case["ticks"], *[1800] * (3 * 48)]:
        for _ in range(200):
            result = await worker.step("main")
            if result.paced or not result.active:
                break
        clock.advance(timedelta(seconds=tick))
    await worker.stop()
    with database.session(read_only=True) as s:
        rows = {r.id: r for r in s.execute(select(OutboxMessage)).scalars()}
    return list(transport.sent), rows


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario)
def test_delivery_rules_always_hold(template_db: Path, case: dict) -> None:  # type: ignore[type-arg]
    sent, rows, config = run_scenario(template_db, case)
    rules_tz, delivery = config.tz, config.delivery  # type: ignore[attr-defined]
    by_key = {r.key: r for r in rows.values()}
    refs = [record.ref for record in sent]
    assert len(refs) == len(set(refs)), "a part was sent twice"

    per_day: Counter[tuple[int, datetime]] = Counter()
    per_contact_times: dict[int, list[datetime]] = defaultdict(list)
    for record in sent:
        row = by_key[record.ref.rsplit("#", 1)[0]]
        assert row.state == "sent"
        if row.category == "reply":
            continue
        assert not in_quiet_hours(record.at, _rules(config)), (
            f"{row.category} sent at {record.at} in quiet hours"
        )
        assert not _opted_out(case, row), "an opted-out contact got a marketing message"
        if row.category == "marketing":
            per_day[(row.contact_id, local_day_start(record.at, rules_tz))] += 1
            per_contact_times[row.contact_id].append(record.at)
    assert all(n <= delivery.contact_daily_cap for n in per_day.values())
    for times in per_contact_times.values():
        times.sort()
        for i, first in enumerate(times):
            in_week = [t for t in times[i:] if t < first + timedelta(days=7)]
            assert len(in_week) <= delivery.contact_weekly_cap
    moments = sorted(record.at for record in sent)
    for earlier, later in itertools.pairwise(moments):
        assert (later - earlier).total_seconds() >= delivery.min_interval
    for row in rows.values():
        assert row.state in {"sent", "skipped"}, "every message settles: sent, or skipped with a reason"
        assert row.state != "skipped" or row.reason, "skipped without a reason"


def _rules(config):  # type: ignore[no-untyped-def]
    from bot.delivery.worker import rules_from

    return rules_from(config)


def _opted_out(case: dict, row: OutboxMessage) -> bool:  # type: ignore[type-arg]
    index = int(row.sop_id.removeprefix("s"))
    return case["messages"][index][0] in case["opted_out"]
