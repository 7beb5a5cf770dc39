"""Operators' message templates: Jinja in an immutable sandbox, looked up per tier.

A step names a template (`daily_pick`); for a contact at tier `repeat` the renderer uses
`templates/repeat/daily_pick.j2` (or the tier's name: `templates/复购会员/daily_pick.j2`) if
it exists, else `templates/default/daily_pick.j2`.
Groups use their group type, then `default`. Undefined variables are errors
(StrictUndefined), and `sopbot check` finds them before anything is sent.

A render is bounded in time, value sizes and output (`bot.render_limits`); each text part
has at most 2,000 characters. A rendered template is one or more messages separated by a line `---`. A message whose
first line is `[图片] URL` is an image; `[链接] 标题 | URL | 描述` is a link card; anything else
is text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
)

from bot.config.errors import ConfigIssue, display_path
from bot.render_limits import PART_LIMIT, BoundedSandbox, render_bounded
from bot.wechat.types import Content, Image, LinkCard, Text

TEMPLATE_SUFFIX = ".j2"
DEFAULT_FOLDER = "default"
_SEPARATOR = re.compile(r"^\s*---\s*$", re.MULTILINE)
_IMAGE = re.compile(r"^\s*\[(?:图片|image)\]\s*(\S+)\s*$", re.IGNORECASE)
_LINK = re.compile(r"^\s*\[(?:链接|link)\]\s*(.+)$", re.IGNORECASE)


class RenderError(Exception):
    """A template could not be rendered; `issue` says where and why."""

    def __init__(self, issue: ConfigIssue) -> None:
        self.issue = issue
        super().__init__(str(issue))


@dataclass(frozen=True)
class RenderedMessage:
    template: str  # the file actually used, relative to the templates folder
    parts: tuple[Content, ...]


def parse_parts(text: str) -> tuple[Content, ...]:
    """Split rendered text into message parts (see the module docstring)."""
    parts: list[Content] = []
    for chunk in _SEPARATOR.split(text):
        body = chunk.strip("\n").strip()
        if not body:
            continue
        if match := _IMAGE.match(body):
            parts.append(Image(match.group(1)))
        elif match := _LINK.match(body):
            fields = [f.strip() for f in match.group(1).split("|")]
            title, url = fields[0], fields[1] if len(fields) > 1 else ""
            description = fields[2] if len(fields) > 2 else ""
            thumb = fields[3] if len(fields) > 3 else ""
            parts.append(LinkCard(title, url, description, thumb))
        else:
            parts.append(Text(body))
    return tuple(parts)


class Renderer:
    """Finds and renders templates under one folder."""

    def __init__(
        self,
        folder: Path,
        *,
        filters: Mapping[str, Any] | None = None,
        globals_: Mapping[str, Any] | None = None,
        aliases: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.folder = folder
        self.aliases = dict(aliases or {})  # a variant's other folder names: koc → 品牌KOC
        self.env = BoundedSandbox(
            loader=FileSystemLoader(str(folder), encoding="utf-8"),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=True,
        )
        self.env.filters.update(filters or {})
        self.env.globals.update(globals_ or {})

    def candidates(self, name: str, variants: Sequence[str]) -> list[str]:
        """Template paths tried, in order, for `name` and the recipient's variants
        (tier id, group type…), ending with the default folder."""
        file = name if name.endswith(TEMPLATE_SUFFIX) else name + TEMPLATE_SUFFIX
        folders = [f for variant in variants if variant for f in (variant, *self.aliases.get(variant, ()))]
        return [f"{folder}/{file}" for folder in (*folders, DEFAULT_FOLDER)]

    def resolve(self, name: str, variants: Sequence[str]) -> str:
        for candidate in self.candidates(name, variants):
            if (self.folder / candidate).is_file():
                return candidate
        tried = ", ".join(self.candidates(name, variants))
        raise RenderError(ConfigIssue(self._shown(name), None, "template", f"not found (looked for {tried})"))

    def exists(self, name: str, variants: Sequence[str] = ()) -> bool:
        return any((self.folder / c).is_file() for c in self.candidates(name, variants))

    def render(self, name: str, context: Mapping[str, Any], variants: Sequence[str] = ()) -> RenderedMessage:
        return self.prepare(name, variants).render(context)

    def prepare(self, name: str, variants: Sequence[str] = ()) -> PreparedTemplate:
        """The template a recipient with these variants gets, found and parsed once: a
        fan-out prepares it per tier and renders it per person."""
        path = self.resolve(name, variants)
        try:
            return PreparedTemplate(path, self._shown(path), self.env.get_template(path))
        except TemplateSyntaxError as error:
            raise RenderError(
                ConfigIssue(self._shown(path), error.lineno, "", f"syntax error: {error.message}")
            ) from None
        except TemplateNotFound as error:
            raise RenderError(
                ConfigIssue(self._shown(path), None, "", f"includes a missing template {error.name}")
            ) from None

    def _shown(self, relative: str) -> str:
        return display_path(self.folder / relative)


@dataclass(frozen=True)
class PreparedTemplate:
    """A found, parsed template; rendering it turns every error into a RenderError with
    the template's file and line."""

    path: str  # relative to the templates folder
    shown: str  # as operators see it in messages
    template: Template

    def render(self, context: Mapping[str, Any]) -> RenderedMessage:
        try:
            text = render_bounded(self.template, context)
        except TemplateNotFound as error:
            raise RenderError(
                ConfigIssue(self.shown, None, "", f"includes a missing template {error.name}")
            ) from None
        except TemplateError as error:
            raise RenderError(
                ConfigIssue(self.shown, template_line(error, self.path), "", str(error))
            ) from None
        except Exception as error:  # e.g. a division by zero for one contact's numbers
            reason = f"{type(error).__name__}: {error}"
            raise RenderError(ConfigIssue(self.shown, template_line(error, self.path), "", reason)) from None
        parts = parse_parts(text)
        if not parts:
            raise RenderError(ConfigIssue(self.shown, None, "", "renders to an empty message"))
        if problem := too_long_part(parts):
            raise RenderError(ConfigIssue(self.shown, None, "", problem))
        return RenderedMessage(self.path, parts)


def too_long_part(parts: Sequence[Content]) -> str | None:
    for number, part in enumerate(parts, start=1):
        if isinstance(part, Text) and len(part.text) > PART_LIMIT:
            return f"part {number} has {len(part.text):,} characters; WeChat takes up to {PART_LIMIT:,}"
    return None


def template_line(error: Exception, path: str) -> int | None:
    """The template line a runtime error happened on, from the traceback Jinja rewrites."""
    line = None
    traceback = error.__traceback__
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename.endswith(path):
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line
