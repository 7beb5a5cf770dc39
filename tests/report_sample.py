"""A hand-built report with known numbers, for the tests of how reports are shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.results.model import (
    ContactValue,
    DayPoint,
    GroupLine,
    Performance,
    Period,
    Ratio,
    Report,
    StepOutcome,
    SuccessRates,
    TierMove,
    TierOrders,
    Totals,
)

TIERS = {
    "basic": "基础用户",
    "prospect": "未购会员",
    "customer": "已购会员",
    "repeat": "复购会员",
    "koc": "品牌KOC",
}
ADDED = [2, 1, 0, 3, 1, 2, 1]  # 10 in the week
DELETED = [1, 0, 2, 0, 1, 0, 1]  # 5


def sample_report() -> Report:
    """2026-W48 for account main: 120 → 125 contacts, 10 added, 5 deleted, two SOPs."""
    start = date(2026, 11, 23)
    days = [
        DayPoint(
            day=start + timedelta(days=i),
            added=ADDED[i],
            deleted=DELETED[i],
            sent=100 + i,
            replies=3 + i,
            orders=1 if i in (1, 4, 5) else 0,
            amount_cents=19900 if i in (1, 4, 5) else 0,
            messages=10 + i,
        )
        for i in range(7)
    ]
    daily = StepOutcome(
        sop_id="daily_pick",
        step_id=None,
        name="每日精选",
        planned=700,
        sent=640,
        skipped={"quiet_hours": 20, "cap": 15},
        failed=5,
        unknown=2,
        reached=118,
        replied=24,
        reply_rate=Ratio(24, 118),
        orders_last_touch=3,
        amount_last_touch_cents=59700,
        orders_first_touch=2,
        amount_first_touch_cents=39800,
        deleted_24h=1,
        deleted_7d=3,
        deletion_rate_24h=Ratio(1, 118),
        left_out={"opted_out": 4},
        pending=18,  # 700 planned - 640 sent - 35 skipped - 5 failed - 2 unknown
        deletion_rate_7d=Ratio(3, 118),
    )
    return Report(
        period=Period(start, date(2026, 11, 29), "2026-W48"),
        account="main",
        accounts=["main"],
        generated_at=datetime(2026, 11, 30, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
        tier_names=dict(TIERS),
        totals=Totals(
            assets_start=120,
            assets_end=125,
            added=10,
            deleted=5,
            added_by_source={"request": 6, "group": 3, "referral": 1},
            deleted_by_method={"send_refused": 3, "sync_missing": 2},
            active=30,
            add_rate=Ratio(10, 120),
            delete_rate=Ratio(5, 120),
            interaction_rate=Ratio(30, 125),
        ),
        days=days,
        tiers_end={"basic": 60, "prospect": 35, "customer": 20, "repeat": 8, "koc": 2},
        migration=[
            TierMove("basic", "basic", 50),
            TierMove("basic", "prospect", 8),
            TierMove("prospect", "prospect", 30),
            TierMove("prospect", "customer", 3),
            TierMove("customer", "customer", 17),
            TierMove("customer", "repeat", 2),
            TierMove("repeat", "customer", 1),
            TierMove("repeat", "repeat", 6),
            TierMove("koc", "koc", 2),
        ],
        tags_top=[("活动喜好型", 40), ("宝妈", 12), ("价格敏感", 9)],
        sops=[
            daily,
            replace(daily, step_id="pick", name="早安精选"),
            StepOutcome(
                sop_id="welcome",
                step_id=None,
                name="新人欢迎",
                planned=10,
                sent=10,
                reached=10,
                replied=4,
                reply_rate=Ratio(4, 10),
            ),
        ],
        groups=[
            GroupLine(
                room_id=1,
                topic="宝妈交流群",
                group_type="vip",
                members=180,
                joins=12,
                leaves=3,
                speakers=45,
                speak_share=Ratio(45, 180),
            )
        ],
        orders_by_tier=[TierOrders("customer", 4, 79600), TierOrders("repeat", 2, 51800)],
        success=SuccessRates(
            lead=Ratio(9, 12),
            service=Ratio(18, 20),
            conversion=Ratio(3, 118),
            service_answered=Ratio(19, 20),
            service_open=2,
        ),
        performance=Performance(
            reachable=120,
            reach_rate=Ratio(118, 120),
            conversion_rate=Ratio(3, 118),
            average_order_cents=19900.0,
            value_cents=59700.0,
        ),
        previous_performance=Performance(
            reachable=110,
            reach_rate=Ratio(100, 110),
            conversion_rate=Ratio(2, 100),
            average_order_cents=19900.0,
            value_cents=39800.0,
        ),
        top_values=[ContactValue(7, "王芳", "koc", 128000, 19900, 30000)],
        windows={
            "reply_hours": 24.0,
            "order_days": 7.0,
            "deletion_short_hours": 24.0,
            "deletion_long_days": 7.0,
            "service_minutes": 30.0,
        },
        tag_days={
            "活动喜好型": [34, 35, 36, 37, 38, 39, 40],
            "宝妈": [10, 10, 11, 11, 12, 12, 12],
            "价格敏感": [9, 9, 9, 9, 9, 9, 9],
        },
    )


def empty_report() -> Report:
    """The same week with nothing in it: every section must still say so."""
    report = sample_report()
    zero = Ratio(0, 0)
    return replace(
        report,
        totals=Totals(assets_start=0, assets_end=0, added=0, deleted=0),
        days=[DayPoint(day=d.day) for d in report.days],
        tiers_end={},
        migration=[],
        tags_top=[],
        sops=[],
        groups=[],
        orders_by_tier=[],
        success=SuccessRates(zero, zero, zero),
        performance=Performance(0, zero, zero, 0.0, 0.0),
        previous_performance=None,
        top_values=[],
        windows={},
        tag_days={},
    )


def hostile_report() -> Report:
    """Names contacts and operators wrote that look like markup, formulas or terminal codes."""
    report = sample_report()
    script = "<script>alert(1)</script>"
    return replace(
        report,
        tags_top=[("<b>粗体</b>", 5), ("[bold red]红[/]", 3), ('=HYPERLINK("http://x")', 2)],
        tag_days={"<b>粗体</b>": [4, 4, 5, 5, 5, 5, 5], "</svg><script>alert(4)</script>": [1] * 7},
        groups=[replace(report.groups[0], topic="群</td><img src=x onerror=alert(2)>")],
        sops=[replace(s, name='早安"><svg onload=alert(3)>') for s in report.sops],
        top_values=[ContactValue(7, script, "koc", 128000, 19900, 30000)],
        tier_names={**report.tier_names, "koc": "KOC<i>"},
    )
