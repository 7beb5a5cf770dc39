"""Benchmark: a year's results report over 100,000 contacts and 5,000,000 events.

    python bench/bench_report.py [--contacts 100000] [--events 5000000] [--db PATH]

1. Writes a year of history straight into SQLite (contacts, contact events, inbound
   messages 1:1 and in 50 groups, SOP messages in the outbox, orders, tier changes, tags) with
   `executemany` on the raw connection, the secondary indexes built after the rows are in;
   `--db PATH` keeps the file and reuses it next time.
2. Rebuilds the daily rollups from the raw tables (`sopbot report --rebuild`).
3. The 365-day report (`bot.results.compute.build_report`), best of three, beside a baseline
   measured in the same run: a plain `SELECT count(*)` over the event tables.
4. The rollup update cost per inbound event: 1,000 new messages (replies to recent SOP
   messages among them) counted by one `update()`, and one message counted alone.

Prints figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config.settings import Settings
from bot.results import rollups
from bot.results.compute import build_report
from bot.results.model import Period
from bot.store import Database
from bot.store.migrate import upgrade

START = datetime(2025, 11, 25, 16, 0, tzinfo=UTC)  # 2025-11-26 00:00 in Asia/Shanghai
DAYS = 365
FMT = "%Y-%m-%d %H:%M:%S.%f"
TIERS = ["basic", "prospect", "customer", "repeat", "koc"]
TAGS = [f"标签{n:02d}" for n in range(60)]
WORDS = ["好的", "这款多少钱？", "在吗", "谢谢", "有优惠吗", "收到", "不错", "什么时候发货", "喜欢"]
STEPS = [("daily_pick", "morning"), ("weekly_plan", "mon"), ("member_day", "notice"), ("welcome", "hello")]


def ts(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).replace(tzinfo=None).strftime(FMT)


def generate(path: Path, contacts: int, events: int, seed: int = 2026) -> None:
    """A year of history, about `events` rows in the event tables."""
    rng = random.Random(seed)
    span = DAYS * 86400
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    database.dispose()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-262144")  # 256 MB for the index builds
    # a bulk load: the secondary indexes are built once the rows are in (as after a VACUUM)
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN "
        "('contact_events', 'inbound_messages', 'outbox', 'orders', 'tier_changes', 'contact_tags', 'contacts')"
    ).fetchall()
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    db.execute(
        "INSERT INTO accounts (id, name, transport, status) VALUES ('main', 'bench', 'sandbox', 'online')"
    )

    # shares of the events: messages 50 %, outbox 40 %, contact events 8 %, tier changes 2 %
    n_messages, n_outbox = events * 50 // 100, events * 40 // 100
    n_tiers = events * 2 // 100
    added_at = sorted(rng.uniform(-30 * 86400, span) for _ in range(contacts))
    deleted = set(rng.sample(range(1, contacts + 1), contacts // 20))
    rows = []
    for cid in range(1, contacts + 1):
        rows.append(
            (cid, "main", f"wxid_{cid}", f"客户{cid}", cid not in deleted, cid in deleted, cid % 23 == 0,
             rng.choice(TIERS), None)
        )  # fmt: skip
    db.executemany(
        "INSERT INTO contacts (id, account_id, wxid, name, is_friend, blocked, opted_out, tier, last_message_at)"
        " VALUES (?,?,?,?,?,?,?,?,?)",
        rows,
    )
    rooms = 50
    db.executemany(
        "INSERT INTO rooms (id, account_id, room_wxid, topic, member_count, dissolved) VALUES (?,?,?,?,0,0)",
        [(r, "main", f"{r}@chatroom", f"群{r}") for r in range(1, rooms + 1)],
    )
    members = [
        (1 + cid % rooms, f"wxid_{cid}", cid, "", ts(added_at[cid - 1])) for cid in range(1, contacts + 1, 2)
    ]
    db.executemany(
        "INSERT INTO room_members (room_id, member_wxid, contact_id, display_name, joined_at) VALUES (?,?,?,?,?)",
        members,
    )
    db.executemany("INSERT INTO tags (id, name) VALUES (?,?)", list(enumerate(TAGS, 1)))

    # contact events: additions, deletions, tags added (some removed again)
    event_rows: list[tuple[float, int, str, str | None]] = []
    for cid in range(1, contacts + 1):
        event_rows.append(
            (added_at[cid - 1], cid, "friend_added", rng.choice(["request", "referral", "group", "sync"]))
        )
        if cid in deleted:
            event_rows.append(
                (rng.uniform(max(0, added_at[cid - 1]), span), cid, "friend_deleted", "sync_missing")
            )
    n_contact_events = events - n_messages - n_outbox - n_tiers
    carried: dict[tuple[int, int], float] = {}
    while len(event_rows) < n_contact_events:
        cid, tag = rng.randint(1, contacts), rng.randint(1, len(TAGS))
        at = rng.uniform(0, span)
        if (cid, tag) in carried:
            event_rows.append((max(at, carried.pop((cid, tag)) + 1), cid, "tag_removed", TAGS[tag - 1]))
        else:
            carried[(cid, tag)] = at
            event_rows.append((at, cid, "tag_added", TAGS[tag - 1]))
    event_rows.sort()
    db.executemany(
        "INSERT INTO contact_events (id, contact_id, kind, at, detail) VALUES (?,?,?,?,?)",
        [(i, cid, kind, ts(at), detail) for i, (at, cid, kind, detail) in enumerate(event_rows, 1)],
    )
    db.executemany(
        "INSERT INTO contact_tags (contact_id, tag_id, source, added_at) VALUES (?,?,?,?)",
        [(cid, tag, "rule", ts(at)) for (cid, tag), at in carried.items()],
    )

    # the outbox: SOP messages at 10:00 local each day (1:1, and to the groups), settled
    per_day = n_outbox // DAYS
    outbox = []
    row_id = 0
    for day in range(DAYS):
        base = day * 86400 + 2 * 3600  # 10:00 in Shanghai
        sop, step = STEPS[day % len(STEPS)]
        for n in range(per_day):
            row_id += 1
            to_room = n < rooms
            state = "sent" if rng.random() < 0.9 else rng.choice(["skipped", "failed", "unknown"])
            sent = base + n * 0.5
            outbox.append(
                (row_id, f"sop:{sop}:{step}:{day}:{n}", "main", "sop", sop, step,
                 None if to_room else rng.randint(1, contacts), (n + 1) if to_room else None,
                 "lifecycle" if sop == "welcome" else "marketing", state,
                 "contact daily cap 2 reached" if state == "skipped" else None,
                 ts(sent) if state == "sent" else None, ts(base))
            )  # fmt: skip
    db.executemany(
        "INSERT INTO outbox (id, key, account_id, origin, sop_id, step_id, contact_id, room_id, category,"
        " priority, state, attempts, quiet_policy, guarantee, parts_sent, reason, sent_at, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,0,?,1,'wait','at_most_once',1,?,?,?)",
        outbox,
    )
    del outbox

    # inbound messages: 70 % 1:1, 30 % in the groups, in time order
    times = sorted(rng.uniform(0, span) for _ in range(n_messages))
    last: dict[int, float] = {}
    messages = []
    for i, at in enumerate(times, 1):
        cid = rng.randint(1, contacts)
        in_room = rng.random() < 0.3
        last[cid] = at
        messages.append(
            (
                i,
                "main",
                f"m{i}",
                cid,
                (1 + cid % rooms) if in_room else None,
                rng.choice(WORDS),
                ts(at),
                ts(at),
            )
        )
    db.executemany(
        "INSERT INTO inbound_messages (id, account_id, transport_msg_id, contact_id, room_id, kind, text,"
        " mentions_self, sent_at, received_at) VALUES (?,?,?,?,?,'text',?,0,?,?)",
        messages,
    )
    del messages
    db.executemany(
        "UPDATE contacts SET last_message_at = ? WHERE id = ?", [(ts(at), cid) for cid, at in last.items()]
    )

    # orders and tier changes
    orders = sorted((rng.uniform(0, span), rng.randint(1, contacts)) for _ in range(contacts // 2))
    db.executemany(
        "INSERT INTO orders (order_id, contact_id, amount_cents, status, discounted, source, ordered_at,"
        " imported_at, updated_at, account_id) VALUES (?,?,?,?,0,'csv',?,?,?,'main')",
        [
            (
                f"O{i}",
                cid,
                rng.randint(1000, 50000),
                "paid" if rng.random() < 0.95 else "refunded",
                ts(at),
                ts(at),
                ts(at),
            )
            for i, (at, cid) in enumerate(orders, 1)
        ],
    )
    changes = sorted((rng.uniform(0, span), rng.randint(1, contacts)) for _ in range(n_tiers))
    db.executemany(
        "INSERT INTO tier_changes (id, contact_id, from_tier, to_tier, cause, changed_at) VALUES (?,?,?,?,'',?)",
        [(i, cid, rng.choice(TIERS), rng.choice(TIERS), ts(at)) for i, (at, cid) in enumerate(changes, 1)],
    )
    for _, sql in indexes:
        db.execute(sql)
    db.commit()
    db.close()


def count_rows(database: Database) -> tuple[int, float]:
    started = time.perf_counter()
    total = 0
    with database.engine.connect() as connection:
        for table in ("contact_events", "inbound_messages", "outbox", "orders", "tier_changes"):
            total += connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one()
    return total, time.perf_counter() - started


def add_messages(database: Database, n: int, at: datetime, first_id: int) -> None:
    """`n` new 1:1 messages from contacts who were sent an SOP message an hour before."""
    with database.engine.begin() as connection:
        recent = [
            row[0]
            for row in connection.exec_driver_sql(
                "SELECT contact_id FROM outbox WHERE state = 'sent' AND contact_id IS NOT NULL"
                " ORDER BY id DESC LIMIT ?",
                (n,),
            )
        ]
        stamp = at.astimezone(UTC).replace(tzinfo=None).strftime(FMT)
        connection.exec_driver_sql(
            "INSERT INTO inbound_messages (id, account_id, transport_msg_id, contact_id, room_id, kind, text,"
            " mentions_self, sent_at, received_at) VALUES (?,?,?,?,NULL,'text','这款多少钱？',0,?,?)",
            [
                (first_id + i, "main", f"live{first_id + i}", recent[i % len(recent)], stamp, stamp)
                for i in range(n)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--db", type=Path, default=None, help="keep the database here (reused when present)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sopbot-bench-report-"))
    path = args.db or folder / "bench.db"
    settings = Settings(database_url=f"sqlite:///{path}", sop_dir=folder / "sop", base_dir=folder)
    now = START + timedelta(days=DAYS, hours=1)
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.contacts, args.events)
        took = time.perf_counter() - started
        print(f"history written: {args.contacts:,} contacts, ~{args.events:,} events in {took:.1f} s")
    database = Database(f"sqlite:///{path}")
    upgrade(database)

    events, baseline = count_rows(database)
    print(f"baseline: SELECT count(*) over the event tables ({events:,} rows): {baseline * 1000:.0f} ms")
    started = time.perf_counter()
    with database.engine.connect() as connection:
        connection.exec_driver_sql(
            "SELECT substr(sent_at, 1, 10), count(*) FROM inbound_messages GROUP BY 1"
        ).all()
    raw_daily = time.perf_counter() - started
    print(f"for comparison, messages per day straight from the raw table: {raw_daily * 1000:.0f} ms")

    with database.session(read_only=True) as session:
        fresh = not rollups.marks(session)
    if fresh:
        started = time.perf_counter()
        done = rollups.rebuild(database, settings, now=now, batch=20_000)
        took = time.perf_counter() - started
        print(f"rollups rebuilt from the raw tables: {sum(done.values()):,} rows read in {took:.1f} s")
    rollups.update(database, settings, now=now)

    local_today = now.astimezone(settings.tz).date()
    period = Period(local_today - timedelta(days=DAYS - 1), local_today, "365 days")
    previous = Period(
        period.start - timedelta(days=DAYS), period.start - timedelta(days=1), "the year before"
    )
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with database.session(read_only=True) as session:
            report = build_report(session, settings, period, "main", now=now, previous=previous)
        timings.append(time.perf_counter() - started)
    best = min(timings)
    t = report.totals
    print(
        f"365-day report: best {best:.2f} s of {', '.join(f'{x:.2f}' for x in timings)} s "
        f"({best / baseline:.0f} × the count(*) baseline, {best / raw_daily:.2f} × one daily chart from the raw "
        f"table); "
        f"assets {t.assets_start:,} → {t.assets_end:,}, {sum(p.messages for p in report.days):,} messages, "
        f"{len(report.sops)} SOP lines, {len(report.groups)} groups"
    )
    started = time.perf_counter()
    rollups.update(database, settings, now=now)
    idle = time.perf_counter() - started
    print(f"rollup update with nothing new: {idle * 1000:.0f} ms")

    with database.engine.connect() as connection:
        top = connection.exec_driver_sql("SELECT max(id) FROM inbound_messages").scalar_one()
    for n in (1000, 1):
        add_messages(database, n, now + timedelta(minutes=1), top + 1)
        top += n
        started = time.perf_counter()
        done = rollups.update(database, settings, now=now + timedelta(minutes=2))
        took = time.perf_counter() - started
        print(
            f"rollup update, {n:,} new inbound message(s): {took * 1000:.0f} ms "
            f"({took / n * 1000:.2f} ms per event; read {dict(done)})"
        )
    database.dispose()


if __name__ == "__main__":
    main()
