"""Matching messages against tag rules, with no storage: the bare matcher.

Built once per rule set. Keywords are found in one pass of a single regular expression
(every position, longest keyword first; shorter keywords inside a found one count too),
words with one segmentation, exact phrases with one set lookup; only regular expressions
and excludes cost per rule.

Keywords, words and excludes are compared `normalize.fold`ed (NFKC and any case: `ＶＩＰ`
is `vip`); exact phrases by `normalize.phrase_key` (also without punctuation, emoji and
spaces: `退订。` and `ＴＤ！` are `退订` and `TD`), and still as written, trimmed, any case.
Regular expressions see the message as it was written.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from bot.signals import segment
from bot.signals.normalize import fold, folded_key, phrase_key
from bot.signals.rules import Rule, Scope

MATCH_CHARS = 1_000  # what the rules read of one message (a pasted essay costs no more)


@dataclass(frozen=True)
class Where:
    """Where a message was said: 1:1 (`group_type` None, `in_group` False) or a group."""

    in_group: bool = False
    group_type: str | None = None
    topic: str = ""


@dataclass(frozen=True)
class Hit:
    rule: Rule
    term: str  # what matched, for the evidence: the keyword, word, pattern or phrase


class Matcher:
    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        self._order = {rule.id: index for index, rule in enumerate(self.rules)}
        keyword_rules: dict[str, list[int]] = defaultdict(list)
        word_rules: dict[str, list[int]] = defaultdict(list)
        exact_rules: dict[str, list[int]] = defaultdict(list)
        self._regex: list[tuple[int, list[re.Pattern[str]]]] = []
        self._exclude: dict[int, tuple[str, ...]] = {}
        for index, rule in enumerate(self.rules):
            for keyword in rule.match.keywords:
                keyword_rules[fold(keyword)].append(index)
            for word in rule.match.words:
                word_rules[fold(word)].append(index)
            for phrase in rule.match.exact:
                # by key, and as written (a phrase of only punctuation or emoji has no key)
                for key in {phrase_key(phrase), phrase.strip().casefold()} - {""}:
                    if index not in exact_rules[key]:
                        exact_rules[key].append(index)
            if rule.match.regex:
                self._regex.append((index, [re.compile(p, re.IGNORECASE) for p in rule.match.regex]))
            if rule.match.exclude:
                self._exclude[index] = tuple(fold(k) for k in rule.match.exclude)
        self._keyword_rules = dict(keyword_rules)
        self._word_rules = dict(word_rules)
        self._exact_rules = dict(exact_rules)
        # a keyword found implies every keyword inside it
        self._inside = {
            k: sorted((o for o in keyword_rules if o in k), key=len, reverse=True) for k in keyword_rules
        }
        ordered = sorted(keyword_rules, key=len, reverse=True)
        self._keywords = (
            re.compile("(?=(" + "|".join(re.escape(k) for k in ordered) + "))") if ordered else None
        )
        if word_rules:
            segment.teach(word_rules)

    def match(self, text: str, where: Where = Where()) -> list[Hit]:
        """The rules this message matches, in file order, with what matched. Rules see the
        first `MATCH_CHARS` characters of a message: the cost per message stays bounded."""
        text = text[:MATCH_CHARS]
        folded = fold(text)
        found: dict[int, str] = {}
        if self._keywords is not None:
            for keyword in {m.group(1) for m in self._keywords.finditer(folded)}:
                for inner in self._inside[keyword]:
                    for index in self._keyword_rules[inner]:
                        found.setdefault(index, inner)
        if self._word_rules:
            for word in segment.words(folded):
                for index in self._word_rules.get(word, ()):
                    found.setdefault(index, word)
        if self._exact_rules:
            for key in (folded_key(folded), text.strip().casefold()):
                for index in self._exact_rules.get(key, ()):
                    found.setdefault(index, text.strip())
        for index, patterns in self._regex:
            if index not in found:
                for pattern in patterns:
                    if match := pattern.search(text):
                        found[index] = match.group(0)
                        break
        hits = []
        for index in sorted(found):
            rule = self.rules[index]
            if not in_scope(rule, where):
                continue
            if any(k in folded for k in self._exclude.get(index, ())):
                continue
            hits.append(Hit(rule, found[index]))
        return hits


def in_scope(rule: Rule, where: Where) -> bool:
    if rule.scope == Scope.DIRECT and where.in_group:
        return False
    if rule.scope == Scope.GROUP and not where.in_group:
        return False
    if rule.group_types:
        if not where.in_group:
            return False
        if where.group_type is not None:
            return where.group_type in rule.group_types
        # a room whose type is not known yet: the operators' naming convention 【类型】
        return any(kind in where.topic for kind in rule.group_types)
    return True
