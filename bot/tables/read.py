"""Reading a table file into rows that remember where they are: CSV (UTF-8, UTF-8 with a
BOM, GBK/GB18030, UTF-16 as Excel's "Unicode text"; comma, tab or semicolon separated) as
`file:LINE`, and Excel `.xlsx` as `file:sheet!row`.

Cells are cleaned of what exports add to keep Excel from reformatting them: a leading tab
or apostrophe, `="…"`, zero-width and non-breaking spaces. Excel cells keep their type
(a number, a date); `bot.tables.values` reads both.

Bounded (invariant 9): a file over `MAX_BYTES` or an `.xlsx` that unpacks to more than
`MAX_UNPACKED` is refused before it is read; reading stops, with a reason, past
`MAX_ROWS` rows or `MAX_CELLS` cells, and a row of more than `MAX_COLUMNS` columns is
refused.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

MAX_BYTES = 64 * 1024 * 1024
MAX_UNPACKED = 256 * 1024 * 1024  # an .xlsx's XML, unpacked (a zip bomb is refused before)
MAX_ROWS = 100_000
MAX_COLUMNS = 500
MAX_CELLS = 5_000_000  # all rows together: what one file may hold in memory
MAX_CELL_CHARS = 10_000
XLSX_SUFFIXES = (".xlsx", ".xlsm")

Cell = str | int | float | datetime | None

_FORMULA_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)
_INVISIBLE = re.compile(r"[\ufeff\u200b\u200c\u200d\u2060]")


@dataclass(frozen=True)
class RowIssue:
    """One problem in a table file, printed `file:LINE: column: reason` (CSV) or
    `file:sheet!row: column: reason` (Excel)."""

    file: str
    line: int | None
    field: str
    reason: str
    sheet: str | None = None

    @property
    def location(self) -> str:
        if self.line is None:
            return self.file if self.sheet is None else f"{self.file}:{self.sheet}"
        return f"{self.file}:{self.line}" if self.sheet is None else f"{self.file}:{self.sheet}!{self.line}"

    def __str__(self) -> str:
        return (
            f"{self.location}: {self.field}: {self.reason}"
            if self.field
            else f"{self.location}: {self.reason}"
        )


@dataclass(frozen=True)
class Row:
    line: int  # CSV: the line the record starts on; Excel: the row number
    cells: tuple[Cell, ...]

    def blank(self) -> bool:
        return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in self.cells)


@dataclass
class Sheet:
    """The rows of a CSV file, or of one worksheet (`name`)."""

    file: str
    name: str | None
    rows: list[Row] = field(default_factory=list)

    def issue(self, line: int | None, column: str, reason: str) -> RowIssue:
        return RowIssue(self.file, line, column, reason, self.name)

    @property
    def label(self) -> str:
        return self.file if self.name is None else f"{self.file}:{self.name}"


@dataclass
class Table:
    """A table file: its sheets (one for CSV), how it was read (`format`: the encoding, or
    `xlsx`) and the problems that kept it, or part of it, from being read."""

    file: str
    format: str
    sheets: list[Sheet] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)


def read_table(path: Path, shown: str) -> Table:
    """Read `path` (shown to the operator as `shown`): `.xlsx`/`.xlsm` as Excel, anything
    else as CSV (an Excel file with another name is recognised by its content)."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            return _too_big(shown, size)
        data = path.read_bytes()
    except OSError as error:
        return _refused(shown, f"cannot read: {error.strerror}")
    return read_bytes(data, shown, suffix=path.suffix)


def read_bytes(data: bytes, file: str, *, suffix: str = "") -> Table:
    if len(data) > MAX_BYTES:
        return _too_big(file, len(data))
    if data.startswith(b"PK\x03\x04") or suffix.lower() in XLSX_SUFFIXES:
        return read_xlsx(data, file)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return _refused(file, "an old Excel file (.xls): save it as .xlsx or CSV and import that")
    return read_csv(data, file)


def _too_big(file: str, size: int) -> Table:
    return _refused(file, f"the file is {size / 1e6:.0f} MB; split it (at most {MAX_BYTES // 2**20} MB)")


def _refused(file: str, reason: str, format: str = "?") -> Table:
    return Table(file, format, issues=[RowIssue(file, None, "", reason)])


# -- CSV ---------------------------------------------------------------------------------------


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in: UTF-8 (with or without BOM), UTF-16 with a BOM
    (Excel's "Unicode text"), else GBK (read as GB18030, its superset)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as error:
        raise ValueError(f"neither UTF-8 nor GBK text ({error.reason} at byte {error.start})") from None


def read_csv(data: bytes, file: str) -> Table:
    try:
        text, encoding = decode(data)
    except ValueError as error:
        return _refused(file, str(error))
    table = Table(file, encoding)
    sheet = Sheet(file, None)
    table.sheets.append(sheet)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text))
    line, cells = reader.line_num, 0
    try:
        for record in reader:
            start, line = line + 1, reader.line_num
            if len(sheet.rows) >= MAX_ROWS or cells > MAX_CELLS:
                table.issues.append(sheet.issue(start, "", _too_long()))
                break
            cells += len(record)
            if len(record) > MAX_COLUMNS:
                table.issues.append(sheet.issue(start, "", f"{len(record)} columns (at most {MAX_COLUMNS})"))
                continue
            row = Row(start, tuple(clean(cell) for cell in record))
            if not row.blank():
                sheet.rows.append(row)
    except csv.Error as error:
        table.issues.append(sheet.issue(line + 1, "", f"unreadable CSV: {error}"))
    return table


def _dialect(text: str) -> Any:
    sample = "\n".join(text[:8192].splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;")
    except csv.Error:
        return csv.excel_tab if sample.count("\t") > sample.count(",") else csv.excel


def clean(cell: Any) -> Cell:
    """A cell without what exports put around values to keep Excel off them."""
    if isinstance(cell, str):
        value = _INVISIBLE.sub("", cell).replace("\u00a0", " ").replace("\u3000", " ").strip()
        if match := _FORMULA_TEXT.match(value):
            value = match[1]
        value = value.lstrip("\t'").strip()
        return value[:MAX_CELL_CHARS]
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < 2**53:
        return int(cell)
    if isinstance(cell, datetime | int | float) or cell is None:
        return cell
    if isinstance(cell, date):
        return datetime(cell.year, cell.month, cell.day)
    if isinstance(cell, time):
        return cell.isoformat()
    return str(cell)


# -- Excel -------------------------------------------------------------------------------------


def read_xlsx(data: bytes, file: str) -> Table:
    table = Table(file, "xlsx")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return _refused(file, "not a readable .xlsx file (damaged, or not Excel)", "xlsx")
    if unpacked > MAX_UNPACKED:
        return _refused(
            file, f"unpacks to {unpacked / 1e6:.0f} MB (at most {MAX_UNPACKED // 2**20} MB)", "xlsx"
        )
    from openpyxl import load_workbook  # only when an Excel file comes: a slow import

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds for a damaged file
        return _refused(file, f"not a readable .xlsx file ({type(error).__name__}: {error})", "xlsx")
    try:
        for worksheet in workbook.worksheets:
            if getattr(worksheet, "sheet_state", "visible") != "visible":
                continue
            sheet = Sheet(file, worksheet.title)
            table.sheets.append(sheet)
            try:
                cells = sum(len(row.cells) for other in table.sheets for row in other.rows)
                for issue in _read_sheet(worksheet, sheet, cells):
                    table.issues.append(issue)
            except Exception as error:  # a damaged sheet: keep what was read, say where it stopped
                line = sheet.rows[-1].line + 1 if sheet.rows else 1
                table.issues.append(sheet.issue(line, "", f"unreadable ({type(error).__name__}: {error})"))
    finally:
        workbook.close()
    return table


def _too_long() -> str:
    return f"more than {MAX_ROWS:,} rows or {MAX_CELLS:,} cells: split the file"


def _read_sheet(worksheet: Any, sheet: Sheet, count: int) -> Iterator[RowIssue]:
    worksheet.reset_dimensions()  # exports often write a wrong size; read to the real end
    for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
        if len(sheet.rows) >= MAX_ROWS or count > MAX_CELLS:
            yield sheet.issue(number, "", _too_long())
            return
        count += len(values)
        if len(values) > MAX_COLUMNS:
            if any(v not in (None, "") for v in values[MAX_COLUMNS:]):
                yield sheet.issue(number, "", f"{len(values)} columns (at most {MAX_COLUMNS})")
                continue
            values = values[:MAX_COLUMNS]  # styled but empty cells far to the right
        cells = tuple(clean(value) for value in values)
        row = Row(number, cells)
        if not row.blank():
            sheet.rows.append(row)
