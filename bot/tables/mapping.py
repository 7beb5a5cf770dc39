"""Which column holds which field: the header row is found, the export recognised from it
(a `Preset` whose `detect` headers are all there), and every column mapped, in this order
of precedence: the operator's own mappings (a mapping file), the recognised preset, then
the header names every file may use (the schema's aliases). A column nobody maps is
reported, never dropped silently.

Then each row is read into typed values (`Layout.read`), every bad cell becoming
`file:LINE: column: reason` (or `file:sheet!row: …`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from typing import Any

from bot.tables import values as v
from bot.tables.read import Row, RowIssue, Sheet
from bot.tables.spec import IGNORE, Combine, FieldSpec, Kind, Preset, Schema, header_key

HEADER_SCAN = 20  # rows looked at for the header (exports put titles and notes above it)


@dataclass(frozen=True)
class Column:
    index: int
    header: str  # as written in the file


@dataclass
class Record:
    """One row read: `values` by field (a field without a usable cell is absent)."""

    line: int
    values: dict[str, Any] = field(default_factory=dict)
    issues: list[RowIssue] = field(default_factory=list)
    hidden: dict[str, str] = field(default_factory=dict)  # field → why its cells were no use
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (column, value) read as `otherwise`


@dataclass
class Layout:
    """How one header row maps onto a schema."""

    schema: Schema
    header_line: int
    preset: Preset | None
    columns: dict[str, list[Column]]
    ignored: list[str]  # headers nothing maps: reported to the operator
    known_unused: list[str]  # headers a preset or mapping file marks `ignore`
    missing: list[str]  # required fields (or `a/b/c` groups) without a column
    choices: dict[str, dict[str, str]]  # field → choice_key(written) → canonical
    examples: dict[str, dict[str, list[str]]]  # field → canonical → written forms (messages)

    def __post_init__(self) -> None:
        self._specs = {spec.name: spec for spec in self.schema.fields}

    @property
    def complete(self) -> bool:
        return not self.missing

    def shown(self, name: str) -> str:
        """The column a field was read from, as written, else the field's usual name."""
        columns = self.columns.get(name)
        return columns[0].header if columns else self.schema.field(name).label

    def read(self, row: Row, sheet: Sheet, tz: tzinfo) -> Record:
        record = Record(row.line)
        for name, columns in self.columns.items():
            spec = self._specs[name]
            cells = [
                (column, row.cells[column.index])
                for column in columns
                if column.index < len(row.cells) and not v.is_blank(row.cells[column.index])
            ]
            if not cells:
                continue
            if spec.combine is Combine.FIRST:
                self._first(spec, cells, record, sheet, tz)
                continue
            parsed = []
            for column, cell in cells:
                try:
                    parsed.append(self._parse(spec, column, cell, record, tz))
                except ValueError as error:
                    record.issues.append(sheet.issue(row.line, column.header, str(error)))
            if len(parsed) == len(cells):
                record.values[name] = sum(parsed, Decimal(0)) if spec.combine is Combine.SUM else any(parsed)
        return record

    def _first(
        self, spec: FieldSpec, cells: list[tuple[Column, Any]], record: Record, sheet: Sheet, tz: tzinfo
    ) -> None:
        for column, cell in cells:
            try:
                record.values[spec.name] = self._parse(spec, column, cell, record, tz)
                return
            except v.MaskedValue as error:  # hidden by the shop: the next column may tell
                record.hidden.setdefault(spec.name, f"{column.header} {error}")
            except ValueError as error:
                record.issues.append(sheet.issue(record.line, column.header, str(error)))
                return

    def _parse(self, spec: FieldSpec, column: Column, cell: Any, record: Record, tz: tzinfo) -> Any:
        choices = self.choices.get(spec.name)
        mapped = choices.get(v.choice_key(v.text(cell))) if choices else None
        kind = spec.kind
        if kind is Kind.CHOICE:
            if mapped is not None:
                return mapped
            if spec.otherwise is not None:
                record.unknown.append((column.header, v.text(cell)))
                return spec.otherwise
            raise ValueError(self._not_known(spec, cell))
        if mapped is not None:
            cell = mapped
        if kind is Kind.AMOUNT:
            return v.parse_amount(cell)
        if kind is Kind.TIME:
            return v.parse_time(cell, tz)
        if kind is Kind.DATE:
            return v.parse_date(cell)
        if kind is Kind.YES_NO:
            return v.parse_yes_no(cell)
        if kind is Kind.MARK:
            return v.parse_mark(cell)
        if kind is Kind.COUNT:
            return v.parse_count(cell)
        if kind is Kind.PHONE:
            return v.parse_phone(cell)
        return v.parse_text(cell)

    def _not_known(self, spec: FieldSpec, cell: Any) -> str:
        known = "; ".join(
            f"{canonical}: {', '.join(forms[:3])}{' …' if len(forms) > 3 else ''}"
            for canonical, forms in self.examples.get(spec.name, {}).items()
        )
        return (
            f"{v.text(cell)!r} is not {spec.what or 'a known value'} ({known}); "
            f"map it in the mapping file under `values: {spec.name}:`"
        )


def _aliases(schema: Schema) -> Preset:
    return Preset(
        "names",
        "column names",
        tuple((alias, spec.name) for spec in schema.fields for alias in (spec.name, *spec.aliases)),
    )


def detect(header: Sequence[Any], presets: Sequence[Preset]) -> Preset | None:
    """The preset whose `detect` headers are all in this header row (the one naming the
    most, when several match; the first of those)."""
    present = {header_key(v.text(cell)) for cell in header}
    best: Preset | None = None
    for preset in presets:
        matches = bool(preset.detect) and all(header_key(name) in present for name in preset.detect)
        if matches and (best is None or len(preset.detect) > len(best.detect)):
            best = preset
    return best


def layout(
    schema: Schema,
    header: Row,
    presets: Sequence[Preset] = (),
    mappings: Sequence[Preset] = (),
) -> Layout:
    """Map one header row. `mappings` are the operator's (their detect-less entries apply
    to every file; those with `detect` compete with `presets` and win a tie)."""
    general = [m for m in mappings if not m.detect]
    preset = detect(header.cells, [*(m for m in mappings if m.detect), *presets])
    sources = [*general, *([preset] if preset else []), _aliases(schema)]
    lookup: list[dict[str, tuple[int, str]]] = []
    for source in sources:
        table: dict[str, tuple[int, str]] = {}
        for position, (name, target) in enumerate(source.columns):
            table.setdefault(header_key(name), (position, target))
        lookup.append(table)
    found: dict[str, list[tuple[tuple[int, int, int], Column]]] = {}
    ignored: list[str] = []
    known_unused: list[str] = []
    for index, cell in enumerate(header.cells):
        written = v.text(cell)
        key = header_key(written)
        if not key:
            continue
        for rank, table in enumerate(lookup):
            if key in table:
                position, target = table[key]
                if target == IGNORE:
                    known_unused.append(written)
                else:
                    found.setdefault(target, []).append(((rank, position, index), Column(index, written)))
                break
        else:
            ignored.append(written)
    columns = {name: [column for _, column in sorted(entries)] for name, entries in found.items()}
    missing = []
    for need in schema.required:
        group = (need,) if isinstance(need, str) else need
        if not any(name in columns for name in group):
            missing.append("/".join(group))
    choices: dict[str, dict[str, str]] = {}
    examples: dict[str, dict[str, list[str]]] = {}
    for spec in schema.fields:
        merged = dict(spec.values)
        for source in [*([preset] if preset else []), *reversed(general)]:
            merged.update(source.values.get(spec.name, {}))
        if merged:
            choices[spec.name] = {v.choice_key(written): canonical for written, canonical in merged.items()}
            shown: dict[str, list[str]] = {}
            for written, canonical in sorted(merged.items(), key=lambda pair: pair[0].isascii()):
                shown.setdefault(canonical, []).append(written)  # Chinese forms first
            examples[spec.name] = shown
    return Layout(schema, header.line, preset, columns, ignored, known_unused, missing, choices, examples)


def find_header(
    schema: Schema, sheet: Sheet, presets: Sequence[Preset] = (), mappings: Sequence[Preset] = ()
) -> Layout | None:
    """The layout of the first of the sheet's first rows that maps every required field;
    else the layout of the row that maps the most (for the operator to see what is
    missing); None for an empty sheet."""
    best: Layout | None = None
    for row in sheet.rows[:HEADER_SCAN]:
        found = layout(schema, row, presets, mappings)
        if found.complete:
            return found
        if best is None or len(found.columns) > len(best.columns):
            best = found
    return best
