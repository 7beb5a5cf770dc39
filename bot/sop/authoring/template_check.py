"""Template linting for `sopbot check` and reloads: syntax, variables and attributes the
context does not have (found statically, with their line), then a strict dry render of
every template against a sample context for the recipients that will get it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError, TemplateSyntaxError, meta, nodes

from bot.calendar import Calendar
from bot.config.errors import ConfigIssue, display_path
from bot.render import DEFAULT_FOLDER, TEMPLATE_SUFFIX, Renderer, parse_parts, template_line, too_long_part
from bot.render_limits import render_bounded
from bot.sop.authoring.catalog import CatalogFile, CatalogView
from bot.sop.authoring.targeting import Tiers
from bot.sop.runtime.context import (
    CONTEXT_SCHEMA,
    ITEM_FIELDS,
    NESTED_SCHEMA,
    contact_context,
    day_context,
    group_context,
    sample_contact,
    sample_room,
)

# Templates of other features (rule replies), which get another context: syntax only.
FOREIGN_PREFIXES = ("reply_",)
_ITEM_SOURCES = {"pick", "items", "first", "get"}


@dataclass(frozen=True)
class TemplateUse:
    """How SOPs use a template name: for contacts, groups, and in which SOP/step."""

    kinds: frozenset[str]  # contacts | groups
    sop: tuple[str, str] | None = None  # (id, name) of one SOP using it
    step: tuple[str, str] | None = None


def template_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob(f"*{TEMPLATE_SUFFIX}") if p.is_file())


def _first_line(ast: nodes.Template, name: str) -> int | None:
    lines = [n.lineno for n in ast.find_all(nodes.Name) if n.name == name and n.ctx == "load"]
    return min(lines) if lines else None


def _const_key(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if (
        isinstance(node, nodes.Getitem)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        return node.arg.value
    return None


def _item_names(ast: nodes.Template) -> set[str]:
    """Names bound to catalog items: `for item in catalog.pick(2)`, `set item = catalog.first()`."""

    def from_catalog(node: nodes.Node) -> bool:
        if isinstance(node, nodes.Call):
            node = node.node
        return (
            isinstance(node, nodes.Getattr)
            and node.attr in _ITEM_SOURCES
            and isinstance(node.node, nodes.Name)
            and node.node.name == "catalog"
        )

    names = set()
    for loop in ast.find_all(nodes.For):
        if isinstance(loop.target, nodes.Name) and from_catalog(loop.iter):
            names.add(loop.target.name)
    for assign in ast.find_all(nodes.Assign):
        if isinstance(assign.target, nodes.Name) and from_catalog(assign.node):
            names.add(assign.target.name)
    return names


def lint_names(ast: nodes.Template, shown: str, allowed_globals: Iterable[str]) -> list[ConfigIssue]:
    """Unknown variables and attributes, each with the line it is first used on."""
    issues = []
    known = set(CONTEXT_SCHEMA) | set(allowed_globals)
    for name in sorted(meta.find_undeclared_variables(ast) - known):
        issues.append(
            ConfigIssue(
                shown,
                _first_line(ast, name),
                "",
                f"unknown variable {name!r} (known: {', '.join(CONTEXT_SCHEMA)})",
            )
        )
    items = _item_names(ast)
    seen: set[str] = set()
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        key = _const_key(node)
        inner = node.node
        if key is None:
            continue
        fields: frozenset[str] | None = None
        path = ""
        if isinstance(inner, nodes.Name) and inner.name in CONTEXT_SCHEMA:
            fields, path = CONTEXT_SCHEMA[inner.name], inner.name
        elif isinstance(inner, nodes.Name) and inner.name in items:
            fields, path = ITEM_FIELDS, inner.name
        elif (
            (parent := _const_key(inner)) in NESTED_SCHEMA
            and isinstance(inner, nodes.Getattr | nodes.Getitem)
            and isinstance(inner.node, nodes.Name)
            and inner.node.name in CONTEXT_SCHEMA
        ):
            assert parent is not None
            fields, path = NESTED_SCHEMA[parent], f"{inner.node.name}.{parent}"
        if fields is None or key in fields:
            continue
        shown_name = f"{path}.{key}"
        if shown_name in seen:
            continue
        seen.add(shown_name)
        issues.append(
            ConfigIssue(
                shown,
                node.lineno,
                "",
                f"unknown attribute {shown_name!r} ({path} has: {', '.join(sorted(fields))})",
            )
        )
    return issues


class TemplateChecker:
    def __init__(
        self,
        renderer: Renderer,
        *,
        tiers: Tiers,
        group_types: Iterable[str],
        calendar: Calendar,
        catalog: CatalogFile,
        uses: dict[str, TemplateUse],
        today: date,
        now: datetime,
    ) -> None:
        self.renderer = renderer
        self.tiers = tiers
        self.group_types = set(group_types)
        self.calendar = calendar
        self.catalog = catalog
        self.uses = uses
        self.today = today
        self.now = now
        self._day = day_context(calendar, today)

    def check(self) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        for path in template_files(self.renderer.folder):
            issues.extend(self.check_file(path))
        return issues

    def check_file(self, path: Path) -> list[ConfigIssue]:
        relative = path.relative_to(self.renderer.folder).as_posix()
        shown = display_path(path)
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            return [ConfigIssue(shown, None, "", f"not UTF-8 text ({error.reason}); save the file as UTF-8")]
        try:
            ast = self.renderer.env.parse(source, relative, relative)
        except TemplateSyntaxError as error:
            return [ConfigIssue(shown, error.lineno, "", f"syntax error: {error.message}")]
        if path.name.startswith(FOREIGN_PREFIXES):
            return []
        issues = lint_names(ast, shown, self.renderer.env.globals)
        if issues:
            return issues
        name = relative.rpartition("/")[2].removesuffix(TEMPLATE_SUFFIX)
        failed = [self.dry_render(relative, shown, context) for context in self.samples(relative)]
        found = [issue for issue in failed if issue is not None]
        if name not in self.uses and len(found) < len(failed):
            return []  # no SOP uses it yet: it only has to work for some recipient
        return found[:1]  # the first failing sample says it; the others would repeat it

    def samples(self, relative: str) -> Iterator[dict[str, Any]]:
        """Sample contexts for the recipients that can get this file."""
        folder, _, file = relative.rpartition("/")
        name = file.removesuffix(TEMPLATE_SUFFIX)
        use = self.uses.get(name, TemplateUse(frozenset({"contacts", "groups"})))
        sop = {"id": use.sop[0], "name": use.sop[1]} if use.sop else {"id": "sample", "name": "示例SOP"}
        step = {"id": use.step[0], "name": use.step[1]} if use.step else {"id": "sample", "name": "示例"}
        shared = {"today": self._day, "sop": sop, "step": step}
        folder_tier = (
            self.tiers.ladder.resolve(folder) if folder != DEFAULT_FOLDER else None
        )  # koc or 品牌KOC
        in_tier_folder = folder_tier is not None
        if "contacts" in use.kinds and (folder == DEFAULT_FOLDER or in_tier_folder):
            for tier in [folder_tier] if folder_tier is not None else self.tiers.ids:
                contact = contact_context(
                    sample_contact(tier, self.now, self.tiers.sample_orders(tier)),
                    self.tiers,
                    self.today,
                    self.now.tzinfo,
                )
                catalog = CatalogView(self.catalog, self.today, tier)
                yield {**shared, "contact": contact, "group": None, "catalog": catalog}
        if "groups" in use.kinds or (folder != DEFAULT_FOLDER and not in_tier_folder):
            group_type = None if folder == DEFAULT_FOLDER or in_tier_folder else folder
            group = group_context(sample_room(group_type))
            yield {
                **shared,
                "contact": None,
                "group": group,
                "catalog": CatalogView(self.catalog, self.today, None),
            }

    def dry_render(self, relative: str, shown: str, context: dict[str, Any]) -> ConfigIssue | None:
        who = context["contact"]["tier"] if context["contact"] else f"group {context['group']['type'] or '-'}"
        try:
            text = render_bounded(self.renderer.env.get_template(relative), context)
        except TemplateError as error:
            return ConfigIssue(shown, template_line(error, relative), "", f"{error} (sample {who})")
        except (KeyError, ValueError, TypeError, ArithmeticError) as error:
            reason = error.args[0] if isinstance(error, KeyError) and error.args else error
            return ConfigIssue(shown, template_line(error, relative), "", f"{reason} (sample {who})")
        except Exception as error:  # a bound broken (LimitExceeded), endless recursion…
            reason = f"{type(error).__name__}: {error}"
            return ConfigIssue(shown, template_line(error, relative), "", f"{reason} (sample {who})")
        parts = parse_parts(text)
        if not parts:
            return ConfigIssue(shown, None, "", f"renders to an empty message (sample {who})")
        if problem := too_long_part(parts):
            return ConfigIssue(shown, None, "", f"{problem} (sample {who})")
        return None
