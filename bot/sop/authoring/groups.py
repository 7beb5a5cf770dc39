"""Group types (`sop/groups.yaml`): which WeChat groups are which, by their topic.

Operators name groups by convention (`【精英会员群】小美VIP会员专享`); a pattern maps each
topic to a group type (the `group_type` stored on the room, used for audiences and for
`templates/<type>/` lookup) and to optional group tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from bot.sop.authoring.spec import NameList


class GroupRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: str = Field(min_length=1)  # topic pattern: `*` any text, `?` one character
    type: str = Field(min_length=1, max_length=64)
    tags: NameList = Field(default_factory=list)


class GroupsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[GroupRule] = Field(default_factory=list)


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    if "*" not in pattern and "?" not in pattern:
        return re.compile(re.escape(pattern))  # no wildcard: the topic contains it
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL)


def topic_matches(pattern: str, topic: str) -> bool:
    """`*` matches any text, `?` one character; a pattern without wildcards matches a
    topic that contains it. Brackets are literal (【】 and [] alike)."""
    return _compiled(pattern).search(topic) is not None


@dataclass(frozen=True)
class GroupTyping:
    """The first matching rule decides a group's type and tags."""

    rules: tuple[GroupRule, ...] = ()

    def classify(self, topic: str) -> GroupRule | None:
        return next((rule for rule in self.rules if topic_matches(rule.match, topic)), None)

    def type_of(self, topic: str) -> str | None:
        rule = self.classify(topic)
        return rule.type if rule else None

    def tags_of(self, topic: str) -> tuple[str, ...]:
        rule = self.classify(topic)
        return tuple(rule.tags) if rule else ()

    @property
    def types(self) -> list[str]:
        return list(dict.fromkeys(rule.type for rule in self.rules))

    @property
    def tags(self) -> set[str]:
        return {tag for rule in self.rules for tag in rule.tags}


def any_matches(patterns: Iterable[str], topic: str) -> bool:
    return any(topic_matches(p, topic) for p in patterns)
