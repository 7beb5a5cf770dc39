"""A report as tables of display text: one definition shared by the terminal (rich) and the
HTML page, so both show the same rows with the same names.

Cells are plain text: names contacts and operators wrote (tags, group topics, SOP names,
contact names) stay as written here and are escaped by whoever draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.report import labels as L
from bot.results.model import DayPoint, Performance, Ratio, Report, StepOutcome


@dataclass
class Table:
    key: str  # the section (labels.SECTIONS)
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: int = 1  # columns from this index on are numbers (right-aligned) …
    text: set[int] = field(default_factory=set)  # … but for these
    note: str = ""  # what the figures mean, under the title
    highlight: set[int] = field(default_factory=set)  # rows to stress (the factor that moved most)

    @property
    def empty(self) -> bool:
        return not self.rows

    def is_numeric(self, column: int) -> bool:
        return column >= self.numeric and column not in self.text


def header(report: Report) -> list[tuple[str, str]]:
    """(name, value) lines above the tables."""
    period = report.period
    return [
        (
            "报表期间 period",
            f"{period.label} ({period.start.isoformat()} – {period.end.isoformat()}, {period.days} 天 days)",
        ),
        ("账号 account", L.account_name(report)),
        ("生成时间 generated", report.generated_at.strftime("%Y-%m-%d %H:%M %z")),
    ]


def tables(report: Report) -> list[Table]:
    """Every section of the report, in reading order; an empty one keeps its place."""
    return [
        totals(report),
        added_by_source(report),
        deleted_by_method(report),
        days(report),
        tiers(report),
        migration(report),
        tags(report),
        sops(report),
        sop_effects(report),
        groups(report),
        orders_by_tier(report),
        success(report),
        performance(report),
        top_values(report),
        windows(report),
    ]


def totals(report: Report) -> Table:
    t = report.totals
    rows = [
        [L.name("assets_start"), L.count(t.assets_start)],
        [L.name("assets_end"), L.count(t.assets_end)],
        [L.name("added"), L.count(t.added)],
        [L.name("deleted"), L.count(t.deleted)],
        [L.name("active"), L.count(t.active)],
        [L.name("add_rate"), L.ratio(t.add_rate)],
        [L.name("delete_rate"), L.ratio(t.delete_rate)],
        [L.name("interaction_rate"), L.ratio(t.interaction_rate)],
    ]
    return Table("totals", L.section("totals"), ["指标 measure", "数值 value"], rows)


def added_by_source(report: Report) -> Table:
    rows = [[L.source_name(k), L.count(v)] for k, v in report.totals.added_by_source.items()]
    return Table("added_by_source", L.section("added_by_source"), ["来源 source", L.name("added")], rows)


def deleted_by_method(report: Report) -> Table:
    rows = [[L.method_name(k), L.count(v)] for k, v in report.totals.deleted_by_method.items()]
    return Table(
        "deleted_by_method", L.section("deleted_by_method"), ["识别方式 seen by", L.name("deleted")], rows
    )


def days(report: Report) -> Table:
    rows = [
        [
            d.day.isoformat(),
            L.count(d.added),
            L.count(d.deleted),
            L.count(d.sent),
            L.count(d.replies),
            L.count(d.messages),
            L.count(d.orders),
            L.yuan(d.amount_cents),
        ]
        for d in report.days
    ]
    columns = [
        "日期 day",
        *(L.name(m) for m in ("added", "deleted", "sent", "replies", "messages", "orders", "amount")),
    ]
    return Table("days", L.section("days"), columns, rows if any(_busy(d) for d in report.days) else [])


def _busy(d: DayPoint) -> bool:
    return any((d.added, d.deleted, d.sent, d.replies, d.messages, d.orders, d.amount_cents))


def tiers(report: Report) -> Table:
    steps = L.funnel(report)
    total = sum(n for _, n, _ in steps)
    rows = [
        [
            L.tier_name(report, tier),
            L.count(n),
            L.count(above),
            L.percent(_share(n, total)),
        ]
        for tier, n, above in steps
    ]
    columns = ["分层 tier", "人数 contacts", "该层及以上 at or above", "占比 share"]
    return Table(
        "tiers",
        L.section("tiers"),
        columns,
        rows if total else [],
        note="期末各层人数 contacts in each tier at the end of the period",
    )


def migration(report: Report) -> Table:
    tiers_, cells = L.migration_cells(report)
    rows = [
        [L.tier_name(report, source), *(L.count(cells.get((source, target), 0)) for target in tiers_)]
        for source in tiers_
    ]
    columns = ["期初 from \\ 期末 to", *(L.tier_name(report, t) for t in tiers_)]
    up = sum(m.count for m in report.migration if L.direction(report, m.source, m.target) > 0)
    down = sum(m.count for m in report.migration if L.direction(report, m.source, m.target) < 0)
    note = f"升级 moved up {up} · 降级 moved down {down} · 行: 期初分层, 列: 期末分层 (rows: tier at the start, columns: at the end)"
    return Table("migration", L.section("migration"), columns, rows, note=note)


def tags(report: Report) -> Table:
    rows = [[tag, L.count(n)] for tag, n in report.tags_top]
    return Table(
        "tags",
        L.section("tags"),
        ["标签 tag", L.name("contacts")],
        rows,
        note="期末带该标签的人数 contacts carrying the tag at the end",
    )


def sops(report: Report) -> Table:
    """What happened to the messages each SOP planned."""
    rows = []
    for row in report.sops:
        reasons = "、".join(f"{reason} {n}" for reason, n in row.skipped.items())
        left_out = "、".join(f"{reason} {n}" for reason, n in row.left_out.items())
        rows.append(
            [
                *_sop_names(row),
                L.count(row.planned),
                L.count(row.sent),
                L.count(sum(row.skipped.values())),
                L.count(row.failed),
                L.count(row.unknown),
                L.count(row.pending),
                reasons or L.DASH,
                left_out or L.DASH,
            ]
        )
    columns = [
        "名称 name",
        "SOP / 步骤 step",
        *(L.name(m) for m in ("planned", "sent", "skipped", "failed", "unknown", "pending")),
        "跳过原因 skipped because",
        L.name("left_out"),
    ]
    return Table("sops", L.section("sops"), columns, rows, numeric=2, text={8, 9})


def sop_effects(report: Report) -> Table:
    """What the SOPs reached, who replied, bought or deleted the account afterwards."""
    short = L.window(report, "deletion_short_hours", "24h")
    long = L.window(report, "deletion_long_days", "7d")
    rows = [
        [
            *_sop_names(row),
            L.count(row.reached),
            L.ratio(row.reply_rate),
            f"{L.count(row.orders_last_touch)} / {L.yuan(row.amount_last_touch_cents)}",
            f"{L.count(row.orders_first_touch)} / {L.yuan(row.amount_first_touch_cents)}",
            f"{L.count(row.deleted_24h)} / {L.count(row.deleted_7d)}",
            L.ratio(row.deletion_rate_24h),
            L.ratio(row.deletion_rate_7d),
        ]
        for row in report.sops
    ]
    columns = [
        "名称 name",
        "SOP / 步骤 step",
        L.name("reached"),
        L.name("reply_rate"),
        "末次归因 订单/金额 last touch",
        "首次归因 订单/金额 first touch",
        f"删粉 {short} / {long} deleted after",
        f"删粉率 {short} deletion rate",
        f"删粉率 {long} deletion rate",
    ]
    note = (
        f"回复: 发送后 {L.window(report, 'reply_hours', '24h')} 内写来消息 (reply rate: sent messages answered "
        f"within the window); 订单: 消息后 {L.window(report, 'order_days', '7d')} 内下单, 末次触达为主, 首次触达"
        "为参考 (orders: last touch, first touch for comparison); 删粉率 = 删粉 / 一对一触达 (deleted / reached)"
    )
    return Table("sop_effects", L.section("sop_effects"), columns, rows, numeric=2, note=note)


def _sop_names(row: StepOutcome) -> list[str]:
    if row.step_id is None:
        return [row.name, row.sop_id]
    return [f"└ {row.name}", f"{row.sop_id}/{row.step_id}"]


def groups(report: Report) -> Table:
    rows = [
        [
            g.topic,
            g.group_type or L.DASH,
            L.count(g.members),
            L.count(g.joins),
            L.count(g.leaves),
            L.count(g.speakers),
            L.ratio(g.speak_share),
        ]
        for g in report.groups
    ]
    columns = [
        "群名 group",
        L.name("group_type"),
        L.name("members"),
        L.name("joins"),
        L.name("leaves"),
        L.name("speakers"),
        L.name("speak_share"),
    ]
    return Table("groups", L.section("groups"), columns, rows, numeric=2)


def orders_by_tier(report: Report) -> Table:
    rows = [
        [L.tier_name(report, line.tier), L.count(line.orders), L.yuan(line.amount_cents)]
        for line in report.orders_by_tier
    ]
    return Table(
        "orders_by_tier",
        L.section("orders_by_tier"),
        ["分层 tier", L.name("orders"), L.name("amount")],
        rows,
        note="按买家当前分层 by the buyer's tier now",
    )


def success(report: Report) -> Table:
    s = report.success
    rows = [
        [L.name("lead"), L.ratio(s.lead)],
        [L.name("service"), L.ratio(s.service)],
        [f"  {L.name('service_answered')}", L.ratio(s.service_answered)],
        [f"  {L.name('service_open')}", L.count(s.service_open)],
        [L.name("conversion"), L.ratio(s.conversion)],
    ]
    note = (
        f"服务: {L.window(report, 'service_minutes', '30min')} 内回复且客户再回话 "
        "(service: answered within the window, and the contact wrote back)"
    )
    return Table("success", L.section("success"), ["指标 measure", "数值 value"], rows, note=note)


def performance_factors(p: Performance) -> list[tuple[str, float | None, str]]:
    """(measure, comparable number, shown text) for each factor of 私域业绩 and the result."""
    return [
        ("reachable", float(p.reachable), L.count(p.reachable)),
        ("reach_rate", p.reach_rate.value, L.ratio(p.reach_rate)),
        ("conversion_rate", p.conversion_rate.value, L.ratio(p.conversion_rate)),
        ("average_order", p.average_order_cents, L.yuan(p.average_order_cents)),
        ("value", p.value_cents, L.yuan(p.value_cents)),
    ]


def performance(report: Report) -> Table:
    now = performance_factors(report.performance)
    before = performance_factors(report.previous_performance) if report.previous_performance else None
    rows, moves = [], []
    for i, (measure, value, shown) in enumerate(now):
        previous_value, previous_shown = (before[i][1], before[i][2]) if before else (None, L.DASH)
        moved = L.change(value, previous_value)
        rows.append([L.name(measure), shown, previous_shown, moved])
        if measure != "value" and value is not None and previous_value:
            moves.append((abs(value - previous_value) / previous_value, i))
    highlight = {max(moves)[1]} if moves and max(moves)[0] > 0 else set()
    for index in highlight:
        rows[index][3] += " ◀"
    return Table(
        "performance",
        L.section("performance"),
        ["因子 factor", "本期 this period", "上期 period before", "变化 change"],
        rows,
        note="私域业绩 = 可触达人数 × 触达率 × 转化率 × 客单价 (reachable × reach rate × conversion × average order); "
        "标出的是变化最大的因子 (the factor that moved most is marked)",
        highlight=highlight,
    )


def top_values(report: Report) -> Table:
    rows = [
        [
            v.name,
            L.tier_name(report, v.tier),
            L.yuan(v.lifetime_cents),
            L.yuan(v.period_cents),
            L.yuan(v.referred_cents),
            L.yuan(v.total_cents),
        ]
        for v in report.top_values
    ]
    columns = [
        "客户 contact",
        L.name("tier"),
        L.name("lifetime"),
        L.name("period_amount"),
        L.name("referred"),
        L.name("total"),
    ]
    return Table(
        "top_values",
        L.section("top_values"),
        columns,
        rows,
        numeric=2,
        note="客户价值 = 累计消费 + 推荐带来的消费 (value = lifetime orders + what the people they referred bought)",
    )


def windows(report: Report) -> Table:
    rows = []
    for key, value in report.windows.items():
        chinese, english, unit = L.WINDOWS.get(key, (key, "", ""))
        rows.append([f"{chinese} {english}".strip(), f"{L.number(value)}{unit}"])
    return Table("windows", L.section("windows"), ["口径 window", "数值 value"], rows)


def _share(n: int, total: int) -> Ratio:
    return Ratio(n, total)
