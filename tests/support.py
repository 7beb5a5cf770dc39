"""Test helpers shared by the suites: databases on both backends and the testbot."""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text

from bot.clock import FrozenClock
from bot.config.settings import Settings, load_settings
from bot.daemon import Daemon
from bot.delivery.worker import DeliveryWorker
from bot.events import ContactEventRecorded
from bot.store import Database
from bot.store import directory as d
from bot.store.migrate import upgrade
from bot.wechat.sandbox import SandboxTransport, SentRecord
from bot.wechat.types import ContactInfo, Message
from tests.waiting import PATIENCE

T = TypeVar("T")

POSTGRES_URL = os.environ.get("SOPBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


def postgres_reason() -> str | None:
    """None when the PostgreSQL test server answers, else why not."""
    try:
        probe = Database(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with probe.engine.connect() as connection:
            connection.execute(text("select 1"))
        probe.dispose()
    except Exception as error:  # any failure means: no server for the tests
        detail = f"{type(error).__name__}: {str(error).strip()[:120]}"
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({detail})"
    return None


@contextmanager
def postgres_database() -> Iterator[Database]:
    """A fresh, migrated schema on the PostgreSQL test server, dropped afterwards."""
    schema = f"sopbot_test_{uuid.uuid4().hex[:12]}"
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    database = Database(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(database)
        yield database
    finally:
        database.dispose()
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def sqlite_database(folder: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{folder / 'sopbot.db'}")
    upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


def write_project(folder: Path, settings_text: str = "") -> Path:
    """A project folder with a settings.toml; returns the settings path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "settings.toml"
    path.write_text(settings_text, encoding="utf-8")
    return path


class TestBot:
    """The bot with a sandbox WeChat, a temporary database and a frozen clock, driven from
    synchronous test code: `bot.say("wxid_x", "多少钱")`, then look at `bot.sent()`.

    The daemon's event loop runs in a background thread, as in production, so transports
    with background tasks (gRPC streams) behave as they do for real."""

    __test__ = False

    def __init__(
        self,
        settings: Settings,
        database: Database,
        clock: FrozenClock,
        transport: SandboxTransport | None = None,
    ) -> None:
        self.settings = settings
        self.database = database
        self.clock = clock
        self.transport = transport or SandboxTransport("main", clock=clock, seed=settings.sandbox.seed)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="testbot-loop", daemon=True)
        self._thread.start()
        self.daemon = Daemon(
            settings,
            database=database,
            clock=clock,
            transports={"main": self.transport},
            autoplay=False,
            background=False,
        )

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = PATIENCE) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def start(self) -> TestBot:
        self.run(self.daemon.start())
        self.settle()  # the login and its contact sync
        return self

    def close(self) -> None:
        try:
            self.run(self.daemon.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    # -- conversation -----------------------------------------------------------------

    def say(self, wxid: str, text: str, *, room: str | None = None) -> Message:
        message = self.run(self.transport.say(wxid, text, room=room))
        self.settle()
        return message

    def request_friend(self, wxid: str, name: str, hello: str = "") -> str:
        request = self.run(self.transport.request_friend(wxid, name, hello))
        self.settle()
        return request

    def invite(self, room: str, invitees: list[ContactInfo], inviter: str | None) -> None:
        self.run(self.transport.invite(room, invitees, inviter))
        self.settle()

    def settle(self) -> None:
        """Wait until every account's pipeline has handled everything queued (the events it
        fed itself included), as the daemon would before the next event."""

        async def drained() -> None:
            for runtime in self.daemon.accounts.values():
                await runtime.pipeline.drained()

        self.run(drained())

    def publish(self, events: Sequence[ContactEventRecorded]) -> None:
        """Contact events committed outside a pipeline (an order from the webhook, say)."""

        async def publish() -> None:
            self.daemon.context.publish(events)

        self.run(publish())
        self.settle()

    def sent(self) -> list[SentRecord]:
        return list(self.transport.sent)

    @property
    def worker(self) -> DeliveryWorker:
        return self.daemon.services.delivery

    def deliver(self, *, max_wait: timedelta = timedelta(hours=1)) -> list[SentRecord]:
        """Let the delivery worker send everything that is due, moving the frozen clock
        forward through pacing waits (up to `max_wait` in all); returns what was sent."""
        before = len(self.transport.sent)
        waited = timedelta()
        while True:
            result = self.run(self.worker.step("main"))
            if result.paced and waited < max_wait:
                step = timedelta(seconds=result.wait)
                self.clock.advance(step)
                waited += step
                continue
            active = result.active
            if result.paused and not active:
                break
            if not active:
                due = self._next_planned()
                if due is None or due <= self.clock.now() or due - self.clock.now() > max_wait - waited:
                    break  # nothing planned, or only rows held back (a paused account, a braked SOP)
                waited += due - self.clock.now()
                self.clock.set(due)
        return self.transport.sent[before:]

    def _next_planned(self) -> datetime | None:
        from sqlalchemy import func, select

        from bot.store.models import OutboxMessage

        with self.database.session(read_only=True) as session:
            return session.execute(
                select(func.min(OutboxMessage.not_before)).where(OutboxMessage.state == "planned")
            ).scalar()

    # -- what the bot knows -------------------------------------------------------------

    def contacts(self) -> list[d.ContactRow]:
        with self.database.session(read_only=True) as session:
            return d.list_contacts(session)

    def contact(self, wxid: str) -> d.ContactRow:
        for row in self.contacts():
            if row.wxid == wxid:
                return row
        raise KeyError(wxid)


def make_settings(folder: Path, text: str = "") -> Settings:
    """Settings from `text`; the testbot's daemons serve no /metrics and no console unless
    `text` asks (many run one after another, some beside a `sopbot run` that has the port)."""
    if "[monitor]" not in text:
        text = text.rstrip("\n") + "\n\n[monitor]\nenabled = false\n"
    if "[console]" not in text:
        text = text.rstrip("\n") + "\n\n[console]\nenabled = false\n"
    return load_settings(write_project(folder, text))


def plan(
    database: Database,
    contact_ids: list[int],
    *,
    at: datetime = T0,
    sop: str = "daily",
    step: str = "pick",
    occurrence: str = "2026-11-24T10:00",
    text: str = "今日精选：羊绒围巾",
    parts: list[Any] | None = None,
    **fields: Any,
) -> int:
    """Plan one SOP message per contact in the outbox; returns how many rows were new."""
    from bot.delivery.outbox import PlannedMessage, enqueue, recipient_ref, sop_key
    from bot.policies import Origin
    from bot.wechat.types import Text

    messages = [
        PlannedMessage(
            key=sop_key(sop, step, occurrence, recipient_ref(contact_id=cid)),
            account_id="main",
            origin=Origin.SOP,
            parts=parts or [Text(text)],
            not_before=at,
            contact_id=cid,
            sop_id=sop,
            step_id=step,
            occurrence=occurrence,
            **fields,
        )
        for cid in contact_ids
    ]
    with database.session() as session:
        return enqueue(session, messages, at)


def outbox_rows(database: Database) -> list[Any]:
    from sqlalchemy import select

    from bot.store.models import OutboxMessage

    with database.session(read_only=True) as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())
