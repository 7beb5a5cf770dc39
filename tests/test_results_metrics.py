"""Results: a scripted week written straight into a real database gives exactly the figures
computed by hand below, for every metric of the report (docs/metrics.md); the rollups kept
up to date as rows arrive equal a rebuild from the raw tables; attribution windows are
inclusive at their far end.

The week: 2026-11-10 (Tue) … 2026-11-16 (Mon), Asia/Shanghai; the report is made on
2026-11-20, so the end of the period is reconstructed from the history since.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.config.settings import Settings
from bot.results import rollups
from bot.results.compute import build_report, make_report
from bot.results.model import Period, Ratio, Report, StepOutcome, TierMove
from bot.store import Database
from bot.store.models import (
    Account,
    Contact,
    ContactEvent,
    ContactTag,
    DailyRollup,
    InboundMessage,
    Order,
    OrderTouch,
    OutboxMessage,
    Referral,
    Room,
    RoomMember,
    SopRun,
    Tag,
    TierChange,
)
from bot.store.upsert import insert_for
from tests.support import postgres_database, sqlite_database

SH = ZoneInfo("Asia/Shanghai")
WEEK = Period(date(2026, 11, 10), date(2026, 11, 16), "2026-W46")
BEFORE = Period(date(2026, 11, 3), date(2026, 11, 9), "2026-W45")
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=SH)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in November 2026."""
    return datetime(2026, 11, day, hour, minute, tzinfo=SH)


class History:
    """Rows written as the bot's parts would have written them (ids given, so that the
    expectations below can name them)."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._ids: dict[str, int] = {}

    def rows(self, model: Any, *rows: dict[str, Any]) -> None:
        table: Any = model.__table__
        with self.database.session() as session:
            for row in rows:
                session.execute(insert_for(session, table).values(**row))

    def next_id(self, name: str) -> int:
        self._ids[name] = self._ids.get(name, 0) + 1
        return self._ids[name]

    def account(self, account_id: str) -> None:
        self.rows(Account, {"id": account_id, "name": account_id})

    def contact(self, cid: int, *, account: str = "main", tier: str = "basic", **fields: Any) -> None:
        values = {
            "id": cid,
            "account_id": account,
            "wxid": f"wxid_{cid}",
            "name": f"客户{cid}",
            "is_friend": True,
            "blocked": False,
            "opted_out": False,
            "tier": tier,
        } | fields
        self.rows(Contact, values)

    def event(
        self, cid: int, kind: str, when: datetime, detail: str | None = None, ref: str | None = None
    ) -> None:
        self.rows(
            ContactEvent,
            {
                "id": self.next_id("event"),
                "contact_id": cid,
                "kind": kind,
                "at": when,
                "detail": detail,
                "ref": ref,
            },
        )

    def send(
        self,
        row_id: int,
        *,
        to: int | None = None,
        room: int | None = None,
        sop: str | None = "daily_pick",
        step: str | None = "morning",
        planned: datetime,
        state: str = "sent",
        sent: datetime | None = None,
        reason: str | None = None,
        category: str = "marketing",
        account: str = "main",
    ) -> None:
        self.rows(
            OutboxMessage,
            {
                "id": row_id,
                "key": f"k{row_id}",
                "account_id": account,
                "origin": "sop" if sop else "reply",
                "sop_id": sop,
                "step_id": step,
                "contact_id": to,
                "room_id": room,
                "category": category,
                "state": state,
                "reason": reason,
                "created_at": planned,
                "not_before": planned,
                "sent_at": sent if state == "sent" else None,
                "updated_at": sent or planned,
            },
        )

    def set_sent(self, row_id: int, sent: datetime) -> None:
        with self.database.session() as session:
            session.execute(
                OutboxMessage.__table__.update()  # type: ignore[attr-defined]
                .where(OutboxMessage.__table__.c.id == row_id)  # type: ignore[attr-defined]
                .values(state="sent", sent_at=sent, updated_at=sent)
            )

    def message(
        self, cid: int, when: datetime, text: str, *, room: int | None = None, account: str = "main"
    ) -> None:
        mid = self.next_id("message")
        self.rows(
            InboundMessage,
            {
                "id": mid,
                "account_id": account,
                "transport_msg_id": f"m{mid}",
                "contact_id": cid,
                "room_id": room,
                "text": text,
                "sent_at": when,
                "received_at": when,
            },
        )

    def order(
        self,
        order_id: str,
        cid: int,
        when: datetime,
        cents: int,
        *,
        status: str = "paid",
        imported: datetime | None = None,
    ) -> None:
        self.rows(
            Order,
            {
                "order_id": order_id,
                "contact_id": cid,
                "amount_cents": cents,
                "status": status,
                "ordered_at": when,
                "imported_at": imported or when,
                "updated_at": imported or when,
                "account_id": "main",
            },
        )

    def tier(self, cid: int, source: str | None, target: str, when: datetime) -> None:
        self.rows(
            TierChange,
            {
                "id": self.next_id("tier"),
                "contact_id": cid,
                "from_tier": source,
                "to_tier": target,
                "changed_at": when,
            },
        )


def write_contacts_and_rooms(h: History) -> None:
    h.account("main")
    h.account("shop2")
    # C1…C7 friends before the week; C8, C9, C10 added in it; C11 after it
    h.contact(1, tier="customer", last_message_at=at(11, 11, 20))
    h.contact(2, tier="prospect", last_message_at=at(12, 9))
    h.contact(3, tier="prospect", blocked=True)  # deleted the account on 11-15
    h.contact(4, tier="prospect", opted_out=True, last_message_at=at(12, 12, 30))  # opted out on 11-18
    h.contact(5, tier="koc", last_message_at=at(12, 13))
    h.contact(6, tier="repeat", opted_out=True, last_message_at=at(9, 10))  # opted out on 11-12
    h.contact(7, tier="repeat")
    h.contact(8, tier="customer", last_message_at=at(14, 11))
    h.contact(9, is_friend=False)  # deleted the account on 11-13
    h.contact(10, last_message_at=at(15, 10))
    h.contact(11)
    h.contact(21, account="shop2", last_message_at=at(12, 10))
    h.rows(
        Room,
        {
            "id": 1,
            "account_id": "main",
            "room_wxid": "r1@chatroom",
            "topic": "【精英会员群】小美VIP",
            "group_type": "精英会员群",
        },
        {"id": 2, "account_id": "main", "room_wxid": "r2@chatroom", "topic": "旧群", "dissolved": True},
    )


def write_week(h: History, *, stage: int = 0) -> None:
    """The history; `stage` 1 writes what happened up to 2026-11-13 13:00, stage 2 the rest
    (with one message that was planned in stage 1 sent in stage 2), 0 everything."""
    first, second = stage in (0, 1), stage in (0, 2)
    if first:
        write_contacts_and_rooms(h)
        for cid in range(1, 7):
            h.event(cid, "friend_added", at(1, 9), "sync")
        h.event(21, "friend_added", at(1, 9), "sync")
        h.event(7, "friend_added", at(5, 9), "hello, I am seven")  # an older event: the greeting
        h.event(4, "tag_added", at(1, 9), "新品关注")
        h.event(5, "tag_added", at(1, 9), "新品关注")
        h.event(8, "friend_added", at(11, 10), "request")
        h.event(1, "tag_added", at(11, 11), "价格敏感")
        h.event(9, "friend_added", at(12, 10), "referral")
        h.event(2, "tag_added", at(12, 9), "价格敏感")
        h.event(6, "opted_out", at(12, 9))
        h.event(9, "friend_deleted", at(13, 12), "send_refused")

        h.send(1, to=1, sop="member_day", step="notice", planned=at(8, 10), sent=at(8, 10))
        h.send(2, to=1, planned=at(11, 10), sent=at(11, 10, 1))
        h.send(3, to=2, planned=at(11, 10), sent=at(11, 10, 2))
        h.send(4, to=4, planned=at(11, 10), state="skipped", reason="contact daily cap 2 reached")
        h.send(5, to=5, planned=at(11, 10), state="skipped", reason="expired at 2026-11-11 12:00")
        h.send(6, to=6, planned=at(11, 10), state="failed", reason="transport error")
        h.send(7, to=7, planned=at(11, 10), state="unknown")
        h.send(8, to=1, sop=None, step=None, category="reply", planned=at(11, 11, 4), sent=at(11, 11, 5))
        h.send(9, to=9, planned=at(12, 10), sent=at(12, 10, 30))
        h.send(10, room=1, sop="group_pick", step="noon", planned=at(12, 12), sent=at(12, 12))
        h.send(11, to=8, planned=at(13, 10), state="planned")  # sent later (stage 2)

        h.message(6, at(9, 10), "hi")  # before the week
        h.message(1, at(11, 11), "这款多少钱？")  # a question; replies to send 2
        h.message(1, at(11, 11, 20), "好的")  # wrote back after the answer (send 8)
        h.message(2, at(12, 9), "在吗")  # a question nobody answered; replies to send 3
        h.message(4, at(12, 12, 30), "不错", room=1)  # replies to the group's send 10
        h.message(5, at(12, 13), "喜欢", room=1)
        h.message(21, at(12, 10), "你好", account="shop2")

        h.order("O5", 1, at(5, 12), 10000)
        h.order("O1", 1, at(12, 15), 19900)
        h.order("O3", 2, at(13, 9), 8800, status="refunded")

        h.tier(4, "basic", "prospect", at(2, 9))
        h.tier(1, "basic", "prospect", at(3, 9))
        h.tier(2, "basic", "prospect", at(12, 9))
        h.tier(1, "prospect", "customer", at(12, 15))

        h.rows(
            RoomMember,
            {"room_id": 1, "member_wxid": "wxid_4", "contact_id": 4, "joined_at": at(1, 9)},
            {"room_id": 1, "member_wxid": "wxid_5", "contact_id": 5, "joined_at": at(1, 9)},
            {
                "room_id": 1,
                "member_wxid": "wxid_6",
                "contact_id": 6,
                "joined_at": at(1, 9),
                "left_at": at(13, 10),
            },
            {
                "room_id": 1,
                "member_wxid": "wxid_2",
                "contact_id": 2,
                "joined_at": at(11, 8),
                "left_at": at(18, 9),
            },
            {"room_id": 1, "member_wxid": "wxid_x", "contact_id": None, "joined_at": None},
        )
        h.rows(
            Referral,
            {"id": 1, "referrer_id": 1, "referred_key": "wxid:wxid_8", "referred_id": 8, "via": "code"},
        )
        h.rows(
            SopRun,
            {"id": 1, "sop_id": "daily_pick", "step_id": "morning", "occurrence": "2026-11-08T10:00",
             "decision": "ran", "detail": "left out 1: 1 opted out", "decided_at": at(8, 10)},
            {"id": 2, "sop_id": "daily_pick", "step_id": "morning", "occurrence": "2026-11-11T10:00",
             "decision": "ran", "detail": "left out 2: 1 opted out, 1 blocked", "decided_at": at(11, 10)},
        )  # fmt: skip
    if second:
        h.set_sent(11, at(13, 10))
        h.message(8, at(14, 11), "谢谢")  # 25 h after send 11: not a reply
        h.event(10, "friend_added", at(14, 9), "group")
        h.rows(RoomMember, {"room_id": 1, "member_wxid": "wxid_10", "contact_id": 10, "joined_at": at(14, 8)})
        h.message(10, at(15, 10), "大家好", room=1)  # 70 h after the group's send: not a reply
        h.event(5, "tag_removed", at(14, 9), "新品关注")
        h.send(12, to=3, sop="welcome", step="hello", category="lifecycle", planned=at(15, 8), sent=at(15, 8))
        h.event(3, "friend_deleted", at(15, 20), "sync_missing")
        h.send(13, to=10, planned=at(16, 10), state="planned")  # never sent
        h.order("O4", 7, at(15, 12), 3000)
        h.order("O2", 8, at(16, 20), 5000)
        h.tier(7, "basic", "customer", at(15, 12))
        h.tier(8, "basic", "customer", at(16, 20))
        h.tier(7, "customer", "repeat", at(18, 9))
        h.event(11, "friend_added", at(18, 9), "request")
        h.event(8, "tag_added", at(18, 9), "羊绒")
        h.event(4, "opted_out", at(18, 9))
        h.order("O6", 5, at(18, 9), 2000)
    with h.database.session() as session:
        tags = {}
        for name in ("价格敏感", "新品关注", "羊绒", "已购会员"):
            tag_id = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one_or_none()
            if tag_id is None:
                session.add(Tag(name=name))
                session.flush()
                tag_id = session.execute(select(Tag.id).where(Tag.name == name)).scalar_one()
            tags[name] = tag_id
        carried = [(1, "价格敏感"), (2, "价格敏感"), (4, "新品关注"), (1, "已购会员")]
        if second:
            carried.append((8, "羊绒"))
        for cid, name in carried:
            if session.get(ContactTag, (cid, tags[name])) is None:
                session.add(ContactTag(contact_id=cid, tag_id=tags[name], source="rule"))
        if stage != 1:
            session.execute(
                ContactTag.__table__.delete().where(  # type: ignore[attr-defined]
                    ContactTag.__table__.c.contact_id == 5  # type: ignore[attr-defined]
                )
            )
        else:
            session.add(ContactTag(contact_id=5, tag_id=tags["新品关注"], source="rule"))


def results_settings(folder: Path) -> Settings:
    sop = folder / "sop"
    sop.mkdir(parents=True, exist_ok=True)
    (sop / "daily_pick.yaml").write_text(
        "id: daily_pick\nname: 每日好物\nsteps:\n  - id: morning\n    name: 上午好物推荐\n    daily: '10:00'\n",
        encoding="utf-8",
    )
    return Settings(
        accounts=[{"id": "main"}, {"id": "shop2"}], sop_dir=sop, base_dir=folder, timezone="Asia/Shanghai"
    )


@pytest.fixture
def week(tmp_path: Path) -> Iterator[tuple[Database, Settings]]:
    with sqlite_database(tmp_path) as database:
        write_week(History(database))
        yield database, results_settings(tmp_path)


def report_of(
    database: Database, settings: Settings, account: str | None = "main", period: Period = WEEK
) -> Report:
    return make_report(database, settings, period, account, now=NOW.astimezone(UTC), previous=BEFORE)


def step(report: Report, sop_id: str, step_id: str | None) -> StepOutcome:
    return next(s for s in report.sops if (s.sop_id, s.step_id) == (sop_id, step_id))


def r(n: float, d: float) -> Ratio:
    return Ratio(n, d)


def test_every_metric_of_a_scripted_week(week: tuple[Database, Settings]) -> None:
    database, settings = week
    report = report_of(database, settings)
    assert_the_week(report)


def assert_the_week(report: Report) -> None:
    assert report.accounts == ["main"]
    assert list(report.tier_names) == ["basic", "prospect", "customer", "repeat", "koc"]

    # 客群资产: 7 friends on 11-10 00:00; C8, C9, C10 added; C9, C3 deleted
    t = report.totals
    assert (t.assets_start, t.assets_end, t.added, t.deleted) == (7, 8, 3, 2)
    assert t.added_by_source == {"group": 1, "referral": 1, "request": 1}
    assert t.deleted_by_method == {"send_refused": 1, "sync_missing": 1}
    assert t.add_rate == r(3, 7)  # 加粉率 = added / assets at the start
    assert t.delete_rate == r(2, 10)  # 删粉率 = deleted / (assets at the start + added)
    # 互动率: C1, C2, C4, C5, C8, C10 of the 8 friends at the end wrote in the week (C6 before it)
    assert t.active == 6
    assert t.interaction_rate == r(6, 8)

    days = {p.day.day: p for p in report.days}
    assert [p.day for p in report.days] == [date(2026, 11, d) for d in range(10, 17)]
    assert {d: p.added for d, p in days.items() if p.added} == {11: 1, 12: 1, 14: 1}
    assert {d: p.deleted for d, p in days.items() if p.deleted} == {13: 1, 15: 1}
    assert {d: p.sent for d, p in days.items() if p.sent} == {11: 3, 12: 2, 13: 1, 15: 1}
    assert {d: p.replies for d, p in days.items() if p.replies} == {11: 2, 12: 3}
    assert {d: p.messages for d, p in days.items() if p.messages} == {11: 2, 12: 3, 14: 1, 15: 1}
    assert {d: (p.orders, p.amount_cents) for d, p in days.items() if p.orders} == {
        12: (1, 19900),
        15: (1, 3000),
        16: (1, 5000),
    }

    # tiers at the end (11-17 00:00): C7 was 已购 then (复购 only on 11-18)
    assert report.tiers_end == {"basic": 1, "prospect": 2, "customer": 3, "repeat": 1, "koc": 1}
    assert sum(report.tiers_end.values()) == t.assets_end
    # the friends at the end; C8 and C10, added in the week, start from the tier they came with
    assert report.migration == [
        TierMove("basic", "basic", 1),  # C10 (came 基础, no change)
        TierMove("basic", "prospect", 1),  # C2
        TierMove("basic", "customer", 2),  # C7; C8 (came 基础, 已购 on 11-16)
        TierMove("prospect", "prospect", 1),  # C4
        TierMove("prospect", "customer", 1),  # C1
        TierMove("repeat", "repeat", 1),  # C6
        TierMove("koc", "koc", 1),  # C5
    ]

    # tags at the end: 羊绒 came on 11-18; 新品关注 left C5 on 11-14; tier tags are not tags here
    assert report.tags_top == [("价格敏感", 2), ("新品关注", 1)]
    assert report.tag_days == {"价格敏感": [0, 1, 2, 2, 2, 2, 2], "新品关注": [2, 2, 2, 2, 1, 1, 1]}

    # SOP outcomes, by the day each message was planned
    assert [(s.sop_id, s.step_id) for s in report.sops] == [
        ("daily_pick", None),
        ("daily_pick", "morning"),
        ("group_pick", None),
        ("group_pick", "noon"),
        ("member_day", None),
        ("member_day", "notice"),
        ("welcome", None),
        ("welcome", "hello"),
    ]
    morning = step(report, "daily_pick", "morning")
    assert morning.name == "每日好物 / 上午好物推荐"
    assert step(report, "daily_pick", None).name == "每日好物"
    assert (morning.planned, morning.sent, morning.failed, morning.unknown, morning.pending) == (
        9,
        4,
        1,
        1,
        1,
    )
    assert morning.skipped == {"contact daily cap 2 reached": 1, "expired": 1}
    assert (morning.reached, morning.replied, morning.reply_rate) == (4, 2, r(2, 4))
    # C9 deleted 25.5 h after send 9: within 7 days, not within 24 h
    assert (morning.deleted_24h, morning.deleted_7d) == (0, 1)
    assert (morning.deletion_rate_24h, morning.deletion_rate_7d) == (r(0, 4), r(1, 4))
    # O1 (C1: send 1 of member_day on 11-08, then send 2) and O2 (C8: send 11); O4 untouched
    assert (morning.orders_last_touch, morning.amount_last_touch_cents) == (2, 24900)
    assert (morning.orders_first_touch, morning.amount_first_touch_cents) == (1, 5000)
    assert morning.left_out == {"opted out": 1, "blocked": 1}
    assert step(report, "daily_pick", None).planned == 9
    notice = step(report, "member_day", "notice")
    assert (notice.planned, notice.orders_last_touch, notice.orders_first_touch) == (0, 0, 1)
    assert notice.amount_first_touch_cents == 19900
    noon = step(report, "group_pick", "noon")
    assert (noon.sent, noon.reached, noon.replied, noon.reply_rate) == (1, 0, 1, r(1, 1))
    assert noon.deletion_rate_24h.value is None
    hello = step(report, "welcome", "hello")
    assert (hello.sent, hello.reached, hello.deleted_24h, hello.deleted_7d) == (1, 1, 1, 1)
    assert hello.deletion_rate_24h == r(1, 1)

    # groups: members at the end C4, C5, C10, C2 (left 11-18) and one stranger; C6 left
    assert len(report.groups) == 1  # the dissolved, empty group is left out
    group = report.groups[0]
    assert (group.topic, group.group_type) == ("【精英会员群】小美VIP", "精英会员群")
    assert (group.members, group.joins, group.leaves, group.speakers) == (5, 2, 1, 3)
    assert group.speak_share == r(3, 5)

    # orders by the buyer's tier now: O1 (C1 已购), O4 (C7 复购), O2 (C8 已购); O3 refunded
    assert [(o.tier, o.orders, o.amount_cents) for o in report.orders_by_tier] == [
        ("basic", 0, 0),
        ("prospect", 0, 0),
        ("customer", 2, 24900),
        ("repeat", 1, 3000),
        ("koc", 0, 0),
    ]

    s = report.success
    assert s.lead == r(2, 3)  # C8, C9, C10 came through a request, referral, group; C9 left
    assert s.service == r(1, 2)  # 「这款多少钱？」 answered in 4 min, then 「好的」; 「在吗」 never answered
    assert s.service_answered == r(1, 2)
    assert s.service_open == 0

    # 私域业绩: reachable at the end: 8 friends less C6 (opted out 11-12; C4 only on 11-18)
    p = report.performance
    assert p.reachable == 7
    assert p.reach_rate == r(3, 7)  # C1, C2, C8 got a marketing message in the week
    assert p.conversion_rate == r(2, 3)  # C1 (O1) and C8 (O2)
    assert p.average_order_cents == pytest.approx(12450)
    assert p.value_cents == pytest.approx(24900)
    assert s.conversion == p.conversion_rate
    before = report.previous_performance
    assert before is not None
    assert (before.reachable, before.reach_rate, before.conversion_rate) == (7, r(1, 7), r(0, 1))
    assert (before.average_order_cents, before.value_cents) == (0, 0)

    # CLV: C1 bought O5 + O1 and referred C8 (O2); O6 of C5 is after the week
    assert [
        (v.contact_id, v.lifetime_cents, v.period_cents, v.referred_cents, v.total_cents)
        for v in report.top_values
    ] == [
        (1, 29900, 19900, 5000, 34900),
        (8, 5000, 5000, 0, 5000),
        (7, 3000, 3000, 0, 3000),
    ]
    assert report.top_values[0].tier == "customer"
    assert report.windows == {
        "reply_hours": 24,
        "order_days": 7,
        "deletion_short_hours": 24,
        "deletion_long_days": 7,
        "service_minutes": 30,
    }


def test_every_account_together_and_the_period_up_to_now(week: tuple[Database, Settings]) -> None:
    database, settings = week
    together = report_of(database, settings, None)
    assert together.accounts == ["main", "shop2"]
    assert (together.totals.assets_start, together.totals.assets_end) == (8, 9)
    assert together.totals.active == 7  # and the shop2 friend who wrote on 11-12
    assert next(p for p in together.days if p.day == date(2026, 11, 12)).messages == 4
    only_shop2 = report_of(database, settings, "shop2")
    assert (only_shop2.totals.assets_end, only_shop2.totals.active, only_shop2.sops) == (1, 1, [])

    # a period that ends today reads the contacts as they are now
    now_period = Period(date(2026, 11, 17), date(2026, 11, 20), "2026-11-17..2026-11-20")
    current = report_of(database, settings, "main", now_period)
    assert (current.totals.assets_start, current.totals.assets_end, current.totals.added) == (8, 9, 1)
    assert current.tiers_end == {"basic": 2, "prospect": 2, "customer": 2, "repeat": 2, "koc": 1}
    assert TierMove("customer", "repeat", 1) in current.migration
    assert current.performance.reachable == 7  # 9 friends less C4 and C6, opted out
    assert current.tags_top == [("价格敏感", 2), ("新品关注", 1), ("羊绒", 1)]
    assert report_of(database, settings).to_dict()["totals"]["add_rate"]["value"] == pytest.approx(3 / 7)


def dump(database: Database) -> tuple[list[Any], list[Any]]:
    with database.session(read_only=True) as session:
        counters = sorted(
            tuple(row)
            for row in session.execute(
                select(
                    DailyRollup.account_id,
                    DailyRollup.day,
                    DailyRollup.metric,
                    DailyRollup.key,
                    DailyRollup.value,
                )
            )
        )
        touches = sorted(tuple(row) for row in session.execute(select(*OrderTouch.__table__.columns)))  # type: ignore[attr-defined]
    return counters, touches


def test_rollups_kept_up_to_date_equal_a_rebuild(tmp_path: Path) -> None:
    settings = results_settings(tmp_path)
    with sqlite_database(tmp_path) as database:
        history = History(database)
        write_week(history, stage=1)
        first = rollups.update(database, settings, now=at(13, 13).astimezone(UTC), batch=3)
        assert first["outbox"] and first["inbound"] and first["events"]
        # 1:1 messages are decided once the service and reply windows after them have passed
        assert first["service"] == 5
        write_week(history, stage=2)
        rollups.update(database, settings, now=NOW.astimezone(UTC), batch=3)
        again = rollups.update(database, settings, now=NOW.astimezone(UTC), batch=3)
        assert sum(again.values()) == 0
        kept = dump(database)
        rollups.rebuild(database, settings, now=NOW.astimezone(UTC))
        assert dump(database) == kept
        with database.session(read_only=True) as session:
            assert_the_week(
                build_report(session, settings, WEEK, "main", now=NOW.astimezone(UTC), previous=BEFORE)
            )


def test_a_changed_window_counts_everything_again(tmp_path: Path) -> None:
    settings = results_settings(tmp_path)
    with sqlite_database(tmp_path) as database:
        write_week(History(database))
        assert step(report_of(database, settings), "daily_pick", "morning").replied == 2
        shorter = settings.model_copy(
            update={"results": settings.results.model_copy(update={"reply_window": "1h"})}
        )
        # C1 wrote 59 min after send 2; C2 23 h after send 3: no reply within an hour
        assert step(report_of(database, shorter), "daily_pick", "morning").replied == 1
        kept = dump(database)
        rollups.rebuild(database, shorter, now=NOW.astimezone(UTC))
        assert dump(database) == kept


def test_a_report_before_the_questions_are_decided_counts_them_as_open(tmp_path: Path) -> None:
    settings = results_settings(tmp_path)
    with sqlite_database(tmp_path) as database:
        write_week(History(database))
        early = at(12, 10).astimezone(UTC)
        report = make_report(
            database, settings, Period(date(2026, 11, 11), date(2026, 11, 12), "x"), "main", now=early
        )
        assert report.success.service == Ratio(0, 0)
        assert report.success.service_open == 2


# -- attribution at the edges of its windows ---------------------------------------------------


def edge_history(database: Database) -> None:
    h = History(database)
    h.account("main")
    for cid in (1, 2, 3, 4, 5):
        h.contact(cid)
    week_ago = at(10, 10)
    # C1: an order exactly 7 days after the message (inside); C2: 7 days and 1 second (outside)
    h.send(1, to=1, sop="a", step="s", planned=week_ago, sent=week_ago)
    h.send(2, to=2, sop="a", step="s", planned=week_ago, sent=week_ago)
    # C3: three messages; the order is attributed to the last (c) and first (b) within 7 days
    h.send(3, to=3, sop="old", step="s", planned=at(2, 10), sent=at(2, 10))  # 15 days before: outside
    h.send(4, to=3, sop="b", step="s", planned=at(12, 10), sent=at(12, 10))
    h.send(5, to=3, sop="c", step="s", planned=at(16, 10), sent=at(16, 10))
    h.send(6, to=3, sop="lifecycle", step="s", category="lifecycle", planned=at(16, 11), sent=at(16, 11))
    h.order("A", 1, week_ago + timedelta(days=7), 100)
    h.order("B", 2, week_ago + timedelta(days=7, seconds=1), 200)
    h.order("C", 3, at(17, 10), 300)
    # C4: replies exactly 24 h after (inside) and a deletion 24 h 1 s after the next message
    h.send(7, to=4, sop="d", step="s", planned=at(10, 10), sent=at(10, 10))
    h.message(4, at(11, 10), "好")
    h.send(8, to=4, sop="e", step="s", planned=at(12, 10), sent=at(12, 10))
    h.message(4, at(13, 10, 0) + timedelta(seconds=1), "晚了")
    h.event(4, "friend_deleted", at(13, 10) + timedelta(seconds=1), "transport")
    # C5 writes at the very second a message is sent to it: not a reply to it
    h.send(9, to=5, sop="f", step="s", planned=at(14, 10), sent=at(14, 10))
    h.message(5, at(14, 10), "同一秒")


def test_attribution_windows_are_inclusive_at_their_far_end(tmp_path: Path) -> None:
    settings = results_settings(tmp_path)
    with sqlite_database(tmp_path) as database:
        edge_history(database)
        rollups.update(database, settings, now=NOW.astimezone(UTC))
        with database.session(read_only=True) as session:
            touches = {
                t.order_id: (t.last_sop, t.first_sop) for t in session.execute(select(OrderTouch)).scalars()
            }
            counters = {
                (row.metric, row.key): row.value
                for row in session.execute(select(DailyRollup)).scalars()
                if row.metric.startswith("step_")
                and row.metric not in ("step_planned", "step_sent", "step_reached")
            }
    assert touches == {"A": ("a", "a"), "B": (None, None), "C": ("c", "b")}
    assert counters == {
        ("step_replied", "d\ts"): 1,  # exactly 24 h after send 7
        ("step_deleted_long", "e\ts"): 1,  # 24 h 1 s after send 8: the long window only
    }


def test_an_empty_database_reports_no_data_not_zero_percent(tmp_path: Path) -> None:
    settings = results_settings(tmp_path)
    with sqlite_database(tmp_path) as database:
        report = report_of(database, settings, None)
    assert (report.totals.assets_start, report.totals.assets_end, report.totals.active) == (0, 0, 0)
    assert report.totals.add_rate.value is None and report.success.service.value is None
    assert report.sops == [] and report.groups == [] and report.top_values == [] and report.migration == []
    assert report.performance.value_cents == 0 and report.performance.reach_rate.value is None
    assert [p.added for p in report.days] == [0] * 7


class Oracle:
    """Attribution said the slow way: every message before, filtered and sorted."""

    @staticmethod
    def last(sends: list[int], at_: int, window: int) -> int | None:
        inside = [s for s in sends if at_ - window <= s < at_]
        return max(inside) if inside else None

    @staticmethod
    def first(sends: list[int], at_: int, window: int) -> int | None:
        inside = [s for s in sends if at_ - window <= s < at_]
        return min(inside) if inside else None


@settings(max_examples=200, deadline=None)
@given(
    sends=st.lists(st.integers(0, 500), max_size=12, unique=True),
    moments=st.lists(st.integers(0, 600), min_size=1, max_size=8),
    window=st.integers(1, 200),
)
def test_the_timeline_finds_what_the_slow_way_finds(
    sends: list[int], moments: list[int], window: int
) -> None:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    timeline = rollups.Timeline()
    for i, s in enumerate(sends):
        timeline.add(("c", 1), base + timedelta(minutes=s), i, s)
    span = timedelta(minutes=window)
    for moment in moments:
        when = base + timedelta(minutes=moment)
        assert timeline.latest_before(("c", 1), when, span) == Oracle.last(sends, moment, window)
        assert timeline.earliest_in_window(("c", 1), when, span) == Oracle.first(sends, moment, window)
        after = [s for s in sends if moment < s <= moment + window]
        assert timeline.first_after(("c", 1), when, span) == (min(after) if after else None)


@pytest.mark.postgres
def test_the_scripted_week_on_postgresql(tmp_path: Path, postgres_available: None) -> None:
    settings = results_settings(tmp_path)
    with postgres_database() as database:
        write_week(History(database))
        assert_the_week(report_of(database, settings))
        kept = dump(database)
        rollups.rebuild(database, settings, now=NOW.astimezone(UTC))
        assert dump(database) == kept


@pytest.mark.postgres
def test_a_row_that_commits_after_a_higher_id_is_still_counted(
    tmp_path: Path, postgres_available: None
) -> None:
    """PostgreSQL hands out ids before the commit: message 3 may commit after 4 was read."""
    settings = results_settings(tmp_path)
    with postgres_database() as database:
        h = History(database)
        h.account("main")
        h.contact(1)
        for n in (1, 2):
            h.message(1, at(11, 10, n), "早")
        h.next_id("message")  # id 3: still in a transaction somewhere
        h.message(1, at(11, 10, 4), "早")
        rollups.update(database, settings, now=NOW.astimezone(UTC))
        h.rows(
            InboundMessage,
            {"id": 3, "account_id": "main", "transport_msg_id": "m3", "contact_id": 1, "text": "早",
             "sent_at": at(11, 10, 3), "received_at": at(11, 10, 3)},
        )  # fmt: skip
        rollups.update(database, settings, now=NOW.astimezone(UTC))
        with database.session(read_only=True) as session:
            counted = session.execute(
                select(DailyRollup.value).where(DailyRollup.metric == "messages")
            ).scalar_one()
        assert counted == 4
