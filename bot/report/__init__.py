"""Showing a `bot.results.model.Report`: rich tables in the terminal (`text`), one CSV file
in a long format (`csvfile`), JSON, and one self-contained HTML page with charts drawn as
SVG on the server (`html`, `svg`). Nothing here reads the database."""

from __future__ import annotations

import json

from bot.results.model import Report

FORMATS = ("text", "html", "csv", "json")


def render(report: Report, form: str) -> bytes:
    """The report in one of `FORMATS`, as the bytes of a file (text, HTML and JSON in
    UTF-8; CSV in UTF-8 with a byte-order mark)."""
    if form == "text":
        from bot.report.text import render_text

        return render_text(report).encode("utf-8")
    if form == "html":
        from bot.report.html import render_html

        return render_html(report).encode("utf-8")
    if form == "csv":
        from bot.report.csvfile import render_csv

        return render_csv(report)
    if form == "json":
        return (render_json(report) + "\n").encode("utf-8")
    raise ValueError(f"unknown report format {form!r} (one of {', '.join(FORMATS)})")


def render_json(report: Report) -> str:
    """`Report.to_dict()` as JSON: dates as ISO text, rates with numerator, denominator and
    value, money in cents."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
