"""Engines and sessions for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import collections
import contextlib
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling issues a deferred BEGIN lazily; we take it over
    # so that write transactions start with BEGIN IMMEDIATE (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_on_begin(connection: Any) -> None:
    # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
    # writes fails with SQLITE_BUSY at once instead of waiting for busy_timeout.
    mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings sopbot relies on for each backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True, **kwargs)


class WriterTurns:
    """Write transactions of one process take turns: first come, first served, foreground
    writes before background ones."""

    def __init__(self) -> None:
        self._free = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._tickets = itertools.count()
        self._queues: dict[bool, collections.deque[int]] = {
            False: collections.deque(),
            True: collections.deque(),
        }

    def _my_turn(self, ticket: int, background: bool) -> bool:
        if self._owner is not None:
            return False
        if background and self._queues[False]:
            return False
        return self._queues[background][0] == ticket

    @contextmanager
    def turn(self, *, background: bool) -> Iterator[None]:
        me = threading.get_ident()
        with self._free:
            if self._owner == me:  # a write session inside another one, on the same thread
                self._depth += 1
            else:
                ticket = next(self._tickets)
                queue = self._queues[background]
                queue.append(ticket)
                try:
                    self._free.wait_for(lambda: self._my_turn(ticket, background))
                finally:
                    queue.remove(ticket)
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._free:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._free.notify_all()


class Database:
    """The bot's database: one engine, short sessions."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self._writer = WriterTurns() if self.dialect == "sqlite" else None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def session(self, *, read_only: bool = False, background: bool = False) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on an exception. A
        `background` write (a chunk of a fan-out, a delivery claim) lets waiting foreground
        writes (the pipeline's units of work) go first."""
        options = {"sqlite_begin": "DEFERRED"} if read_only else {}
        turn: Any = contextlib.nullcontext()
        if self._writer is not None and not read_only:
            turn = self._writer.turn(background=background)
        with (
            turn,
            self.engine.connect().execution_options(**options) as connection,
            Session(bind=connection, expire_on_commit=False) as session,
        ):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()
