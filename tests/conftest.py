from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FrozenClock
from bot.store import Database
from tests.support import (
    IN_CI,
    T0,
    TestBot,
    make_settings,
    postgres_database,
    postgres_reason,
    sqlite_database,
)


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skips a test when no PostgreSQL server answers, except in CI, where that is a failure."""
    reason = postgres_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated database: every storage contract test runs on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        with sqlite_database(tmp_path) as db:
            yield db
    else:
        request.getfixturevalue("postgres_available")
        with postgres_database() as db:
            yield db


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(T0)


@pytest.fixture
def testbot(tmp_path: Path, clock: FrozenClock) -> Iterator[TestBot]:
    """The bot on the sandbox WeChat with a temporary SQLite database and a frozen clock."""
    settings = make_settings(tmp_path / "project")
    with sqlite_database(tmp_path) as db:
        bot = TestBot(settings, db, clock).start()
        try:
            yield bot
        finally:
            bot.close()


# -- the wechaty test gateway (Node) ------------------------------------------------------


@pytest.fixture(scope="session")
def gateway_available() -> None:
    """Skips when Node is missing, except in CI, where that is a failure; installs the
    gateway's npm packages when they are missing."""
    from tests.gateway.harness import ensure_installed, node_reason

    reason = node_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI must run the gateway tests: {reason}")
        pytest.skip(reason)
    ensure_installed()


@pytest.fixture(scope="session")
def gateway(gateway_available: None) -> Iterator[Any]:
    """One wechaty puppet-service gateway (mock puppet) for the session, on free ports with
    a per-run token. Tests that kill or restart a gateway start their own."""
    from tests.gateway.harness import Gateway

    running = Gateway().start()
    try:
        yield running
    finally:
        running.terminate()
