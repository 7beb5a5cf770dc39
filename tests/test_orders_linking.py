"""Who bought: the rule that matches a buyer to a contact (docs/orders.md), orders of buyers
nobody knows yet waiting and linked when the contact appears, and every tier change citing
the contact's own order."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.clock import FrozenClock
from bot.orders.model import OrderIn
from bot.orders.store import find_buyer
from bot.recorder import writes as w
from bot.signals.engine import SignalEngine
from bot.store import Database
from bot.store import directory as d
from bot.store.models import Contact, Order, TierChange
from bot.wechat.types import ContactInfo
from tests.signals_kit import cli, running_bot
from tests.test_orders_csv import seed, settle


def _order(order_id: str, at: object, **buyer: str) -> OrderIn:
    return OrderIn.model_validate({"order_id": order_id, "amount": "199", "ordered_at": at, **buyer})


def _ids(database: Database) -> dict[str, int]:
    with database.session(read_only=True) as session:
        return {c.wxid: c.id for c in session.execute(select(Contact)).scalars()}


def test_the_matching_rule(tmp_path: Path, clock: FrozenClock) -> None:
    _, database = settle(tmp_path, clock)
    seed(
        database,
        clock,
        ContactInfo("wxid_sun", "孙丽", weixin="sunli_88", phone="13800000001"),
        ContactInfo("wxid_ma", "马骏", phone="+86 138-0000-0002"),
    )
    with database.session() as session:
        d.ensure_account(session, "shop2", name="shop2", transport="sandbox", now=clock.now())
        w.upsert_contact(session, "shop2", ContactInfo("wxid_zhou", "周舟", phone="13800000003"), clock.now())
        session.execute(Contact.__table__.update().where(Contact.wxid == "wxid_ma").values(unionid="o6_ma"))
    ids = _ids(database)
    with database.session(read_only=True) as session:
        assert find_buyer(session, "wxid_sun", None, None, None) == ids["wxid_sun"]  # wxid
        assert find_buyer(session, "sunli_88", None, None, None) == ids["wxid_sun"]  # 微信号
        assert find_buyer(session, None, None, "o6_ma", None) == ids["wxid_ma"]  # unionid
        assert (
            find_buyer(session, None, "13800000002", None, None) == ids["wxid_ma"]
        )  # phone, written another way
        # the wxid decides before the phone; an order naming an account looks only there
        assert find_buyer(session, "sunli_88", "13800000002", None, None) == ids["wxid_sun"]
        assert find_buyer(session, None, "13800000003", None, "main") is None
        assert find_buyer(session, None, "13800000003", None, "shop2") == ids["wxid_zhou"]
    database.dispose()


def test_an_unknown_buyer_waits_and_is_linked_when_the_contact_appears(
    tmp_path: Path, clock: FrozenClock
) -> None:
    folder = tmp_path / "project"
    with running_bot(folder, clock) as bot:
        at = (clock.now() - timedelta(days=3)).astimezone(bot.settings.tz).strftime("%Y-%m-%d %H:%M")
        path = tmp_path / "orders.csv"
        path.write_text(
            f"订单号,买家微信号,实付金额,下单时间\nN1,wxid_new_ye,268.00,{at}\nN2,ye_weixin,99.00,{at}\n",
            encoding="utf-8",
        )
        code, output = cli(bot.settings, "import-orders", str(path))
        assert code == 0 and "2 from buyers not yet known (linked when they appear)" in output, output
        with bot.database.session(read_only=True) as session:
            assert session.execute(select(Order.contact_id)).scalars().all() == [None, None]
        # a new friend: the order by their wxid is theirs now
        bot.request_friend("wxid_new_ye", "叶子")
        ye = bot.contact("wxid_new_ye")
        assert ye.tier == "customer"
        with bot.database.session(read_only=True) as session:
            linked = dict(session.execute(select(Order.order_id, Order.contact_id)).all())
            causes = session.execute(
                select(TierChange.cause, TierChange.evidence_ref).where(TierChange.contact_id == linked["N1"])
            ).all()
        assert linked["N2"] is None  # by 微信号: waits for a contact with that 微信号
        assert len(causes) == 1 and causes[0][1] == "N1" and causes[0][0].startswith("新好友 N1：已购会员"), (
            causes
        )
    # the contact sync at login brings the 微信号: N2 is linked to the same person
    database = Database(bot.settings.resolved_database_url)
    try:
        with database.session() as session:
            session.execute(
                Contact.__table__.update().where(Contact.wxid == "wxid_new_ye").values(weixin="ye_weixin")
            )
        SignalEngine(bot.settings, database, clock).on_contacts_seen()
        with database.session(read_only=True) as session:
            linked = dict(session.execute(select(Order.order_id, Order.contact_id)).all())
            tier = session.execute(select(Contact.tier).where(Contact.wxid == "wxid_new_ye")).scalar_one()
            causes = session.execute(
                select(TierChange.cause, TierChange.evidence_ref).order_by(TierChange.id)
            ).all()
    finally:
        database.dispose()
    assert linked["N2"] == linked["N1"] and tier == "repeat"
    assert causes[-1][1] == "N2" and causes[-1][0].startswith("关联订单 N2：复购会员")


def test_contacts_linked_at_once_each_cite_their_own_order(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database = settle(tmp_path, clock)
    seed(database, clock)
    engine = SignalEngine(settings, database, clock)
    now = clock.now()
    engine.ingest_orders(
        [_order("L1", now, phone="13900000011"), _order("L2", now, phone="13900000012")], source="csv"
    )
    seed(
        database,
        clock,
        ContactInfo("wxid_l1", "甲", phone="13900000011"),
        ContactInfo("wxid_l2", "乙", phone="13900000012"),
    )
    engine.on_contacts_seen()
    ids = _ids(database)
    with database.session(read_only=True) as session:
        moves = {
            contact_id: (cause, ref)
            for contact_id, cause, ref in session.execute(
                select(TierChange.contact_id, TierChange.cause, TierChange.evidence_ref)
            )
        }
    assert moves[ids["wxid_l1"]][1] == "L1" and moves[ids["wxid_l1"]][0].startswith("关联订单 L1：")
    assert moves[ids["wxid_l2"]][1] == "L2" and moves[ids["wxid_l2"]][0].startswith("关联订单 L2：")
    database.dispose()


def test_an_order_waiting_for_someone_invited_into_a_group(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database = settle(tmp_path, clock)
    seed(database, clock, ContactInfo("wxid_host", "群主"))
    engine = SignalEngine(settings, database, clock)
    engine.ingest_orders([_order("G1", clock.now(), wxid="wxid_guest")], source="csv")
    seed(database, clock, ContactInfo("wxid_guest", "新群友"))  # met in the group
    engine.on_room_join("main", "精英会员群", ["wxid_guest"], "wxid_host")
    with database.session(read_only=True) as session:
        order = session.execute(select(Order).where(Order.order_id == "G1")).scalar_one()
        cause = session.execute(
            select(TierChange.cause, TierChange.evidence_ref).where(TierChange.contact_id == order.contact_id)
        ).one()
    assert order.contact_id == _ids(database)["wxid_guest"]
    assert cause[1] == "G1" and cause[0].startswith("入群 G1：已购会员")
    database.dispose()
