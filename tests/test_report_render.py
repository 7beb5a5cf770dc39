"""How a report is shown: terminal tables, the CSV file, JSON and the HTML page, from a
hand-built report with known numbers (tests/report_sample.py)."""

from __future__ import annotations

import csv
import io
import json
import re
import tomllib
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import pytest
from rich.cells import cell_len

from bot.report import FORMATS, render
from bot.report.csvfile import COLUMNS
from bot.report.html import render_html
from bot.report.labels import NO_DATA, SECTIONS
from bot.report.tables import tables
from bot.report.text import render_text
from tests.report_sample import empty_report, hostile_report, sample_report

REPO = Path(__file__).resolve().parents[1]


# -- terminal -----------------------------------------------------------------------------


def text_rows(text: str) -> dict[str, list[list[str]]]:
    """The terminal's table rows by their first cell (cells are 2+ spaces apart)."""
    rows: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) > 1:
            rows.setdefault(cells[0], []).append(cells[1:])
    return rows


def test_text_tables_show_the_figures_with_what_they_are_made_of() -> None:
    text = render_text(sample_report())
    every = text_rows(text)
    rows = {first: found[0] for first, found in every.items()}
    assert text.startswith(
        "sopbot 报表 report 2026-W48\n报表期间 period: 2026-W48 (2026-11-23 – 2026-11-29, 7 天 days)"
    )
    assert rows["期初客群资产 contacts at start"] == ["120"]
    assert rows["期末客群资产 contacts at end"] == ["125"]
    assert rows["加粉率 add rate"] == ["8.3% (10/120)"]
    assert rows["删粉率 deletion rate"] == ["4.2% (5/120)"]
    assert rows["互动率 interaction rate"] == ["24.0% (30/125)"]
    assert rows["好友申请 request"] == ["6"]
    assert rows["发送被拒 send_refused"] == ["3"]
    assert rows["2026-11-24"] == ["1", "0", "101", "4", "11", "1", "¥199.00"]
    assert rows["基础用户"][:3] == ["60", "125", "48.0%"]  # the funnel: in the tier, at or above, share
    assert rows["品牌KOC"][:3] == ["2", "2", "1.6%"]
    assert rows["活动喜好型"] == ["40"]
    assert rows["每日精选"][:8] == [
        "daily_pick",
        "700",
        "640",
        "35",
        "5",
        "2",
        "18",
        "quiet_hours 20、cap 15",
    ]
    assert rows["新人欢迎"][:7] == ["welcome", "10", "10", "0", "0", "0", "0"]
    assert rows["宝妈交流群"] == ["vip", "180", "12", "3", "45", "25.0% (45/180)"]
    assert rows["引流成功率 lead success rate"] == ["75.0% (9/12)"]
    assert rows["服务成功率 service success rate"] == ["90.0% (18/20)"]
    assert rows["变现成功率 conversion success rate"] == ["2.5% (3/118)"]
    assert rows["及时回复率 questions answered in time"] == ["95.0% (19/20)"]
    assert rows["待定问题 questions still within their windows"] == ["2"]
    # replies, orders and deletions after the sends, with the windows they were counted in
    assert every["每日精选"][1] == [
        "daily_pick",
        "118",
        "20.3% (24/118)",
        "3 / ¥597.00",
        "2 / ¥398.00",
        "1 / 3",
        "0.8% (1/118)",
        "2.5% (3/118)",
    ]
    assert "删粉 24h / 7d" in text and "发送后 24h 内写来消息" in text
    assert rows["回复窗口 reply window"] == ["24h"]
    assert rows["服务响应时限 service window"] == ["30min"]
    # 私域业绩 = 120 × 118/120 × 3/118 × ¥199 = ¥597; the factor that moved most is marked
    assert rows["可触达人数 reachable contacts"] == ["120", "110", "+9.1%"]
    assert rows["转化率 conversion rate"] == ["2.5% (3/118)", "2.0% (2/100)", "+27.1% ◀"]
    assert rows["客单价 average order value"] == ["¥199.00", "¥199.00", "+0.0%"]
    assert rows["私域业绩 private-domain performance"] == ["¥597.00", "¥398.00", "+50.0%"]
    assert rows["王芳"] == ["品牌KOC", "¥1,280.00", "¥199.00", "¥300.00", "¥1,580.00"]
    # the migration matrix: rows from, columns to
    assert every["复购会员"][0][:3] == ["8", "10", "6.4%"]  # in the funnel
    assert every["复购会员"][1] == ["0", "0", "1", "6", "0"]  # in the matrix, one moved down to 已购会员
    assert "升级 moved up 13 · 降级 moved down 1" in text


@pytest.mark.parametrize("width", [60, 80, 120])
def test_a_narrow_terminal_gets_wide_tables_in_parts_with_every_figure_whole(width: int) -> None:
    text = render_text(sample_report(), width=width)
    assert "…" not in text
    assert max(cell_len(line.rstrip()) for line in text.splitlines()) <= width
    assert re.search(r"SOP replies, orders and\s+deletions \(1/\d\)", text)  # split, not cut
    rows = text_rows(text)
    assert ["daily_pick", "2.5% (3/118)"] in rows["每日精选"]  # the last column, beside the row's names
    assert rows["2026-11-24"][0][:2] == ["1", "0"]


def test_text_says_so_for_every_empty_section() -> None:
    text = render_text(empty_report())
    assert text.count(NO_DATA) == len(tables(empty_report())) - 3  # totals, success, performance always show
    assert "— (0/0)" in text  # a rate with nothing under it is not 0 %


def test_text_shows_names_as_written_not_as_markup() -> None:
    text = render_text(hostile_report())
    assert "[bold red]红[/]" in text
    assert "<script>alert(1)</script>" in text


def test_text_strips_terminal_control_codes_from_names() -> None:
    report = sample_report()
    report.tags_top = [("\x1b[2J清屏", 1)]
    text = render_text(report)
    assert "\x1b" not in text
    assert "清屏" in text


# -- CSV ----------------------------------------------------------------------------------


def csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs for Chinese
    assert b"\r\n" in data
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def find(rows: list[dict[str, str]], section: str, measure: str, item: str = "") -> dict[str, str]:
    matches = [r for r in rows if r["section"] == section and r["measure"] == measure and r["item"] == item]
    assert len(matches) == 1, (section, measure, item, matches)
    return matches[0]


def test_csv_is_one_long_table_with_a_row_per_figure() -> None:
    data = render(sample_report(), "csv")
    rows = csv_rows(data)
    assert tuple(rows[0]) == COLUMNS
    assert {r["period"] for r in rows} == {"2026-W48"}
    assert {r["account"] for r in rows} == {"main"}
    assert find(rows, "report", "start")["value"] == "2026-11-23"
    assert find(rows, "report", "window", "reply_hours")["value"] == "24"
    assert find(rows, "totals", "assets_end")["value"] == "125"
    add_rate = find(rows, "totals", "add_rate")
    assert (add_rate["measure_name"], add_rate["value"], add_rate["numerator"], add_rate["denominator"]) == (
        "加粉率 add rate",
        "0.083333",
        "10",
        "120",
    )
    assert find(rows, "added_by_source", "added", "request") | {} == {
        "period": "2026-W48",
        "account": "main",
        "section": "added_by_source",
        "item": "request",
        "item_name": "好友申请",
        "measure": "added",
        "measure_name": "加粉数 added",
        "value": "6",
        "numerator": "",
        "denominator": "",
    }
    assert find(rows, "day", "amount_yuan", "2026-11-24")["value"] == "199.00"
    assert find(rows, "day", "deleted", "2026-11-25")["value"] == "2"
    assert find(rows, "day", "messages", "2026-11-29")["value"] == "16"
    assert [(r["item"], r["item_name"], r["value"]) for r in rows if r["section"] == "tag_day"][:2] == [
        ("2026-11-23", "活动喜好型", "34"),
        ("2026-11-24", "活动喜好型", "35"),
    ]
    assert find(rows, "tier_end", "contacts", "koc")["item_name"] == "品牌KOC"
    move = find(rows, "migration", "contacts", "repeat→customer")
    assert (move["item_name"], move["value"]) == ("复购会员 → 已购会员", "1")
    assert find(rows, "sop", "skipped", "daily_pick")["value"] == "35"
    assert find(rows, "sop", "skipped:quiet_hours", "daily_pick")["value"] == "20"
    assert (
        find(rows, "sop", "skipped:quiet_hours", "daily_pick")["measure_name"] == "跳过 skipped: quiet_hours"
    )
    assert find(rows, "sop", "amount_last_touch_yuan", "daily_pick")["value"] == "597.00"
    assert find(rows, "sop", "pending", "daily_pick")["value"] == "18"
    assert find(rows, "sop", "deletion_rate_7d", "daily_pick")["numerator"] == "3"
    assert find(rows, "success", "service_open")["value"] == "2"
    assert find(rows, "success", "service_answered")["value"] == "0.95"
    assert find(rows, "sop", "reply_rate", "daily_pick/pick")["item_name"] == "早安精选"
    assert find(rows, "group", "speak_share", "1")["value"] == "0.25"
    assert find(rows, "group", "group_type", "1")["value"] == "vip"
    assert find(rows, "orders_by_tier", "amount_yuan", "repeat")["value"] == "518.00"
    assert find(rows, "success", "service")["value"] == "0.9"
    assert find(rows, "performance", "value_yuan", "this_period")["value"] == "597.00"
    assert find(rows, "performance", "reach_rate", "period_before")["numerator"] == "100"
    assert find(rows, "top_value", "total_yuan", "7")["value"] == "1580.00"


def test_csv_marks_an_empty_section_and_leaves_an_undefined_rate_empty() -> None:
    rows = csv_rows(render(empty_report(), "csv"))
    empty = {r["section"] for r in rows if r["measure"] == "none"}
    assert empty == {
        "added_by_source",
        "deleted_by_method",
        "tier_end",
        "migration",
        "tag",
        "sop",
        "group",
        "orders_by_tier",
        "top_value",
        "tag_day",
    }
    assert find(rows, "tag", "none")["measure_name"] == NO_DATA
    rate = find(rows, "totals", "add_rate")
    assert (rate["value"], rate["numerator"], rate["denominator"]) == ("", "0", "0")


def test_csv_never_hands_excel_a_formula() -> None:
    rows = csv_rows(render(hostile_report(), "csv"))
    tag = next(r for r in rows if r["section"] == "tag" and "HYPERLINK" in r["item"])
    assert tag["item"] == '\'=HYPERLINK("http://x")'
    assert find(rows, "totals", "added")["value"] == "10"


# -- JSON ---------------------------------------------------------------------------------


def test_json_is_the_report_as_data() -> None:
    report = sample_report()
    data = json.loads(render(report, "json"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["period"] == {"start": "2026-11-23", "end": "2026-11-29", "label": "2026-W48"}
    assert data["totals"]["add_rate"] == {"numerator": 10, "denominator": 120, "value": 10 / 120}
    assert data["performance"]["value_cents"] == 59700.0
    assert data["days"][1] == {
        "day": "2026-11-24",
        "added": 1,
        "deleted": 0,
        "sent": 101,
        "replies": 4,
        "orders": 1,
        "amount_cents": 19900,
        "messages": 11,
    }
    assert data["tags_top"][0] == ["活动喜好型", 40]
    assert "活动喜好型" in render(report, "json").decode("utf-8")  # Chinese as written, not \u escapes


def test_every_format_renders_and_an_unknown_one_is_refused() -> None:
    for form in FORMATS:
        assert render(empty_report(), form)
    with pytest.raises(ValueError, match="unknown report format 'xml'"):
        render(sample_report(), "xml")


# -- HTML ---------------------------------------------------------------------------------


class Page(HTMLParser):
    """What the page is made of: elements, the text of each section, every URL."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.urls += [v or "" for k, v in attrs if k in {"src", "href"} and not (v or "").startswith("#")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def charts(self) -> list[str]:
        return [a["data-chart"] or "" for t, a in self.tags if t == "svg"]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def test_html_is_one_page_with_every_chart_and_nothing_from_the_network() -> None:
    html = render_html(sample_report())
    page = parse(html)
    assert page.charts() == ["days", "tiers", "migration", "tags", "sops"]
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in page.tags
    assert not [t for t, _ in page.tags if t in {"script", "iframe", "object", "embed", "img"}]
    assert page.urls == ["data:,"]  # the empty favicon: nothing is fetched
    assert not re.findall(r"https?://(?!www\.w3\.org/2000/svg)", html)
    assert [a["id"] for t, a in page.tags if t == "section"] == [t.key for t in tables(sample_report())]
    assert set(SECTIONS) == {t.key for t in tables(sample_report())}
    assert "<title>私域运营报表 2026-W48 · main</title>" in html
    assert len(html.encode()) < 80_000


def test_html_tables_hold_the_same_cells_as_the_terminal() -> None:
    html = render_html(sample_report())
    assert '<td>加粉率 add rate</td><td class="num">8.3% (10/120)</td>' in html
    assert '<tr class="highlight"><td>转化率 conversion rate</td>' in html
    assert '<td>宝妈交流群</td><td>vip</td><td class="num">180</td>' in html


def test_html_charts_draw_the_numbers() -> None:
    html = render_html(sample_report())
    assert "<title>2026-11-25 加粉 0 删粉 2</title>" in html  # a daily bar's tooltip
    assert "125 人 (100%)" in html and "65 人 (52.0%)" in html  # funnel: at or above, share of the step above
    assert "<title>复购会员 → 已购会员: 1 人</title>" in html  # a migration cell
    assert "<title>每日精选: 待发 pending 18</title>" in html  # a SOP outcome segment
    assert "<title>活动喜好型 11-29: 40</title>" in html  # a point of a tag's line


def test_html_empty_sections_say_so() -> None:
    page = parse(render_html(empty_report()))
    assert page.charts() == []
    texts = "".join(page.text)
    assert (
        texts.count(NO_DATA) == len(tables(empty_report())) - 3
    )  # totals, success and performance always show


def test_html_shows_what_contacts_and_operators_wrote_as_text() -> None:
    html = render_html(hostile_report())
    page = parse(html)
    assert not [t for t, _ in page.tags if t in {"script", "img", "b", "i"}]
    assert [t for t, _ in page.tags if t == "svg"] == ["svg"] * 5  # no svg smuggled in by a name
    assert not [a for _, a in page.tags if any(k.startswith("on") for k in a)]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;粗体&lt;/b&gt;" in html
    text = "".join(page.text)
    assert "<script>alert(1)</script>" in text
    assert "<b>粗体</b>" in text
    assert "KOC<i>" in text  # a tier name from the settings, in a table and in the charts
    assert "&lt;/svg&gt;&lt;script&gt;alert(4)&lt;/script&gt;" in html  # a tag in the trend's legend


def test_the_template_ships_inside_the_package() -> None:
    assert (files("bot.report") / "templates" / "report.html.j2").is_file()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "templates/*.j2" in pyproject["tool"]["setuptools"]["package-data"]["bot.report"]
