"""Shared pieces for the signal, order, webhook, tier and contact tests (no tests here)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.events import ContactEventRecorded
from bot.signals.engine import SignalEngine
from bot.store import Database
from tests.support import TestBot, make_settings, sqlite_database

REPO = Path(__file__).resolve().parents[1]
HEADER = "订单号,微信ID,手机号,实付金额,订单状态,下单时间,商品名称,类目,数量,是否优惠,是否新品,推荐人\n"


def make_project(folder: Path, *, tags: str | None = None, settings_text: str = "") -> Settings:
    """A project with the shipped sop/tags.yaml (or `tags`) and the reply templates."""
    (folder / "sop").mkdir(parents=True, exist_ok=True)
    if tags is None:
        shutil.copy(REPO / "sop" / "tags.yaml", folder / "sop" / "tags.yaml")
    else:
        (folder / "sop" / "tags.yaml").write_text(tags, encoding="utf-8")
    templates = folder / "templates" / "default"
    templates.mkdir(parents=True, exist_ok=True)
    for template in (REPO / "templates" / "default").glob("reply_*.j2"):
        shutil.copy(template, templates)
    settings_text = f'database_url = "sqlite:///{folder / "sopbot.db"}"\n' + settings_text
    return make_settings(folder, settings_text)


class EventTap:
    """Collects the contact events the account's pipeline handled."""

    def __init__(self, bot: TestBot) -> None:
        self.events: list[ContactEventRecorded] = []
        bot.daemon.accounts["main"].pipeline.observe(self._on)

    def _on(self, event: object) -> None:
        if isinstance(event, ContactEventRecorded):
            self.events.append(event)

    def kinds(self, contact_id: int | None = None) -> list[tuple[str, str | None]]:
        return [(e.kind.value, e.detail) for e in self.events if contact_id in (None, e.contact_id)]


@contextmanager
def running_bot(
    folder: Path, clock: FrozenClock, settings_text: str = "", *, tags: str | None = None
) -> Iterator[TestBot]:
    """The testbot on a project with the shipped tag rules (or `tags`) and reply templates."""
    settings = make_project(folder, tags=tags, settings_text=settings_text)
    with sqlite_database(folder) as db:
        bot = TestBot(settings, db, clock).start()
        try:
            yield bot
        finally:
            bot.close()


def engine(settings: Settings, database: Database, clock: FrozenClock) -> SignalEngine:
    return SignalEngine(settings, database, clock)


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    from bot.cli.app import app

    result = CliRunner().invoke(app, ["-s", str(settings.base_dir / "settings.toml"), *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
