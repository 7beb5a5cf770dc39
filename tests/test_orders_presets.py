"""Orders from real shop systems, end to end: for each preset (有赞, 微店, 淘宝/天猫, 抖店) a
GBK CSV and an .xlsx export written with that system's own header names, a refund, an
unpaid order, a repeat buyer, a buyer nobody knows yet and two broken rows, imported by
the real `sopbot import-orders` into a real SQLite file without editing the file."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.events import ContactEventKind
from bot.store import Database
from bot.store.models import Contact, ContactEvent, ContactTag, Order, Tag, TierChange
from bot.wechat.types import ContactInfo
from tests.signals_kit import cli
from tests.test_orders_csv import seed, settle

SHANGHAI = ZoneInfo("Asia/Shanghai")
# the CLI runs on the real clock: orders fall inside the 90-day tier period from today
NOW = datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)
A, B, C, D = "13900000001", "13900000002", "13900000003", "13900000009"  # D: nobody knows D yet
PEOPLE = (
    ContactInfo("wxid_a_fang", "王芳", phone=A),
    ContactInfo("wxid_b_lei", "李雷", phone=B),
    ContactInfo("wxid_c_mei", "韩梅", phone=C),
)


@dataclass(frozen=True)
class Fact:
    """One order as it happened; each preset writes it its own way."""

    order: str
    buyer: str
    state: str  # paid | refunded | unpaid
    amount: str
    at: datetime
    product: str
    discounted: bool = False
    bad_time: bool = False


FACTS = (
    Fact("1001", A, "paid", "1299.00", NOW - timedelta(days=30), "修护面霜", discounted=True),
    Fact("1002", B, "paid", "199.00", NOW - timedelta(days=20), "羊绒围巾"),
    Fact("1003", A, "paid", "88.00", NOW - timedelta(days=10), "滋润唇膏", discounted=True),
    Fact("1004", C, "refunded", "520.00", NOW - timedelta(days=9), "焕颜精华"),
    Fact("1005", B, "unpaid", "66.00", NOW - timedelta(days=2), "护手霜"),
    Fact("1006", A, "paid", "abc", NOW - timedelta(days=3), "面膜"),  # broken: the amount
    Fact("1007", B, "paid", "99.00", NOW - timedelta(days=3), "面膜", bad_time=True),  # broken: the time
    Fact("1008", D, "paid", "300.00", NOW - timedelta(days=1), "香氛蜡烛"),
)
STORED = {"1001": "paid", "1002": "paid", "1003": "paid", "1004": "refund", "1008": "paid"}


def names(header: str) -> list[str]:
    return header.split(",")


def when(fact: Fact, layout: str, xlsx: bool) -> Any:
    if fact.bad_time:
        return "昨天"
    return fact.at if xlsx else fact.at.strftime(layout)


def money(text: str, xlsx: bool, extra: float | None = None) -> Any:
    """The amount paid, or (`extra` given) a list price that much above it."""
    if text == "abc":  # the broken row: only the amount paid is broken
        return text if extra is None else money("100.00", xlsx, extra)
    value = float(text) + (extra or 0)
    return value if xlsx else f"{value:.2f}"


# -- 有赞: 订单 → 订单查询 → 导出 (订单列表) --------------------------------------------------------

YOUZAN_HEADER = names(
    "订单号,销售渠道,归属店铺,订单类型,订单状态,推广方式,订单来源,订单创建时间,买家付款时间,交易成功时间,付款方式,"
    "支付流水号,商品金额合计,运费,店铺优惠合计,应收订单金额,订单实付金额,支付优惠合计,订单实收金额,订单抵用积分数,"
    "店铺优惠方式,支付优惠方式,全部商品名称,商品种类数,订单配送方式,同城送达时间/提货时间,收货人省份,收货人城市,"
    "收货人地区,详细收货地址/提货地址,收货人/提货人,收货人手机号/提货人手机号,买家备注,订单星级,买家昵称,"
    "买家是否会员,买家手机号,下单网点,收银员,分销员,销售导购,专属导购,订单退款状态,订单已退款金额,商家订单备注,"
    "团长订单,订单风险标签,分销员手机号,会员卡号"  # 会员卡号: a column no preset knows
)


def youzan(fact: Fact, xlsx: bool) -> list[dict[str, Any]]:
    state = {"paid": "交易完成", "refunded": "已发货", "unpaid": "待付款"}[fact.state]
    return [
        {
            "订单号": f"E2026{fact.order}0918061", "销售渠道": "网店", "归属店铺": "芸熙烘焙", "订单类型": "普通订单",
            "订单状态": state, "订单来源": "商家小程序", "订单创建时间": when(fact, "%Y-%m-%d %H:%M:%S", xlsx),
            "买家付款时间": "" if fact.state == "unpaid" else when(fact, "%Y-%m-%d %H:%M:%S", xlsx),
            "付款方式": "微信支付", "商品金额合计": money(fact.amount, xlsx, 10 if fact.discounted else 0),
            "运费": "0.00", "店铺优惠合计": "10.00" if fact.discounted else "0.00",
            "订单实付金额": money(fact.amount, xlsx), "全部商品名称": fact.product, "商品种类数": 1,
            "订单配送方式": "快递发货", "收货人/提货人": "收货人", "收货人手机号/提货人手机号": fact.buyer,
            "买家昵称": "小芳", "买家是否会员": "是", "买家手机号": fact.buyer,
            "订单退款状态": "全额退款" if fact.state == "refunded" else "",
            "订单已退款金额": money(fact.amount, xlsx) if fact.state == "refunded" else "0.00",
            "团长订单": "否", "会员卡号": "VIP0001",
        }
    ]  # fmt: skip


# -- 微店: 订单管理 → 导出订单 ---------------------------------------------------------------------

WEIDIAN_HEADER = names(
    "订单编号,订单状态,订单类型,下单时间,支付时间,发货时间,确认收货时间,支付方式,订单描述,商品名称,商品型号,商品ID,"
    "发货状态,商品件数,商品金额合计,实付金额,退款状态,退款金额,收货人/提货人姓名,收货人/提货人手机号,省,市,区,"
    "收货/提货详细地址,下单模板信息,买家留言,卖家备注,下单账号"
)


def weidian(fact: Fact, xlsx: bool) -> list[dict[str, Any]]:
    state = {"paid": "已完成", "refunded": "已完成", "unpaid": "待付款"}[fact.state]
    phone = f"+86 {fact.buyer[:3]}-{fact.buyer[3:7]}-{fact.buyer[7:]}"
    return [
        {
            "订单编号": f"81021{fact.order}", "订单状态": state, "订单类型": "担保交易",
            "下单时间": when(fact, "%Y年%m月%d日 %H:%M", xlsx),
            "支付时间": "" if fact.state == "unpaid" else when(fact, "%Y年%m月%d日 %H:%M", xlsx),
            "支付方式": "微信支付", "商品名称": fact.product, "商品型号": "标准装", "商品ID": "2208505590",
            "发货状态": "已发货", "商品件数": "1", "商品金额合计": money(fact.amount, xlsx, 20 if fact.discounted else 0),
            "实付金额": money(fact.amount, xlsx), "退款状态": "退款成功" if fact.state == "refunded" else "",
            "收货人/提货人姓名": "张三", "收货人/提货人手机号": phone, "省": "上海", "市": "黄浦区", "区": "城区",
            "下单模板信息": "", "下单账号": "",
        }
    ]  # fmt: skip


# -- 淘宝/天猫: 已卖出的宝贝 → 批量导出 → 订单报表 ---------------------------------------------------

TAOBAO_HEADER = names(
    "订单编号,买家会员名,买家支付宝账号,买家应付货款,买家应付邮费,买家支付积分,总金额,返点积分,买家实际支付金额,"
    "买家实际支付积分,订单状态,买家留言,收货人姓名,收货地址,运送方式,联系电话,联系手机,订单创建时间,订单付款时间,"
    "宝贝标题,宝贝种类,物流单号,物流公司,订单备注,宝贝总数量,店铺Id,店铺名称,订单关闭原因,卖家服务费,买家服务费,"
    "发票抬头,是否手机订单,分阶段订单信息,特权订金订单id,是否上传合同照片,是否上传小票,是否代付,定金排名,"
    "修改后的sku,修改后的收货地址,异常信息,天猫卡券抵扣,集分宝抵扣,是否是O2O交易,退款金额,预约门店"
)


def taobao(fact: Fact, xlsx: bool) -> list[dict[str, Any]]:
    state = {"paid": "交易成功", "refunded": "交易关闭", "unpaid": "等待买家付款"}[fact.state]
    if fact.order == "1003":
        state = "买家已付款，等待卖家发货"
    total = money(fact.amount, xlsx, 20 if fact.discounted else 0)
    return [
        {
            "订单编号": f"32655588990{fact.order}", "买家会员名": "tb_fang", "买家应付货款": total, "买家应付邮费": "0.00",
            "总金额": total, "买家实际支付金额": money(fact.amount, xlsx), "订单状态": state,
            "收货人姓名": "王**", "收货地址": "上海 上海市 黄浦区", "运送方式": "快递", "联系手机": f"'{fact.buyer}",
            "订单创建时间": when(fact, "%Y/%m/%d %H:%M", xlsx),
            "订单付款时间": "" if fact.state == "unpaid" else when(fact, "%Y/%m/%d %H:%M", xlsx),
            "宝贝标题": fact.product, "宝贝种类": 1, "宝贝总数量": 1, "店铺名称": "芳芳小店",
            "订单关闭原因": "退款" if fact.state == "refunded" else "订单未关闭", "是否手机订单": "手机订单",
            "退款金额": money(fact.amount, xlsx) if fact.state == "refunded" else "0.00",
        }
    ]  # fmt: skip


# -- 抖店: 订单管理 → 批量导出 (one row per 子订单) -----------------------------------------------

DOUDIAN_HEADER = names(
    "主订单编号,子订单编号,选购商品,商品规格,商品数量,商家编码,商品单价,订单应付金额,运费,优惠总金额,平台优惠,商家优惠,"
    "达人优惠,手续费,支付方式,收件人,收件人手机号,省,市,区,街道,详细地址,是否修改过地址,买家留言,订单提交时间,"
    "流量来源,流量渠道,流量类型,订单完成时间,支付完成时间,APP渠道,广告渠道,订单状态,售后状态,取消原因,商家备注,"
    "旗帜颜色,承诺发货时间,发货时间,达人ID,达人昵称,所属门店ID,仓库ID,仓库名称"
)


def doudian(fact: Fact, xlsx: bool) -> list[dict[str, Any]]:
    state = {"paid": "已完成", "refunded": "已完成", "unpaid": "待支付"}[fact.state]
    main = f"69179267688236{fact.order}"
    lines = [(fact.product, fact.amount)]
    if fact.order == "1001":  # two items: two 子订单 of one order
        lines = [("修护面霜", "1000.00"), ("补水面膜", "299.00")]
    return [
        {
            "主订单编号": f"\t{main}", "子订单编号": f"\t{main}{n}", "选购商品": f"\t{product}", "商品规格": "\t1瓶",
            "商品数量": 1, "商家编码": "\t300400008", "商品单价": money(amount, xlsx), "订单应付金额": money(amount, xlsx),
            "运费": "0.00", "优惠总金额": "10.00" if fact.discounted else "0.00", "平台优惠": "0.00",
            "商家优惠": "10.00" if fact.discounted else "0.00", "达人优惠": "0.00", "支付方式": "抖音支付",
            "收件人": "##密文", "收件人手机号": fact.buyer, "详细地址": "##密文",
            "订单提交时间": when(fact, "%Y-%m-%d %H:%M:%S", xlsx),
            "支付完成时间": "-" if fact.state == "unpaid" else when(fact, "%Y-%m-%d %H:%M:%S", xlsx),
            "订单完成时间": "-", "订单状态": state, "售后状态": "退款成功" if fact.state == "refunded" else "-",
        }
        for n, (product, amount) in enumerate(lines, start=1)
    ]  # fmt: skip


@dataclass(frozen=True)
class Shop:
    name: str
    header: list[str]
    rows: Callable[[Fact, bool], list[dict[str, Any]]]
    sheet: str
    amount: str  # the column a bad amount is named by
    time: str  # the column a bad time is named by


SHOPS = {
    "youzan": Shop("有赞", YOUZAN_HEADER, youzan, "订单列表", "订单实付金额", "买家付款时间"),
    "weidian": Shop("微店", WEIDIAN_HEADER, weidian, "excelReport", "实付金额", "支付时间"),
    "taobao": Shop("淘宝/天猫", TAOBAO_HEADER, taobao, "订单报表", "买家实际支付金额", "订单付款时间"),
    "doudian": Shop("抖店", DOUDIAN_HEADER, doudian, "Sheet1", "订单应付金额", "支付完成时间"),
}


def export(shop: Shop, folder: Path, xlsx: bool) -> tuple[Path, dict[str, int]]:
    """The export file, and the row (line) each order starts on."""
    rows: list[list[Any]] = []
    lines: dict[str, int] = {}
    for fact in FACTS:
        lines[fact.order] = len(rows) + 2
        rows += [[row.get(name, "") for name in shop.header] for row in shop.rows(fact, xlsx)]
    if xlsx:
        path = folder / "orders.xlsx"
        workbook = Workbook()
        sheet = workbook.active
        sheet.title = shop.sheet
        sheet.append(shop.header)
        for row in rows:
            sheet.append([None if cell == "" else cell for cell in row])
        workbook.create_sheet("说明").append(["导出说明：本表由系统生成"])
        workbook.save(path)
    else:
        path = folder / "orders.csv"
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(shop.header)
        writer.writerows(rows)
        path.write_bytes(text.getvalue().encode("gbk"))
    return path, lines


def where(path: Path, shop: Shop, line: int, xlsx: bool) -> str:
    return f"{path}:{shop.sheet}!{line}" if xlsx else f"{path}:{line}"


def _state(settings: Settings, database: Database) -> dict[str, Any]:
    with database.session(read_only=True) as session:
        contacts = {c.phone: c for c in session.execute(select(Contact)).scalars()}
        tags = {
            phone: {
                name
                for (name,) in session.execute(
                    select(Tag.name)
                    .join(ContactTag, ContactTag.tag_id == Tag.id)
                    .where(ContactTag.contact_id == c.id)
                )
            }
            for phone, c in contacts.items()
        }
        moves = {
            phone: session.execute(
                select(TierChange.cause, TierChange.evidence_ref).where(TierChange.contact_id == c.id)
            ).all()
            for phone, c in contacts.items()
        }
        tier_events = {
            phone: [
                ref
                for (ref,) in session.execute(
                    select(ContactEvent.ref).where(
                        ContactEvent.contact_id == c.id,
                        ContactEvent.kind == ContactEventKind.TIER_CHANGED.value,
                    )
                )
            ]
            for phone, c in contacts.items()
        }
        orders = {o.order_id: o for o in session.execute(select(Order)).scalars()}
        events = session.execute(select(func.count()).select_from(ContactEvent)).scalar_one()
    return {
        "tiers": {phone: c.tier for phone, c in contacts.items()},
        "tags": tags,
        "moves": moves,
        "tier_events": tier_events,
        "orders": orders,
        "events": events,
    }


@pytest.mark.parametrize("xlsx", [False, True], ids=["gbk-csv", "xlsx"])
@pytest.mark.parametrize("preset", list(SHOPS))
def test_a_shop_export_imports_as_it_is(tmp_path: Path, clock: FrozenClock, preset: str, xlsx: bool) -> None:
    shop = SHOPS[preset]
    settings, database = settle(tmp_path, clock)
    seed(database, clock, *PEOPLE)
    path, lines = export(shop, tmp_path, xlsx)

    code, output = cli(settings, "import-orders", str(path))

    assert code == 1, output
    assert f"read as a {shop.name} export ({preset}: " in output
    out = output.splitlines()
    bad_amount = f"{where(path, shop, lines['1006'], xlsx)}: {shop.amount}: 'abc' is not an amount in yuan"
    bad_time = f"{where(path, shop, lines['1007'], xlsx)}: {shop.time}: '昨天' is not a time"
    problems = [line for line in out if re.match(re.escape(str(path)) + r":(?:[^:]+!)?\d+: ", line)]
    assert len(problems) == 2 and problems[0].startswith(bad_amount) and problems[1].startswith(bad_time), (
        output
    )
    rows = len(FACTS) + (1 if preset == "doudian" else 0)  # 抖店: order 1001 is two 子订单 rows
    summary = (
        f"{path} ({'xlsx' if xlsx else 'gbk'}): {rows} rows: 5 new, 2 rejected, 1 not paid yet (skipped)"
    )
    assert summary + "; 1 from buyers not yet known" in output, output
    assert ("columns not used: 会员卡号" in output) == (preset == "youzan"), output
    assert (f"{path}:说明: not read (no order columns)" in output) == xlsx  # the workbook's notes sheet

    first = _state(settings, database)
    stored = {o.order_id[-4:] if preset != "youzan" else o.order_id[5:9]: o for o in first["orders"].values()}
    assert {k: v.status for k, v in stored.items()} == {
        "1001": "paid", "1002": "paid", "1003": "paid", "1004": "cancelled" if preset == "taobao" else "refunded",
        "1008": "paid",
    }  # fmt: skip
    assert stored["1001"].amount_cents == 129900 and stored["1001"].discounted
    assert stored["1003"].discounted and not stored["1002"].discounted
    if preset == "doudian":
        assert [item["name"] for item in stored["1001"].items] == ["修护面霜", "补水面膜"]
    assert stored["1008"].contact_id is None  # D waits for the contact to appear
    assert first["tiers"] == {A: "repeat", B: "customer", C: "basic"}
    assert {"复购客户", "活动喜好型", f"首单{FACTS[0].at:%Y-%m}"} <= first["tags"][A]
    assert "复购客户" not in first["tags"][B] and first["tags"][C] == set()
    # every tier change cites the contact's own order: A's last, B's only
    own = {A: stored["1003"].order_id, B: stored["1002"].order_id}
    for phone, order_id in own.items():
        assert first["moves"][phone] == [(first["moves"][phone][0][0], order_id)], first["moves"]
        assert first["moves"][phone][0][0].startswith(f"订单 {order_id}："), first["moves"]
        assert first["tier_events"][phone] == [order_id]

    code, output = cli(settings, "import-orders", str(path))  # the same file again: nothing changes
    assert code == 1
    assert f"{rows} rows: 5 unchanged, 2 rejected, 1 not paid yet (skipped)" in output, output
    second = _state(settings, database)
    assert second["events"] == first["events"]
    assert (second["tiers"], second["tags"]) == (first["tiers"], first["tags"])
    database.dispose()
