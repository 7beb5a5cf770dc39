"""A report as one CSV file in a long format a spreadsheet can filter and pivot.

Every row is one figure: `period, account, section, item, item_name, measure,
measure_name, value, numerator, denominator`. A rate has its numerator and denominator
beside it (its value is empty when the denominator is 0); money is in yuan (`…_yuan`,
two decimals). Per-day rows have the day as their item (`day`; `tag_day`, with the tag as
item_name). A section with nothing in it has one row whose measure is `none`.
Rows from several reports can be put together: each says its period and account.

The file is UTF-8 with a byte-order mark, so Excel shows the Chinese, with CRLF line ends.
A cell that begins with `=`, `+`, `-`, `@` or a tab is prefixed with `'` (a name a
contact chose is never run as a formula).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

from bot.report import labels as L
from bot.results.model import Performance, Ratio, Report

COLUMNS = (
    "period",
    "account",
    "section",
    "item",
    "item_name",
    "measure",
    "measure_name",
    "value",
    "numerator",
    "denominator",
)
NONE = "none"
_ABOUT = {  # the names of the `report` section's rows
    "window": ("统计口径", "window"),
    "start": ("开始", "first day"),
    "end": ("结束", "last day"),
    "days": ("天数", "days"),
    "generated_at": ("生成时间", "generated"),
    "accounts": ("账号", "accounts"),
}

Row = tuple[
    str, str, str, str, str, str, str
]  # section, item, item_name, measure, value, numerator, denominator


def render_csv(report: Report) -> bytes:
    """The whole file, with its byte-order mark."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    period = report.period.label
    account = report.account if report.account is not None else "all"
    for section, item, item_name, measure, value, numerator, denominator in rows(report):
        writer.writerow(
            [
                period,
                _safe(account),
                section,
                _safe(item),
                _safe(item_name),
                measure,
                _measure_name(measure),
                _safe(value),
                numerator,
                denominator,
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def rows(report: Report) -> Iterator[Row]:
    """The figures, section by section (without period and account)."""
    yield from _section("report", _about(report))
    t = report.totals
    yield from _section(
        "totals",
        [
            *(
                _n("", "", m, getattr(t, m))
                for m in ("assets_start", "assets_end", "added", "deleted", "active")
            ),
            *(_r("", "", m, getattr(t, m)) for m in ("add_rate", "delete_rate", "interaction_rate")),
        ],
    )
    yield from _section(
        "added_by_source",
        [_n(k, L.SOURCES.get(k, ""), "added", v) for k, v in t.added_by_source.items()],
    )
    yield from _section(
        "deleted_by_method",
        [_n(k, L.METHODS.get(k, ""), "deleted", v) for k, v in t.deleted_by_method.items()],
    )
    day_rows: list[Row] = []
    for d in report.days:
        day = d.day.isoformat()
        day_rows += [
            _n(day, "", m, getattr(d, m))
            for m in ("added", "deleted", "sent", "replies", "messages", "orders")
        ]
        day_rows.append(_yuan(day, "", "amount", d.amount_cents))
    yield from _section("day", day_rows)
    yield from _section(
        "tier_end",
        [_n(tier, L.tier_name(report, tier), "contacts", n) for tier, n in report.tiers_end.items()],
    )
    yield from _section(
        "migration",
        [
            _n(
                f"{m.source}→{m.target}",
                f"{L.tier_name(report, m.source)} → {L.tier_name(report, m.target)}",
                "contacts",
                m.count,
            )
            for m in report.migration
        ],
    )
    yield from _section("tag", [_n(tag, "", "contacts", n) for tag, n in report.tags_top])
    yield from _section(
        "tag_day",
        [
            _n((report.period.start + timedelta(days=i)).isoformat(), tag, "contacts", n)
            for tag, values in report.tag_days.items()
            for i, n in enumerate(values)
        ],
    )
    sop_rows: list[Row] = []
    for s in report.sops:
        item = s.sop_id if s.step_id is None else f"{s.sop_id}/{s.step_id}"
        sop_rows += [_n(item, s.name, m, getattr(s, m)) for m in ("planned", "sent")]
        sop_rows.append(_n(item, s.name, "skipped", sum(s.skipped.values())))
        sop_rows += [_n(item, s.name, f"skipped:{reason}", n) for reason, n in s.skipped.items()]
        sop_rows += [
            _n(item, s.name, m, getattr(s, m)) for m in ("failed", "unknown", "pending", "reached", "replied")
        ]
        sop_rows.append(_r(item, s.name, "reply_rate", s.reply_rate))
        sop_rows += [
            _n(item, s.name, "orders_last_touch", s.orders_last_touch),
            _yuan(item, s.name, "amount_last_touch", s.amount_last_touch_cents),
            _n(item, s.name, "orders_first_touch", s.orders_first_touch),
            _yuan(item, s.name, "amount_first_touch", s.amount_first_touch_cents),
            _n(item, s.name, "deleted_24h", s.deleted_24h),
            _n(item, s.name, "deleted_7d", s.deleted_7d),
            _r(item, s.name, "deletion_rate_24h", s.deletion_rate_24h),
            _r(item, s.name, "deletion_rate_7d", s.deletion_rate_7d),
        ]
        sop_rows += [_n(item, s.name, f"left_out:{reason}", n) for reason, n in s.left_out.items()]
    yield from _section("sop", sop_rows)
    group_rows: list[Row] = []
    for g in report.groups:
        item = str(g.room_id)
        group_rows.append((item, g.topic, "group_type", g.group_type or "", "", ""))
        group_rows += [
            _n(item, g.topic, m, getattr(g, m)) for m in ("members", "joins", "leaves", "speakers")
        ]
        group_rows.append(_r(item, g.topic, "speak_share", g.speak_share))
    yield from _section("group", group_rows)
    tier_orders: list[Row] = []
    for line in report.orders_by_tier:
        name = L.tier_name(report, line.tier)
        tier_orders += [
            _n(line.tier, name, "orders", line.orders),
            _yuan(line.tier, name, "amount", line.amount_cents),
        ]
    yield from _section("orders_by_tier", tier_orders)
    s = report.success
    yield from _section(
        "success",
        [
            _r("", "", "lead", s.lead),
            _r("", "", "service", s.service),
            _r("", "", "service_answered", s.service_answered),
            _n("", "", "service_open", s.service_open),
            _r("", "", "conversion", s.conversion),
        ],
    )
    performance = _performance("this_period", report.performance)
    if report.previous_performance is not None:
        performance += _performance("period_before", report.previous_performance)
    yield from _section("performance", performance)
    values: list[Row] = []
    for v in report.top_values:
        item = str(v.contact_id)
        values.append((item, v.name, "tier", v.tier, "", ""))
        values += [
            _yuan(item, v.name, "lifetime", v.lifetime_cents),
            _yuan(item, v.name, "period_amount", v.period_cents),
            _yuan(item, v.name, "referred", v.referred_cents),
            _yuan(item, v.name, "total", v.total_cents),
        ]
    yield from _section("top_value", values)


def _about(report: Report) -> list[tuple[str, str, str, str, str, str]]:
    about = [
        ("", "", "start", report.period.start.isoformat(), "", ""),
        ("", "", "end", report.period.end.isoformat(), "", ""),
        ("", "", "days", str(report.period.days), "", ""),
        ("", "", "generated_at", report.generated_at.isoformat(), "", ""),
        ("", "", "accounts", ";".join(report.accounts), "", ""),
    ]
    about += [(key, "", "window", _number(value), "", "") for key, value in report.windows.items()]
    return about


def _performance(item: str, p: Performance) -> list[tuple[str, str, str, str, str, str]]:
    name = "本期" if item == "this_period" else "上期"
    return [
        _n(item, name, "reachable", p.reachable),
        _r(item, name, "reach_rate", p.reach_rate),
        _r(item, name, "conversion_rate", p.conversion_rate),
        _yuan(item, name, "average_order", p.average_order_cents),
        _yuan(item, name, "value", p.value_cents),
    ]


def _section(section: str, lines: list[tuple[str, str, str, str, str, str]]) -> Iterator[Row]:
    if not lines:
        yield (section, "", "", NONE, "", "", "")
        return
    for line in lines:
        yield (section, *line)


def _n(item: str, item_name: str, measure: str, value: float) -> tuple[str, str, str, str, str, str]:
    return (item, item_name, measure, _number(value), "", "")


def _r(item: str, item_name: str, measure: str, ratio: Ratio) -> tuple[str, str, str, str, str, str]:
    value = ratio.value
    shown = "" if value is None else _number(round(value, 6))
    return (item, item_name, measure, shown, _number(ratio.numerator), _number(ratio.denominator))


def _yuan(item: str, item_name: str, measure: str, cents: float) -> tuple[str, str, str, str, str, str]:
    return (item, item_name, f"{measure}_yuan", f"{cents / 100:.2f}", "", "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _measure_name(measure: str) -> str:
    if measure == NONE:
        return L.NO_DATA
    base, _, detail = measure.partition(":")
    base = base.removesuffix("_yuan")
    known = L.MEASURES.get(base) or _ABOUT.get(base)
    if known is None:
        return measure
    text = f"{known[0]} {known[1]}"
    return f"{text}: {detail}" if detail else text


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _safe(cell: str) -> str:
    """A text cell Excel would read as a formula gets a leading `'` (numbers are left alone)."""
    if cell.startswith(_FORMULA) and not _is_number(cell):
        return "'" + cell
    return cell


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
