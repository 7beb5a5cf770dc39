"""YAML files written by operators (SOP files, tag rules, the catalog), read so that every
value remembers its line.

Two YAML 1.1 surprises are switched off, because operators write times and answers:
`10:30` stays the string "10:30" (not the base-60 number 630) and `yes`/`no`/`on`/`off`
stay strings (only `true`/`false` are booleans). Dates stay strings too; the models parse
them. A key given twice in one mapping is an error, not a silent override.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from bot.config.errors import ConfigError, ConfigIssue, describe_error, display_path, format_loc

Loc = tuple[str | int, ...]


MAX_FILE_CHARS = 2_000_000  # an operator's YAML file; PyYAML holds ~100 bytes per character
MAX_DEPTH = 40  # mappings and lists inside each other
MAX_ALIAS_VALUES = 20_000  # values built again through aliases (an alias bomb has billions)


class _OperatorLoader(yaml.SafeLoader):
    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", mark
                )
            return super().compose_node(parent, index)  # type: ignore[no-any-return]
        finally:
            self.depth -= 1


_OperatorLoader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^[-+]?(?:0|[1-9][0-9_]*)$", "-+0123456789"),
    (
        "tag:yaml.org,2002:float",
        r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$",
        "-+0123456789.",
    ),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    _OperatorLoader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


@dataclass
class YamlDocument:
    """Parsed YAML data plus the line of every mapping key and sequence item."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of the deepest part of `loc` that exists in the file."""
        for end in range(len(loc), -1, -1):
            if (found := self.lines.get(tuple(loc[:end]))) is not None:
                return found
        return None

    def issue(self, loc: Loc, reason: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line(loc), format_loc(loc), reason)

    def validate(self, model: type[BaseModel], data: Any = None, base: Loc = ()) -> Any:
        """Validate `data` (default: the whole document) with `model`; raise ConfigError
        with one `file:line: field: reason` issue per problem."""
        try:
            return model.model_validate(self.data if data is None else data)
        except ValidationError as error:
            raise ConfigError(issues_from_validation(self, error, base)) from None


def issues_from_validation(doc: YamlDocument, error: ValidationError, base: Loc = ()) -> list[ConfigIssue]:
    issues = []
    for item in error.errors():
        loc = base + tuple(part for part in item["loc"] if not _is_union_tag(part))
        issues.append(doc.issue(loc, describe_error(item)))
    return issues


def _is_union_tag(part: str | int) -> bool:
    # pydantic puts the tried union member's name into the location (e.g. 'function-after[...]')
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


class _Budget:
    """Counts the values built again through an alias: each use of an alias re-expands its
    anchor, so aliases of aliases grow exponentially (a "billion laughs")."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.left = MAX_ALIAS_VALUES
        self.built: set[int] = set()
        self.inside_alias = 0

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            reason = f"aliases expand to more than {MAX_ALIAS_VALUES:,} values"
            raise ConfigError([ConfigIssue(self.file, node.start_mark.line + 1, "", reason)])


def _build(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str, loader: _OperatorLoader, budget: _Budget
) -> Any:
    again = id(node) in budget.built
    if again or budget.inside_alias:
        budget.spend(node)
    budget.built.add(id(node))
    budget.inside_alias += again
    try:
        return _build_node(node, loc, lines, file, loader, budget)
    finally:
        budget.inside_alias -= again


def _build_node(
    node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str, loader: _OperatorLoader, budget: _Budget
) -> Any:
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise ConfigError(
                    [ConfigIssue(file, key_node.start_mark.line + 1, format_loc(loc), "a key must be text")]
                )
            if key in result:
                raise ConfigError(
                    [
                        ConfigIssue(
                            file, key_node.start_mark.line + 1, format_loc((*loc, key)), "key is given twice"
                        )
                    ]
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            result[key] = _build(value_node, (*loc, key), lines, file, loader, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*loc, index)] = item.start_mark.line + 1
            items.append(_build(item, (*loc, index), lines, file, loader, budget))
        return items
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, file: str) -> YamlDocument:
    """Parse YAML text; syntax errors become ConfigError with the file and line."""
    if len(text) > MAX_FILE_CHARS:
        raise ConfigError([ConfigIssue(file, None, "", f"over {MAX_FILE_CHARS:,} characters; split it up")])
    if (deep := _too_deep_line(text)) is not None:
        raise ConfigError(
            [ConfigIssue(file, deep, "", f"invalid YAML: nested more than {MAX_DEPTH} levels deep")]
        )
    loader: _OperatorLoader | None = None
    try:
        loader = _OperatorLoader(text)
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = None if node is None else _build(node, (), lines, file, loader, _Budget(file))
        if node is not None:
            lines[()] = node.start_mark.line + 1
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(filter(None, [error.context, error.problem])) or "invalid YAML"
        raise ConfigError([ConfigIssue(file, line, "", f"invalid YAML: {reason}")]) from None
    except yaml.reader.ReaderError as error:  # a control character, say
        line = text.count("\n", 0, error.position) + 1
        reason = f"character #x{error.character:04x} is not allowed (a control character?)"
        raise ConfigError([ConfigIssue(file, line, "", f"invalid YAML: {reason}")]) from None
    except yaml.YAMLError as error:
        raise ConfigError([ConfigIssue(file, None, "", f"invalid YAML: {error}")]) from None
    except RecursionError:
        raise ConfigError([ConfigIssue(file, None, "", "invalid YAML: nested too deeply")]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return YamlDocument(file, data, lines)


def _too_deep_line(text: str) -> int | None:
    """The line where `[`/`{` brackets nest past MAX_DEPTH, outside quotes and comments: a
    cheap look before PyYAML, whose scanner slows down quadratically with the depth."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    depth, line, quote, comment, previous = 0, 1, "", False, "\n"
    for char in text:
        if char == "\n":
            line, comment = line + 1, False
        elif comment:
            pass
        elif quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and (depth or previous in " \t:-[{,\n"):
            quote = char
        elif char == "#" and previous in " \t\n":
            comment = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return line
        elif char in "]}":
            depth = max(0, depth - 1)
        previous = char
    return None


def load_yaml(path: Path, root: Path | None = None) -> YamlDocument:
    """Read and parse an operator's YAML file (UTF-8, with or without a BOM)."""
    shown = display_path(path, root)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigError(
            [ConfigIssue(shown, None, "", f"not UTF-8 text ({error.reason}); save the file as UTF-8")]
        ) from None
    except OSError as error:
        raise ConfigError([ConfigIssue(shown, None, "", f"cannot read: {error.strerror}")]) from None
    return parse_yaml(text, shown)
