"""The operator's own column names: a YAML mapping file (`sop/columns.yaml`, or the file
given with `--mapping`). One section per importer (`orders:`, `contacts:`); each section
is one mapping or a list of them:

```yaml
orders:
  - name: 我的小程序商城          # shown when the file is recognised
    detect: [流水号, 实收金额]      # all of these headers → this export (optional)
    columns:                      # header in the file: field
      流水号: order_id
      买家微信号: wxid
      实收金额: amount
      活动名称: discount
      门店备注: ignore             # known, not used (not reported)
    values:                       # written value: canonical value, per field
      status:
        已签收: paid
      discounted:
        参与: yes
```

A mapping without `detect` applies to every file of that importer. Mistakes are reported
as `sop/columns.yaml:LINE: field: reason`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.config.errors import ConfigError, ConfigIssue
from bot.config.yaml_source import Loc, YamlDocument, load_yaml
from bot.tables.spec import IGNORE, Kind, Preset, Schema
from bot.tables.values import NO, YES

MAPPING_FILE = "columns.yaml"  # in the SOP folder
# every importer's section; a section of another importer is left to it
SECTIONS = ("orders", "contacts")
_VALUE_KINDS = (Kind.CHOICE, Kind.YES_NO, Kind.MARK, Kind.TEXT)


class _Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=60)
    detect: list[str] = Field(default_factory=list, max_length=20)
    columns: dict[str, str] = Field(default_factory=dict, max_length=500)
    values: dict[str, dict[str, str]] = Field(default_factory=dict)


def load_mappings(path: Path, schema: Schema, root: Path | None = None) -> list[Preset]:
    """The mappings for `schema` in the file at `path`; ConfigError lists every mistake."""
    if not path.is_file():
        raise ConfigError([ConfigIssue(str(path), None, "", "no such file")])
    return parse_mappings(load_yaml(path, root), schema)


def parse_mappings(doc: YamlDocument, schema: Schema) -> list[Preset]:
    data = doc.data
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ConfigError([doc.issue((), f"expected sections like `{schema.name}:` (see docs/orders.md)")])
    issues = [
        doc.issue((key,), f"unknown section (known: {', '.join(SECTIONS)})")
        for key in data
        if key not in SECTIONS
    ]
    part = data.get(schema.name)
    entries: list[tuple[Loc, Any]] = []
    if isinstance(part, list):
        entries = [((schema.name, index), item) for index, item in enumerate(part)]
    elif part is not None:
        entries = [((schema.name,), part)]
    presets = []
    for loc, item in entries:
        try:
            spec = doc.validate(_Mapping, _texts(item), loc)
        except ConfigError as error:
            issues += error.issues
            continue
        issues += _check(doc, loc, spec, schema)
        line = doc.line(loc)
        where = f"{doc.file}:{line}" if line else doc.file
        presets.append(
            Preset(
                id=where,
                name=spec.name or where,
                columns=tuple(spec.columns.items()),
                detect=tuple(spec.detect),
                values={name: dict(mapping) for name, mapping in spec.values.items()},
                source=where,
            )
        )
    if issues:
        raise ConfigError(issues)
    return presets


def _texts(item: Any) -> Any:
    """YAML reads `1:` as a number and `true` as a boolean: column names and values are text."""
    if isinstance(item, dict):
        return {_text(key): _texts(value) for key, value in item.items()}
    if isinstance(item, list):
        return [_texts(value) for value in item]
    return _text(item)


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    return value


def _check(doc: YamlDocument, loc: Loc, spec: _Mapping, schema: Schema) -> list[ConfigIssue]:
    issues = []
    names = ", ".join(schema.names)
    for header, target in spec.columns.items():
        if target not in schema.names and target != IGNORE:
            reason = f"{target!r} is not a field (one of: {names}, or ignore)"
            issues.append(doc.issue((*loc, "columns", header), reason))
    for name, mapping in spec.values.items():
        if name not in schema.names:
            issues.append(doc.issue((*loc, "values", name), f"{name!r} is not a field (one of: {names})"))
            continue
        field = schema.field(name)
        if field.kind not in _VALUE_KINDS:
            reason = (
                f"{name} is read as {field.kind.value}: values can be mapped for text, choices and yes/no"
            )
            issues.append(doc.issue((*loc, "values", name), reason))
            continue
        for written, canonical in mapping.items():
            if field.kind is Kind.CHOICE and canonical not in schema.canonical_values(name):
                known = ", ".join(schema.canonical_values(name))
                issues.append(
                    doc.issue((*loc, "values", name, written), f"{canonical!r} is not one of: {known}")
                )
            elif field.kind in (Kind.YES_NO, Kind.MARK) and canonical.casefold() not in YES | NO:
                issues.append(doc.issue((*loc, "values", name, written), f"{canonical!r} is not yes or no"))
    return issues
