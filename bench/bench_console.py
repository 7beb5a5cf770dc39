"""Benchmark: the console's contacts pages over 100,000 contacts, and its dashboard.

    python bench/bench_console.py [--contacts 100000] [--events 1000000] [--db PATH] [--runs 20]

1. Writes a month-rich year of history straight into SQLite (bench_report.py's generator:
   contacts, contact events, messages, the outbox, orders, tier changes), then 150,000 tags
   on contacts and a city on a third of them; rebuilds the daily rollups. `--db PATH` keeps
   the file and reuses it next time.
2. Serves the console (the real ASGI app, uvicorn, in an event loop of its own) on a free
   port, logs in over HTTP, and asks each page `--runs` times with a keep-alive connection.
   The figure is the server time the console reports in its `Server-Timing` header (from the
   request's arrival to the response's start: session check, database, template), beside the
   time the client saw.
3. Baselines measured in the same run: the first page's data by two bare SQL queries (50
   contacts, their tags: the ratio column), a plain `SELECT count(*) FROM contacts`, and
   `/livez` through the same server (the HTTP stack's own floor).

The dashboard's charts (the report of the last 7 days) are made in the background and kept
for five minutes; the dashboard is measured with them made, and the time to make them is
printed apart. Prints figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import DAYS, START, TAGS, generate

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.console.access import Access
from bot.console.app import build_app
from bot.console.server import ConsoleServer
from bot.console.service import make_console
from bot.results import rollups
from bot.runtime import BotContext
from bot.store import Database
from bot.store.migrate import upgrade

TOKEN = "bench-console-token-0123456789"
CITIES = ["上海", "北京", "杭州", "广州", "成都", "苏州"]
TARGET_MS = 300
BARE_PAGE = (
    "SELECT id, account_id, wxid, name, alias, tier, is_friend, opted_out FROM contacts ORDER BY id LIMIT 50"
)
BARE_TAGS = "SELECT contact_tags.contact_id, tags.name FROM contact_tags JOIN tags ON tags.id = contact_tags.tag_id WHERE contact_tags.contact_id IN ({})"


def enrich(path: Path, contacts: int, seed: int = 2027) -> None:
    """Tags on contacts (150,000) and a city on a third of them."""
    rng = random.Random(seed)
    db = sqlite3.connect(path)
    have = {(c, t) for c, t in db.execute("SELECT contact_id, tag_id FROM contact_tags")}
    rows = set()
    while len(rows) < 150_000:
        pair = (rng.randint(1, contacts), rng.randint(1, len(TAGS)))
        if pair not in have:
            rows.add(pair)
    db.executemany(
        "INSERT INTO contact_tags (contact_id, tag_id, source, added_at) VALUES (?,?,'rule','2026-01-01 00:00:00')",
        sorted(rows),
    )
    db.executemany(
        "UPDATE contacts SET city = ? WHERE id = ?",
        [(rng.choice(CITIES), c) for c in range(1, contacts + 1, 3)],
    )
    db.execute("UPDATE accounts SET status = 'online'")
    db.commit()
    db.close()


class Served:
    """The console on a free port, in an event loop on a thread of its own."""

    def __init__(self, settings: Settings, database: Database, clock: FrozenClock) -> None:
        access = Access(TOKEN, False, "SOPBOT_CONSOLE_TOKEN", True)
        context = BotContext(settings, database, clock)
        self.console = make_console(settings, database, clock, access, context, in_daemon=True)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = ConsoleServer(build_app(self.console), "127.0.0.1", 0)
        self.port = self.run(self.server.start())

    def run(self, coroutine):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(600)

    def close(self) -> None:
        self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Browser:
    """One keep-alive connection with the session cookie."""

    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        self.cookie = ""

    def get(self, path: str) -> tuple[int, float, float, str]:
        """(status, server ms, client ms, body)"""
        started = time.perf_counter()
        self.connection.request("GET", path, headers={"Cookie": self.cookie} if self.cookie else {})
        answer = self.connection.getresponse()
        body = answer.read().decode()
        client = (time.perf_counter() - started) * 1000
        timing = re.search(r"dur=([\d.]+)", answer.getheader("Server-Timing") or "")
        return answer.status, float(timing.group(1)) if timing else float("nan"), client, body

    def login(self) -> None:
        self.connection.request("GET", "/login")
        answer = self.connection.getresponse()
        nonce = re.search(r'name="nonce" value="([^"]+)"', answer.read().decode())
        assert nonce is not None
        login_cookie = answer.getheader("Set-Cookie", "").split(";", 1)[0]
        body = urllib.parse.urlencode({"nonce": nonce.group(1), "token": TOKEN, "next": "/"})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie}
        self.connection.request("POST", "/login", body, headers)
        answer = self.connection.getresponse()
        answer.read()
        assert answer.status == 303, answer.status
        self.cookie = answer.getheader("Set-Cookie", "").split(";", 1)[0]


def measure(browser: Browser, path: str, runs: int) -> tuple[float, float, float, str]:
    """Median and worst server ms, median client ms, and the last body."""
    status, _, _, body = browser.get(path)  # once to warm the caches, not counted
    assert status == 200, (path, status, body[:300])
    server, client = [], []
    for _ in range(runs):
        status, took, seen, body = browser.get(path)
        assert status == 200, (path, status)
        server.append(took)
        client.append(seen)
    return statistics.median(server), max(server), statistics.median(client), body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="keep the database here (reused when present)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sopbot-bench-console-"))
    path = args.db or folder / "bench.db"
    repo = Path(__file__).resolve().parents[1]
    settings = Settings(
        database_url=f"sqlite:///{path}",
        sop_dir=repo / "sop",
        templates_dir=repo / "templates",
        base_dir=folder,
    )
    now = START + timedelta(days=DAYS, hours=1)
    if not path.exists():
        started = time.perf_counter()
        generate(path, args.contacts, args.events)
        enrich(path, args.contacts)
        print(
            f"history written: {args.contacts:,} contacts, ~{args.events:,} events in {time.perf_counter() - started:.1f} s"
        )
    database = Database(f"sqlite:///{path}")
    upgrade(database)
    with database.session(read_only=True) as session:
        fresh = not rollups.marks(session)
    if fresh:
        started = time.perf_counter()
        rollups.rebuild(database, settings, now=now, batch=20_000)
        print(f"rollups rebuilt in {time.perf_counter() - started:.1f} s")

    counts, bare = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        with database.engine.connect() as connection:
            total = connection.exec_driver_sql("SELECT count(*) FROM contacts").scalar_one()
        counts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        with database.engine.connect() as connection:
            ids = [row[0] for row in connection.exec_driver_sql(BARE_PAGE)]
            connection.exec_driver_sql(BARE_TAGS.format(",".join(map(str, ids)))).all()
        bare.append((time.perf_counter() - started) * 1000)
    baseline = statistics.median(bare)
    print(f"baseline: SELECT count(*) FROM contacts ({total:,}): median {statistics.median(counts):.2f} ms")
    print(f"baseline: the first 50 contacts and their tags, two bare SQL queries: median {baseline:.2f} ms")

    served = Served(settings, database, FrozenClock(now))
    try:
        browser = Browser(served.port)
        browser.login()
        floor, _, floor_client, _ = measure(browser, "/livez", args.runs)
        print(
            f"baseline: /livez through the same server: {floor:.2f} ms server, {floor_client:.2f} ms at the client"
        )

        began = time.perf_counter()
        charts = served.console.charts.make()
        served.console.charts.latest = charts
        print(
            f"dashboard charts (the 7-day report), made in the background: {time.perf_counter() - began:.2f} s"
        )

        deep = max(1, total - 10 * 50)  # ten pages from the end: keyset paging, as the page links do
        pages = [
            ("dashboard", "/"),
            ("contacts, first page", "/contacts"),
            (
                "contacts, filtered",
                "/contacts?where=" + urllib.parse.quote("tier >= customer and tag:标签07"),
            ),
            (
                "contacts, filtered by a profile field",
                "/contacts?where=" + urllib.parse.quote("field:城市 == 上海 and not opted_out"),
            ),
            ("contacts, a name", "/contacts?q=" + urllib.parse.quote("客户9999")),
            ("contacts, a deep page", f"/contacts?after={deep}"),
            (
                "contacts, a deep filtered page",
                f"/contacts?after={deep}&where=" + urllib.parse.quote("tag:标签07"),
            ),
            ("one contact", "/contacts/4242"),
            ("outbox, first page", "/outbox"),
        ]
        print(
            f"\n{'page':40} {'server median':>14} {'worst':>8} {'client':>8}  {'× bare':>8}  target {TARGET_MS} ms"
        )
        for name, page in pages:
            median, worst, client, body = measure(browser, page, args.runs)
            rows = len(re.findall(r'<td class="name">', body))
            mark = "ok" if median <= TARGET_MS else "MISSED"
            print(
                f"{name:40} {median:11.1f} ms {worst:5.0f} ms {client:5.0f} ms  {median / baseline:7.1f}×  {mark}"
                + (f"  ({rows} rows)" if rows else "")
            )
    finally:
        served.close()
        database.dispose()


if __name__ == "__main__":
    main()
