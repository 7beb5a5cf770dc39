"""Find the line of a key in a TOML document, for error messages.

`tomllib` keeps no positions, so this scans the text the way an operator reads it: table
headers (`[delivery]`, `[[accounts]]`) and `key = value` lines. It is only used to point at
a line; the document itself is always parsed by `tomllib`.
"""

from __future__ import annotations

import re

_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ARRAY_TABLE = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-.\s"']+?)\s*=""")


def _split_key(raw: str) -> tuple[str, ...]:
    parts = [p.strip().strip("\"'") for p in raw.split(".")]
    return tuple(p for p in parts if p)


def key_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map every table and key path to the 1-based line where it is defined."""
    lines: dict[tuple[str | int, ...], int] = {}
    array_counts: dict[tuple[str, ...], int] = {}
    table: tuple[str | int, ...] = ()
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        if match := _ARRAY_TABLE.match(line):
            name = _split_key(match.group(1))
            index = array_counts.get(name, 0)
            array_counts[name] = index + 1
            table = (*name, index)
            lines.setdefault(name, number)
            lines[table] = number
            continue
        if match := _TABLE.match(line):
            table = _split_key(match.group(1))
            lines[table] = number
            continue
        if match := _KEY.match(line):
            lines[(*table, *_split_key(match.group(1)))] = number
            rest = line[match.end() :]
            if rest.count('"""') % 2 == 1 or rest.count("'''") % 2 == 1:
                in_multiline = True
    return lines


def line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    """The line of the longest prefix of `loc` that the document defines."""
    for end in range(len(loc), 0, -1):
        if (found := lines.get(tuple(loc[:end]))) is not None:
            return found
    return None
