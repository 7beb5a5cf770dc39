"""Configuration errors that point an operator at the exact file, line and field."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in an operator-edited file, printed as `file:line: field: reason`."""

    file: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field}: {self.reason}" if self.field else f"{where}: {self.reason}"


class ConfigError(Exception):
    """Raised when a configuration file is invalid; carries every issue found, not only the
    first, so an operator can fix them all in one pass."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


def display_path(path: Path, root: Path | None = None) -> str:
    """The path as an operator typed it: relative to the project folder when possible."""
    base = root or Path.cwd()
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def format_loc(loc: tuple[str | int, ...]) -> str:
    """pydantic's error location as operators read it: `steps[1].at`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def describe_error(item: Any) -> str:
    """One pydantic validation error as an operator reads it (settings.toml and YAML)."""
    kind = item.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field (check the spelling)"
    if kind == "missing":
        return "required field is missing"
    message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
    value = item.get("input")
    if not isinstance(value, dict | list) and repr(value) not in message and value is not None:
        return f"{message} (got {value!r})"
    return message
