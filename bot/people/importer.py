"""Reading a contacts file (CSV in any usual encoding, or `.xlsx`) into profile rows: the
columns that find the contact (微信号/wxid, 手机号, unionid, 备注), the fields with a meaning
(生日 solar or lunar, 性别, 城市), tags, and every other column as a field of the operator's
own. A bad cell becomes `file:LINE: column: reason` (`file:sheet!row: …` in Excel); the
row is left out and the others are kept.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any

from bot.contact_fields import MAX_CUSTOM, FieldValueError, field_key, normalise
from bot.people.columns import SCHEMA
from bot.tables import values as v
from bot.tables.mapping import Layout, find_header
from bot.tables.read import Row, RowIssue, Sheet, Table, read_table
from bot.tables.spec import Preset

_TAG_SPLIT = re.compile(r"[,，、;；\n]")
_MIDNIGHT = re.compile(r"\s+0{1,2}:00(:00)?$")  # an Excel date cell read as text
MAX_TAG = 64


@dataclass(frozen=True)
class ProfileRow:
    """One person's row: how to find them and what to set."""

    where: str  # file:LINE
    wxid: str | None = None
    phone: str | None = None
    unionid: str | None = None
    alias: str | None = None
    account: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # field key → stored form
    tags: tuple[str, ...] = ()

    def merged(self, later: ProfileRow) -> ProfileRow:
        """This row with a later row for the same contact on top: the later value of each
        field wins, tags add up (so importing the file again changes nothing)."""
        return ProfileRow(
            f"{self.where},{later.where.rsplit(':', 1)[-1]}",
            self.wxid or later.wxid,
            self.phone or later.phone,
            self.unionid or later.unionid,
            self.alias or later.alias,
            self.account or later.account,
            {**self.fields, **later.fields},
            tuple(dict.fromkeys((*self.tags, *later.tags))),
        )

    def keys(self) -> str:
        """How the row names the person, for messages."""
        named = [
            f"{label} {value}"
            for label, value in (
                ("微信号", self.wxid),
                ("手机号", self.phone),
                ("unionid", self.unionid),
                ("备注", self.alias),
            )
            if value
        ]
        return ", ".join(named)


@dataclass(frozen=True)
class SheetUse:
    label: str
    preset: Preset | None
    header_line: int
    custom: list[str]  # columns read as fields of the operator's own


@dataclass
class ParsedContacts:
    file: str
    encoding: str
    rows: list[ProfileRow] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)
    sheets: list[SheetUse] = field(default_factory=list)
    read: int = 0  # data rows read
    rejected_rows: int = 0

    @property
    def custom_fields(self) -> list[str]:
        return list(dict.fromkeys(name for use in self.sheets for name in use.custom))


def read_contacts(path: Path, shown: str, tz: tzinfo, mappings: Sequence[Preset] = ()) -> ParsedContacts:
    """Read the contacts file at `path` (named `shown` in messages)."""
    return parse_contacts(read_table(path, shown), tz, mappings)


def parse_contacts(table: Table, tz: tzinfo, mappings: Sequence[Preset] = ()) -> ParsedContacts:
    parsed = ParsedContacts(table.file, table.format, issues=list(table.issues))
    for sheet in table.sheets:
        layout = find_header(SCHEMA, sheet, (), mappings)
        if layout is None:
            continue
        if not layout.complete:
            if not parsed.sheets:
                parsed.issues.append(
                    sheet.issue(
                        layout.header_line,
                        "header",
                        "no column finds the contact: name one 微信号, 手机号, unionid or 备注 "
                        "(or map yours in sop/columns.yaml under contacts:)",
                    )
                )
            continue
        custom = _custom_columns(sheet, layout, parsed)
        parsed.sheets.append(SheetUse(sheet.label, layout.preset, layout.header_line, list(custom.values())))
        for row in sheet.rows:
            if row.line <= layout.header_line or row.blank():
                continue
            parsed.read += 1
            profile = _profile(row, sheet, layout, custom, tz, parsed)
            if profile is not None:
                parsed.rows.append(profile)
    parsed.rejected_rows = len({(i.sheet, i.line) for i in parsed.issues if i.line is not None})
    return parsed


def _custom_columns(sheet: Sheet, layout: Layout, parsed: ParsedContacts) -> dict[int, str]:
    """Columns no field claims: each is a field of the operator's own, named by its header."""
    header = next(row for row in sheet.rows if row.line == layout.header_line)
    unclaimed = set(layout.ignored)
    custom: dict[int, str] = {}
    for index, cell in enumerate(header.cells):
        written = v.text(cell)
        if written not in unclaimed:
            continue
        try:
            name = field_key(written)
        except FieldValueError as error:
            parsed.issues.append(sheet.issue(layout.header_line, written, str(error)))
            continue
        if name in custom.values():
            parsed.issues.append(sheet.issue(layout.header_line, written, "a second column with this name"))
            continue
        custom[index] = name
    if len(custom) > MAX_CUSTOM:
        parsed.issues.append(
            sheet.issue(
                layout.header_line,
                "header",
                f"{len(custom)} columns of your own; a contact keeps at most {MAX_CUSTOM} "
                "(mark the others `ignore` in sop/columns.yaml)",
            )
        )
        return dict(list(custom.items())[:MAX_CUSTOM])
    return custom


def _profile(
    row: Row, sheet: Sheet, layout: Layout, custom: dict[int, str], tz: tzinfo, parsed: ParsedContacts
) -> ProfileRow | None:
    record = layout.read(row, sheet, tz)
    issues = list(record.issues)
    values = record.values
    fields: dict[str, str] = {}

    def put(column: str, key: str, raw: Any) -> None:
        try:
            value = normalise(key, _undated(raw))
        except FieldValueError as error:
            issues.append(sheet.issue(row.line, column, str(error).split(": ", 1)[-1]))
            return
        if value is not None:
            fields[key] = value

    if "birthday" in values:
        put(layout.shown("birthday"), "生日", values["birthday"])
    if "lunar_birthday" in values and "生日" not in fields:
        lunar = _undated(values["lunar_birthday"])
        put(
            layout.shown("lunar_birthday"), "生日", lunar if str(lunar).startswith("农历") else f"农历{lunar}"
        )
    for name, key in (("gender", "性别"), ("city", "城市")):
        if name in values:
            put(layout.shown(name), key, values[name])
    for index, name in custom.items():
        if index < len(row.cells) and not v.is_blank(row.cells[index]):
            put(name, name, v.text(row.cells[index]))
    tags = tuple(dict.fromkeys(t.strip() for t in _TAG_SPLIT.split(values.get("tags", "")) if t.strip()))
    for tag in tags:
        if len(tag) > MAX_TAG:
            issues.append(
                sheet.issue(row.line, layout.shown("tags"), f"tag {tag[:20]!r}… is over {MAX_TAG} chars")
            )
    keys = {name: values.get(name) or None for name in ("wxid", "phone", "unionid", "alias")}
    if not any(keys.values()) and not issues:
        issues.append(
            sheet.issue(row.line, "微信号/手机号/unionid/备注", "empty: nothing finds this contact")
        )
    if issues:
        parsed.issues += issues
        return None
    location = sheet.issue(row.line, "", "").location
    return ProfileRow(location, account=values.get("account") or None, fields=fields, tags=tags, **keys)


def _undated(raw: Any) -> Any:
    """An Excel date cell comes as a datetime or as `1990-05-20 00:00:00`: its date."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    return _MIDNIGHT.sub("", raw) if isinstance(raw, str) else raw
