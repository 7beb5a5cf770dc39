"""What an order file may hold: the fields (`SCHEMA`, with the header names any file may
use), and the exports of the shop systems sopbot recognises (`PRESETS`, found by their
header row). Kept apart from the importer so `sopbot import-orders --help` lists them
without loading it.

The presets' header names are those the systems write in their order exports (checked
against public code that reads those exports); `docs/orders.md` lists them.
"""

from __future__ import annotations

from bot.orders.states import REFUND_NONE, REFUND_STATES, STATUSES
from bot.tables.spec import IGNORE, Combine, FieldSpec, Kind, Preset, Schema

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("order_id", "订单号", aliases=("order id", "订单号", "订单编号", "订单id", "订单流水号"),
              help="the idempotency key"),
    FieldSpec("line_id", "子订单号", aliases=("子订单号", "子订单编号", "子订单id"),
              help="rows of one order with line ids are one order: amounts added, items joined"),
    FieldSpec("wxid", "微信号", aliases=("微信id", "微信号id", "微信号", "买家微信号", "客户微信号", "微信", "weixin", "wechat"),
              help="the buyer's wxid or 微信号"),
    FieldSpec("phone", "手机号", Kind.PHONE,
              aliases=("mobile", "手机号", "手机", "手机号码", "电话", "买家手机号", "收货人手机", "收货人手机号",
                       "收件人手机号", "联系手机"),
              help="+86 138-0000-0001 is fine; a masked 138****0001 is no number"),
    FieldSpec("unionid", "unionid", aliases=("union_id", "微信unionid")),
    FieldSpec("amount", "实付金额", Kind.AMOUNT,
              aliases=("total", "金额", "实付金额", "订单金额", "实付款", "实付", "实收金额", "支付金额", "付款金额",
                       "买家实付"),
              help="yuan: 199, ¥1,299.00, 88元"),
    FieldSpec("status", "订单状态", Kind.CHOICE, aliases=("状态", "订单状态", "交易状态"), values=STATUSES,
              what="an order state sopbot knows", help="paid, refunded, cancelled; unpaid rows are skipped"),
    FieldSpec("refund", "退款状态", Kind.CHOICE, aliases=("退款状态", "售后状态", "订单退款状态"),
              values=REFUND_STATES, otherwise=REFUND_NONE, what="a refund state",
              help="退款成功 makes the order refunded; other values are listed and read as no refund"),
    FieldSpec("refund_amount", "退款金额", Kind.AMOUNT, aliases=("退款金额", "已退款金额"),
              help="all of it: refunded; part: taken off the amount"),
    FieldSpec("ordered_at", "下单时间", Kind.TIME,
              aliases=("time", "paid_at", "付款时间", "支付时间", "下单时间", "创建时间", "成交时间", "订单付款时间",
                       "订单创建时间"),
              help="2026-11-20 14:03:22, 2026/11/20 14:03, 2026年11月20日 14:03; the settings' timezone"),
    FieldSpec("discounted", "是否优惠", Kind.YES_NO, aliases=("是否优惠", "是否参与活动"), help="是/否"),
    FieldSpec("discount", "优惠", Kind.MARK, combine=Combine.ANY,
              aliases=("优惠", "折扣", "活动价", "优惠金额", "优惠总金额", "优惠方式", "活动", "活动名称", "优惠券",
                       "店铺优惠", "商家优惠", "平台优惠"),
              help="an amount other than 0 or a campaign name: bought on discount"),
    FieldSpec("list_amount", "原价", Kind.AMOUNT, aliases=("原价", "订单原价", "商品总价"),
              help="paid less than this: bought on discount"),
    FieldSpec("product", "商品名称", aliases=("item", "商品", "商品名称", "商品名", "商品标题"),
              help="several joined by ; are several items"),
    FieldSpec("sku", "商品编码", aliases=("商品编码", "商家编码", "sku编码", "货号")),
    FieldSpec("category", "类目", aliases=("品类", "类目", "分类", "商品类目")),
    FieldSpec("qty", "数量", aliases=("quantity", "数量", "件数", "商品数量", "购买数量"), help="2, 2件; 1;2 for two items"),
    FieldSpec("items", "商品明细", aliases=("商品明细",), help="名称*数量@品类; …"),
    FieldSpec("new_arrival", "是否新品", Kind.YES_NO, aliases=("new", "新品", "是否新品")),
    FieldSpec("referrer", "推荐人", aliases=("推荐人", "推荐码", "邀请码", "邀请人"),
              help="a referral code, wxid or phone"),
    FieldSpec("account", "账号", aliases=("账号", "导购账号"), help="which WeChat account's contact"),
)  # fmt: skip
IDENTITY = ("wxid", "phone", "unionid")
SCHEMA = Schema("orders", FIELDS, required=("order_id", "amount", "ordered_at", IDENTITY))


def _preset(
    id: str,
    name: str,
    detect: tuple[str, ...],
    columns: tuple[tuple[str, str], ...],
    ignore: tuple[str, ...],
    source: str,
    values: dict[str, dict[str, str]] | None = None,
) -> Preset:
    return Preset(id, name, columns + tuple((h, IGNORE) for h in ignore), detect, values or {}, source)


YOUZAN = _preset(
    "youzan",
    "有赞",
    ("订单号", "订单实付金额", "收货人手机号/提货人手机号"),
    (
        ("订单号", "order_id"), ("订单状态", "status"), ("订单退款状态", "refund"),
        ("订单已退款金额", "refund_amount"), ("订单实付金额", "amount"), ("买家付款时间", "ordered_at"),
        ("订单创建时间", "ordered_at"), ("买家手机号", "phone"), ("收货人手机号/提货人手机号", "phone"),
        ("店铺优惠合计", "discount"), ("支付优惠合计", "discount"), ("支付营销优惠", "discount"),
        ("店铺优惠方式", "discount"), ("支付优惠方式", "discount"), ("优惠券码名称", "discount"),
        ("全部商品名称", "product"), ("分销员手机号", "referrer"),
    ),
    (
        "销售渠道", "归属店铺", "订单类型", "推广方式", "订单来源", "交易成功时间", "付款方式", "支付流水号",
        "外部订单号", "商品金额合计", "运费", "应收订单金额", "订单实收金额", "订单抵用积分数", "商品种类数",
        "订单配送方式", "同城送达时间/提货时间", "预约同城送达时间/预约自提时间", "收货人省份", "收货人城市",
        "收货人地区", "详细收货地址/提货地址", "收货人/提货人", "买家备注", "订单星级", "买家昵称", "买家姓名",
        "买家是否会员", "下单网点", "收银员", "分销员", "销售导购", "专属导购", "商家订单备注", "桌号",
        "挂账主体", "挂账手机号", "团长订单", "订单风险标签", "分销员所属店铺", "分销员所属团队",
        "分销员所属分组", "分销员等级", "订单佣金类型", "订单佣金金额", "订单下级卖货提成类型",
        "订单下级卖货提成金额", "入住时间",
    ),
    "有赞后台 订单 → 订单查询 → 导出 (订单列表, one row per order)",
)  # fmt: skip

WEIDIAN = _preset(
    "weidian",
    "微店",
    ("订单编号", "收货人/提货人手机号"),
    (
        ("订单编号", "order_id"), ("订单状态", "status"), ("退款状态", "refund"), ("退款金额", "refund_amount"),
        ("实付金额", "amount"), ("支付时间", "ordered_at"), ("付款时间", "ordered_at"), ("下单时间", "ordered_at"),
        ("下单账号", "phone"), ("收货人/提货人手机号", "phone"), ("收件人手机", "phone"),
        ("商品名称", "product"), ("商品件数", "qty"), ("购买数量", "qty"), ("商品编码", "sku"),
        ("商品金额合计", "list_amount"), ("分销商手机号", "referrer"),
    ),
    (
        "订单类型", "发货时间", "确认收货时间", "支付方式", "订单描述", "发货状态", "商品ID", "商品型号",
        "型号编码", "商品价格", "单品折扣后价格", "商品积分", "客服指派退款", "商品原价", "运费退款",
        "收货人/提货人姓名", "收件人姓名", "省", "市", "区", "收货/提货详细地址", "收货详细地址",
        "下单模板信息", "买家留言", "卖家备注", "备注", "分销商店铺ID", "分销店铺名称", "分销商注册姓名",
        "分销佣金", "是否已成团", "身份证号", "是否自提", "网店名称", "代理店铺ID", "代理店铺名称", "发货方",
        "物流公司", "物流单号",
    ),
    "微店店长版 订单管理 → 导出订单 (Excel)",
)  # fmt: skip

TAOBAO = _preset(
    "taobao",
    "淘宝/天猫",
    ("订单编号", "买家会员名", "买家实际支付金额"),
    (
        ("订单编号", "order_id"), ("订单状态", "status"), ("买家实际支付金额", "amount"),
        ("订单付款时间", "ordered_at"), ("订单创建时间", "ordered_at"), ("联系手机", "phone"), ("联系电话", "phone"),
        ("宝贝标题", "product"), ("宝贝总数量", "qty"), ("退款金额", "refund_amount"), ("总金额", "list_amount"),
        ("卡券抵扣", "discount"), ("天猫卡券抵扣", "discount"), ("集分宝抵扣", "discount"),
        ("积分抵扣", "discount"), ("红包抵扣", "discount"),
    ),
    (
        "买家会员名", "买家支付宝账号", "买家应付货款", "买家应付邮费", "买家支付积分", "返点积分",
        "买家实际支付积分", "买家留言", "收货人姓名", "收货地址", "运送方式", "订单备注", "宝贝种类", "物流单号",
        "物流公司", "店铺Id", "店铺名称", "订单关闭原因", "卖家服务费", "买家服务费", "发票抬头", "是否手机订单",
        "分阶段订单信息", "特权订金订单id", "定金排名", "修改后的sku", "修改后的收货地址", "异常信息",
        "是否是O2O交易", "分销商Id", "分销商店铺名称", "是否上传合同照片", "是否上传小票", "是否代付",
        "预约门店", "确认收货时间", "打款商家金额",
    ),
    "千牛 / 卖家中心 已卖出的宝贝 → 批量导出 → 订单报表",
    values={
        "status": {
            "买家已付款，等待卖家发货": "paid", "卖家已发货，等待买家确认": "paid", "卖家部分发货": "paid",
            "交易成功": "paid", "交易关闭": "cancelled", "等待买家付款": "unpaid",
        }
    },
)  # fmt: skip

DOUDIAN = _preset(
    "doudian",
    "抖店",
    ("主订单编号", "子订单编号", "订单应付金额"),
    (
        ("主订单编号", "order_id"), ("子订单编号", "line_id"), ("订单状态", "status"), ("售后状态", "refund"),
        ("订单应付金额", "amount"), ("支付完成时间", "ordered_at"), ("订单提交时间", "ordered_at"),
        ("收件人手机号", "phone"), ("选购商品", "product"), ("商品数量", "qty"), ("商家编码", "sku"),
        ("优惠总金额", "discount"), ("平台优惠", "discount"), ("商家优惠", "discount"), ("达人优惠", "discount"),
        ("支付优惠", "discount"), ("平台实际承担优惠金额", "discount"), ("商家实际承担优惠金额", "discount"),
        ("达人实际承担优惠金额", "discount"),
    ),
    (
        "商品规格", "商品ID", "商品单价", "商品金额", "运费", "手续费", "支付方式", "收件人", "省", "市", "区",
        "街道", "详细地址", "是否修改过地址", "买家留言", "流量来源", "流量渠道", "流量类型", "流量体裁",
        "订单完成时间", "APP渠道", "广告渠道", "取消原因", "商家备注", "旗帜颜色", "承诺发货时间", "发货时间",
        "达人ID", "达人昵称", "所属门店ID", "仓库ID", "仓库名称", "预约发货时间", "快递信息", "商家收入金额",
    ),
    "抖店后台 订单 → 订单管理 → 批量导出 (one row per 子订单)",
)  # fmt: skip

PRESETS: tuple[Preset, ...] = (YOUZAN, WEIDIAN, TAOBAO, DOUDIAN)


def columns_help() -> str:
    """`--help`: every field with the header names it may have, then the presets."""
    need = {"order_id", "amount", "ordered_at"}
    fields = []
    for spec in FIELDS:
        mark = (
            " (required)"
            if spec.name in need
            else " (one of wxid/phone/unionid)"
            if spec.name in IDENTITY
            else ""
        )
        fields.append(f"{spec.name}{mark}: {', '.join(dict.fromkeys((spec.label, *spec.aliases)))}")
    presets = [f"{p.name} ({p.id}): {' + '.join(p.detect)}" for p in PRESETS]
    return (
        "Columns (any of these header names): "
        + " · ".join(fields)
        + ". Shop exports recognised by their header row: "
        + " · ".join(presets)
        + ". Other names: map them in sop/columns.yaml or a file given with --mapping (docs/orders.md)."
    )
