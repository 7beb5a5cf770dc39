"""Reading an order export (CSV) from a shop system: UTF-8, UTF-8 with BOM or GBK (the
usual Excel / 有赞 / 微店 export on a Chinese Windows), Chinese or English headers.

A bad row becomes `orders.csv:LINE: column: reason` and the good rows are kept.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config.errors import ConfigIssue
from bot.orders.columns import HEADERS, IDENTITY, REQUIRED
from bot.orders.model import OrderIn, parse_bool, parse_items

_ALIASES = {alias.casefold(): name for name, aliases in HEADERS.items() for alias in aliases}
_SHOWN = {
    "order_id": "订单号",
    "amount": "实付金额",
    "ordered_at": "下单时间",
    "wxid/phone/unionid": "微信ID/手机号/unionid",
}


@dataclass
class ParsedFile:
    file: str
    encoding: str
    orders: list[tuple[int, OrderIn]] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as error:
        raise ValueError(f"neither UTF-8 nor GBK text ({error.reason} at byte {error.start})") from None


def parse_csv(data: bytes, file: str, tz: tzinfo) -> ParsedFile:
    try:
        text, encoding = decode(data)
    except ValueError as error:
        return ParsedFile(file, "?", issues=[ConfigIssue(file, None, "", str(error))])
    parsed = ParsedFile(file, encoding)
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader)
    except StopIteration:
        parsed.issues.append(ConfigIssue(file, None, "", "the file is empty"))
        return parsed
    columns: dict[str, int] = {}
    shown: dict[str, str] = {}
    for index, title in enumerate(header):
        name = _ALIASES.get(title.strip().casefold())
        if name and name not in columns:
            columns[name], shown[name] = index, title.strip()
        elif title.strip():
            parsed.ignored_columns.append(title.strip())
    missing = [name for name in REQUIRED if name not in columns]
    if not any(name in columns for name in IDENTITY):
        missing.append("wxid/phone/unionid")
    if missing:
        reason = "no column for " + ", ".join(f"{m} ({_SHOWN[m]})" for m in missing)
        parsed.issues.append(ConfigIssue(file, 1, "header", reason))
        return parsed
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            parsed.issues.append(ConfigIssue(file, start, "", f"{len(row)} cells but {len(header)} columns"))
            continue
        cells = {name: row[i].strip() if i < len(row) else "" for name, i in columns.items()}
        order = _order(cells, shown, file, start, tz, parsed.issues)
        if order is not None:
            parsed.orders.append((start, order))
    return parsed


def _order(
    cells: dict[str, str], shown: dict[str, str], file: str, line: int, tz: tzinfo, issues: list[ConfigIssue]
) -> OrderIn | None:
    values: dict[str, Any] = {k: v for k, v in cells.items() if k in OrderIn.model_fields and v != ""}
    try:
        new = parse_bool(cells.get("new_arrival", ""))
        if cells.get("items"):
            values["items"] = parse_items(cells["items"], new=new)
        elif cells.get("product") or cells.get("category"):
            qty = cells.get("qty") or "1"
            values["items"] = [
                {
                    "name": cells.get("product", ""),
                    "category": cells.get("category") or None,
                    "qty": qty,
                    "new": new,
                }
            ]
    except ValueError as error:
        field = "items" if cells.get("items") else "new_arrival"
        issues.append(ConfigIssue(file, line, shown.get(field, field), str(error)))
        return None
    try:
        return OrderIn.model_validate(values, context={"tz": tz})
    except ValidationError as error:
        for item in error.errors():
            loc = item["loc"]
            name = str(loc[0]) if loc else ""
            if name == "items":
                name = "items" if "items" in shown else ("qty" if "qty" in shown else "product")
            column = shown.get(name, name) if name else "wxid/phone/unionid"
            message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
            if item["type"] == "missing":
                message = "required, but empty"
            issues.append(ConfigIssue(file, line, column, message))
        return None


def read_csv(path: Path, shown: str, tz: tzinfo) -> ParsedFile:
    return parse_csv(path.read_bytes(), shown, tz)
