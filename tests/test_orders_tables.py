"""The generic table layer under the order import (`bot.tables`): encodings and Excel,
where rows are, the header row found below titles, the values shops write, bounds on what
a file may cost, and a schema of another importer read by the same mechanism."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook

from bot.orders.importer import parse_csv
from bot.tables import read as table_read
from bot.tables.mapping import find_header
from bot.tables.read import read_bytes
from bot.tables.spec import FieldSpec, Kind, Preset, Schema
from bot.tables.values import parse_amount, parse_time

TZ = ZoneInfo("Asia/Shanghai")


def xlsx(*rows: list[object], title: str = "订单") -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    return data.getvalue()


@pytest.mark.parametrize(
    ("written", "amount"),
    [
        ("199", "199"),
        ("¥1,299.00", "1299.00"),
        ("￥88", "88"),
        ("88元", "88"),
        ("1，299.50", "1299.50"),
        (12.5, "12.5"),
    ],
)
def test_amounts_as_shops_write_them(written: object, amount: str) -> None:
    assert parse_amount(written) == Decimal(amount)


@pytest.mark.parametrize(
    "written",
    [
        "2026/11/20 14:03:22",
        "2026-11-20 14:03",
        "2026年11月20日 14:03",
        "2026-11-20T14:03:00+08:00",
        "20261120140300",
    ],
)
def test_times_as_shops_write_them(written: str) -> None:
    moment = parse_time(written, TZ)
    assert (moment.year, moment.month, moment.day, moment.hour, moment.minute) == (2026, 11, 20, 14, 3)
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 8 * 3600


def test_order_states_yes_no_and_discounts() -> None:
    header = "订单号,手机号,实付金额,下单时间,订单状态,是否优惠,售后状态\n"
    rows = [
        ("S1", "交易成功", "是", "-"), ("S2", "已发货", "否", "-"), ("S3", "待发货", "否", ""),
        ("S4", "已退款", "否", ""), ("S5", "退款成功", "否", ""), ("S6", "交易关闭", "否", ""),
        ("S7", "已取消", "否", ""), ("S8", "已发货", "否", "退款成功"), ("S9", "已发货", "否", "售后完成"),
        ("S10", "待付款", "否", ""),
    ]  # fmt: skip
    text = header + "".join(
        f"{order},13800000001,10,2026-11-20 10:00,{state},{flag},{refund}\n"
        for order, state, flag, refund in rows
    )
    parsed = parse_csv(text.encode("gbk"), "o.csv", TZ)
    assert parsed.issues == []
    statuses = {order.order_id: (order.status, order.discounted) for _, order in parsed.orders}
    assert statuses == {
        "S1": ("paid", True), "S2": ("paid", False), "S3": ("paid", False), "S4": ("refunded", False),
        "S5": ("refunded", False), "S6": ("cancelled", False), "S7": ("cancelled", False),
        "S8": ("refunded", False), "S9": ("paid", False),
    }  # fmt: skip
    assert parsed.unpaid == 1  # S10: not a purchase yet, skipped and counted
    assert parsed.otherwise == {("售后状态", "售后完成"): 1}  # read as no refund, and listed


def test_a_partial_refund_is_taken_off_the_amount() -> None:
    text = "订单号,手机号,实付金额,下单时间,退款金额\nP1,13800000001,100,2026-11-20 10:00,30\nP2,13800000001,50,2026-11-20 10:00,50\n"
    orders = {o.order_id: o for _, o in parse_csv(text.encode(), "o.csv", TZ).orders}
    assert (orders["P1"].status, orders["P1"].amount) == ("paid", Decimal("70"))
    assert orders["P2"].status == "refunded"


def test_a_hidden_phone_says_why_the_buyer_is_unknown() -> None:
    text = "主订单编号,子订单编号,订单应付金额,订单提交时间,收件人手机号\n\t6917,\t69171,9.9,2026-11-20 10:00,$$密文\n"
    parsed = parse_csv(text.encode("utf-8-sig"), "dy.csv", TZ)
    assert [str(issue) for issue in parsed.issues] == [
        "dy.csv:2: wxid/phone/unionid: say who bought: wxid, phone or unionid (收件人手机号 '$$密文' is hidden "
        "by the shop (masked or encrypted): export plain numbers, or add a column the buyer can be found by (微信号))"
    ]


def test_the_header_is_found_below_titles_and_excel_rows_say_their_sheet() -> None:
    data = xlsx(
        ["订单导出 2026-11-01 至 2026-11-30"],
        [],
        ["订单号", "手机号", "实付金额", "下单时间", "商品名称", "数量"],
        ["X1", 13800000001, 199.0, datetime(2026, 11, 20, 14, 3), "面霜;面膜", "1;2"],
        ["X2", 13800000001, "abc", datetime(2026, 11, 20, 14, 3), "面霜", 1],
        [6.917926768823644e18, 13800000001, 10, "2026/11/20", "面霜", 1],
    )
    parsed = parse_csv(data, "o.xlsx", TZ)
    assert parsed.encoding == "xlsx" and parsed.sheets[0].header_line == 3
    (where, order), *_ = parsed.orders
    assert where == "o.xlsx:订单!4" and order.phone == "13800000001" and order.amount == Decimal("199")
    assert [(item.name, item.qty) for item in order.items] == [("面霜", 1), ("面膜", 2)]
    assert [str(issue) for issue in parsed.issues] == [
        "o.xlsx:订单!5: 实付金额: 'abc' is not an amount in yuan (like 199.00)",
        "o.xlsx:订单!6: 订单号: '6.917926768823644e+18' is a number too long for Excel: its last digits were "
        "lost (export the column as text)",
    ]


def test_encodings_and_files_that_are_not_tables() -> None:
    utf16 = "订单号\t手机号\t实付金额\t下单时间\nU1\t13800000001\t10\t2026-11-20 10:00\n".encode("utf-16")
    parsed = parse_csv(utf16, "u.txt", TZ)
    assert parsed.encoding == "utf-16" and [o.order_id for _, o in parsed.orders] == ["U1"]
    old_excel = parse_csv(b"\xd0\xcf\x11\xe0" + b"\0" * 100, "o.xls", TZ)
    assert [str(issue) for issue in old_excel.issues] == [
        "o.xls: an old Excel file (.xls): save it as .xlsx or CSV and import that"
    ]
    damaged = parse_csv(b"PK\x03\x04" + b"\x01" * 200, "o.xlsx", TZ)
    assert "not a readable .xlsx file" in str(damaged.issues[0])


def test_what_a_file_may_cost_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_read, "MAX_ROWS", 3)
    text = "订单号,手机号,实付金额,下单时间\n" + "".join(
        f"R{n},13800000001,1,2026-11-20\n" for n in range(10)
    )
    parsed = parse_csv(text.encode(), "big.csv", TZ)
    assert "big.csv:4: more than 3 rows or 5,000,000 cells: split the file" in [
        str(issue) for issue in parsed.issues
    ]
    monkeypatch.setattr(table_read, "MAX_UNPACKED", 1000)
    bomb = read_bytes(xlsx(["订单号"], *[["x" * 100] for _ in range(100)]), "bomb.xlsx")
    assert bomb.sheets == [] and "unpacks to" in str(bomb.issues[0])


CONTACTS = Schema(
    "contacts",
    (
        FieldSpec("weixin", "微信号", aliases=("微信号", "wxid")),
        FieldSpec("phone", "手机号", Kind.PHONE, aliases=("手机号",)),
        FieldSpec("birthday", "生日", Kind.DATE, aliases=("生日",)),
        FieldSpec(
            "gender",
            "性别",
            Kind.CHOICE,
            aliases=("性别",),
            values={"男": "male", "女": "female"},
            what="a gender",
        ),
        FieldSpec("vip", "会员", Kind.YES_NO, aliases=("是否会员",)),
    ),
    required=(("weixin", "phone"),),
)


def test_another_importer_reads_its_own_schema_the_same_way() -> None:
    crm = Preset(
        "crm", "某CRM", (("客户微信", "weixin"), ("客户生日", "birthday")), detect=("客户微信", "客户生日")
    )
    table = read_bytes(
        "客户微信,手机号,客户生日,性别,是否会员,城市\nwx_a,+86 138 0000 0001,1990年5月20日,女,是,上海\n"
        "wx_b,,1991-13-01,未知,否,北京\n".encode("gbk"),
        "contacts.csv",
    )
    layout = find_header(CONTACTS, table.sheets[0], [crm])
    assert layout is not None and layout.preset is crm and layout.ignored == ["城市"]
    first, second = (layout.read(row, table.sheets[0], TZ) for row in table.sheets[0].rows[1:])
    assert (
        first.values["phone"] == "13800000001" and first.values["gender"] == "female" and first.values["vip"]
    )
    assert first.values["birthday"].isoformat() == "1990-05-20"
    assert [str(issue) for issue in second.issues] == [
        "contacts.csv:3: 客户生日: '1991-13-01' is not a date (like 1990-05-20)",
        "contacts.csv:3: 性别: '未知' is not a gender (male: 男; female: 女); map it in the mapping file under "
        "`values: gender:`",
    ]


def test_lines_of_one_order_are_joined() -> None:
    text = (
        "主订单编号,子订单编号,选购商品,商品数量,订单应付金额,订单提交时间,收件人手机号,订单状态,售后状态\n"
        "J1,J1-1,面霜,1,100.00,2026-11-20 10:00,13800000001,已完成,-\n"
        "J1,J1-2,面膜,2,50.00,2026-11-20 10:00,13800000001,已完成,退款成功\n"
        "J2,J2-1,唇膏,1,abc,2026-11-20 10:00,13800000001,已完成,-\n"
        "J2,J2-2,口红,1,80.00,2026-11-20 10:00,13800000001,已完成,-\n"
        "J3,J3-1,精华,1,30.00,2026-11-20 10:00,13800000001,已完成,退款成功\n"
    )
    parsed = parse_csv(text.encode("gbk"), "dy.csv", TZ)
    orders = {order.order_id: order for _, order in parsed.orders}
    assert (orders["J1"].amount, [item.name for item in orders["J1"].items]) == (Decimal("100.00"), ["面霜"])
    assert orders["J3"].status == "refunded"
    assert "J2" not in orders  # one of its lines was rejected: the whole order waits
    assert [str(issue) for issue in parsed.issues] == [
        "dy.csv:4: 订单应付金额: 'abc' is not an amount in yuan (like 199.00)",
        "dy.csv:5: 主订单编号: order J2 not imported: another of its lines was rejected",
    ]


def test_names_with_a_unit_and_more_ways_to_write_a_day() -> None:
    text = "订单号,手机号,实付金额(元),下单时间\nD1,13800000001,10,2026.11.20\n"
    (_, order), *_ = parse_csv(text.encode(), "o.csv", TZ).orders
    assert order.amount == Decimal("10") and order.ordered_at.date().isoformat() == "2026-11-20"


def test_a_preset_naming_more_headers_wins() -> None:
    from bot.tables.mapping import detect

    small = Preset("small", "小", (), detect=("订单号",))
    large = Preset("large", "大", (), detect=("订单号", "实收金额"))
    assert detect(["订单号", "实收金额"], [small, large]) is large
    assert detect(["订单号"], [small, large]) is small
