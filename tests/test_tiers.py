"""Tiers: the ladders, the period, lapsing, the operator's floor, bulk recomputation and
purchase tags, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import FrozenClock
from bot.config.errors import ConfigError
from bot.config.settings import Settings, TierSettings
from bot.orders.model import OrderIn
from bot.recorder import writes as w
from bot.signals.engine import SignalEngine
from bot.signals.rules import TagsFile
from bot.signals.tiers import Facts, TierPolicy
from bot.store import Database
from bot.store import directory as d
from bot.store.models import Contact, ContactTag, Tag, TierChange
from bot.wechat.types import ContactInfo
from tests.support import make_settings

DEFAULT = TierPolicy.from_settings(TierSettings())


@pytest.mark.parametrize(
    ("facts", "tier"),
    [
        (Facts(), "basic"),
        (Facts(messages=1), "prospect"),
        (Facts(lifetime_orders=3), "prospect"),  # lapsed buyer
        (Facts(tags=frozenset({"会员"})), "prospect"),
        (Facts(orders=1, lifetime_orders=1), "customer"),
        (Facts(orders=2, lifetime_orders=2), "repeat"),
        (Facts(orders=1, lifetime_orders=1, referrals=3), "customer"),  # KOC needs repeat first
        (Facts(orders=2, lifetime_orders=2, referrals=1), "koc"),
        (Facts(manual_tags=frozenset({"品牌KOC"})), "koc"),  # the operator's own WeChat tag
    ],
)
def test_the_default_ladder(facts: Facts, tier: str) -> None:
    assert DEFAULT.decide(facts)[0] == tier


def test_the_aipl_ladder_and_thresholds_come_from_settings(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, '[tiers]\nladder = "aipl"\nperiod_days = 30\nrepeat_min_orders = 3\n')
    policy = TierPolicy.from_settings(settings.tiers)
    assert policy.ladder.ids == ("awareness", "interest", "purchase", "loyalty")
    assert policy.period == timedelta(days=30)
    assert policy.decide(Facts(orders=2, lifetime_orders=2))[0] == "purchase"
    assert policy.decide(Facts(orders=3, lifetime_orders=3)) == ("loyalty", "30天内已付款订单 3 笔")
    assert policy.decide(Facts(orders=1, lifetime_orders=1, referrals=1))[0] == "loyalty"


def test_a_ladder_of_ones_own(tmp_path: Path) -> None:
    text = (
        '[[tiers.levels]]\nid = "fan"\nname = "粉丝"\n'
        '[[tiers.levels]]\nid = "vip"\nname = "VIP"\nwhen = [{min_spent = 1000}]\n'
    )
    policy = TierPolicy.from_settings(make_settings(tmp_path, text).tiers)
    assert policy.decide(Facts(spent_cents=99_999))[0] == "fan"
    assert policy.decide(Facts(spent_cents=100_000)) == ("vip", "90天内消费 1000.00 元")


def test_bad_tier_settings_point_at_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(tmp_path, "[tiers]\nperiod_days = 90\nrepeat_min_orders = 1\n")
    assert "settings.toml:3: tiers.repeat_min_orders: Input should be greater than or equal to 2" in str(
        caught.value
    )


def _order(order_id: str, wxid: str, at: object, amount: str = "100", **extra: object) -> OrderIn:
    return OrderIn.model_validate(
        {"order_id": order_id, "wxid": wxid, "amount": amount, "ordered_at": at, **extra}
    )


def _setup(database: Database, clock: FrozenClock, count: int) -> None:
    with database.session() as session:
        d.ensure_account(session, "main", name="main", transport="sandbox", now=clock.now())
        for n in range(count):
            w.upsert_contact(session, "main", ContactInfo(f"wxid_{n}", f"客户{n}"), clock.now())


def _engine(tmp_path: Path, database: Database, clock: FrozenClock) -> SignalEngine:
    settings = Settings(base_dir=tmp_path)
    return SignalEngine(settings, database, clock, tags=TagsFile(), renderer=None)


def _tiers(database: Database) -> dict[str, str]:
    with database.session(read_only=True) as session:
        return dict(session.execute(select(Contact.wxid, Contact.tier)).all())


def test_orders_move_tiers_and_buyers_lapse_after_the_period(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> None:
    _setup(database, clock, 3)
    engine = _engine(tmp_path, database, clock)
    now = clock.now()
    engine.ingest_orders(
        [
            _order("o1", "wxid_0", now),
            _order("o2", "wxid_0", now - timedelta(days=5)),
            _order("o3", "wxid_1", now),
        ],
        source="csv",
    )
    assert _tiers(database) == {"wxid_0": "repeat", "wxid_1": "customer", "wxid_2": "basic"}
    clock.advance(timedelta(days=91))
    events = engine.recompute_all(trigger="周期")
    assert _tiers(database) == {"wxid_0": "prospect", "wxid_1": "prospect", "wxid_2": "basic"}
    assert sorted((e.detail or "") for e in events) == ["prospect", "prospect"]
    with database.session(read_only=True) as session:
        causes = session.execute(select(TierChange.cause).order_by(TierChange.id)).scalars().all()
    assert "周期：未购会员（曾购买 1 笔）" in causes
    assert engine.recompute_all() == []  # nothing left to move


def test_purchase_tags_with_evidence(database: Database, clock: FrozenClock, tmp_path: Path) -> None:
    _setup(database, clock, 1)
    engine = _engine(tmp_path, database, clock)
    now = clock.now()
    skin = [{"name": "精华", "category": "护肤", "qty": 1, "new": True}]
    engine.ingest_orders(
        [
            _order("p1", "wxid_0", now - timedelta(days=40), "1200", items=skin, discounted=True),
            _order("p2", "wxid_0", now - timedelta(days=20), "900", items=skin),
            _order("p3", "wxid_0", now, "300", items=skin, discounted=True),
        ],
        source="webhook",
    )
    with database.session(read_only=True) as session:
        tags = dict(
            session.execute(
                select(Tag.name, ContactTag.evidence_ref).join(ContactTag, ContactTag.tag_id == Tag.id)
            ).all()
        )
    assert tags == {
        "首单2026-10": "order:p1",
        "复购客户": "order:p3",
        "月度复购": "order:p3",
        "高价值客户": "order:p3",
        "偏好护肤": "order:p3",
        "活动喜好型": "order:p3",
        "新品关注型": "order:p3",
    }
    engine.ingest_orders(
        [
            _order("p1", "wxid_0", now, "1", status="已退款"),
            _order("p3", "wxid_0", now, "1", status="cancelled"),
        ],
        source="csv",
    )
    with database.session(read_only=True) as session:
        names = set(session.execute(select(Tag.name).join(ContactTag, ContactTag.tag_id == Tag.id)).scalars())
    # one paid order left: no repurchase or behaviour tags; the first order is p2 now
    assert names == {"首单2026-11", "中价值客户"}


def test_bulk_recomputation_on_many_contacts(database: Database, clock: FrozenClock, tmp_path: Path) -> None:
    _setup(database, clock, 300)
    engine = _engine(tmp_path, database, clock)
    engine.ingest_orders([_order(f"b{n}", f"wxid_{n}", clock.now()) for n in range(0, 300, 3)], source="csv")
    with database.session() as session:
        session.execute(Contact.__table__.update().values(tier="basic"))
    events = engine.recompute_all()
    assert len(events) == 100
    assert sum(1 for tier in _tiers(database).values() if tier == "customer") == 100
