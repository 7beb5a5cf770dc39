"""Names and number formats shared by every form of a report (terminal, CSV, HTML).

Names are "中文 English"; the Chinese is what operators use (docs/metrics.md has the
formulas). Money is kept in cents (分) and shown in yuan; a rate with a zero denominator
is shown as "—" (no data), never as 0 %.
"""

from __future__ import annotations

from bot.results.model import Ratio, Report, StepOutcome

NO_DATA = "本期无数据 no data in this period"
DASH = "—"

# measure → (中文, English)
MEASURES: dict[str, tuple[str, str]] = {
    "assets_start": ("期初客群资产", "contacts at start"),
    "assets_end": ("期末客群资产", "contacts at end"),
    "added": ("加粉数", "added"),
    "deleted": ("删粉数", "deleted"),
    "active": ("互动人数", "contacts who wrote"),
    "add_rate": ("加粉率", "add rate"),
    "delete_rate": ("删粉率", "deletion rate"),
    "interaction_rate": ("互动率", "interaction rate"),
    "sent": ("发送", "sent"),
    "replies": ("回复", "replies"),
    "messages": ("消息数", "messages"),
    "orders": ("订单数", "orders"),
    "amount": ("金额", "amount"),
    "contacts": ("人数", "contacts"),
    "planned": ("计划", "planned"),
    "skipped": ("跳过", "skipped"),
    "failed": ("失败", "failed"),
    "unknown": ("未确认", "unknown"),
    "pending": ("待发", "not yet sent"),
    "reached": ("触达(一对一)", "reached 1:1"),
    "replied": ("回复人数", "replied"),
    "reply_rate": ("回复率", "reply rate"),
    "orders_last_touch": ("归因订单(末次)", "orders, last touch"),
    "amount_last_touch": ("归因金额(末次)", "amount, last touch"),
    "orders_first_touch": ("归因订单(首次)", "orders, first touch"),
    "amount_first_touch": ("归因金额(首次)", "amount, first touch"),
    "deleted_24h": ("删粉(短窗口)", "deleted within the short window"),
    "deleted_7d": ("删粉(长窗口)", "deleted within the long window"),
    "deletion_rate_24h": ("删粉率(短窗口)", "deletion rate, short window"),
    "deletion_rate_7d": ("删粉率(长窗口)", "deletion rate, long window"),
    "left_out": ("未发送(退订/拉黑)", "left out"),
    "group_type": ("群类型", "group type"),
    "members": ("群成员", "members"),
    "joins": ("入群", "joins"),
    "leaves": ("退群", "leaves"),
    "speakers": ("发言人数", "members who spoke"),
    "speak_share": ("发言率", "share who spoke"),
    "lead": ("引流成功率", "lead success rate"),
    "service": ("服务成功率", "service success rate"),
    "service_answered": ("及时回复率", "questions answered in time"),
    "service_open": ("待定问题", "questions still within their windows"),
    "conversion": ("变现成功率", "conversion success rate"),
    "reachable": ("可触达人数", "reachable contacts"),
    "reach_rate": ("触达率", "reach rate"),
    "conversion_rate": ("转化率", "conversion rate"),
    "average_order": ("客单价", "average order value"),
    "value": ("私域业绩", "private-domain performance"),
    "tier": ("分层", "tier"),
    "lifetime": ("累计消费", "lifetime orders"),
    "period_amount": ("本期消费", "this period"),
    "referred": ("推荐带来", "referred"),
    "total": ("客户价值", "value (CLV)"),
}

# the attribution windows (Report.windows): name and unit
WINDOWS: dict[str, tuple[str, str, str]] = {
    "reply_hours": ("回复窗口", "reply window", "h"),
    "order_days": ("订单归因窗口", "order window", "d"),
    "deletion_short_hours": ("删粉归因短窗口", "deletion window, short", "h"),
    "deletion_long_days": ("删粉归因长窗口", "deletion window, long", "d"),
    "service_minutes": ("服务响应时限", "service window", "min"),
}

SOURCES = {
    "request": "好友申请",
    "group": "群聊",
    "referral": "推荐",
    "import": "导入",
    "sync": "同步",
}
METHODS = {
    "send_refused": "发送被拒",
    "sync_missing": "同步时消失",
    "transport": "平台通知",
}

SECTIONS: dict[str, tuple[str, str]] = {
    "totals": ("客群资产", "Contact assets"),
    "added_by_source": ("加粉来源", "Added, by source"),
    "deleted_by_method": ("删粉识别方式", "Deleted, by how it was seen"),
    "days": ("每日新增与删除", "Added and deleted per day"),
    "tiers": ("分层漏斗", "Tier funnel"),
    "migration": ("分层迁移", "Tier migration"),
    "tags": ("标签分布", "Tags"),
    "sops": ("SOP 发送结果", "SOP outcomes"),
    "sop_effects": ("SOP 效果与归因", "SOP replies, orders and deletions"),
    "groups": ("社群", "Groups"),
    "orders_by_tier": ("分层订单", "Orders by tier"),
    "success": ("三个成功率", "Success rates"),
    "performance": ("私域业绩", "Performance"),
    "top_values": ("客户价值 Top", "Most valuable contacts"),
    "windows": ("统计口径", "Attribution windows"),
}


def name(measure: str) -> str:
    """`加粉数 added`."""
    chinese, english = MEASURES[measure]
    return f"{chinese} {english}"


def chinese(measure: str) -> str:
    return MEASURES[measure][0]


def section(key: str) -> str:
    chinese_name, english = SECTIONS[key]
    return f"{chinese_name} {english}"


def source_name(source: str) -> str:
    return f"{SOURCES[source]} {source}" if source in SOURCES else source


def method_name(method: str) -> str:
    return f"{METHODS[method]} {method}" if method in METHODS else method


def account_name(report: Report) -> str:
    return report.account if report.account is not None else "全部账号 all accounts"


def tier_name(report: Report, tier: str) -> str:
    """The tier's 中文 name (the id for a tier the ladder does not know)."""
    return report.tier_names.get(tier, tier)


def tier_order(report: Report) -> list[str]:
    """Every tier the report mentions, the ladder's first, lowest rung first; then any other
    (a tier no longer on the ladder, a contact new in the period) as they appear."""
    order = list(report.tier_names)
    for tier in [
        *report.tiers_end,
        *(m.source for m in report.migration),
        *(m.target for m in report.migration),
    ]:
        if tier not in order:
            order.append(tier)
    return order


def funnel(report: Report) -> list[tuple[str, int, int]]:
    """(tier, contacts in it, contacts in it or above) per tier, lowest first: the width of
    a funnel step is everyone who reached that tier or a higher one."""
    tiers = [tier for tier in tier_order(report) if tier in report.tier_names or tier in report.tiers_end]
    counts = [report.tiers_end.get(tier, 0) for tier in tiers]
    above = [sum(counts[i:]) for i in range(len(counts))]
    return list(zip(tiers, counts, above, strict=True))


def migration_cells(report: Report) -> tuple[list[str], dict[tuple[str, str], int]]:
    """The tiers on both axes and the count per (from, to)."""
    tiers = [
        tier for tier in tier_order(report) if any(tier in (m.source, m.target) for m in report.migration)
    ]
    cells: dict[tuple[str, str], int] = {}
    for move in report.migration:
        cells[move.source, move.target] = cells.get((move.source, move.target), 0) + move.count
    return tiers, cells


def direction(report: Report, source: str, target: str) -> int:
    """+1 a move up the ladder, -1 down, 0 stayed (or a tier the ladder does not know)."""
    ladder = list(report.tier_names)
    if source == target or source not in ladder or target not in ladder:
        return 0
    return 1 if ladder.index(target) > ladder.index(source) else -1


def whole_sops(report: Report) -> list[StepOutcome]:
    """The SOP rows for the outcome chart: whole SOPs (step None); the steps when the report
    has no whole-SOP rows."""
    whole = [row for row in report.sops if row.step_id is None]
    return whole or list(report.sops)


def window(report: Report, key: str, default: str) -> str:
    """A window as written: `24h`, `7d` (the default when the report does not say)."""
    if key not in report.windows:
        return default
    return f"{number(report.windows[key])}{WINDOWS[key][2]}"


# -- numbers ------------------------------------------------------------------------------


def count(value: int | float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def percent(ratio: Ratio | None, digits: int = 1) -> str:
    """`4.2%`, or — when the denominator is 0."""
    if ratio is None or ratio.value is None:
        return DASH
    return f"{ratio.value * 100:.{digits}f}%"


def ratio(ratio: Ratio) -> str:
    """`4.2% (5/120)`: the rate and what it is made of."""
    if ratio.value is None:
        return f"{DASH} (0/0)" if not ratio.numerator else f"{DASH} ({_n(ratio.numerator)}/0)"
    return f"{percent(ratio)} ({_n(ratio.numerator)}/{_n(ratio.denominator)})"


def yuan(cents: int | float) -> str:
    """`¥1,234.56` from cents."""
    return f"¥{cents / 100:,.2f}"


def change(now: float | None, before: float | None) -> str:
    """`+12.5%` against the period before; — when there is nothing to compare with."""
    if now is None or before is None or before == 0:
        return DASH
    return f"{(now - before) / before * 100:+.1f}%"


def number(value: float) -> str:
    """`24`, `0.5`: no `.0` on a whole number."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
