"""A report as rich tables in the terminal (or as plain text in a file)."""

from __future__ import annotations

import io
import re
import unicodedata

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable
from rich.text import Text

from bot.report import labels as L
from bot.report.tables import Table, header, tables
from bot.results.model import Report

_BETWEEN = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef)])\s+(?=[A-Za-z])")  # 中文 | English


def print_report(report: Report, console: Console) -> None:
    """Every section, in order; an empty one says so. Cells are `Text`, never markup: a
    contact named `[bold]x[/]` shows as written."""
    console.print(f"[bold]sopbot 报表 report[/] {escape(report.period.label)}")
    for name, value in header(report):
        console.print(Text(_printable(f"{name}: {value}")))
    for table in tables(report):
        console.print()
        _print_table(table, console)


def render_text(report: Report, width: int = 160) -> str:
    """The terminal form as plain text (no colours), for a file."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, soft_wrap=False)
    print_report(report, console)
    return buffer.getvalue()


def _print_table(table: Table, console: Console) -> None:
    if table.empty:
        console.print(Text(table.title, style="bold"))
        console.print(Text(f"  {L.NO_DATA}", style="dim"))
        return
    for part in _parts(table, console):
        console.print(part)


def _parts(table: Table, console: Console) -> list[RichTable]:
    """The table, or in a terminal too narrow for it, its columns in as many tables as it
    takes, each starting with the rows' names: a figure is never cut off.

    The column widths are set here rather than left to rich, which may squeeze a column
    below its longest figure when the table is wider than the terminal."""
    keep = table.numeric  # the columns that name the row
    rest = list(range(keep, len(table.columns)))
    groups: list[list[int]] = []  # the columns of one table each
    while rest:
        group = [rest.pop(0)]
        while rest and _width(table, [*range(keep), *group, rest[0]]) <= console.width:
            group.append(rest.pop(0))
        groups.append([*range(keep), *group])
    return [
        _rich(table, columns, _widths(table, columns, console.width), part=i + 1, of=len(groups))
        for i, columns in enumerate(groups)
    ]


def _width(table: Table, columns: list[int]) -> int:
    """The columns side by side at their narrowest: a space of padding either side of each
    border (one character), and the table's two edges."""
    return sum(_narrowest(table, i) for i in columns) + _FRAME * len(columns) + 1


_FRAME = 3  # padding and border per column


def _narrowest(table: Table, index: int) -> int:
    """Every cell on one line, the header wrapped at its spaces (at most 24: a long name wraps)."""
    cells = max((cell_len(row[index]) for row in table.rows), default=0)
    words = max(cell_len(word) for word in table.columns[index].split())
    return min(max(cells, words), 24)


def _widest(table: Table, index: int) -> int:
    """Every cell and each line of the header on one line."""
    cells = max((cell_len(row[index]) for row in table.rows), default=0)
    return max(cells, *(cell_len(line) for line in _two_lines(table.columns[index]).splitlines()))


def _widths(table: Table, columns: list[int], room: int) -> list[int]:
    """Each column at its narrowest, then as much wider as the room allows, left to right."""
    widths = [_narrowest(table, i) for i in columns]
    spare = room - _width(table, columns)
    for n, index in enumerate(columns):
        grow = max(0, min(_widest(table, index) - widths[n], spare))
        widths[n] += grow
        spare -= grow
    return widths


def _rich(table: Table, columns: list[int], widths: list[int], part: int, of: int) -> RichTable:
    title = table.title if of == 1 else f"{table.title} ({part}/{of})"
    shown = RichTable(
        title=Text(title, style="bold"),
        title_justify="left",
        caption=Text(table.note) if table.note and part == of else None,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for index, width in zip(columns, widths, strict=True):
        shown.add_column(
            Text(_two_lines(table.columns[index])),
            justify="right" if table.is_numeric(index) else "left",
            width=width,
        )
    for index, row in enumerate(table.rows):
        shown.add_row(
            *(Text(_printable(row[i])) for i in columns), style="bold" if index in table.highlight else None
        )
    return shown


def _two_lines(header: str) -> str:
    """`加粉数 added` → the Chinese over the English: narrow columns that need no wrapping."""
    return _BETWEEN.sub("\n", header, count=1)


def _printable(text: str) -> str:
    """Without control characters (a name with an escape sequence cannot clear the screen or
    recolour the terminal); line breaks and tabs become spaces."""
    if text.isprintable():
        return text
    return "".join(
        " " if c in "\t\n\r" else c for c in text if c in "\t\n\r" or unicodedata.category(c) != "Cc"
    )
