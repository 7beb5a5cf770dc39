"""The column names an order export may use (Chinese or English, any case), kept apart from
the importer so `sopbot import-orders --help` lists them without loading it."""

from __future__ import annotations

HEADERS: dict[str, tuple[str, ...]] = {
    "order_id": ("order_id", "order id", "订单号", "订单编号", "订单id"),
    "wxid": ("wxid", "微信id", "微信号id"),
    "phone": ("phone", "mobile", "手机号", "手机", "手机号码", "电话", "收货人手机"),
    "unionid": ("unionid", "union_id"),
    "amount": ("amount", "total", "金额", "实付金额", "订单金额", "实付款", "实付"),
    "status": ("status", "状态", "订单状态"),
    "ordered_at": ("ordered_at", "time", "paid_at", "下单时间", "付款时间", "创建时间", "支付时间"),
    "discounted": ("discounted", "discount", "优惠", "是否优惠", "折扣", "活动价"),
    "new_arrival": ("new_arrival", "new", "新品", "是否新品"),
    "product": ("product", "item", "商品", "商品名称", "商品名"),
    "category": ("category", "品类", "类目", "分类", "商品类目"),
    "qty": ("qty", "quantity", "数量", "件数"),
    "items": ("items", "商品明细"),
    "referrer": ("referrer", "推荐人", "推荐码", "邀请码", "邀请人"),
    "account": ("account", "账号", "导购账号"),
}
REQUIRED = ("order_id", "amount", "ordered_at")
IDENTITY = ("wxid", "phone", "unionid")


def columns_help() -> str:
    """One line per column for `--help`: the names it may have; required ones marked."""
    lines = []
    for name, aliases in HEADERS.items():
        need = (
            " (required)" if name in REQUIRED else " (one of wxid/phone/unionid)" if name in IDENTITY else ""
        )
        lines.append(f"{name}{need}: {', '.join(a for a in aliases if a != name)}")
    return "Columns (any of these header names): " + " · ".join(lines)
