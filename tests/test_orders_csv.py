"""`sopbot import-orders`: encodings, broken rows, replays, refunds, unknown buyers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.clock import FrozenClock
from bot.orders.csv_import import parse_csv
from bot.signals.engine import SignalEngine
from bot.store import Database
from bot.store.models import ContactEvent, EventRelay, Order
from bot.wechat.types import ContactInfo
from tests.signals_kit import HEADER, cli, make_project
from tests.support import T0

ROWS = (
    "A1001,wxid_sun_li,,199.00,已付款,2026-11-20 14:03:00,保湿面霜,护肤,1,否,是,\n"
    "A1002,,13800000002,￥1,299.00,已付款,2026/11/21 09:30,羊绒围巾,配饰,1,是,否,\n"
    "A1003,wxid_nobody_yet,,88,已付款,2026-11-22 20:00,唇膏,彩妆,2,否,否,\n"
)


def settle(tmp_path: Path, clock: FrozenClock, *, text: str = "") -> tuple[object, Database]:
    settings = make_project(tmp_path / "project", settings_text=text)
    database = Database(settings.resolved_database_url)
    from bot.store.migrate import upgrade

    upgrade(database)
    return settings, database


def seed(database: Database, clock: FrozenClock, *people: ContactInfo) -> None:
    from bot.recorder import writes as w
    from bot.store import directory as d

    with database.session() as session:
        d.ensure_account(session, "main", name="main", transport="sandbox", now=clock.now())
        for person in people:
            w.upsert_contact(session, "main", person, clock.now())


def orders(database: Database) -> dict[str, Order]:
    with database.session(read_only=True) as session:
        return {o.order_id: o for o in session.execute(select(Order)).scalars()}


SUN = ContactInfo("wxid_sun_li", "孙丽", phone="13800000001")
MA = ContactInfo("wxid_ma_jun", "马骏", phone="13800000002")


def test_gbk_export_with_broken_rows_keeps_the_good_ones(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database = settle(tmp_path, clock)
    seed(database, clock, SUN, MA)
    broken = (
        "A1004,wxid_sun_li,,abc,已付款,2026-11-22 10:00,面膜,护肤,1,否,否,\n"  # line 5: amount
        "A1005,,,99,已付款,2026-11-22 10:00,面膜,护肤,1,否,否,\n"  # line 6: nobody
        "A1006,wxid_sun_li,,99,已发货了吗,2026-11-22 10:00,面膜,护肤,1,否,否,\n"  # line 7: status
        "A1007,wxid_sun_li,,99,已付款,昨天,面膜,护肤,1,否,否,\n"  # line 8: time
    )
    path = tmp_path / "orders.csv"
    path.write_bytes((HEADER + ROWS.replace("￥1,299.00", '"￥1,299.00"') + broken).encode("gbk"))
    code, output = cli(settings, "import-orders", str(path))
    assert code == 1
    lines = output.splitlines()
    assert any(line.endswith(":5: 实付金额: 'abc' is not an amount in yuan (like 199.00)") for line in lines)
    assert any(":6: wxid/phone/unionid: say who bought" in line for line in lines)
    assert any(":7: 订单状态: " in line for line in lines)
    assert any(":8: 下单时间: " in line for line in lines)
    assert "(gbk): 7 rows: 3 new, 4 rejected; 1 from buyers not yet known" in output
    stored = orders(database)
    assert sorted(stored) == ["A1001", "A1002", "A1003"]
    assert stored["A1002"].amount_cents == 129900 and stored["A1002"].discounted
    assert stored["A1001"].items == [{"name": "保湿面霜", "qty": 1, "new": True, "category": "护肤"}]
    assert stored["A1003"].contact_id is None  # kept for later
    # the daemon relays the events the import recorded
    with database.session(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(EventRelay)).scalar_one() > 0
    database.dispose()


def test_a_replayed_file_changes_nothing_and_a_refund_row_counts(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database = settle(tmp_path, clock)
    seed(database, clock, SUN, MA)
    path = tmp_path / "orders.csv"
    path.write_bytes(("\ufeff" + HEADER + ROWS.replace("￥1,299.00", '"￥1,299.00"')).encode("utf-8"))
    assert cli(settings, "import-orders", str(path))[0] == 0
    with database.session(read_only=True) as session:
        events_before = session.execute(select(func.count()).select_from(ContactEvent)).scalar_one()
    code, output = cli(settings, "import-orders", str(path))
    assert (code, "(utf-8-sig): 3 rows: 3 unchanged" in output) == (0, True)
    with database.session(read_only=True) as session:
        assert session.execute(select(func.count()).select_from(ContactEvent)).scalar_one() == events_before
    refund = tmp_path / "refunds.csv"
    refund.write_text(
        HEADER + "A1001,wxid_sun_li,,199.00,已退款,2026-11-20 14:03:00,保湿面霜,护肤,1,否,是,\n",
        encoding="utf-8",
    )
    assert "1 refunded" in cli(settings, "import-orders", str(refund))[1]
    # the old paid row replayed after the refund: the refund stands
    assert "1 ignored" in cli(settings, "import-orders", str(path))[1]
    assert orders(database)["A1001"].status == "refunded"
    database.dispose()


def test_an_unknown_buyer_is_linked_when_the_contact_appears(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database = settle(tmp_path, clock)
    seed(database, clock)
    engine = SignalEngine(settings, database, clock)
    parsed = parse_csv(
        (HEADER + "B1,,13900000009,520,已付款,2026-11-20 10:00,精华,护肤,1,否,否,\n").encode(),
        "o.csv",
        settings.tz,
    )
    report = engine.ingest_orders([o for _, o in parsed.orders], source="csv")
    assert report.unknown_buyers == 1 and orders(database)["B1"].contact_id is None
    seed(database, clock, ContactInfo("wxid_new_ye", "叶子", phone="+86 139-0000-0009"))
    events = engine.on_contacts_seen()
    linked = orders(database)["B1"]
    assert linked.contact_id is not None
    assert [e.kind.value for e in events][:2] == ["first_purchase", "purchase"]
    database.dispose()


def test_an_unpaid_order_is_skipped_and_new_once_paid(tmp_path: Path, clock: FrozenClock) -> None:
    settings, database = settle(tmp_path, clock)
    seed(database, clock, SUN)
    path = tmp_path / "orders.csv"
    path.write_text(
        "订单号,微信号,实付金额,下单时间,订单状态\nP1,wxid_sun_li,99,2026-11-20 10:00,待付款\n", "utf-8"
    )
    code, output = cli(settings, "import-orders", str(path))
    assert (code, "1 rows: nothing stored, 1 not paid yet (skipped)" in output) == (0, True), output
    path.write_text(
        "订单号,微信号,实付金额,下单时间,订单状态\nP1,wxid_sun_li,99,2026-11-20 10:00,已付款\n", "utf-8"
    )
    assert "1 rows: 1 new" in cli(settings, "import-orders", str(path))[1]
    database.dispose()


def test_headers_and_encodings(clock: FrozenClock) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    english = "order_id,phone,amount,status,ordered_at\nX1,13800000001,10,paid,2026-11-20T10:00:00+08:00\n"
    parsed = parse_csv(english.encode(), "o.csv", tz)
    assert (
        parsed.encoding == "utf-8" and parsed.orders[0][1].ordered_at.utcoffset().total_seconds() == 8 * 3600
    )
    missing = parse_csv("订单号,金额\n1,2\n".encode(), "o.csv", tz)
    assert [str(i) for i in missing.issues] == [
        "o.csv:1: header: no column for ordered_at (下单时间), wxid/phone/unionid (微信号/手机号/unionid) "
        "(name your columns in sop/columns.yaml: docs/orders.md)"
    ]
    garbage = parse_csv(b"\xff\xfe\xfa\xfb\x81", "o.csv", tz)
    assert "neither UTF-8 nor GBK" in str(garbage.issues[0])
    assert T0  # the frozen clock's day is unrelated to order times
