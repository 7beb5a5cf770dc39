"""The digest (数据订阅): at `digest_at` the admins get yesterday's figures in WeChat, through
the outbox, once per period whatever restarts or second looks happen."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from bot.clock import FrozenClock
from bot.store.models import OutboxMessage
from tests.signals_kit import running_bot

ADMIN = "wxid_wang_fang"
MORNING = datetime(2026, 11, 24, 0, 55, tzinfo=UTC)  # Tuesday 08:55 in Shanghai


def digests(bot: object) -> list[OutboxMessage]:
    with bot.database.session(read_only=True) as session:  # type: ignore[attr-defined]
        query = select(OutboxMessage).where(OutboxMessage.key.like("digest:%")).order_by(OutboxMessage.id)
        return list(session.execute(query).scalars())


def test_the_daily_digest_goes_to_each_admin_once_at_its_time(tmp_path: Path) -> None:
    clock = FrozenClock(MORNING)
    settings = f'[delivery]\nadmins = ["{ADMIN}"]\n[results]\ndigest = "daily"\ndigest_at = "09:00"\n'
    with running_bot(tmp_path / "project", clock, settings) as bot:
        service = bot.daemon.services.digest
        assert service.send_due(clock.now()) == 0  # 08:55: not yet
        clock.advance(timedelta(minutes=10))
        assert service.send_due(clock.now()) == 1
        assert service.send_due(clock.now()) == 0  # a second look plans nothing twice
        (row,) = digests(bot)
        assert row.key.startswith("digest:main:2026-11-23:") and row.contact_id == bot.contact(ADMIN).id
        text = row.payload[0]["text"]
        lines = text.splitlines()
        assert lines[0] == "【sopbot 日报 2026-11-23】账号 main"
        assert lines[1].startswith("客群资产 ") and "删粉率" in lines[1]
        assert lines[-1].startswith("私域业绩 ¥") and "× 客单价" in lines[-1]
        sent = [record for record in bot.deliver() if record.target.wxid == ADMIN]
        assert [record.content.text for record in sent] == [text]  # through the outbox, for real


def test_the_weekly_digest_waits_for_monday_and_off_sends_nothing(tmp_path: Path) -> None:
    clock = FrozenClock(MORNING + timedelta(minutes=10))  # Tuesday 09:05
    settings = f'[delivery]\nadmins = ["{ADMIN}"]\n[results]\ndigest = "weekly"\n'
    with running_bot(tmp_path / "weekly", clock, settings) as bot:
        service = bot.daemon.services.digest
        assert service.send_due(clock.now()) == 0
        clock.advance(timedelta(days=6))  # Monday 09:05
        assert service.send_due(clock.now()) == 1
        assert digests(bot)[0].key.startswith("digest:main:2026-W48:")
    off = FrozenClock(MORNING + timedelta(minutes=10))
    with running_bot(tmp_path / "off", off, f'[delivery]\nadmins = ["{ADMIN}"]\n') as bot:
        assert bot.daemon.services.digest.send_due(off.now()) == 0
