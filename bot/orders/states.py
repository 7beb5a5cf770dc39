"""The states an order can be in, and the words shops use for them (file imports and the
webhook read the same vocabulary)."""

from __future__ import annotations

PAID, REFUNDED, CANCELLED = "paid", "refunded", "cancelled"
UNPAID = "unpaid"  # placed, not paid: no purchase yet (an import skips it, the webhook refuses it)

STATUSES: dict[str, str] = {
    "paid": PAID, "completed": PAID, "shipped": PAID, "delivered": PAID,
    "已付款": PAID, "已支付": PAID, "已完成": PAID, "交易成功": PAID, "交易完成": PAID,
    "已发货": PAID, "待发货": PAID, "部分发货": PAID, "备货中": PAID, "待收货": PAID,
    "已收货": PAID, "已签收": PAID, "待评价": PAID, "已评价": PAID, "已成团": PAID,
    "待成团": PAID, "待自提": PAID, "待核销": PAID, "已核销": PAID,
    "refunded": REFUNDED, "refund": REFUNDED,
    "已退款": REFUNDED, "退款成功": REFUNDED, "全额退款": REFUNDED, "已全额退款": REFUNDED,
    "cancelled": CANCELLED, "canceled": CANCELLED, "closed": CANCELLED,
    "已取消": CANCELLED, "交易关闭": CANCELLED, "已关闭": CANCELLED, "订单关闭": CANCELLED,
    "交易取消": CANCELLED, "已作废": CANCELLED,
    "unpaid": UNPAID, "pending": UNPAID,
    "待付款": UNPAID, "待支付": UNPAID, "未付款": UNPAID, "未支付": UNPAID, "等待买家付款": UNPAID,
}  # fmt: skip

# a refund (售后) column beside the order state: only a finished full refund counts
REFUND_NONE = "none"
REFUND_STATES: dict[str, str] = {
    "refunded": REFUNDED, "已退款": REFUNDED, "退款成功": REFUNDED, "全额退款": REFUNDED,
    "已全额退款": REFUNDED, "退款完成": REFUNDED,
    "none": REFUND_NONE, "无": REFUND_NONE, "未退款": REFUND_NONE, "无退款": REFUND_NONE,
    "无售后": REFUND_NONE, "正常": REFUND_NONE, "部分退款": REFUND_NONE, "退款中": REFUND_NONE,
    "退款申请中": REFUND_NONE, "售后中": REFUND_NONE, "待商家处理": REFUND_NONE,
    "待买家退货": REFUND_NONE, "待商家收货": REFUND_NONE, "退款关闭": REFUND_NONE,
    "售后关闭": REFUND_NONE, "拒绝退款": REFUND_NONE, "退款失败": REFUND_NONE,
    "已撤销": REFUND_NONE, "换货成功": REFUND_NONE, "补寄成功": REFUND_NONE,
}  # fmt: skip
