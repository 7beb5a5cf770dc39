"""Benchmark: the silence and lapse sweep (`silent:` / `no_order:` steps) over 100,000 contacts.

    python bench/bench_silence.py [--contacts 100000] [--db PATH]

1. Writes 100,000 friends straight into SQLite: 70 % wrote last somewhere in the last 120
   days, 30 % never wrote (counted from the contact sync 100 days ago), one in ten a new
   friendship in the last 60 days; 60,000 orders of 30,000 buyers over 150 days (one in ten
   refunded). The secondary indexes are built once the rows are in.
2. The first sweep of the shipped `sop/winback.yaml` and `sop/repurchase.yaml` (five
   steps): every spell due in the 7-day lookback is decided (caught up within the 1-day
   grace and planned, or recorded as missed).
3. The sweep the daemon then repeats every `lifecycle_interval` (60 s) with nothing new:
   the five indexed queries that find nothing undecided, best of three.
4. The baseline, timed in the same run: what a loop over every contact would read at the
   least, each friend's three anchor columns, once.

Prints figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config.settings import load_settings
from bot.sop.authoring.check import load_checked
from bot.sop.runtime.silence import pending_spells, run_spell_step
from bot.store import Database
from bot.store.migrate import upgrade

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 24, 11, 30, tzinfo=UTC)  # 19:30 in Shanghai: the 14-day step's time
FMT = "%Y-%m-%d %H:%M:%S.%f"


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).strftime(FMT)


def generate(path: Path, contacts: int, seed: int = 2026) -> None:
    rng = random.Random(seed)
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    indexes = db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('contacts', 'orders')"
    ).fetchall()
    for (name,) in indexes:
        db.execute(f"DROP INDEX {name}")
    db.execute(
        "INSERT INTO accounts (id, name, transport, status) VALUES ('main', 'bench', 'sandbox', 'online')"
    )
    synced = NOW - timedelta(days=100)
    rows = []
    for cid in range(1, contacts + 1):
        last = NOW - timedelta(seconds=rng.uniform(0, 120 * 86400)) if rng.random() < 0.7 else None
        added = NOW - timedelta(seconds=rng.uniform(0, 60 * 86400)) if rng.random() < 0.1 else None
        rows.append(
            (cid, "main", f"wxid_{cid}", f"客户{cid}", True, False, cid % 50 == 0, "basic", ts(synced),
             ts(added) if added else None, ts(last) if last else None)
        )  # fmt: skip
    db.executemany(
        "INSERT INTO contacts (id, account_id, wxid, name, is_friend, blocked, opted_out, tier, first_seen_at,"
        " friend_added_at, last_message_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    buyers = rng.sample(range(1, contacts + 1), min(contacts, 30_000))
    orders = []
    for n in range(2 * len(buyers)):
        at = NOW - timedelta(seconds=rng.uniform(0, 150 * 86400))
        status = "refunded" if rng.random() < 0.1 else "paid"
        orders.append((f"o{n}", buyers[n % len(buyers)], status, ts(at), 39_900, "csv", "main"))
    db.executemany(
        "INSERT INTO orders (order_id, contact_id, status, ordered_at, amount_cents, source, account_id, discounted)"
        " VALUES (?,?,?,?,?,?,?,0)",
        orders,
    )
    db.commit()
    db.close()
    database = Database(f"sqlite:///{path}")
    upgrade(database)  # (a no-op: the schema is at head)
    database.dispose()
    db = sqlite3.connect(path)
    for sql in _index_sql(path):
        db.execute(sql)
    db.execute("ANALYZE")
    db.commit()
    db.close()


def _index_sql(path: Path) -> list[str]:
    """The CREATE INDEX statements of a fresh schema for contacts and orders."""
    with tempfile.TemporaryDirectory() as folder:
        fresh = Database(f"sqlite:///{Path(folder) / 'fresh.db'}")
        upgrade(fresh)
        fresh.dispose()
        db = sqlite3.connect(Path(folder) / "fresh.db")
        found = [
            sql
            for (sql,) in db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND tbl_name IN ('contacts', 'orders')"
            )
        ]
        db.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="keep the database here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-silence-"))
    path = args.db or folder / "sopbot.db"
    started = time.perf_counter()
    generate(path, args.contacts)
    print(f"generated {args.contacts:,} contacts in {time.perf_counter() - started:.1f}s ({path})")

    (folder / "settings.toml").write_text(
        f'sop_dir = "{REPO / "sop"}"\ntemplates_dir = "{REPO / "templates"}"\n'
        f'database_url = "sqlite:///{path}"\n',
        encoding="utf-8",
    )
    settings = load_settings(folder / "settings.toml")
    sopset = load_checked(settings, NOW)
    steps = [(sop, step) for sop in sopset.enabled() for step in sop.steps if step.spell is not None]
    database = Database(f"sqlite:///{path}")
    try:
        naive = "SELECT id, last_message_at, friend_added_at, first_seen_at FROM contacts WHERE is_friend"
        with database.engine.connect() as connection:
            best = float("inf")
            for _ in range(3):
                began = time.perf_counter()
                connection.exec_driver_sql(naive).fetchall()
                best = min(best, time.perf_counter() - began)
        print(f"baseline: every friend's anchors read once   {best * 1000:8.1f} ms  ({naive})")

        began = time.perf_counter()
        decisions: Counter[str] = Counter()
        planned = 0
        for sop, step in steps:
            for result in run_spell_step(database, sopset, sop, step, NOW):
                decisions[result.decision.value if result.decision else "already"] += 1
                planned += result.planned
        first = time.perf_counter() - began
        shown = ", ".join(f"{n:,} {what}" for what, n in sorted(decisions.items()))
        print(f"first sweep, {len(steps)} steps: {first:8.2f} s  ({shown}; {planned:,} planned)")

        best_sweep = float("inf")
        per_step: dict[str, float] = {}
        for _ in range(3):
            began = time.perf_counter()
            left = 0
            with database.session(read_only=True) as session:
                for sop, step in steps:
                    step_began = time.perf_counter()
                    left += len(pending_spells(session, sop, step, NOW))
                    took = time.perf_counter() - step_began
                    per_step[f"{sop.id}/{step.id}"] = min(per_step.get(f"{sop.id}/{step.id}", took), took)
            best_sweep = min(best_sweep, time.perf_counter() - began)
        for name, took in per_step.items():
            print(f"  {name:<28} {took * 1000:8.1f} ms")
        print(
            f"steady sweep, {len(steps)} queries:      {best_sweep * 1000:8.1f} ms  ({left} undecided; "
            f"{best_sweep / best:.1f} x the baseline)"
        )
    finally:
        database.dispose()


if __name__ == "__main__":
    main()
