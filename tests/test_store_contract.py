"""The storage contract: the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from bot.config.settings import TierSettings
from bot.recorder import writes as w
from bot.signals import taglib
from bot.signals.tiers import TierPolicy, recompute
from bot.store import Database
from bot.store import directory as d
from bot.store.eventlog import EventLog
from bot.store.migrate import current_revision, head_revision, upgrade
from bot.store.models import (
    Contact,
    ContactEvent,
    ContactTag,
    InboundMessage,
    OutboxMessage,
    RoomMember,
    Tag,
    TierChange,
)
from bot.wechat.types import ContactInfo, Message, MessageKind, RoomInfo
from tests.support import sqlite_database

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FANG = ContactInfo(wxid="wxid_wang_fang", name="王芳", phone="13800000009")


def add_account(db: Database) -> None:
    with db.session() as s:
        d.ensure_account(s, "main", name="演示账号", transport="sandbox", now=NOW)


def test_schema_is_at_head_and_upgrade_is_idempotent(database: Database) -> None:
    assert current_revision(database) == head_revision()
    assert upgrade(database) == (head_revision(), head_revision())


def test_contact_upsert_keeps_one_row_and_refreshes_fields(database: Database) -> None:
    add_account(database)
    with database.session() as s:
        first = w.upsert_contact(s, "main", FANG, NOW)
    with database.session() as s:
        again = w.upsert_contact(
            s, "main", ContactInfo("wxid_wang_fang", "王芳🌸", alias="杭州王姐"), NOW + timedelta(hours=1)
        )
    assert first == again
    with database.session(read_only=True) as s:
        row = s.get(Contact, first)
        assert row is not None
        assert (row.name, row.alias, row.phone) == ("王芳🌸", "杭州王姐", "13800000009")
        assert row.first_seen_at == NOW  # first sight is not overwritten
        assert row.updated_at == NOW + timedelta(hours=1)


def test_a_room_member_view_never_downgrades_a_friend(database: Database) -> None:
    add_account(database)
    with database.session() as s:
        contact_id = w.upsert_contact(s, "main", FANG, NOW)
        w.upsert_contact(s, "main", ContactInfo("wxid_wang_fang", "王芳", is_friend=False), NOW)
    with database.session(read_only=True) as s:
        assert s.get(Contact, contact_id).is_friend is True


def test_timestamps_come_back_as_utc_whatever_zone_went_in(database: Database) -> None:
    add_account(database)
    shanghai = timezone(timedelta(hours=8))
    with database.session() as s:
        contact_id = w.upsert_contact(s, "main", FANG, datetime(2026, 11, 24, 10, 0, tzinfo=shanghai))
    with database.session(read_only=True) as s:
        assert s.get(Contact, contact_id).first_seen_at == NOW
        assert s.get(Contact, contact_id).first_seen_at.tzinfo == UTC


def test_naive_datetimes_are_refused(database: Database) -> None:
    add_account(database)
    with pytest.raises(Exception, match="timezone-aware"), database.session() as s:
        w.upsert_contact(s, "main", FANG, datetime(2026, 11, 24, 10, 0))


def test_an_inbound_message_is_stored_once(database: Database) -> None:
    add_account(database)
    room = RoomInfo("10002@chatroom", "【精英会员群】小美VIP会员专享", member_wxids=("wxid_wang_fang",))
    message = Message("m-1", FANG, MessageKind.TEXT, "上新了吗？", NOW, room=room)
    with database.session() as s:
        contact_id = w.upsert_contact(s, "main", FANG, NOW)
        room_id = w.upsert_room(s, "main", room, NOW)
        assert w.record_message(s, "main", message, contact_id, room_id, NOW) is not None
        assert w.record_message(s, "main", message, contact_id, room_id, NOW) is None
    with database.session(read_only=True) as s:
        stored = s.execute(select(InboundMessage)).scalars().all()
        assert [(m.text, m.room_id, m.kind) for m in stored] == [("上新了吗？", room_id, "text")]
        assert s.get(Contact, contact_id).last_message_at == NOW


def test_room_members_remember_inviter_and_leaving(database: Database) -> None:
    add_account(database)
    newcomer = ContactInfo("wxid_new_fang", "方琳", is_friend=False)
    room = RoomInfo("10001@chatroom", "基础客户群")
    with database.session() as s:
        room_id = w.upsert_room(s, "main", room, NOW)
        contact_id = w.upsert_contact(s, "main", newcomer, NOW)
        w.record_member(s, room_id, newcomer, contact_id, joined_at=NOW, inviter_wxid="wxid_wang_fang")
        w.record_member(s, room_id, newcomer, contact_id, joined_at=None)  # a later sync
        d.record_member_left(s, room_id, "wxid_new_fang", NOW + timedelta(days=2))
    with database.session(read_only=True) as s:
        member = s.get(RoomMember, (room_id, "wxid_new_fang"))
        assert (member.inviter_wxid, member.joined_at, member.left_at) == (
            "wxid_wang_fang",
            NOW,
            NOW + timedelta(days=2),
        )


def test_tags_keep_their_first_evidence_and_tiers_their_history(database: Database) -> None:
    # the one writer for tags and tiers records an event for every change, and only for a change
    add_account(database)
    policy = TierPolicy.from_settings(TierSettings())
    with database.session() as s:
        events = EventLog(s)
        contact_id = w.upsert_contact(s, "main", FANG, NOW)
        assert taglib.add_tag(
            s,
            events,
            contact_id,
            "新品关注型",
            source="rule",
            now=NOW,
            evidence="上新了吗？",
            evidence_ref="message:1",
        )
        assert not taglib.add_tag(
            s, events, contact_id, "新品关注型", source="rule", now=NOW, evidence="新款什么时候到"
        )
        taglib.add_tag(s, events, contact_id, "已购会员", source="wechat", now=NOW)
        assert [m.to_tier for m in recompute(s, policy, NOW, events, contact_ids=[contact_id])] == [
            "customer"
        ]
        assert recompute(s, policy, NOW, events, contact_ids=[contact_id]) == []
        taglib.add_tag(s, events, contact_id, "复购会员", source="wechat", now=NOW)
        recompute(s, policy, NOW + timedelta(days=3), events, contact_ids=[contact_id], trigger="订单 A2")
        events.flush()
        kinds = [(e.kind.value, e.detail) for e in events.events]
    assert kinds == [
        ("tag_added", "新品关注型"), ("tag_added", "已购会员"), ("tier_changed", "customer"),
        ("tag_added", "复购会员"), ("tier_changed", "repeat"),
    ]  # fmt: skip
    with database.session(read_only=True) as s:
        first = (
            s.execute(select(ContactTag).order_by(ContactTag.added_at, ContactTag.tag_id)).scalars().first()
        )
        assert (first.source, first.evidence, first.evidence_ref) == ("rule", "上新了吗？", "message:1")
        history = s.execute(select(TierChange).order_by(TierChange.id)).scalars().all()
        assert [(h.from_tier, h.to_tier) for h in history] == [("basic", "customer"), ("customer", "repeat")]
        assert history[1].cause.startswith("订单 A2：复购会员")
        stored = s.execute(select(ContactEvent.kind).order_by(ContactEvent.id)).scalars().all()
        assert stored == [kind for kind, _ in kinds]
    with database.session(read_only=True) as s:
        rows = d.list_contacts(s)
    assert [(r.name, r.tier, r.tags) for r in rows] == [
        ("王芳", "repeat", ("复购会员", "已购会员", "新品关注型"))
    ]


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.session() as s:
        s.add(ContactEvent(contact_id=999_999, kind="friend_added", at=NOW))


def test_outbox_key_is_unique(database: Database) -> None:
    add_account(database)
    row = {"account_id": "main", "origin": "sop", "key": "sop:daily:pick:2026-11-24T10:00:contact:1"}
    with database.session() as s:
        s.add(OutboxMessage(**row, created_at=NOW))
    with pytest.raises(IntegrityError), database.session() as s:
        s.add(OutboxMessage(**row, created_at=NOW))


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as database, database.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL


def test_migrations_build_exactly_the_models(database: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, SQLModel.metadata)
    # Alembic cannot compare an index with an expression (`priority DESC`): it reports it
    # as removed and added again, whatever the database has.
    real = [
        d
        for d in differences
        if not (d[0] in {"add_index", "remove_index"} and d[1].name == "ix_outbox_claim")
    ]
    assert real == []


def test_insert_new_counts_only_new_rows_and_keeps_types(database: Database) -> None:
    from bot.store.upsert import insert_new

    add_account(database)
    rows = [{"name": f"标签{n}", "category": "rule", "description": None} for n in range(3)]
    with database.session() as s:
        assert insert_new(s, Tag.__table__, rows, conflict=["name"]) == 3
        assert insert_new(s, Tag.__table__, [*rows, {"name": "新标签", "category": None, "description": "x"}],
                          conflict=["name"]) == 1  # fmt: skip
    with database.session(read_only=True) as s:
        assert sorted(s.execute(select(Tag.name)).scalars()) == ["新标签", "标签0", "标签1", "标签2"]
