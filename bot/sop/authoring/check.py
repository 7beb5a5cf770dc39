"""One entry point for everything operators edit: SOP files, dates, groups, catalog,
templates, and the tagging feature's rule file. Used by `sopbot check`, at daemon start
and on every reload, so all three agree on what is valid."""

from __future__ import annotations

from datetime import datetime

from bot.config.errors import ConfigError, ConfigIssue
from bot.config.settings import Settings
from bot.config.yaml_source import load_yaml
from bot.render import Renderer
from bot.signals.rules import TAGS_FILE, parse_tag_document
from bot.signals.rules import check_templates as check_reply_templates
from bot.sop.authoring.catalog import CatalogFile
from bot.sop.authoring.loader import CATALOG_FILE, SopSet, load_sop_set
from bot.sop.authoring.targeting import load_tiers
from bot.sop.authoring.template_check import TemplateChecker, TemplateUse


def template_uses(sopset: SopSet) -> dict[str, TemplateUse]:
    uses: dict[str, TemplateUse] = {}
    for sop in sopset.sops.values():
        for step in sop.steps:
            for name in step.spec.templates():
                before = uses.get(name)
                kinds = (before.kinds if before else frozenset()) | {step.to}
                first = (
                    (before.sop, before.step)
                    if before
                    else ((sop.id, sop.spec.name), (step.id, step.spec.name or step.id))
                )
                uses[name] = TemplateUse(kinds, *first)
    return uses


def load_checked(settings: Settings, now: datetime) -> SopSet:
    """The SOP set with every template checked; ConfigError lists every problem."""
    issues: list[ConfigIssue] = []
    sopset: SopSet | None = None
    try:
        sopset = load_sop_set(
            settings.sop_path,
            settings.templates_path,
            settings.tz,
            accounts=[a.id for a in settings.accounts],
            tiers=load_tiers(settings),
        )
    except ConfigError as error:
        issues.extend(error.issues)
    issues.extend(check_templates(settings, sopset, now))
    if issues:
        raise ConfigError(issues)
    assert sopset is not None
    return sopset


def check_templates(settings: Settings, sopset: SopSet | None, now: datetime) -> list[ConfigIssue]:
    local = now.astimezone(settings.tz)
    if sopset is not None:
        renderer, tiers, calendar, catalog = sopset.renderer, sopset.tiers, sopset.calendar, sopset.catalog
        group_types, uses = sopset.groups.types, template_uses(sopset)
    else:
        from bot.calendar import Calendar

        renderer, tiers, calendar, catalog = (
            Renderer(settings.templates_path),
            load_tiers(settings),
            Calendar(),
            _catalog_alone(settings),
        )
        group_types, uses = [], {}
    checker = TemplateChecker(
        renderer,
        tiers=tiers,
        group_types=group_types,
        calendar=calendar,
        catalog=catalog,
        uses=uses,
        today=local.date(),
        now=local,
    )
    return checker.check()


def _catalog_alone(settings: Settings) -> CatalogFile:
    """The catalog for the template check when other SOP files have errors (its own
    errors are reported by the loader)."""
    path = settings.sop_path / f"{CATALOG_FILE}.yaml"
    try:
        doc = load_yaml(path)
        return doc.validate(CatalogFile) if isinstance(doc.data, dict) else CatalogFile()
    except (ConfigError, OSError):
        return CatalogFile()


def check_tag_rules(settings: Settings) -> list[ConfigIssue]:
    """sop/tags.yaml: the rules themselves, and that every `reply:` template exists (in
    templates/default/, which tier folders may override)."""
    path = settings.sop_path / TAGS_FILE
    if not path.exists():
        return []
    try:
        doc = load_yaml(path)
        tags = parse_tag_document(doc)
    except ConfigError as error:
        return list(error.issues)
    renderer = Renderer(settings.templates_path)
    return check_reply_templates(tags, renderer.exists, doc.file, doc)


def check_column_mappings(settings: Settings) -> list[ConfigIssue]:
    """sop/columns.yaml: the operator's column names for `import-orders` and
    `import-contacts`, so a mistake shows before the next import, not during it."""
    from bot.orders.columns import SCHEMA as ORDERS
    from bot.people.columns import SCHEMA as CONTACTS
    from bot.tables.mapfile import MAPPING_FILE, parse_mappings

    path = settings.sop_path / MAPPING_FILE
    if not path.exists():
        return []
    try:
        doc = load_yaml(path)
    except ConfigError as error:
        return list(error.issues)
    issues: list[ConfigIssue] = []
    for schema in (ORDERS, CONTACTS):
        try:
            parse_mappings(doc, schema)
        except ConfigError as error:
            issues += [issue for issue in error.issues if issue not in issues]
    return issues


def check_all(settings: Settings, now: datetime) -> tuple[SopSet | None, list[ConfigIssue]]:
    """Everything `sopbot check` reports."""
    issues: list[ConfigIssue] = []
    sopset = None
    try:
        sopset = load_checked(settings, now)
    except ConfigError as error:
        issues.extend(error.issues)
    issues.extend(check_tag_rules(settings))
    issues.extend(check_column_mappings(settings))
    return sopset, issues
