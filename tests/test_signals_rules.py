"""Tag rules: the file's errors point at file:line, and the matcher finds what operators mean."""

from __future__ import annotations

import pytest

from bot.config.errors import ConfigError
from bot.render import Renderer
from bot.signals.matcher import Matcher, Where
from bot.signals.rules import check_templates, load_tags, parse_tags
from tests.signals_kit import REPO


def rules(text: str) -> Matcher:
    return Matcher(parse_tags(text).rules)


def ids(matcher: Matcher, text: str, where: Where = Where()) -> list[str]:
    return [hit.rule.id for hit in matcher.match(text, where)]


def test_shipped_tags_file_loads_and_every_reply_template_exists() -> None:
    tags = load_tags(REPO / "sop")
    assert len(tags.rules) >= 8
    renderer = Renderer(REPO / "templates")
    assert check_templates(tags, renderer.exists, "sop/tags.yaml") == []


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (
            "rules:\n  - id: a\n    match: {regex: ['(']}\n    actions: [{add_tag: x}]\n",
            3,
            "rules[0].match.regex",
            "not a regular expression",
        ),
        (
            "rules:\n  - id: a\n    match: {keywords: [x]}\n    actions: [{add_tag: x, expires: soon}]\n",
            4,
            "rules[0].actions[0].expires",
            "not a duration",
        ),
        (
            "rules:\n  - id: a\n    match: {keywords: [x]}\n    colour: red\n    actions: [opt_out]\n",
            4,
            "rules[0].colour",
            "unknown field",
        ),
        (
            "rules:\n  - id: a\n    match: {}\n    actions: [opt_out]\n",
            3,
            "rules[0].match",
            "at least one of",
        ),
        (
            "rules:\n  - id: a\n    match: {keywords: [x]}\n    actions: [{add_tag: x, reply: y}]\n",
            4,
            "rules[0].actions[0]",
            "one of",
        ),
        (
            "rules:\n  - id: a\n    match: {keywords: [x]}\n    actions: [opt_out]\n  - id: a\n    match: {keywords: [y]}\n    actions: [opt_in]\n",
            5,
            "rules[1].id",
            "used twice",
        ),
        (
            "rules:\n  - id: a\n    match: {keywords: [x]}\n    within: 30d\n    actions: [opt_out]\n",
            2,
            "rules[0]",
            "min_hits",
        ),
    ],
)
def test_a_bad_rule_is_reported_with_file_line_and_field(
    text: str, line: int, field: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tags(text, "sop/tags.yaml")
    issue = caught.value.issues[0]
    assert (issue.file, issue.line, issue.field) == ("sop/tags.yaml", line, field)
    assert reason in issue.reason
    assert str(issue).startswith(f"sop/tags.yaml:{line}: {field}: ")


def test_a_missing_reply_template_is_an_issue() -> None:
    tags = parse_tags("rules:\n  - id: a\n    match: {keywords: [x]}\n    actions: [{reply: reply_nope}]\n")
    issues = check_templates(tags, Renderer(REPO / "templates").exists, "sop/tags.yaml")
    assert [i.reason for i in issues] == ["template 'reply_nope' not found"]


def test_words_use_the_segmenter_where_substrings_misfire() -> None:
    matcher = rules(
        "rules:\n"
        "  - {id: by_word, match: {words: [上新]}, actions: [{add_tag: 新品关注型}]}\n"
        "  - {id: by_substring, match: {keywords: [上新]}, actions: [{add_tag: x}]}\n"
    )
    assert ids(matcher, "马上新年了，祝你快乐") == ["by_substring"]  # the substring misfires
    assert ids(matcher, "什么时候上新呀") == ["by_word", "by_substring"]
    assert ids(matcher, "今天上新了吗") == ["by_word", "by_substring"]


def test_exact_phrases_catch_td_but_not_a_sentence_that_contains_it() -> None:
    matcher = rules("rules:\n  - {id: out, match: {exact: [退订, TD]}, actions: [opt_out]}\n")
    assert ids(matcher, " td ") == ["out"]
    assert ids(matcher, "退订") == ["out"]
    assert ids(matcher, "我不想退订") == []
    assert ids(matcher, "STD") == []


def test_keywords_inside_longer_keywords_exclude_and_regex() -> None:
    matcher = rules(
        "rules:\n"
        "  - {id: coupon, match: {keywords: [优惠券]}, actions: [{add_tag: a}]}\n"
        "  - {id: deal, match: {keywords: [优惠], exclude: [不要优惠]}, actions: [{add_tag: b}]}\n"
        "  - {id: qty, match: {regex: ['我要\\s*[0-9两三]+\\s*件']}, actions: [{add_tag: c}]}\n"
    )
    assert ids(matcher, "有优惠券吗") == ["coupon", "deal"]
    assert ids(matcher, "我不要优惠券") == ["coupon"]
    assert [h.term for h in matcher.match("还有货吗，我要两件")] == ["我要两件"]


def test_scope_direct_group_and_group_types() -> None:
    matcher = rules(
        "rules:\n"
        "  - {id: dm, match: {keywords: [x]}, scope: direct, actions: [{add_tag: a}]}\n"
        "  - {id: grp, match: {keywords: [x]}, scope: group, actions: [{add_tag: b}]}\n"
        "  - {id: vip, match: {keywords: [x]}, group_types: [精英会员群], actions: [{add_tag: c}]}\n"
    )
    assert ids(matcher, "x") == ["dm"]
    assert ids(matcher, "x", Where(True, "基础客户群")) == ["grp"]
    assert ids(matcher, "x", Where(True, "精英会员群")) == ["grp", "vip"]
    # a group whose type is not stored yet: the 【类型】 in its topic
    assert ids(matcher, "x", Where(True, None, "【精英会员群】小美VIP")) == ["grp", "vip"]


# the words the shipped templates ask people to reply with, and the rule that should answer;
# None: an operator answers (no rule may misread it)
REPLY_WORDS = {
    "链接": "purchase_intent", "新品": "new_arrivals", "退订": "opt_out", "订阅": "opt_in",
    "领券": None, "券": None, "1": None, "要": None, "加购": None, "体验": None, "进群": None,
}  # fmt: skip


def test_what_the_shipped_templates_ask_people_to_reply_is_understood() -> None:
    """A template that says 回复“链接” must meet the rule that sends the link, not one that
    thanks them for a recommendation (回购 used to do that: 口碑分享 and a referral code)."""
    import re

    asked: set[str] = set()
    for template in (REPO / "templates").rglob("*.j2"):
        text = template.read_text(encoding="utf-8")
        asked |= set(re.findall(r"回(?:复|我)\s*[“「\"]([^”」\"]{1,6})[”」\"]", text))
    assert asked and asked <= set(REPLY_WORDS), f"asked for replies no test knows: {asked - set(REPLY_WORDS)}"
    matcher = Matcher(load_tags(REPO / "sop").rules)
    for word in asked:
        expected = REPLY_WORDS[word]
        assert ids(matcher, word) == ([expected] if expected else []), word
