"""Three daemons, six sandbox accounts, one PostgreSQL database: every account is held by
exactly one daemon; SIGKILL the daemon holding four of them and the other two take them
over; what reached WeChat (the shared sandbox journal) has no duplicate, and no account
ever sent two messages closer than `min_interval`, across the hand-over too."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from sqlalchemy import insert, select, update

from bot.store import Database
from bot.store.migrate import upgrade
from bot.store.models import Account, AccountLease, OutboxMessage, SopRun
from tests.campaign import TZ, Campaign, campaign_files, contact_count, env, settled, state_counts
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


def statuses(database: Database, accounts: list[str]) -> dict[str, str]:
    """What the holders last wrote of each account's connection (`sopbot status` shows it)."""
    with database.session(read_only=True) as session:
        rows = session.execute(select(Account.id, Account.status).where(Account.id.in_(accounts))).all()
    return dict(rows)


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
                with (
                    database.session() as session
                ):  # what daemon 0 wrote is stale now: only a new holder says online
                    session.execute(
                        update(Account).where(Account.id.in_(MAY_RUN[0])).values(status="offline")
                    )
                survivors = {daemons[1].pid, daemons[2].pid}
                wait_for(
                    lambda: all(holders(database).get(a) in survivors for a in MAY_RUN[0]),
                    what="the survivors taking over daemon 0's accounts",
                )
                wait_for(
                    lambda: all(status == "online" for status in statuses(database, MAY_RUN[0]).values()),
                    what="daemon 0's accounts online on their new daemons",
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
                f"\n6 accounts on 3 daemons; SIGKILL → daemon 0's 4 accounts online elsewhere after "
                f"{handed_over:.1f}s (lease {LEASE:.0f}s); {len(refs)} parts, no duplicate; closest two "
                f"sends of one account {closest:.2f}s (min_interval {MIN_INTERVAL:.0f}s); states {sorted(states)}"
            )
        finally:
            database.dispose()


class Proxy:
    """A TCP proxy in front of PostgreSQL that the test can cut: the daemon's only way to
    its database."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.cut_at: datetime | None = None
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while self.cut_at is None:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_at is not None:
                client.close()
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Every connection dropped, no new one accepted."""
        self.cut_at = datetime.now(UTC)
        self.listener.close()
        for connection in self.sockets:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_available")
def test_a_daemon_cut_off_from_its_database_stops_sending_within_its_lease(tmp_path: Path) -> None:
    parsed = urlsplit(POSTGRES_URL)
    proxy = Proxy((parsed.hostname or "127.0.0.1", parsed.port or 5432))
    with postgres_schema() as schema:
        direct = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        through_proxy = urlunsplit(parsed._replace(netloc=f"{parsed.username}@127.0.0.1:{proxy.port}"))
        campaign = Campaign.create(
            tmp_path, f"{through_proxy}?options=-csearch_path%3D{schema}", contacts=300, send_delay=0.02
        )
        database = Database(direct)
        try:
            upgrade(database)
            campaign.prepare(database)
            daemon = campaign.start()
            try:
                wait_for(lambda: len(journal_entries(campaign.journal)) >= 40, what="the campaign sending")
                proxy.cut()
                cut_at = proxy.cut_at
                assert cut_at is not None
                sent_before = len(journal_entries(campaign.journal))
                assert sent_before < 2 * campaign.recipients, "the campaign ended before the cut"
                wait_for(
                    lambda: "could not renew the account leases" in campaign.log_text(),
                    what="the daemon failing to renew its lease",
                )
                deadline = cut_at + timedelta(seconds=LEASE)
                while datetime.now(UTC) < deadline + timedelta(seconds=2):
                    time.sleep(0.2)
                late = [
                    e
                    for e in journal_entries(campaign.journal)
                    if datetime.fromisoformat(str(e["at"])) > deadline
                ]
                assert late == [], f"{len(late)} parts sent after the lease ran out: {late[:3]}"
                assert daemon.poll() is None, "the daemon died instead of waiting for its database"
                print(f"\ncut after {sent_before} parts; none sent after the lease ({LEASE:.0f}s) ran out")
            finally:
                daemon.kill()
                daemon.wait()
        finally:
            database.dispose()
