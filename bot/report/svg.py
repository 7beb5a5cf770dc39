"""The report's charts, drawn as inline SVG on the server: no JavaScript, no CDN, a few
kilobytes each, sharp at any zoom and in print.

Every chart is built with `Markup.format`, which escapes each value it is given: a tier,
tag or SOP name is always text, never markup. A chart with nothing to draw is None (the
page says "no data in this period" in its place).
"""

from __future__ import annotations

import math
import unicodedata
from datetime import date, timedelta

from markupsafe import Markup

from bot.report import labels as L
from bot.results.model import Ratio, Report, StepOutcome

FONT = 14  # charts shrink to fit a phone (≈ 0.7): 14 stays readable there
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
UP = "#3b7ddd"  # added, moved up: blue (red and green mean opposite things in China and the West)
DOWN = "#e4572e"  # deleted, moved down
STAY = "#7b8794"
LINES = ("#3b7ddd", "#e4572e", "#2f9e77", "#8e6ccf", "#f0b429")  # one per tag in the trend
SEGMENTS = (  # SOP outcomes, in the order they are stacked
    ("sent", "#3b7ddd"),
    ("skipped", "#f0b429"),
    ("failed", "#d64545"),
    ("unknown", "#8e6ccf"),
    ("pending", "#c5cbd3"),
)


def charts(report: Report) -> dict[str, Markup | None]:
    """Each chart by the section it illustrates."""
    return {
        "tiers": funnel_chart(report),
        "migration": migration_chart(report),
        "days": daily_chart(report),
        "tags": tag_chart(report),
        "sops": sop_chart(report),
    }


# -- the tier funnel ----------------------------------------------------------------------


def funnel_chart(report: Report) -> Markup | None:
    """One centred bar per tier, lowest rung on top; its width is everyone at that tier or
    above, so the shape narrows like a funnel; the share of the step above beside it."""
    steps = L.funnel(report)
    if not steps or not steps[0][2]:
        return None
    width, row, gap, top = 520, 34, 6, 8
    names = [L.tier_name(report, tier) for tier, _, _ in steps]
    label_w = min(150.0, max(_text_width(n) for n in names) + 14)
    right_w = 130.0
    area = width - label_w - right_w
    height = top + len(steps) * (row + gap) + 4
    widest = steps[0][2] or 1
    parts = []
    previous = None
    for i, ((_, n, above), name) in enumerate(zip(steps, names, strict=True)):
        y = top + i * (row + gap)
        bar = max(2.0, area * above / widest) if above else 0.0
        x = label_w + (area - bar) / 2
        share = "100%" if previous is None else L.percent(_ratio(above, previous))
        tip = f"{name}: {above} 人达到该层及以上 at or above, {n} 人在该层 in it"
        parts.append(_text(label_w - 8, y + row / 2, _fit(name, label_w - 12), anchor="end"))
        if bar:
            opacity = 0.35 + 0.65 * (len(steps) - i) / len(steps)
            parts.append(
                Markup(
                    '<rect x="{}" y="{}" width="{}" height="{}" rx="3" fill="{}" fill-opacity="{}">'
                    "<title>{}</title></rect>"
                ).format(_f(x), _f(y), _f(bar), row, UP, _f(opacity), tip)
            )
        parts.append(_text(width - right_w + 8, y + row / 2, f"{above:,} 人 ({share})", weight="600"))
        previous = above
    title = "分层漏斗: 每层宽度 = 达到该层及以上的人数 (tier funnel: contacts at each tier or above)"
    return _svg("tiers", width, height, title, parts)


# -- the migration matrix -----------------------------------------------------------------


def migration_chart(report: Report) -> Markup | None:
    """A heatmap: rows the tier at the start, columns the tier at the end. Staying is grey,
    moving up blue, moving down orange; each colour scaled to its own largest cell, so a few
    moves are not washed out by the many who stayed."""
    tiers, cells = L.migration_cells(report)
    if not cells or not any(cells.values()):
        return None
    names = [L.tier_name(report, t) for t in tiers]
    label_w = max(_text_width(n) for n in names) + 18
    cell_w = max(64.0, max(_text_width(n, 12) for n in names) + 12)
    cell_h, head = 38, 40
    width = label_w + cell_w * len(tiers) + 4
    height = head + cell_h * len(tiers) + 4

    def kind(source: str, target: str) -> int:
        return L.direction(report, source, target)

    largest = {k: max([n for (s, t), n in cells.items() if kind(s, t) == k] or [1]) or 1 for k in (-1, 0, 1)}
    parts = [
        _text(4, 14, "期初 ↓ from", size=11, fill=MUTED),
        _text(label_w, 14, "期末 → to", size=11, fill=MUTED),
    ]
    for j, name in enumerate(names):
        parts.append(
            _text(
                label_w + cell_w * (j + 0.5), head - 10, _fit(name, cell_w - 6, 12), size=12, anchor="middle"
            )
        )
    for i, (source, source_name) in enumerate(zip(tiers, names, strict=True)):
        y = head + i * cell_h
        parts.append(_text(label_w - 8, y + cell_h / 2, source_name, anchor="end"))
        for j, (target, target_name) in enumerate(zip(tiers, names, strict=True)):
            x = label_w + j * cell_w
            n = cells.get((source, target), 0)
            k = kind(source, target)
            colour = {1: UP, -1: DOWN, 0: STAY}[k]
            opacity = 0.0 if not n else 0.18 + 0.82 * n / largest[k]
            tip = f"{source_name} → {target_name}: {n} 人"
            parts.append(
                Markup(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="#f5f7fa" stroke="#fff" stroke-width="2"/>'
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}" fill-opacity="{}" stroke="#fff" '
                    'stroke-width="2"><title>{}</title></rect>'
                ).format(_f(x), y, _f(cell_w), cell_h, _f(x), y, _f(cell_w), cell_h, colour, _f(opacity), tip)
            )
            ink = "#fff" if opacity > 0.6 else (INK if n else "#9aa5b1")
            parts.append(
                _text(
                    x + cell_w / 2,
                    y + cell_h / 2,
                    f"{n:,}",
                    anchor="middle",
                    fill=ink,
                    weight="600" if n else None,
                )
            )
    title = "分层迁移矩阵: 行 = 期初分层, 列 = 期末分层 (tier migration: rows from, columns to)"
    return _svg("migration", width, height, title, parts)


# -- additions and deletions per day ------------------------------------------------------


def daily_chart(report: Report) -> Markup | None:
    """Added above the line, deleted below it, one pair of bars per day."""
    days = report.days
    if not days or not any(d.added or d.deleted for d in days):
        return None
    width, height = 520, 240
    left, right, top, bottom = 44, 10, 30, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    up_max, down_max = max(d.added for d in days), max(d.deleted for d in days)
    up_tick, down_tick = _nice(up_max), _nice(down_max)
    scale = plot_h / ((up_tick + down_tick) or 1)
    zero = top + up_tick * scale
    slot = plot_w / len(days)
    bar = max(1.0, min(slot * 0.7, 28))
    parts = [
        _swatch(left, 8, UP, "加粉 added"),
        _swatch(left + 120, 8, DOWN, "删粉 deleted"),
    ]
    for value, y in ((up_tick, top), (0, zero), (-down_tick, zero + down_tick * scale)):
        if value or y == zero:
            parts.append(
                Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="{}"/>').format(
                    left, _f(y), width - right, _f(y), MUTED if y == zero else GRID, 1
                )
            )
            parts.append(_text(left - 6, y, f"{value:,}", size=12, anchor="end", fill=MUTED))
    step = max(1, math.ceil(len(days) / 6))
    for i, d in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        tip = f"{d.day.isoformat()} 加粉 {d.added} 删粉 {d.deleted}"
        if d.added:
            h = d.added * scale
            parts.append(_bar(x, zero - h, bar, h, UP, tip))
        if d.deleted:
            parts.append(_bar(x, zero, bar, d.deleted * scale, DOWN, tip))
        last = i == len(days) - 1 and i % step > step / 2  # the last day, unless a label is near
        if i % step == 0 or last:
            parts.append(
                _text(
                    left + (i + 0.5) * slot, height - 10, _short(d.day), size=12, anchor="middle", fill=MUTED
                )
            )
    title = "每日加粉与删粉 (added and deleted per day)"
    return _svg("days", width, height, title, parts)


# -- tags over the period -----------------------------------------------------------------


def tag_chart(report: Report) -> Markup | None:
    """The most carried tags (up to five): how many contacts carried each at the end of every
    day."""
    series = [(tag, values) for tag, values in report.tag_days.items() if values][: len(LINES)]
    if not series or max(len(values) for _, values in series) < 2:
        return None
    width, height = 520, 240
    left, right, bottom = 44, 10, 30
    parts: list[Markup] = []
    x, y = float(left), 8.0
    for (tag, _), colour in zip(series, LINES, strict=False):  # the legend, wrapped
        label = _fit(tag, 150, 13)
        needed = _text_width(label, 13) + 30
        if x > left and x + needed > width:
            x, y = float(left), y + 20
        parts.append(_swatch(x, y, colour, label))
        x += needed
    top = y + 28
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = _nice(max(max(values) for _, values in series)) or 1
    length = max(len(values) for _, values in series)
    slot = plot_w / length
    for value in (0, highest // 2, highest) if highest % 2 == 0 else (0, highest):
        line_y = top + plot_h * (1 - value / highest)
        parts.append(
            Markup('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1"/>').format(
                left, _f(line_y), width - right, _f(line_y), MUTED if value == 0 else GRID
            )
        )
        parts.append(_text(left - 6, line_y, L.number(value), size=12, anchor="end", fill=MUTED))
    for (tag, values), colour in zip(series, LINES, strict=False):
        points = [
            (left + (i + 0.5) * slot, top + plot_h * (1 - value / highest)) for i, value in enumerate(values)
        ]
        parts.append(
            Markup(
                '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}</title></polyline>'
            ).format(" ".join(f"{_f(px)},{_f(py)}" for px, py in points), colour, tag)
        )
        if length <= 62:
            days = [report.period.start + timedelta(days=i) for i in range(len(values))]
            parts += [
                Markup('<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}</title></circle>').format(
                    _f(px), _f(py), colour, f"{tag} {_short(day)}: {value}"
                )
                for (px, py), value, day in zip(points, values, days, strict=True)
            ]
    step = max(1, math.ceil(length / 6))
    for i in range(0, length, step):
        day = report.period.start + timedelta(days=i)
        parts.append(
            _text(left + (i + 0.5) * slot, height - 10, _short(day), size=12, anchor="middle", fill=MUTED)
        )
    title = "标签人数变化 (contacts carrying each of the top tags, at the end of each day)"
    return _svg("tags", width, height, title, parts)


# -- SOP outcomes -------------------------------------------------------------------------


def sop_chart(report: Report) -> Markup | None:
    """One stacked bar per SOP: sent, skipped, failed, unknown and not yet sent, out of what
    was planned."""
    rows = [(row, _segments(row)) for row in L.whole_sops(report)]
    rows = [(row, segs) for row, segs in rows if sum(n for _, n, _ in segs)]
    if not rows:
        return None
    width, bar_h, gap = 540, 24, 10
    names = [row.name or row.sop_id for row, _ in rows]
    label_w = min(170.0, max(_text_width(n) for n in names) + 14)
    right_w = 60.0
    area = width - label_w - right_w
    largest = max(sum(n for _, n, _ in segs) for _, segs in rows)
    parts = []
    x, y = 0.0, 8.0
    for key, colour in SEGMENTS:  # the legend, on as many lines as it needs
        label = f"{L.chinese(key)} {key}"
        needed = _text_width(label, 13) + 30
        if x and x + needed > width:
            x, y = 0.0, y + 20
        parts.append(_swatch(x + 4, y, colour, label))
        x += needed
    top = y + 28
    height = top + len(rows) * (bar_h + gap) + 4
    for i, ((_, segs), name) in enumerate(zip(rows, names, strict=True)):
        y = top + i * (bar_h + gap)
        parts.append(_text(label_w - 8, y + bar_h / 2, _fit(name, label_w - 12), anchor="end"))
        x = label_w
        for key, n, colour in segs:
            if not n:
                continue
            w = area * n / largest
            parts.append(_bar(x, y, w, bar_h, colour, f"{name}: {L.chinese(key)} {key} {n}"))
            x += w
        total = sum(n for _, n, _ in segs)
        parts.append(_text(x + 6, y + bar_h / 2, f"{total:,}", size=12, fill=MUTED))
    title = "SOP 发送结果 (SOP outcomes: sent, skipped, failed, unknown, not yet sent)"
    return _svg("sops", width, height, title, parts)


def _segments(row: StepOutcome) -> list[tuple[str, int, str]]:
    values = {
        "sent": row.sent,
        "skipped": sum(row.skipped.values()),
        "failed": row.failed,
        "unknown": row.unknown,
        "pending": row.pending,
    }
    return [(key, values[key], colour) for key, colour in SEGMENTS]


# -- drawing ------------------------------------------------------------------------------


def _svg(name: str, width: float, height: float, title: str, parts: list[Markup]) -> Markup:
    return Markup(
        '<svg class="chart" data-chart="{}" viewBox="0 0 {} {}" width="{}" height="{}" style="max-width:{}px" role="img" '
        'xmlns="http://www.w3.org/2000/svg" font-size="{}"><title>{}</title>{}</svg>'
    ).format(
        name, _f(width), _f(height), _f(width), _f(height), _f(width), FONT, title, Markup("").join(parts)
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = FONT,
    anchor: str = "start",
    fill: str = INK,
    weight: str | None = None,
) -> Markup:
    return Markup(
        '<text x="{}" y="{}" font-size="{}" text-anchor="{}" dominant-baseline="central" fill="{}"{}>{}</text>'
    ).format(
        _f(x), _f(y), size, anchor, fill, Markup(' font-weight="{}"').format(weight) if weight else "", text
    )


def _bar(x: float, y: float, w: float, h: float, colour: str, tip: str) -> Markup:
    return Markup('<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>').format(
        _f(x), _f(y), _f(w), _f(h), colour, tip
    )


def _swatch(x: float, y: float, colour: str, label: str) -> Markup:
    return Markup('<rect x="{}" y="{}" width="12" height="12" rx="2" fill="{}"/>').format(
        _f(x), _f(y), colour
    ) + _text(x + 17, y + 6, label, size=13, fill=MUTED)


def _text_width(text: str, size: int = FONT) -> float:
    """Roughly how wide a line is: CJK characters are one em, others about 0.6."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else size * 0.6 for c in text)


def _fit(text: str, width: float, size: int = FONT) -> str:
    """The text, cut with an ellipsis to fit `width` (the full text is in the tables)."""
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text + "…"


def _nice(value: int) -> int:
    """A round number at least `value` for the top of an axis: 1, 2, 5, 10, 20, 50 …"""
    if value <= 0:
        return 0
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _short(day: date) -> str:
    return f"{day.month:02d}-{day.day:02d}"


def _ratio(n: int, d: int) -> Ratio:
    return Ratio(n, d)


def _f(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zeros."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text
