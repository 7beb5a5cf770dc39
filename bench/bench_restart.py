"""How soon a restarted daemon sends again when its database holds 100,000 contacts, 1,000
rows a killed worker left in `sending` and 2,000 more due: `sopbot run` is started in a
fresh process and timed until the delivery worker runs, until the first message reaches the
sandbox WeChat, and until the contact sync (100,020 people) is done — beside the floor of
the same run, `sopbot version` (the interpreter and the import).

    python bench/bench_restart.py [--contacts 100000]

Target (issue 10): sending again ≤ 10 s after start. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, update

from bot.delivery.outbox import PlannedMessage, enqueue, recipient_ref, sop_key
from bot.policies import Origin
from bot.store import Database
from bot.store.models import Contact, OutboxMessage
from bot.wechat.types import Text

REPO = Path(__file__).resolve().parent.parent
SETTINGS = """
[sandbox]
autoplay = false
extra_contacts = {contacts}
journal = "journal.jsonl"
[delivery]
quiet_hours = "00:00-00:00"
min_interval = 0
jitter = 0
hourly_cap = 10000000
daily_cap = 10000000
"""


GIVE_UP = 300.0  # seconds: a mark that has not appeared by then never will


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_until(folder: Path, marks: dict[str, str], journal: Path | None = None) -> dict[str, float]:
    """Start `sopbot run`, note when each log fragment (and the first journal line) appears,
    then stop it."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=folder, env=environment(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen: dict[str, float] = {}
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
    try:
        while len(seen) < len(marks) + (journal is not None):
            text = "".join(lines)
            for name, fragment in marks.items():
                if name not in seen and fragment in text:
                    seen[name] = time.perf_counter() - started
            if (
                journal is not None
                and "first send" not in seen
                and journal.exists()
                and journal.stat().st_size
            ):
                seen["first send"] = time.perf_counter() - started
            if process.poll() is not None:
                raise SystemExit(f"sopbot run exited:\n{text[-2000:]}")
            if time.perf_counter() - started > GIVE_UP:
                missing = [name for name in marks if name not in seen]
                raise SystemExit(f"after {GIVE_UP:.0f}s still waiting for {missing}:\n{text[-2000:]}")
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(120)
    return seen


def prepare_outbox(database: Database, sending: int, due: int) -> None:
    now = datetime.now(UTC)
    with database.session() as session:
        ids = list(session.execute(select(Contact.id).order_by(Contact.id).limit(sending + due)).scalars())
        messages = [
            PlannedMessage(sop_key("bench", "s", "o", recipient_ref(contact_id=i)), "main", Origin.SOP,
                           [Text("双12 会员专享")], now, contact_id=i)
            for i in ids
        ]  # fmt: skip
        enqueue(session, messages, now)
        dead = select(OutboxMessage.id).order_by(OutboxMessage.id).limit(sending).scalar_subquery()
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(dead))
            .values(state="sending", claimed_by="killed-worker", claimed_at=now, attempts=1)
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "settings.toml").write_text(SETTINGS.format(contacts=args.contacts), encoding="utf-8")
        floor = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bot", "version"], cwd=folder, env=environment(), check=True,
                       capture_output=True)  # fmt: skip
        floor = time.perf_counter() - floor
        first = run_until(folder, {"synced": "contacts, 3 rooms synced"})
        database = Database(f"sqlite:///{folder / 'data' / 'sopbot.db'}")
        prepare_outbox(database, 1000, 2000)
        database.dispose()
        journal = folder / "journal.jsonl"  # `[sandbox] journal` is relative to the project folder
        marks = {"worker": "delivery worker", "recovered": "recovered ", "synced": "contacts, 3 rooms synced"}
        again = run_until(folder, marks, journal)
        sent = sum(1 for line in journal.read_text(encoding="utf-8").splitlines() if json.loads(line))
    print(f"floor: `sopbot version` {floor:.2f}s")
    print(f"first start, empty database: {args.contacts + 20:,} contacts synced after {first['synced']:.1f}s")
    print(
        f"restart with {args.contacts + 20:,} contacts, 1,000 rows left `sending`, 2,000 due: "
        f"delivery running {again['worker']:.1f}s, recovery done {again['recovered']:.1f}s, "
        f"first message out {again['first send']:.1f}s, contact sync done {again['synced']:.1f}s after start "
        f"(target: sending ≤ 10 s); {sent:,} sent before the stop"
    )


if __name__ == "__main__":
    main()
