"""The audience expression language (bot.signals.expr): parsing, errors, evaluation, round trips."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.signals.expr import (
    DEFAULT_FIELDS,
    And,
    BoolField,
    ExprError,
    Flag,
    Node,
    Not,
    Or,
    Subject,
    Tag,
    TierCmp,
    parse,
)
from bot.signals.tiers_ladder import DEFAULT_LADDER, TierLadder

L = DEFAULT_LADDER


def S(tier: str = "basic", *tags: str, **flags: bool) -> Subject:
    return Subject(tier, frozenset(tags), flags)


# --------------------------------------------------------------------------- tier ladder


def test_ladder_lookup_by_id_or_display_name_any_case() -> None:
    assert L.ids == ("basic", "prospect", "customer", "repeat", "koc")
    assert L.resolve("已购会员") == "customer"
    assert L.resolve("KOC") == L.resolve("品牌koc") == "koc"
    assert L.resolve("vip") is None
    assert L.rank("basic") == 0 and L.rank("koc") == 4
    assert L.name("repeat") == "复购会员"
    assert "未购会员" in L and "nobody" not in L
    assert L.suggest("custmer") == "customer"


@pytest.mark.parametrize(
    ("ids", "names", "message"),
    [
        ((), (), "at least one tier"),
        (("a", "b"), ("A名",), "2 tier ids but 1 display names"),
        (("a", "a"), ("x", "y"), "appears twice"),
        (("a", "b"), ("b", "c"), "used by both"),
        (("a", " b"), ("x", "y"), "without outer spaces"),
    ],
)
def test_ladder_rejects_bad_definitions(ids: tuple[str, ...], names: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TierLadder(ids, names)


def test_custom_ladder() -> None:
    aipl = TierLadder.from_pairs([("a", "认知"), ("i", "兴趣"), ("p", "购买"), ("l", "忠诚")])
    expr = parse("tier >= 购买", aipl)
    assert str(expr) == "tier >= p"
    assert [t for t in ("a", "i", "p", "l", "忠诚") if expr.evaluate(S(t))] == ["p", "l", "忠诚"]
    with pytest.raises(ExprError, match="unknown tier 'customer'"):
        parse("tier == customer", aipl)


# --------------------------------------------------------------------------- parsing: canonical form


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            "tier >= customer and tag:活动喜好型 and not tag:免打扰",
            "tier >= customer and tag:活动喜好型 and not tag:免打扰",
        ),
        ('tier in (repeat, koc) or tag:"VIP 客户"', 'tier in (repeat, koc) or tag:"VIP 客户"'),
        ("tier == basic", "tier == basic"),
        ("not (tag:新品关注型 or tag:活动喜好型)", "not (tag:新品关注型 or tag:活动喜好型)"),
        ("tag:价值等级/高", "tag:价值等级/高"),
        ("has_ordered", "has_ordered"),
        ("tier>=已购会员", "tier >= customer"),
        ('tier == "品牌KOC"', "tier == koc"),
        ("TIER != Koc", "tier != koc"),
        ("tier in (品牌KOC, repeat, koc)", "tier in (repeat, koc)"),
        ("tier not in (prospect、basic)", "tier not in (basic, prospect)"),
        ("tag:价值等级/*", "tag:价值等级/*"),
        ('tag:"VIP 客"*', 'tag:"VIP 客"*'),
        ("tag:*", "tag:*"),
        ('tag:"活动喜好型"', "tag:活动喜好型"),
        ('tag:"say \\"hi\\""', 'tag:"say \\"hi\\""'),
        ("tag:“双11 预热”", 'tag:"双11 预热"'),
        ("tag：x-1_2.3", "tag:x-1_2.3"),
        ("tag:a 且 非 tag:b 或 tag:c", "tag:a and not tag:b or tag:c"),
        ("（tag:a 或 tag:b） 且 opted_out", "(tag:a or tag:b) and opted_out"),
        ("TAG:a AND NOT tag:b OR tag:c", "tag:a and not tag:b or tag:c"),
        (
            "((tag:a and tag:b) and tag:c) or (tag:d or (tag:e))",
            "tag:a and tag:b and tag:c or tag:d or tag:e",
        ),
        ("tag:a and (tag:b or tag:c)", "tag:a and (tag:b or tag:c)"),
        ("not not tag:a", "not not tag:a"),
        ("not tier >= repeat", "not tier >= repeat"),
        ("tag:and or tag:tier", "tag:and or tag:tier"),
        ("\n  tag:a\n  and tier < customer\n", "tag:a and tier < customer"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    expr = parse(text, L)
    assert str(expr) == canonical
    assert parse(canonical, L) == expr


def test_tree_shape() -> None:
    expr = parse("tier >= customer and (tag:a or not tag:b*) and opted_out", L)
    assert expr.root == And(
        (TierCmp(">=", ("customer",)), Or((Tag("a"), Not(Tag("b", prefix=True)))), Flag("opted_out"))
    )


def test_references_for_linting() -> None:
    expr = parse(
        "tier >= 已购会员 and tag:活动喜好型 or tier in (basic, koc) and not tag:价值等级/* and not opted_out"
    )
    assert expr.tags_referenced() == {"活动喜好型"}
    assert expr.tag_prefixes_referenced() == {"价值等级/"}
    assert expr.tiers_referenced() == {"customer", "basic", "koc"}
    assert expr.fields_referenced() == {"opted_out"}


# --------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    ("text", "subject", "expected"),
    [
        ("tier >= customer and tag:活动喜好型 and not tag:免打扰", S("repeat", "活动喜好型"), True),
        (
            "tier >= customer and tag:活动喜好型 and not tag:免打扰",
            S("repeat", "活动喜好型", "免打扰"),
            False,
        ),
        ("tier >= customer and tag:活动喜好型 and not tag:免打扰", S("prospect", "活动喜好型"), False),
        ("tier >= customer", S("customer"), True),
        ("tier > customer", S("customer"), False),
        ("tier > customer", S("koc"), True),
        ("tier < customer", S("prospect"), True),
        ("tier <= customer", S("customer"), True),
        ("tier < basic", S("basic"), False),
        ("tier == basic", S("basic"), True),
        ("tier != basic", S("basic"), False),
        ("tier >= customer", S("复购会员"), True),  # a stored display name counts too
        ('tier in (repeat, koc) or tag:"VIP 客户"', S("basic", "VIP 客户"), True),
        ('tier in (repeat, koc) or tag:"VIP 客户"', S("koc"), True),
        ('tier in (repeat, koc) or tag:"VIP 客户"', S("customer", "VIP"), False),
        ("tier not in (repeat, koc)", S("customer"), True),
        ("not (tag:新品关注型 or tag:活动喜好型)", S("basic", "新品关注型"), False),
        ("not (tag:新品关注型 or tag:活动喜好型)", S("basic", "其他"), True),
        ("tag:价值等级/*", S("basic", "价值等级/高"), True),
        ("tag:价值等级/*", S("basic", "价值等级"), False),
        ("tag:*", S("basic", "x"), True),
        ("tag:*", S("basic"), False),
        ("has_ordered", S("basic", has_ordered=True), True),
        ("has_ordered", S("basic"), False),  # a missing flag is false
        ("not opted_out and is_friend", S("basic", is_friend=True, opted_out=False), True),
        # a subject whose stored tier is not on the ladder matches no range, only != / not in
        ("tier >= basic", S("ghost"), False),
        ("tier < koc", S("ghost"), False),
        ("tier != basic", S("ghost"), True),
        ("tier not in (basic)", S("ghost"), True),
    ],
)
def test_evaluate(text: str, subject: Subject, expected: bool) -> None:
    expr = parse(text, L)
    assert expr.evaluate(subject) is expected
    assert expr(subject) is expected
    assert expr.filter([subject]) == ([subject] if expected else [])


def test_custom_field_with_getter() -> None:
    fields = {
        **DEFAULT_FIELDS,
        "big_spender": BoolField("big_spender", "spent 1000+", getter=lambda s: "价值等级/高" in s.tags),
    }
    expr = parse("big_spender and not opted_out", L, fields=fields)
    assert expr.evaluate(S("basic", "价值等级/高")) is True
    assert expr.evaluate(S("basic", "价值等级/高", opted_out=True)) is False
    with pytest.raises(ExprError, match="unknown field 'big_spender'"):
        parse("big_spender", L)
    with pytest.raises(ValueError, match="must be an identifier"):
        BoolField("tier")


def test_bare_tags_mode() -> None:
    expr = parse('活动喜好型 and not 免打扰 or "VIP 客户" or opted_out', L, bare_tags=True)
    assert str(expr) == 'tag:活动喜好型 and not tag:免打扰 or tag:"VIP 客户" or opted_out'
    assert expr.evaluate(S("basic", "活动喜好型")) is True
    assert parse(str(expr), L) == expr


def test_evaluate_and_filter_agree_over_random_subjects() -> None:
    rng = random.Random(7)
    pool = ["活动喜好型", "新品关注型", "免打扰", "VIP 客户", "价值等级/高", *(f"t{i}" for i in range(40))]
    subjects = [
        S(rng.choice(L.ids), *rng.sample(pool, rng.randint(0, 8)), opted_out=rng.random() < 0.1)
        for _ in range(2_000)
    ]
    expr = parse(
        'tier >= customer and tag:活动喜好型 and not tag:免打扰 or tier in (repeat, koc) and tag:"VIP 客户"'
        " or tag:价值等级/* and not opted_out",
        L,
    )
    hits = [s for s in subjects if expr.evaluate(s)]
    assert expr.filter(subjects) == hits and 0 < len(hits) < len(subjects)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        # unknown tier
        ("tier >= custmer and tag:x", "at column 9: unknown tier 'custmer' (did you mean 'customer'?)", 8),
        ("tier == 已购会", "at column 9: unknown tier '已购会' (did you mean '已购会员'?)", 8),
        (
            "tier in (repeat, vip)",
            "at column 18: unknown tier 'vip' (tiers: basic 基础用户, prospect 未购会员, customer 已购会员,"
            " repeat 复购会员, koc 品牌KOC)",
            17,
        ),
        # unknown operator
        ("tier => customer", "at column 6: unknown operator '=>' (did you mean '>='?)", 5),
        ("tier = customer", "at column 6: unknown operator '=' (did you mean '=='?)", 5),
        ("tier ~ customer", "at column 6: unknown operator '~' (use ==, !=, <, <=, >, >=, in (...))", 5),
        ("tier:koc", "at column 5: unknown operator ':' (did you mean '=='?)", 4),
        ("tag:a && tag:b", "at column 7: unknown operator '&&' (did you mean 'and'?)", 6),
        ("tag:a || tag:b", "at column 7: unknown operator '||' (did you mean 'or'?)", 6),
        ("!tag:a", "at column 1: unknown operator '!' (did you mean 'not'?)", 0),
        # unbalanced parentheses
        ("(tag:a or tag:b", "at column 1: this '(' is never closed", 0),
        ("tag:x and ((tag:a or tag:b)", "at column 11: this '(' is never closed", 10),
        ("tag:a)", "at column 6: this ')' has no matching '('", 5),
        ("tier in (koc", "at column 9: this '(' is never closed", 8),
        ("()", "at column 2: expected a condition after '(', got ')'", 1),
        # empty tag:
        (
            "tag: and tag:b",
            "at column 1: 'tag:' needs a tag name right after the colon, e.g. tag:活动喜好型",
            0,
        ),
        (
            "tag:a or tag:",
            "at column 10: 'tag:' needs a tag name right after the colon, e.g. tag:活动喜好型",
            9,
        ),
        ('tag:""', "at column 1: 'tag:' needs a tag name right after the colon, e.g. tag:活动喜好型", 0),
        # trailing garbage
        (
            "tag:a tag:b",
            "at column 7: unexpected 'tag:b' after a complete condition (missing 'and' or 'or'?)",
            6,
        ),
        (
            "tier >= customer customer",
            "at column 18: unexpected 'customer' after a complete condition (missing 'and' or 'or'?)",
            17,
        ),
        (
            "(tag:a tag:b)",
            "at column 8: unexpected 'tag:b' after a complete condition (missing 'and' or 'or'?)",
            7,
        ),
        ("tag:a*b", "at column 7: unexpected 'b' after a complete condition (missing 'and' or 'or'?)", 6),
        # unknown field
        ("opted_ot", "at column 1: unknown field 'opted_ot' (did you mean 'opted_out'?)", 0),
        ("tags:x", "at column 1: unknown field 'tags' (did you mean 'tag:'?)", 0),
        (
            "vip and tag:x",
            "at column 1: unknown field 'vip' (a tag is written tag:vip;"
            " fields are tier, opted_out, blocked, is_friend, has_ordered)",
            0,
        ),
        (
            "tag:a and customer",
            "at column 11: unknown field 'customer' (a tier is written tier == customer)",
            10,
        ),
        ("非tag:x", "at column 1: unknown field '非tag' (put a space after '非')", 0),
        # everything else
        ("", "at column 1: the expression is empty", 0),
        ("   ", "at column 4: the expression is empty", 3),
        ("tag:a and", "at column 10: expected a condition after 'and', got the end of the expression", 9),
        ("tag:a or or tag:b", "at column 10: expected a condition after 'or', got 'or'", 9),
        (
            "tier",
            "at column 5: expected a comparison after 'tier' (==, !=, <, <=, >, >=, in), got the end of the expression",
            4,
        ),
        ("tier >=", "at column 8: expected a tier after '>=', got the end of the expression", 7),
        ("tier in koc", "at column 9: expected '(' after 'in', e.g. tier in (repeat, koc), got 'koc'", 8),
        ("tier in ()", "at column 10: the tier list is empty", 9),
        ("tier in (koc repeat)", "at column 14: expected ',' or ')' in the tier list, got 'repeat'", 13),
        (
            "opted_out == true",
            "at column 11: 'opted_out' is a yes/no field: write 'opted_out' or 'not opted_out'",
            10,
        ),
        ('tag:"VIP', "at column 5: this quote is never closed", 4),
        ('"VIP"', 'at column 1: expected a condition, got quoted text (write a tag as tag:"VIP")', 0),
        ("tag:a @ tag:b", "at column 7: unexpected character '@'", 6),
        (
            "tag:a且tag:b",
            "at column 10: unexpected ':' after tag 'a且tag' (keywords such as 且/或/and/or need spaces around them)",
            9,
        ),
        (
            "tag:a\nand tier >= custmer",
            "at line 2, column 13: unknown tier 'custmer' (did you mean 'customer'?)",
            18,
        ),
    ],
)
def test_error_messages(text: str, message: str, position: int) -> None:
    with pytest.raises(ExprError) as caught:
        parse(text, L)
    assert str(caught.value) == message
    assert caught.value.position == position


def test_caret_points_at_the_bad_token() -> None:
    with pytest.raises(ExprError) as caught:
        parse("tier >= custmer and tag:x", L)
    assert caught.value.caret() == "tier >= custmer and tag:x\n        ^^^^^^^"
    assert caught.value.column == 9 and caught.value.reason.startswith("unknown tier")


def test_caret_counts_wide_characters_double_and_shows_only_the_bad_line() -> None:
    with pytest.raises(ExprError) as caught:
        parse("tag:活动喜好型\n且 tier == 已购会", L)
    assert caught.value.caret() == "且 tier == 已购会\n" + " " * 11 + "^" * 6


def test_nesting_is_bounded() -> None:
    with pytest.raises(ExprError, match="nested more than 100 levels"):
        parse("not " * 500 + "tag:a", L)
    with pytest.raises(ExprError, match="nested more than 100 levels"):
        parse("(" * 500 + "tag:a" + ")" * 500, L)
    assert parse("not " * 50 + "tag:a", L).evaluate(S("basic", "a")) is True


# --------------------------------------------------------------------------- properties

TAG_POOL = [
    "活动喜好型",
    "新品关注型",
    "免打扰",
    "VIP 客户",
    "价值等级/高",
    "价值等级/低",
    "and",
    "tier",
    'a"b',
    "c\\d",
]
FLAGS = list(DEFAULT_FIELDS)
tag_names = st.one_of(st.sampled_from(TAG_POOL), st.text(min_size=1, max_size=6))


def reference(node: Node, s: Subject, ladder: TierLadder = L) -> bool:
    """A deliberately naive interpreter, to check the compiled function against."""
    if isinstance(node, Tag):
        return any(t.startswith(node.name) for t in s.tags) if node.prefix else node.name in s.tags
    if isinstance(node, Flag):
        return bool(s.flags.get(node.name, False))
    if isinstance(node, Not):
        return not reference(node.operand, s, ladder)
    if isinstance(node, And):
        return all(reference(o, s, ladder) for o in node.operands)
    if isinstance(node, Or):
        return any(reference(o, s, ladder) for o in node.operands)
    assert isinstance(node, TierCmp)
    tier = ladder.resolve(s.tier)
    if node.op in ("!=", "not in"):
        return tier not in node.tiers
    if tier is None:
        return False
    mine, theirs = ladder.rank(tier), ladder.rank(node.tiers[0])
    return {
        "==": mine == theirs,
        "in": tier in node.tiers,
        "<": mine < theirs,
        "<=": mine <= theirs,
        ">": mine > theirs,
        ">=": mine >= theirs,
    }[node.op]


leaves = st.one_of(
    st.builds(Tag, tag_names, st.booleans()),
    st.builds(
        lambda op, t: TierCmp(op, (t,)),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.sampled_from(L.ids),
    ),
    st.builds(
        lambda op, ts: TierCmp(op, tuple(sorted(ts, key=L.rank))),
        st.sampled_from(["in", "not in"]),
        st.sets(st.sampled_from(L.ids), min_size=1),
    ),
    st.builds(Flag, st.sampled_from(FLAGS)),
)
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)


def render(node: Node, draw: st.DrawFn) -> str:
    """Any of the many spellings of a tree: keyword aliases, display names, quotes, spacing, parens."""
    choice = lambda *options: draw(st.sampled_from(options))  # noqa: E731
    sp = lambda: choice(" ", "  ", "\n", "\u3000")  # noqa: E731
    if isinstance(node, Tag):
        name = str(Tag(node.name))[4:]  # canonical (bare or quoted)
        if name.startswith('"') and "”" not in node.name and '"' not in node.name and "\\" not in node.name:
            name = choice(name, f"“{node.name}”")
        elif not name.startswith('"'):
            name = choice(name, f'"{node.name}"')
        return (
            choice("tag:", "TAG:", "tag：")
            + (name if node.name or not node.prefix else "")
            + ("*" if node.prefix else "")
        )
    if isinstance(node, TierCmp):

        def value(t: str) -> str:
            return choice(t, t.upper(), L.name(t), f'"{L.name(t)}"')

        if node.op in ("in", "not in"):
            sep = choice(",", ", ", "，", "、", " , ")
            listed = sep.join(value(t) for t in draw(st.permutations(node.tiers)))
            op = "in" if node.op == "in" else choice("not in", "NOT in", "非 in")
            return f"{choice('tier', 'Tier')}{sp()}{op}{sp()}{choice('(', '（')}{listed}{choice(')', '）')}"
        return f"tier{choice('', ' ')}{node.op}{choice('', ' ')}{value(node.tiers[0])}"
    if isinstance(node, Flag):
        return node.name
    opening, closing = choice(("(", ")"), ("（", "）"))
    if isinstance(node, Not):
        return f"{choice('not', 'NOT', '非')}{sp()}{opening}{render(node.operand, draw)}{closing}"
    word = choice("and", "AND", "且") if isinstance(node, And) else choice("or", "Or", "或")
    assert isinstance(node, And | Or)
    return f"{sp()}{word}{sp()}".join(f"{opening}{render(o, draw)}{closing}" for o in node.operands)


def subjects_for(node: Node) -> st.SearchStrategy[Subject]:
    names = sorted({n.name for n in node.walk() if isinstance(n, Tag)} | {"其他"})
    candidates = names + [n + "x" for n in names]
    return st.builds(
        Subject,
        st.sampled_from([*L.ids, *L.names, "ghost"]),
        st.frozensets(st.sampled_from(candidates), max_size=4),
        st.dictionaries(st.sampled_from(FLAGS), st.booleans()),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_spelling_parses_to_the_same_meaning_and_canonical_form_round_trips(data: st.DataObject) -> None:
    tree = data.draw(trees)
    text = render(tree, data.draw)
    expr = parse(text, L)
    canonical = str(expr)
    again = parse(canonical, L)
    assert again == expr  # same tree, not only the same meaning
    assert str(again) == canonical
    for subject in data.draw(st.lists(subjects_for(tree), min_size=1, max_size=20)):
        expected = reference(tree, subject)
        assert expr.evaluate(subject) is expected
        assert again.evaluate(subject) is expected


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_de_morgan(data: st.DataObject) -> None:
    a, b = str(parse(str(data.draw(trees)), L)), str(parse(str(data.draw(trees)), L))
    pairs = [
        (parse(f"not (({a}) or ({b}))", L), parse(f"not ({a}) and not ({b})", L)),
        (parse(f"not (({a}) and ({b}))", L), parse(f"not ({a}) or not ({b})", L)),
        (parse(f"非 (({a}) 且 ({b}))", L), parse(f"not ({a}) or not ({b})", L)),
    ]
    for subject in data.draw(
        st.lists(subjects_for(And((parse(a).root, parse(b).root))), min_size=1, max_size=20)
    ):
        for left, right in pairs:
            assert left.evaluate(subject) is right.evaluate(subject)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_arbitrary_text_either_parses_or_raises_expr_error_with_a_position_inside_it(text: str) -> None:
    try:
        expr = parse(text, L)
    except ExprError as error:
        caught: ExprError | None = error
    else:
        caught = None
        assert parse(str(expr), L) == expr
    if caught is not None:
        assert 0 <= caught.position <= len(text)
        assert caught.caret()
