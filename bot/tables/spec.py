"""What an importer expects of a table: its fields (a `Schema`), and the column names of
the exports it knows (`Preset`s). Plain data, cheap to import: `--help` texts are built
from it without loading the readers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

IGNORE = "ignore"  # a column mapped to this is known and not used (not reported)


class Kind(StrEnum):
    """How a field's cells are read (parsers in `bot.tables.values`)."""

    TEXT = "text"
    AMOUNT = "amount"  # yuan: ¥1,299.00, 88元
    TIME = "time"  # 2026/11/20 14:03:22, 2026年11月20日 14:03, an Excel date; years 2000–2100
    DATE = "date"  # a day: 1990年5月20日, 1990/5/20; years 1900–2100 (birthdays)
    YES_NO = "yes_no"  # 是/否, yes/no, 1/0; anything else is an error
    MARK = "mark"  # any sign of it: yes, an amount that is not 0, a label; 0/否/- is no
    COUNT = "count"  # 2, 2件
    PHONE = "phone"  # +86 138-0000-0001; masked numbers are no number
    CHOICE = "choice"  # one of the field's known values (order states …)


class Combine(StrEnum):
    """What a field takes when several columns map to it."""

    FIRST = "first"  # the first column, in the mapping's order, that is not empty
    SUM = "sum"  # amounts: all columns added
    ANY = "any"  # yes/no and marks: yes when any column says yes


@dataclass(frozen=True)
class FieldSpec:
    """One field an importer reads. `aliases` are header names accepted in any file;
    `values` (CHOICE) map written forms to the canonical value; a value not listed is
    an error, unless `otherwise` names the value it is read as (and the import lists it)."""

    name: str
    label: str  # the usual Chinese column name, used in messages and --help
    kind: Kind = Kind.TEXT
    aliases: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)
    otherwise: str | None = None
    combine: Combine = Combine.FIRST
    what: str = ""  # CHOICE: how errors name it ("an order state")
    help: str = ""


@dataclass(frozen=True)
class Schema:
    """The fields of one kind of table (`orders`, `contacts`); `name` is its key in a
    mapping file. `required` holds field names, or tuples of which one is enough."""

    name: str
    fields: tuple[FieldSpec, ...]
    required: tuple[str | tuple[str, ...], ...] = ()

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.fields)

    def canonical_values(self, name: str) -> tuple[str, ...]:
        spec = self.field(name)
        return tuple(dict.fromkeys(spec.values.values()))


@dataclass(frozen=True)
class Preset:
    """The column names of one export (有赞, 抖店 … or the operator's own): used when all
    `detect` headers are in the header row; a preset without `detect` applies to every
    file (the operator's general mapping). `columns` are (header, field) pairs; a field
    named by several headers reads them in this order. `source` says where the names come
    from (a document, or the mapping file's line)."""

    id: str
    name: str
    columns: tuple[tuple[str, str], ...]
    detect: tuple[str, ...] = ()
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = ""

    def fields(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for header, name in self.columns:
            out.setdefault(name, []).append(header)
        return out


_UNIT = re.compile(r"[(（](元|人民币|rmb|cny)[)）]$", re.IGNORECASE)
_INVISIBLE = re.compile(r"[\s\ufeff\u200b\u200c\u200d\u2060\u3000\u00a0]")


def header_key(header: object) -> str:
    """How header names are compared: any case, no spaces, full-width brackets as ASCII,
    without a trailing unit (`订单实付金额(元)` is `订单实付金额`)."""
    written = _INVISIBLE.sub("", str(header or ""))
    written = _UNIT.sub("", written.replace("（", "(").replace("）", ")"))
    return written.casefold()
