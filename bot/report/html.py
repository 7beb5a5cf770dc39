"""A report as one self-contained HTML file: inline CSS, charts drawn as inline SVG on the
server (`bot.report.svg`), no script, nothing fetched from the network. It opens offline,
reads on a phone (tables scroll sideways) and prints.

The page is a Jinja2 template shipped inside the package (`templates/report.html.j2`),
rendered with autoescaping: every name a contact or an operator wrote is text on the page,
never markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined

from bot import __version__
from bot.report import labels as L
from bot.report.svg import charts
from bot.report.tables import header, tables
from bot.results.model import Report

TEMPLATE = "report.html.j2"


@dataclass(frozen=True)
class Card:
    """A headline figure at the top of the page."""

    name: str
    value: str
    detail: str = ""


def render_html(report: Report) -> str:
    """The whole page."""
    return (
        _environment()
        .get_template(TEMPLATE)
        .render(
            title=f"私域运营报表 {report.period.label} · {L.account_name(report)}",
            header=header(report),
            cards=cards(report),
            tables=tables(report),
            charts=charts(report),
            chart_notes=CHART_NOTES,
            no_data=L.NO_DATA,
            version=__version__,
        )
    )


CHART_NOTES = {
    "tiers": "条宽 = 达到该层及以上的人数；括号内为相对上一层的比例 "
    "(bar width: contacts at the tier or above; in brackets: share of the step above)",
    "migration": "蓝 = 升级，橙 = 降级，灰 = 未变；颜色深浅按各自最大值 "
    "(blue moved up, orange moved down, grey stayed; each shaded against its own largest cell)",
    "days": "柱子在线上为加粉，线下为删粉 (above the line: added; below: deleted)",
    "tags": "每天结束时带该标签的人数 (contacts carrying the tag at the end of each day)",
    "sops": "每条 = 计划发送的消息，按结果分段 (each bar: the messages planned, by outcome)",
}


def cards(report: Report) -> list[Card]:
    t, p = report.totals, report.performance
    before = report.previous_performance
    value_change = ""
    if before is not None:
        moved = L.change(p.value_cents, before.value_cents)
        value_change = f"上期 period before {L.yuan(before.value_cents)} ({moved})"
    return [
        Card(
            L.name("assets_end"),
            L.count(t.assets_end),
            f"期初 at start {L.count(t.assets_start)}",
        ),
        Card(L.name("added"), L.count(t.added), f"{L.chinese('add_rate')} {L.ratio(t.add_rate)}"),
        Card(L.name("deleted"), L.count(t.deleted), f"{L.chinese('delete_rate')} {L.ratio(t.delete_rate)}"),
        Card(L.name("interaction_rate"), L.percent(t.interaction_rate), L.ratio(t.interaction_rate)),
        Card(L.name("value"), L.yuan(p.value_cents), value_change),
    ]


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("bot.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
