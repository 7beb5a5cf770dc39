"""A campaign for the fault tests: a project whose SOP file plans one two-part message (text
+ link card) to every synthetic sandbox contact, daemons run as real processes, and the
checks that count what reached WeChat (the sandbox journal: its server side) against the
outbox. Faults are injected by the tests; this module only sets up and counts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from bot.store import Database
from bot.store.models import Contact, OutboxMessage, SopRun
from bot.wechat.sandbox.population import PERSONAS
from tests.support import write_project
from tests.waiting import stop_process, wait_for_progress

REPO = Path(__file__).resolve().parents[1]
PARTS = 2
TZ = ZoneInfo("Asia/Shanghai")


def settings_text(
    database_url: str, *, contacts: int, journal: Path, send_delay: float, lease: float = 3.0
) -> str:
    return f"""
database_url = "{database_url}"
log_level = "INFO"

[sandbox]
autoplay = false
extra_contacts = {contacts}
journal = "{journal}"
send_delay = {send_delay}

[delivery]
quiet_hours = "00:00-00:00"   # equal ends: no quiet hours, whatever time CI runs
min_interval = 0
jitter = 0
hourly_cap = 1000000
daily_cap = 1000000
lease = {lease}

[tiers]
mirror_to_wechat = false

[sop]
lifecycle_interval = 2   # retries of what a fault held up come quickly
"""


def campaign_files(at: datetime) -> dict[str, str]:
    """An SOP that was due two minutes ago and catches up within two hours."""
    local = at.astimezone(TZ)
    return {
        "sop/campaign.yaml": f"""
            id: campaign
            name: 双12预告
            on_missed: catch_up
            grace: 2h
            steps:
              - id: teaser
                daily: "{local:%H:%M}"
                template: teaser
        """,
        "templates/default/teaser.j2": """
            {{ contact.display_name }}，双12 会员专享 8 折
            ---
            [链接] 双12 会场 | https://shop.example.com/1212 | 会员价提前看
        """,
    }


@dataclass
class Campaign:
    """One project folder per daemon process (they share the database and the journal)."""

    folders: list[Path]
    database_url: str
    journal: Path
    contacts: int
    at: datetime

    @classmethod
    def create(
        cls, root: Path, database_url: str, *, daemons: int = 1, contacts: int = 400, send_delay: float = 0.01
    ) -> Campaign:
        journal = root / "wechat-server.jsonl"
        at = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
        folders = []
        for index in range(daemons):
            folder = root / f"daemon-{index}"
            write_project(
                folder, settings_text(database_url, contacts=contacts, journal=journal, send_delay=send_delay)
            )
            for name, text in campaign_files(at).items():
                path = folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
            folders.append(folder)
        return cls(folders, database_url, journal, contacts, at)

    @property
    def recipients(self) -> int:
        """The synthetic contacts and the sandbox's demo people: everyone gets the campaign."""
        return self.contacts + len(PERSONAS)

    def prepare(self, database: Database) -> None:
        """A first run stores the contacts; then yesterday's occurrence goes in the ledger, so
        today's, two minutes overdue, is caught up by the next start."""
        first = self.start(0)
        try:
            wait_for_progress(
                lambda: contact_count(database),
                lambda n: n >= self.recipients,
                what="the contacts to be synced",
            )
        finally:
            assert stop_process(first, signal.SIGINT) == 0
        self.seed_ledger(database)

    def seed_ledger(self, database: Database) -> None:
        """Yesterday's occurrence ran: today's, two minutes overdue, is caught up at start."""
        yesterday = (self.at - timedelta(days=1)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
        with database.session() as session:
            session.execute(
                insert(SopRun),
                [{"sop_id": "campaign", "step_id": "teaser", "occurrence": yesterday, "decision": "ran",
                  "planned": 0, "decided_at": self.at, "finished_at": self.at, "attempts": 1}],
            )  # fmt: skip

    def start(self, index: int = 0) -> subprocess.Popen[bytes]:
        folder = self.folders[index]
        with (folder / "daemon.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "bot", "run"], cwd=folder, env=env(),
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip

    def log_text(self) -> str:
        return "".join(
            (f / "daemon.log").read_text(encoding="utf-8")
            for f in self.folders
            if (f / "daemon.log").exists()
        )


def env() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SOPBOT_")}
    environment["PYTHONPATH"] = str(REPO) + os.pathsep + environment.get("PYTHONPATH", "")
    return environment


def contact_count(database: Database) -> int:
    try:
        with database.session(read_only=True) as session:
            return int(session.execute(select(func.count()).select_from(Contact)).scalar_one())
    except Exception:  # the database is being created
        return 0


def state_counts(database: Database) -> Counter[str]:
    try:
        with database.session(read_only=True) as session:
            rows = session.execute(
                select(OutboxMessage.state, func.count())
                .where(OutboxMessage.sop_id == "campaign")
                .group_by(OutboxMessage.state)
            ).all()
    except Exception:  # the database is being created, or locked by the fault itself
        return Counter()
    return Counter(dict(rows))


def settled(counts: Counter[str], total: int) -> bool:
    return sum(counts.values()) == total and counts["planned"] == 0 and counts["sending"] == 0


def journal_refs(journal: Path) -> list[str]:
    if not journal.exists():
        return []
    lines = journal.read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["ref"] for line in lines if line.strip() and line.endswith("}")]


def check_exactly_once(campaign: Campaign, database: Database) -> dict[str, int]:
    """Every (recipient, part) reached WeChat at most once; every row is `sent` with every
    part delivered, or says why not. Returns the states."""
    refs = journal_refs(campaign.journal)
    twice = [ref for ref, count in Counter(refs).items() if count > 1]
    assert twice == [], f"sent twice: {twice[:5]}"
    delivered = set(refs)
    with database.session(read_only=True) as session:
        rows = session.execute(
            select(OutboxMessage.key, OutboxMessage.state, OutboxMessage.reason).where(
                OutboxMessage.sop_id == "campaign"
            )
        ).all()
    assert len(rows) == campaign.recipients, f"{len(rows)} rows planned for {campaign.recipients} recipients"
    states: Counter[str] = Counter()
    for key, state, reason in rows:
        states[state] += 1
        parts = {f"{key}#{i}" for i in range(PARTS)}
        if state == "sent":
            assert parts <= delivered, f"{key} is sent but WeChat got only {sorted(parts & delivered)}"
        else:
            assert state in {"unknown", "skipped", "failed"} and reason, f"{key}: {state} without a reason"
    orphans = {ref.rpartition("#")[0] for ref in delivered} - {key for key, _, _ in rows}
    assert orphans == set(), f"WeChat got messages no row stands for: {sorted(orphans)[:5]}"
    return dict(states)
