"""Tag rules from conversation (`sop/tags.yaml`): the file's schema and its loader.

A rule matches inbound messages (keywords, jieba words, regular expressions, exact
phrases), within a scope (1:1, groups, certain group types), optionally only after
`min_hits` matches `within` a window, and then runs its actions: add or remove tags (a
tag may expire), reply with a template, opt the contact out or back in.

The same file configures purchase tags (`purchases:`) and referral codes (`referrals:`).
Every problem is reported as `sop/tags.yaml:LINE: field: reason`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.config.errors import ConfigError, ConfigIssue
from bot.config.units import parse_duration
from bot.config.yaml_source import YamlDocument, load_yaml, parse_yaml

TAGS_FILE = "tags.yaml"
_RULE_ID = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]{1,64}$")


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _words(value: object) -> object:
    """A single string is a list of one; blanks are errors, not silent no-ops."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list):
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"{item!r} is not a word (write text)")
        return [item.strip() for item in value]
    return value


WordList = Annotated[list[str], BeforeValidator(_words)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scope(StrEnum):
    ANY = "any"
    DIRECT = "direct"  # 1:1 chats
    GROUP = "group"


class Match(_Model):
    """What a message must contain. Any listed matcher that hits is a match, unless an
    `exclude` keyword is in the message."""

    keywords: WordList = Field(default_factory=list)  # substring; any case, full- or half-width
    words: WordList = Field(default_factory=list)  # whole words after jieba segmentation
    regex: WordList = Field(default_factory=list)  # Python regular expressions
    exact: WordList = Field(default_factory=list)  # the whole message, normalised (bot/signals/normalize.py)
    exclude: WordList = Field(default_factory=list)  # veto keywords

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"{pattern!r} is not a regular expression: {error}") from None
        return value

    @model_validator(mode="after")
    def _something(self) -> Match:
        if not (self.keywords or self.words or self.regex or self.exact):
            raise ValueError("give at least one of keywords, words, regex, exact")
        return self


def _action(value: object) -> object:
    if isinstance(value, str) and value in ("opt_out", "opt_in"):
        return {value: True}
    return value


class Action(_Model):
    """One thing a rule does; exactly one of the fields (besides `expires`)."""

    add_tag: str | None = Field(default=None, min_length=1, max_length=64)
    expires: Duration | None = None  # with add_tag: the tag disappears after this long
    remove_tag: str | None = Field(default=None, min_length=1, max_length=64)
    reply: str | None = Field(default=None, min_length=1)  # template name, e.g. reply_deals
    opt_out: bool = False
    opt_in: bool = False
    # a profile field from what was said: `set_field: 生日` takes the regex's group named 生日
    # (else its first group); `set_field: {城市: 上海}` writes a fixed value
    set_field: str | dict[str, str] | None = None

    @model_validator(mode="after")
    def _one(self) -> Action:
        kinds = [
            self.add_tag, self.remove_tag, self.reply, self.opt_out or None, self.opt_in or None, self.set_field
        ]  # fmt: skip
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("an action is one of add_tag, remove_tag, reply, opt_out, opt_in, set_field")
        if isinstance(self.set_field, dict) and len(self.set_field) != 1:
            raise ValueError("set_field with a fixed value is one field: {城市: 上海}")
        if self.expires is not None and self.add_tag is None:
            raise ValueError("expires goes with add_tag")
        if self.expires is not None and self.expires <= timedelta(0):
            raise ValueError("expires must be longer than 0")
        return self


class Rule(_Model):
    id: str
    name: str = ""
    match: Match
    scope: Scope = Scope.ANY
    group_types: WordList = Field(default_factory=list)  # only in groups of these types
    min_hits: int = Field(default=1, ge=1, le=1000)
    within: Duration | None = None  # the window for min_hits (default: ever)
    cooldown: Duration | None = None  # actions run at most once per this, per contact
    actions: list[Annotated[Action, BeforeValidator(_action)]] = Field(min_length=1)
    stop: bool = False  # later rules are not tried on a message this rule fired on

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _RULE_ID.match(value):
            raise ValueError("use 1-64 letters, digits, '_', '-' or 汉字")
        return value

    @model_validator(mode="after")
    def _field_source(self) -> Rule:
        for action in self.actions:
            if isinstance(action.set_field, str) and not self.match.regex:
                raise ValueError(
                    f"set_field: {action.set_field} takes its value from a regex group: add "
                    f"match.regex with (?P<{action.set_field}>...), or give a fixed value {{{action.set_field}: ...}}"
                )
        return self

    def field_value(self, action: Action, text: str) -> tuple[str, str] | None:
        """(field name, raw value) a `set_field` action takes from `text`; None when no
        pattern of the rule gives one."""
        if isinstance(action.set_field, dict):
            return next(iter(action.set_field.items()))
        if action.set_field is None:
            return None
        for pattern in self.match.regex:
            found = re.search(pattern, text, re.IGNORECASE)
            if found is None:
                continue
            named = found.groupdict().get(action.set_field)
            value = named if named is not None else (found.group(1) if found.re.groups else found.group(0))
            if value:
                return action.set_field, value
        return None

    @model_validator(mode="after")
    def _scope(self) -> Rule:
        if self.group_types and self.scope == Scope.DIRECT:
            raise ValueError("group_types only apply to groups; drop scope: direct")
        if self.within is not None and self.min_hits == 1:
            raise ValueError("within needs min_hits of 2 or more")
        return self

    @property
    def label(self) -> str:
        return self.name or self.id


class ValueGrade(_Model):
    tag: str = Field(min_length=1, max_length=64)
    min_spent: float = Field(ge=0)  # yuan, lifetime paid orders


class CountTag(_Model):
    tag: str = Field(min_length=1, max_length=64)
    min_orders: int = Field(ge=1)


class FrequencyTag(_Model):
    tag: str = Field(min_length=1, max_length=64)
    max_days_between: float = Field(gt=0)  # average days between paid orders


class PurchaseTags(_Model):
    """How orders become tags. Each tag is recomputed on every order change, with the
    order that caused it as evidence; a tag no longer earned is removed."""

    first_order: str | None = Field(default="首单{month}", description="{month} → 2026-11")
    counts: list[CountTag] = Field(
        default_factory=lambda: [
            CountTag(tag="复购客户", min_orders=2),
            CountTag(tag="忠实老客", min_orders=4),
        ]
    )
    frequency: list[FrequencyTag] = Field(
        default_factory=lambda: [
            FrequencyTag(tag="月度复购", max_days_between=31),
            FrequencyTag(tag="季度复购", max_days_between=92),
        ]
    )
    value_grades: list[ValueGrade] = Field(
        default_factory=lambda: [
            ValueGrade(tag="高价值客户", min_spent=2000),
            ValueGrade(tag="中价值客户", min_spent=500),
            ValueGrade(tag="普通价值客户", min_spent=0.01),
        ]
    )
    category_affinity: str | None = Field(default="偏好{category}")
    affinity_min_share: float = Field(default=0.5, gt=0, le=1)
    affinity_min_items: int = Field(default=2, ge=1)
    discount_lover: str | None = "活动喜好型"
    new_arrival_follower: str | None = "新品关注型"
    behaviour_min_share: float = Field(default=0.5, gt=0, le=1)
    behaviour_min_orders: int = Field(default=2, ge=1)


class Referrals(_Model):
    """Referral codes: the pattern that finds one in a friend request's greeting or an
    order's referrer field. The first group is the code."""

    code_pattern: str = r"(?:推荐码|邀请码|code)\s*[:：]?\s*([A-Za-z0-9]{4,16})"

    @field_validator("code_pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled = re.compile(value, re.IGNORECASE)
        except re.error as error:
            raise ValueError(f"not a regular expression: {error}") from None
        if compiled.groups < 1:
            raise ValueError("put the code in a group: (...)")
        return value


class TagsFile(_Model):
    version: int = 1
    words: WordList = Field(default_factory=list)  # extra dictionary words for jieba
    rules: list[Rule] = Field(default_factory=list)
    purchases: PurchaseTags = Field(default_factory=PurchaseTags)
    referrals: Referrals = Field(default_factory=Referrals)


def _duplicate_ids(doc: YamlDocument, rules: list[Rule]) -> list[ConfigIssue]:
    seen: set[str] = set()
    issues = []
    for index, rule in enumerate(rules):
        if rule.id in seen:
            issues.append(doc.issue(("rules", index, "id"), f"rule id {rule.id!r} is used twice"))
        seen.add(rule.id)
    return issues


def _validate(doc: YamlDocument) -> TagsFile:
    data: Any = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError([doc.issue((), "the file must be a mapping with rules: …")])
    parsed: TagsFile = doc.validate(TagsFile, data)
    issues = _duplicate_ids(doc, parsed.rules)
    if issues:
        raise ConfigError(issues)
    return parsed


def parse_tag_document(doc: YamlDocument) -> TagsFile:
    return _validate(doc)


def parse_tags(text: str, file: str = TAGS_FILE) -> TagsFile:
    return _validate(parse_yaml(text, file))


def load_tags(sop_dir: Path, root: Path | None = None) -> TagsFile:
    """`sop/tags.yaml`, or the built-in empty rule set when there is no such file."""
    path = sop_dir / TAGS_FILE
    if not path.exists():
        return TagsFile()
    return _validate(load_yaml(path, root))


def check_templates(
    tags: TagsFile, exists: Any, file: str, doc: YamlDocument | None = None
) -> list[ConfigIssue]:
    """Reply templates that do not exist, as issues (`exists(name) -> bool`)."""
    issues = []
    for index, rule in enumerate(tags.rules):
        for number, action in enumerate(rule.actions):
            if action.reply and not exists(action.reply):
                loc = ("rules", index, "actions", number, "reply")
                reason = f"template {action.reply!r} not found"
                issues.append(doc.issue(loc, reason) if doc else ConfigIssue(file, None, "rules", reason))
    return issues
