"""Three daemons, six sandbox accounts, one PostgreSQL database: every account is held by
exactly one daemon; SIGKILL the daemon holding four of them and the other two take them
over; what reached WeChat (the shared sandbox journal) has no duplicate, and no account
ever sent two messages closer than `min_interval`, across the hand-over too."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from bot.store import Database
from bot.store.migrate import upgrade
from bot.store.models import AccountLease, OutboxMessage, SopRun
from tests.campaign import TZ, campaign_files, contact_count, env, settled, state_counts
from tests.support import POSTGRES_URL, write_project
from tests.test_delivery_crash import postgres_schema
from tests.waiting import stop_process, stop_processes, wait_for, wait_for_progress

ACCOUNTS = [f"a{n}" for n in range(1, 7)]
# the accounts each daemon may run: every account has two daemons that may run it
MAY_RUN = [["a1", "a2", "a3", "a4"], ["a3", "a4", "a5", "a6"], ["a1", "a2", "a5", "a6"]]
MIN_INTERVAL = 1.0
LEASE = 3.0
PERSONAS = 20  # each sandbox account's demo people: the campaign's recipients per account


def settings(url: str, journal: Path, run_accounts: list[str] | None) -> str:
    accounts = "".join(f'\n[[accounts]]\nid = "{a}"\n' for a in ACCOUNTS)
    allowed = f"run_accounts = {json.dumps(run_accounts)}\n" if run_accounts else ""
    return f"""database_url = "{url}"
{allowed}{accounts}
[sandbox]
autoplay = false
extra_contacts = 0
journal = "{journal}"
send_delay = 0.01

[delivery]
quiet_hours = "00:00-00:00"
min_interval = {MIN_INTERVAL}
jitter = 0
hourly_cap = 100000
daily_cap = 100000
contact_daily_cap = 100
lease = {LEASE}

[tiers]
mirror_to_wechat = false

[monitor]
enabled = false
"""


def project(folder: Path, url: str, journal: Path, run_accounts: list[str] | None, at: datetime) -> Path:
    write_project(folder, settings(url, journal, run_accounts))
    for name, text in campaign_files(at).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def start(folder: Path) -> subprocess.Popen[bytes]:
    with (folder / "daemon.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run"], cwd=folder, env=env(), stdout=subprocess.DEVNULL, stderr=log
        )


def holders(database: Database) -> dict[str, int]:
    """account → pid of the daemon whose lease on it has not run out."""
    now = datetime.now(UTC)
    try:
        with database.session(read_only=True) as session:
            rows = session.execute(
                select(AccountLease.account_id, AccountLease.pid, AccountLease.expires_at)
            ).all()
    except Exception:
        return {}
    return {account: pid for account, pid, expires in rows if expires > now}


def journal_entries(journal: Path) -> list[dict[str, object]]:
    """What WeChat got, from the sandbox journals (one file per account beside `journal`)."""
    entries = []
    for path in sorted(journal.parent.glob(f"{journal.stem}*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        entries += [entry for line in lines if line.endswith("}") and "ref" in (entry := json.loads(line))]
    return entries


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_available")
def test_three_daemons_six_accounts_a_sigkill_hands_over_with_no_duplicate_and_the_pace_kept(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "wechat-server.jsonl"
    at = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    with postgres_schema() as schema:
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        database = Database(url)
        try:
            upgrade(database)
            # a first run stores every account's contacts; yesterday's occurrence is in the
            # ledger, so today's (two minutes overdue) is caught up when the daemons start
            first = start(project(tmp_path / "sync", url, journal, None, at))
            wait_for_progress(
                lambda: contact_count(database), lambda n: n >= PERSONAS * len(ACCOUNTS), what="the contacts"
            )
            assert stop_process(first, signal.SIGINT) == 0
            yesterday = (at - timedelta(days=1)).astimezone(TZ).strftime("%Y-%m-%dT%H:%M")
            with database.session() as session:
                session.execute(
                    insert(SopRun),
                    [{"sop_id": "campaign", "step_id": "teaser", "occurrence": yesterday, "decision": "ran",
                      "planned": 0, "decided_at": at, "finished_at": at, "attempts": 1}],
                )  # fmt: skip

            folders = [project(tmp_path / f"d{i}", url, journal, MAY_RUN[i], at) for i in range(3)]
            daemons = [start(folders[0])]
            wait_for(lambda: set(holders(database)) >= set(MAY_RUN[0]), what="daemon 0 holding its four")
            daemons += [start(folders[1]), start(folders[2])]
            try:
                wait_for(lambda: set(holders(database)) == set(ACCOUNTS), what="every account held")
                held = holders(database)
                pids = {d.pid for d in daemons}
                assert set(held.values()) <= pids
                assert [a for a, pid in held.items() if pid == daemons[0].pid] == MAY_RUN[0]
                total = PERSONAS * len(ACCOUNTS)
                wait_for(lambda: len(journal_entries(journal)) >= 20, what="the campaign to start sending")
                assert not settled(state_counts(database), total), "the campaign ended before the kill"
                daemons[0].kill()  # SIGKILL: no clean stop, the leases run out
                killed_at, killed_wall = time.monotonic(), datetime.now(UTC)
                daemons[0].wait()
                survivors = {daemons[1].pid, daemons[2].pid}
                wait_for(
                    lambda: all(holders(database).get(a) in survivors for a in MAY_RUN[0]),
                    what="the survivors taking over daemon 0's accounts",
                )
                handed_over = time.monotonic() - killed_at
                wait_for_progress(
                    lambda: state_counts(database), lambda c: settled(c, total), what="the campaign to settle"
                )
            finally:
                assert stop_processes(daemons[1:], signal.SIGINT) == [0, 0]

            entries = journal_entries(journal)
            refs = [str(e["ref"]) for e in entries]
            assert len(refs) == len(set(refs)), "a part reached WeChat twice"
            with database.session(read_only=True) as session:
                rows = session.execute(
                    select(OutboxMessage.key, OutboxMessage.account_id, OutboxMessage.state).where(
                        OutboxMessage.sop_id == "campaign"
                    )
                ).all()
            assert len(rows) == total
            account_of = {key: account for key, account, _ in rows}
            first_part: dict[str, list[datetime]] = defaultdict(list)
            for entry in entries:
                key, _, part = str(entry["ref"]).rpartition("#")
                if part == "0":
                    first_part[account_of[key]].append(datetime.fromisoformat(str(entry["at"])))
            closest = min(
                (later - earlier).total_seconds()
                for times in first_part.values()
                for earlier, later in zip(sorted(times), sorted(times)[1:], strict=False)
            )
            assert closest >= MIN_INTERVAL - 0.05, f"two sends of one account {closest:.3f}s apart"
            before = [a for a in MAY_RUN[0] if any(t < killed_wall for t in first_part[a])]
            after = [a for a in MAY_RUN[0] if any(t > killed_wall for t in first_part[a])]
            assert before and after, f"the kill did not cut a campaign in two: {before} / {after}"
            states = {state for _, _, state in rows}
            assert states <= {"sent", "unknown"}, states
            print(
                f"\n6 accounts on 3 daemons; SIGKILL → daemon 0's 4 accounts held elsewhere after "
                f"{handed_over:.1f}s (lease {LEASE:.0f}s); {len(refs)} parts, no duplicate; closest two "
                f"sends of one account {closest:.2f}s (min_interval {MIN_INTERVAL:.0f}s); states {sorted(states)}"
            )
        finally:
            database.dispose()
