"""Reads the operators' folder `sop/` into one checked, immutable `SopSet`.

Every SOP file is validated on its own (`bot.sop.authoring.spec`), then against the rest: SOP ids,
templates, tiers, tag expressions, festivals, group types. All problems are collected and
raised together as one ConfigError of `file:line: field: reason` issues, so the daemon
keeps its previous set and `sopbot check` lists every mistake at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from bot.calendar import Calendar
from bot.config.errors import ConfigError, ConfigIssue, display_path
from bot.config.yaml_source import Loc, YamlDocument, load_yaml
from bot.events import ContactEventKind
from bot.render import Renderer
from bot.sop.authoring.catalog import CatalogFile, tier_keys
from bot.sop.authoring.dates import DatesFile
from bot.sop.authoring.groups import GroupsFile, GroupTyping
from bot.sop.authoring.spec import AudienceSpec, EventSpec, SopSpec, StepSpec
from bot.sop.authoring.targeting import TagTest, Tiers, compile_expr, load_tiers
from bot.sop.authoring.triggers import trigger_for

CATALOG_FILE = "catalog"
GROUPS_FILE = "groups"
DATES_FILE = "dates"
# files in sop/ that belong to other features (the tagging feature's rules and tiers, the
# importers' column mapping)
FOREIGN_FILES = frozenset({"tags", "tiers", "rules", "orders", "referrals", "columns"})
RESERVED = frozenset({CATALOG_FILE, GROUPS_FILE, DATES_FILE}) | FOREIGN_FILES
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class AudienceLayer:
    """One audience block (the SOP's or a step's), compiled; a recipient must pass all."""

    tiers: frozenset[str] | None = None
    tags: TagTest | None = None
    exclude: TagTest | None = None
    exclude_tiers: frozenset[str] = frozenset()
    group_types: frozenset[str] | None = None
    group_names: tuple[str, ...] = ()
    group_tags: frozenset[str] | None = None
    exclude_groups: tuple[str, ...] = ()
    accounts: frozenset[str] | None = None


@dataclass(frozen=True)
class Step:
    sop_id: str
    spec: StepSpec
    to: str  # contacts | groups
    layers: tuple[AudienceLayer, ...]
    event: EventSpec | None
    trigger: BaseTrigger | None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def is_lifecycle(self) -> bool:
        """A per-contact step: after an event, or once per spell of silence or lapse."""
        return self.spec.span is not None

    @property
    def spell(self) -> str | None:
        """`silent` or `no_order` for a step that fires once per spell; else None."""
        return self.spec.spell


@dataclass(frozen=True)
class Sop:
    spec: SopSpec
    file: str
    tz: ZoneInfo
    steps: tuple[Step, ...]

    @property
    def id(self) -> str:
        return self.spec.id

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)


@dataclass
class SopSet:
    """Everything the SOP runtime needs from `sop/` and `templates/`."""

    sops: dict[str, Sop]
    catalog: CatalogFile
    groups: GroupTyping
    calendar: Calendar
    tiers: Tiers
    renderer: Renderer
    files: list[Path] = field(default_factory=list)

    def enabled(self) -> list[Sop]:
        return [sop for sop in self.sops.values() if sop.spec.enabled]

    def find(self, ref: str) -> Sop:
        """An SOP by id, name or file name."""
        for sop in self.sops.values():
            if ref in (sop.id, sop.spec.name, Path(sop.file).stem, sop.file):
                return sop
        known = ", ".join(f"{s.id} ({s.spec.name})" for s in self.sops.values())
        raise KeyError(f"no SOP {ref!r}; known: {known}")


def sop_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())


class _Issues:
    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, issue: ConfigIssue) -> None:
        self.items.append(issue)

    def at(self, doc: YamlDocument, loc: Loc, reason: str) -> None:
        self.items.append(doc.issue(loc, reason))

    def read(self, path: Path, model: type, root: Path | None) -> tuple[YamlDocument | None, Any]:
        """Load and validate one file; problems are collected, (None, None) returned."""
        try:
            doc = load_yaml(path, root)
        except ConfigError as error:
            self.items.extend(error.issues)
            return None, None
        if doc.data is None:
            doc.data = {}
        if not isinstance(doc.data, dict):
            self.at(doc, (), "the file must be a mapping of fields (key: value)")
            return doc, None
        try:
            return doc, doc.validate(model)
        except ConfigError as error:
            self.items.extend(error.issues)
            return doc, None


def load_sop_set(
    sop_dir: Path,
    templates_dir: Path,
    default_tz: ZoneInfo,
    *,
    accounts: Iterable[str] | None = None,
    root: Path | None = None,
    tiers: Tiers | None = None,
) -> SopSet:
    """Read and check every file; raise ConfigError listing every problem found."""
    issues = _Issues()
    files = sop_files(sop_dir)
    by_stem = {p.stem: p for p in files}

    catalog, groups, dates = CatalogFile(), GroupsFile(), DatesFile()
    catalog_doc = None
    if (path := by_stem.get(CATALOG_FILE)) is not None:
        catalog_doc, catalog = issues.read(path, CatalogFile, root)
        catalog = catalog or CatalogFile()
    if (path := by_stem.get(GROUPS_FILE)) is not None:
        groups = issues.read(path, GroupsFile, root)[1] or GroupsFile()
    dates_doc = None
    if (path := by_stem.get(DATES_FILE)) is not None:
        dates_doc, dates = issues.read(path, DatesFile, root)
        dates = dates or DatesFile()

    calendar = _calendar(dates, dates_doc, issues)
    tiers = tiers or load_tiers()
    typing = GroupTyping(tuple(groups.groups))
    renderer = Renderer(templates_dir, aliases=tiers.ladder.folder_aliases())
    if catalog_doc is not None:
        for loc, tier in tier_keys(catalog).items():
            _tier(tier, tiers, catalog_doc, loc, issues)

    checker = _SopChecker(issues, calendar, tiers, typing, renderer, default_tz, set(accounts or ()))
    sops: dict[str, Sop] = {}
    seen_files: dict[str, str] = {}
    for path in files:
        if path.stem in RESERVED:
            continue
        doc, spec = issues.read(path, SopSpec, root)
        if doc is None or spec is None:
            continue
        if spec.id in seen_files:
            issues.at(doc, ("id",), f"{spec.id!r} is already the id of {seen_files[spec.id]}")
            continue
        seen_files[spec.id] = doc.file
        sop = checker.check(doc, spec)
        if sop is not None:
            sops[spec.id] = sop
    if issues.items:
        raise ConfigError(issues.items)
    return SopSet(sops, catalog, typing, calendar, tiers, renderer, files)


def _calendar(dates: DatesFile, doc: YamlDocument | None, issues: _Issues) -> Calendar:
    festivals = []
    for index, spec in enumerate(dates.dates):
        try:
            festivals.append(spec.festival())
        except ValueError as error:
            assert doc is not None
            issues.at(doc, ("dates", index), str(error))
    try:
        return Calendar(festivals, schedules=dates.schedules())
    except ValueError as error:
        assert doc is not None
        issues.at(doc, ("dates",), str(error))
        return Calendar(schedules=dates.schedules())


def _tier(text: str, tiers: Tiers, doc: YamlDocument, loc: Loc, issues: _Issues) -> str | None:
    try:
        return tiers.resolve(text)
    except ValueError as error:
        issues.at(doc, loc, str(error))
        return None


def unknown_festival(name: str, calendar: Calendar) -> str:
    owner = {n: f.name for f in calendar.festivals for n in (f.name, *f.aliases)}
    close = difflib.get_close_matches(name, list(owner), n=3, cutoff=0.4)
    suggestions = list(dict.fromkeys(owner[c] for c in close))
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    return f"unknown festival {name!r}{hint} (add your own dates in sop/dates.yaml)"


class _SopChecker:
    def __init__(
        self,
        issues: _Issues,
        calendar: Calendar,
        tiers: Tiers,
        groups: GroupTyping,
        renderer: Renderer,
        default_tz: ZoneInfo,
        accounts: set[str],
    ) -> None:
        self.issues = issues
        self.calendar = calendar
        self.tiers = tiers
        self.groups = groups
        self.renderer = renderer
        self.default_tz = default_tz
        self.accounts = accounts

    def check(self, doc: YamlDocument, spec: SopSpec) -> Sop | None:
        before = len(self.issues.items)
        tz = ZoneInfo(spec.timezone) if spec.timezone else self.default_tz
        to = spec.audience.to or "contacts"
        base = self.layer(doc, spec.audience, ("audience",))
        sop_event = self.event(doc, spec.event, ("event",)) if spec.event is not None else None
        steps = []
        seen: set[str] = set()
        for index, step_spec in enumerate(spec.steps):
            loc: Loc = ("steps", index)
            if step_spec.id in seen:
                self.issues.at(doc, (*loc, "id"), f"{step_spec.id!r} is used twice in this SOP")
            seen.add(step_spec.id)
            step = self.step(doc, spec, step_spec, loc, to, base, tz, sop_event)
            if step is not None:
                steps.append(step)
        if len(self.issues.items) > before:
            return None
        return Sop(spec, doc.file, tz, tuple(steps))

    def step(
        self,
        doc: YamlDocument,
        sop: SopSpec,
        spec: StepSpec,
        loc: Loc,
        to: str,
        base: AudienceLayer,
        tz: ZoneInfo,
        sop_event: EventSpec | None,
    ) -> Step | None:
        layers = [base]
        if spec.audience is not None:
            if spec.audience.to is not None and spec.audience.to != to:
                self.issues.at(
                    doc, (*loc, "audience", "to"), f"a step cannot change 'to' (the SOP sends to {to})"
                )
            layers.append(self.layer(doc, spec.audience, (*loc, "audience")))
        event = self.event(doc, spec.event, (*loc, "event")) if spec.event is not None else sop_event
        if spec.after is not None:
            if event is None:
                self.issues.at(
                    doc, (*loc, "after"), "a lifecycle step needs an 'event' (on the step or the SOP)"
                )
            if to == "groups":
                self.issues.at(doc, (*loc, "after"), "lifecycle steps go to contacts, not groups")
        if spec.birthday and to == "groups":
            self.issues.at(doc, (*loc, "birthday"), "birthdays are for contacts, not groups")
        if (spell := spec.spell) is not None:
            event = None  # a spell starts at the contact's last message or order, not an event
            if to == "groups":
                what = "a contact's own messages" if spell == "silent" else "a buyer's orders"
                self.issues.at(doc, (*loc, spell), f"{spell} counts {what}: it goes to contacts, not groups")
        for index, name in enumerate(spec.festival or []):
            try:
                self.calendar.resolve(name)
            except ValueError:
                self.issues.at(doc, (*loc, "festival", index), unknown_festival(name, self.calendar))
        if spec.window is not None:
            for key, name in (("from", spec.window.start), ("to", spec.window.end)):
                if name is None:
                    continue
                try:
                    self.calendar.resolve(name)
                except ValueError:
                    self.issues.at(doc, (*loc, "window", key), unknown_festival(name, self.calendar))
        self.templates(doc, spec, loc, to, layers)
        try:
            trigger = trigger_for(spec, tz, self.calendar)
        except ValueError as error:
            self.issues.at(doc, loc, str(error))
            return None
        return Step(sop.id, spec, to, tuple(layers), event, trigger)

    def event(self, doc: YamlDocument, event: EventSpec, loc: Loc) -> EventSpec:
        """The event with its tier resolved to the id that tier_changed events carry."""
        if event.kind == ContactEventKind.FRIEND_DELETED:
            reason = "friend_deleted cannot start a lifecycle step: a contact who deleted the account cannot be sent to"
            self.issues.at(doc, (*loc, "kind"), reason)
        if event.kind == ContactEventKind.TIER_CHANGED and event.to is not None:
            tier = _tier(event.to, self.tiers, doc, (*loc, "to"), self.issues)
            return event.model_copy(update={"to": tier or event.to})
        return event

    def layer(self, doc: YamlDocument, spec: AudienceSpec, loc: Loc) -> AudienceLayer:
        def tiers(key: str, values: list[str] | None) -> frozenset[str] | None:
            if values is None:
                return None
            found = (_tier(v, self.tiers, doc, (*loc, key, i), self.issues) for i, v in enumerate(values))
            return frozenset(t for t in found if t)

        def expr(key: str, text: str | None) -> TagTest | None:
            if text is None:
                return None
            try:
                return compile_expr(text, self.tiers)
            except ValueError as error:
                self.issues.at(doc, (*loc, key), str(error))
                return None

        known_types = set(self.groups.types)
        for index, name in enumerate(spec.group_types or []):
            if name not in known_types:
                shown = "、".join(self.groups.types) or "none: map group topics to types in sop/groups.yaml"
                self.issues.at(
                    doc, (*loc, "group_types", index), f"unknown group type {name!r} (known: {shown})"
                )
        for index, name in enumerate(spec.group_tags or []):
            if name not in self.groups.tags:
                shown = "、".join(sorted(self.groups.tags)) or "none: give groups tags in sop/groups.yaml"
                self.issues.at(
                    doc, (*loc, "group_tags", index), f"unknown group tag {name!r} (known: {shown})"
                )
        if self.accounts:
            for index, name in enumerate(spec.accounts or []):
                if name not in self.accounts:
                    shown = ", ".join(sorted(self.accounts))
                    self.issues.at(
                        doc, (*loc, "accounts", index), f"unknown account {name!r} (known: {shown})"
                    )
        return AudienceLayer(
            tiers=tiers("tiers", spec.tiers),
            tags=expr("tags", spec.tags),
            exclude=expr("exclude", spec.exclude),
            exclude_tiers=tiers("exclude_tiers", spec.exclude_tiers) or frozenset(),
            group_types=frozenset(spec.group_types) if spec.group_types is not None else None,
            group_names=tuple(spec.group_names or ()),
            group_tags=frozenset(spec.group_tags) if spec.group_tags is not None else None,
            exclude_groups=tuple(spec.exclude_groups or ()),
            accounts=frozenset(spec.accounts) if spec.accounts is not None else None,
        )

    def templates(
        self, doc: YamlDocument, spec: StepSpec, loc: Loc, to: str, layers: list[AudienceLayer]
    ) -> None:
        """Each template must exist for every recipient variant the step can reach."""
        if to == "contacts":
            variants = set(self.tiers.ids)
            for layer in layers:
                if layer.tiers is not None:
                    variants &= layer.tiers
                variants -= layer.exclude_tiers
        else:
            variants = set(self.groups.types)
            for layer in layers:
                if layer.group_types is not None:
                    variants &= layer.group_types
        key = "weekly" if spec.template is None else "template"
        for name in spec.templates():
            if self.renderer.exists(name):
                continue
            missing = sorted(v for v in variants if not self.renderer.exists(name, [v]))
            default = display_path(self.renderer.folder / self.renderer.candidates(name, [])[0])
            if not variants or len(missing) == len(variants):
                self.issues.at(doc, (*loc, key), f"no template {name!r} (looked for {default})")
            elif missing:
                self.issues.at(
                    doc,
                    (*loc, key),
                    f"no template {name!r} for {', '.join(missing)} (add {default} or one per tier/group type)",
                )
