"""Reading an order file from a shop system (CSV in any usual encoding, or `.xlsx`): the
export is recognised from its header row (有赞, 微店, 淘宝/天猫, 抖店, the operator's own
mapping file, or plain column names), every row becomes an `OrderIn` or a problem named
`file:LINE: column: reason` (`file:sheet!row: …` in Excel), and the good rows are kept.

Order states are read with the refund columns beside them: a full refund makes the order
refunded, a partial one is taken off the amount; orders not paid yet are skipped (and
counted). Rows with a line id (抖店's 子订单编号) are the lines of one order: their amounts
are added and their items joined; refunded lines are left out of both.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.orders.columns import PRESETS, SCHEMA
from bot.orders.model import OrderIn, parse_items
from bot.orders.states import CANCELLED, PAID, REFUNDED, UNPAID
from bot.tables.mapping import Layout, Record, find_header
from bot.tables.read import RowIssue, Sheet, Table, read_bytes, read_table
from bot.tables.spec import Preset
from bot.tables.values import parse_count

_SPLIT = re.compile(r"[;；\n]")
_NAME_CHARS = 200


@dataclass(frozen=True)
class SheetUse:
    """What the import made of one sheet (a CSV file is one sheet)."""

    label: str
    preset: Preset | None
    header_line: int
    ignored: list[str]


@dataclass
class ParsedFile:
    file: str
    encoding: str  # the CSV's encoding, or `xlsx`
    orders: list[tuple[str, OrderIn]] = field(default_factory=list)  # (where, order)
    issues: list[RowIssue] = field(default_factory=list)
    sheets: list[SheetUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # sheets not read, and why
    rows: int = 0  # data rows read
    rejected_rows: int = 0
    unpaid: int = 0  # rows of orders not paid yet: skipped
    otherwise: Counter[tuple[str, str]] = field(default_factory=Counter)  # (column, value) read as no refund
    rejected_lines: set[str] = field(default_factory=set)  # orders with a line that was rejected

    @property
    def ignored_columns(self) -> list[str]:
        return list(dict.fromkeys(name for use in self.sheets for name in use.ignored))


@dataclass
class _Draft:
    """A row read, before the lines of one order are joined and the order validated."""

    where: RowIssue  # its location: an issue still without column and reason
    layout: Layout
    values: dict[str, Any]
    status: str
    amount: Decimal | None
    discounted: bool
    items: list[dict[str, Any]]
    hidden: dict[str, str]


@dataclass
class _Order:
    """An order's fields (one row, or the lines of one order), where it starts, and how its
    columns were named (for messages)."""

    where: RowIssue
    layout: Layout
    hidden: dict[str, str]
    values: dict[str, Any]


def read_orders(path: Path, shown: str, tz: tzinfo, mappings: Sequence[Preset] = ()) -> ParsedFile:
    """Read the order file at `path` (named `shown` in messages)."""
    return parse_table(read_table(path, shown), tz, mappings)


def parse_csv(data: bytes, file: str, tz: tzinfo, mappings: Sequence[Preset] = ()) -> ParsedFile:
    """Order rows from a file's bytes (CSV, or an Excel file by its content)."""
    return parse_table(read_bytes(data, file), tz, mappings)


def parse_table(table: Table, tz: tzinfo, mappings: Sequence[Preset] = ()) -> ParsedFile:
    parsed = ParsedFile(table.file, table.format, issues=list(table.issues))
    drafts: list[_Draft] = []
    incomplete: list[tuple[Sheet, Layout]] = []
    for sheet in table.sheets:
        layout = find_header(SCHEMA, sheet, PRESETS, mappings)
        if layout is None:
            continue
        if not layout.complete:
            incomplete.append((sheet, layout))
            continue
        parsed.sheets.append(SheetUse(sheet.label, layout.preset, layout.header_line, layout.ignored))
        for row in sheet.rows:
            if row.line <= layout.header_line:
                continue
            parsed.rows += 1
            draft = _draft(layout.read(row, sheet, tz), layout, sheet, parsed)
            if draft is not None:
                drafts.append(draft)
    for sheet, layout in incomplete:
        if parsed.sheets:
            parsed.notes.append(f"{sheet.label}: not read (no order columns)")
        else:
            parsed.issues.append(sheet.issue(layout.header_line, "header", _missing(layout)))
    for joined in _join_lines(drafts, parsed):
        order = _validate(joined, tz, parsed)
        if order is not None:
            parsed.orders.append((joined.where.location, order))
    sheets = {sheet.name: index for index, sheet in enumerate(table.sheets)}
    parsed.issues.sort(key=lambda issue: (sheets.get(issue.sheet, -1), issue.line or 0))
    parsed.rejected_rows = len(
        {(issue.sheet, issue.line) for issue in parsed.issues if issue.line is not None}
    )
    return parsed


def _missing(layout: Layout) -> str:
    def shown(group: str) -> str:
        return "/".join(SCHEMA.field(name).label for name in group.split("/"))

    wanted = ", ".join(f"{group} ({shown(group)})" for group in layout.missing)
    return f"no column for {wanted} (name your columns in sop/columns.yaml: docs/orders.md)"


def _draft(record: Record, layout: Layout, sheet: Sheet, parsed: ParsedFile) -> _Draft | None:
    where = sheet.issue(record.line, "", "")
    parsed.otherwise.update(record.unknown)
    if record.issues:
        return _reject(record.issues, record, layout, parsed)
    values = record.values
    status = values.get("status", PAID)
    if status == UNPAID:
        parsed.unpaid += 1
        return None
    if values.get("refund") == REFUNDED and status == PAID:
        status = REFUNDED
    amount: Decimal | None = values.get("amount")
    discounted = bool(values.get("discounted") or values.get("discount"))
    if amount is not None and values.get("list_amount") is not None and amount < values["list_amount"]:
        discounted = True
    refund = values.get("refund_amount")
    if status == PAID and amount is not None and refund is not None and refund > 0:
        if refund >= amount:
            status = REFUNDED
        else:
            amount -= refund
    try:
        items = _items(values)
    except ValueError as error:
        column = layout.shown("items" if values.get("items") else "qty")
        return _reject([sheet.issue(record.line, column, str(error))], record, layout, parsed)
    return _Draft(where, layout, values, status, amount, discounted, items, record.hidden)


def _reject(issues: list[RowIssue], record: Record, layout: Layout, parsed: ParsedFile) -> None:
    parsed.issues.extend(issues)
    if "line_id" in layout.columns and record.values.get("order_id"):
        parsed.rejected_lines.add(str(record.values["order_id"]))


def _items(values: dict[str, Any]) -> list[dict[str, Any]]:
    new = bool(values.get("new_arrival"))
    if values.get("items"):
        return parse_items(values["items"], new=new)
    product, category = values.get("product", ""), values.get("category") or None
    if not product and not category:
        return []
    names = [name.strip() for name in _SPLIT.split(product) if name.strip()] or [""]
    counts = [parse_count(part) for part in _SPLIT.split(values.get("qty") or "") if part.strip()]
    if len(counts) != len(names):  # a total for several names says nothing per item
        counts = [sum(counts)] if len(names) == 1 and counts else [1] * len(names)
    items = []
    for name, qty in zip(names, counts, strict=True):
        item: dict[str, Any] = {"name": name[:_NAME_CHARS], "category": category, "qty": qty, "new": new}
        if values.get("sku") and len(names) == 1:
            item["sku"] = values["sku"]
        items.append(item)
    return items


def _join_lines(drafts: list[_Draft], parsed: ParsedFile) -> list[_Order]:
    """One entry per order: a row without a line id stands alone (a later row for the same
    order is a later state of it); rows with line ids are joined into their order, which
    is left out whole when one of its lines was rejected."""
    entries: list[_Draft | str] = []
    lines: dict[str, list[_Draft]] = {}
    for draft in drafts:
        order_id = str(draft.values.get("order_id", ""))
        if not draft.values.get("line_id") or not order_id:
            entries.append(draft)
            continue
        if order_id not in lines:
            lines[order_id] = []
            entries.append(order_id)
        lines[order_id].append(draft)
    orders: list[_Order] = []
    for entry in entries:
        if isinstance(entry, _Draft):
            orders.append(_Order(entry.where, entry.layout, entry.hidden, _fields(entry)))
        elif entry in parsed.rejected_lines:
            first = lines[entry][0]
            reason = f"order {entry} not imported: another of its lines was rejected"
            parsed.issues.append(replace(first.where, field=first.layout.shown("order_id"), reason=reason))
        else:
            orders.append(_joined(lines[entry]))
    return orders


def _fields(draft: _Draft) -> dict[str, Any]:
    """The OrderIn fields of one row."""
    values = {
        name: draft.values[name]
        for name in ("order_id", "ordered_at", "wxid", "phone", "unionid", "account", "referrer")
        if draft.values.get(name) not in (None, "")
    }
    values |= {"status": draft.status, "discounted": draft.discounted, "items": draft.items}
    if draft.amount is not None:
        values["amount"] = draft.amount
    return values


def _joined(group: list[_Draft]) -> _Order:
    """The lines of one order as the order: paid lines counted, refunded ones left out."""
    lines = list({str(draft.values["line_id"]): draft for draft in group}.values())  # a line twice: the last
    paid = [line for line in lines if line.status == PAID]
    counted = paid or lines
    statuses = {line.status for line in lines}
    values = _fields(lines[0])
    for line in lines[1:]:
        for name, value in _fields(line).items():
            values.setdefault(name, value)
    amounts = [line.amount for line in counted if line.amount is not None]
    if amounts:
        values["amount"] = sum(amounts, Decimal(0))
    times: list[datetime] = [line.values["ordered_at"] for line in lines if line.values.get("ordered_at")]
    if times:
        values["ordered_at"] = min(times)
    values["status"] = PAID if paid else REFUNDED if REFUNDED in statuses else CANCELLED
    values["discounted"] = any(line.discounted for line in counted)
    values["items"] = [item for line in counted for item in line.items]
    hidden = {name: why for line in lines for name, why in line.hidden.items()}
    return _Order(lines[0].where, lines[0].layout, hidden, values)


def _validate(order: _Order, tz: tzinfo, parsed: ParsedFile) -> OrderIn | None:
    try:
        return OrderIn.model_validate(order.values, context={"tz": tz})
    except ValidationError as error:
        layout = order.layout
        for item in error.errors():
            loc = item["loc"]
            name = str(loc[0]) if loc else ""
            if name == "items":
                name = next((n for n in ("items", "qty") if n in layout.columns), "product")
            column = layout.shown(name) if name else "wxid/phone/unionid"
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            if item["type"] == "missing":
                message = "required, but empty"
            if not name and order.hidden:
                message += " (" + "; ".join(order.hidden.values()) + ")"
            parsed.issues.append(replace(order.where, field=column, reason=message))
        return None
