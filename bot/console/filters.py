"""The filter language of `sopbot contacts --where` (bot/signals/expr.py) as SQL, so the
console pages through 100,000 contacts in the database instead of in Python.

Tags, tiers and the yes/no fields translate exactly. A profile test (`field:城市 == 上海`)
must agree with Python to the letter (whitespace stripped, case folded, gender spellings,
numbers with thousands separators), so on SQLite it runs the filter language's own code as a
SQL function registered on the connection. Elsewhere (PostgreSQL) it becomes a condition
that holds for every match and maybe more, and the rows it selects are checked again with
the compiled expression (`SqlFilter.exact` is then False).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, literal, not_, or_, select, true
from sqlmodel import Session

from bot.contact_fields import COLUMNS, profile
from bot.signals.expr import And, BoolField, Expr, FieldTest, Flag, Node, Not, Or, Subject, Tag, TierCmp
from bot.store.models import Contact, ContactTag, Order
from bot.store.models import Tag as TagRow

FIELD_FUNCTION = "sopbot_field_test"

_FLAG_COLUMNS: Mapping[str, Any] = {
    "opted_out": Contact.opted_out,
    "blocked": Contact.blocked,
    "is_friend": Contact.is_friend,
}


@dataclass(frozen=True)
class SqlFilter:
    """A WHERE clause over `contacts`. When `exact` is False it selects every match and maybe
    more: check each row with `expr.evaluate` before showing it."""

    where: ColumnElement[bool]
    exact: bool


def tag_ids(session: Session) -> dict[str, int]:
    """Every tag name → id (a few hundred rows: cheaper than a join per condition)."""
    return {str(name): int(tag_id) for tag_id, name in session.execute(select(TagRow.id, TagRow.name))}


def compile_filter(expr: Expr, session: Session) -> SqlFilter:
    """The expression as a WHERE clause for `session`'s database. On SQLite the profile
    tests' function is registered on the session's connection first."""
    tests = [node for node in expr.root.walk() if isinstance(node, FieldTest)]
    exact_fields = bool(tests) and _can_register(session)
    if exact_fields:
        _register_field_function(session, expr, tests)
    builder = _Builder(expr, tag_ids(session), tests, exact_fields=exact_fields)
    upper, _ = builder.bounds(expr.root)
    return SqlFilter(upper, exact=builder.exact)


class _Builder:
    """Each node becomes two conditions: `upper` holds for every contact the node holds for,
    `lower` only for contacts it holds for. Exact nodes give the same condition twice; `not`
    swaps them, so the root's `upper` is a safe pre-selection whatever the nesting."""

    def __init__(
        self, expr: Expr, tags: Mapping[str, int], tests: list[FieldTest], *, exact_fields: bool
    ) -> None:
        self.expr = expr
        self.tags = tags
        self.tests = {id(test): index for index, test in enumerate(tests)}
        self.exact_fields = exact_fields
        self.exact = True

    def bounds(self, node: Node) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        match node:
            case Not(operand):
                upper, lower = self.bounds(operand)
                return not_(lower), not_(upper)
            case And(operands):
                pairs = [self.bounds(o) for o in operands]
                return and_(*(u for u, _ in pairs)), and_(*(lo for _, lo in pairs))
            case Or(operands):
                pairs = [self.bounds(o) for o in operands]
                return or_(*(u for u, _ in pairs)), or_(*(lo for _, lo in pairs))
            case FieldTest():
                if self.exact_fields:  # the cheap column test first: the function runs on fewer rows
                    condition = and_(self.field_upper(node), self.field_function(node))
                    return condition, condition
                self.exact = False
                return self.field_upper(node), false()
        condition = self.exact_condition(node)
        if condition is None:  # a yes/no field of someone else's registry: checked in Python
            self.exact = False
            return true(), false()
        return condition, condition

    def exact_condition(self, node: Node) -> ColumnElement[bool] | None:
        match node:
            case Tag(name, False):
                tag_id = self.tags.get(name)
                return false() if tag_id is None else _has_tags([tag_id])
            case Tag("", True):
                return _has_tags(None)
            case Tag(prefix, True):
                ids = [tag_id for tag, tag_id in self.tags.items() if tag.startswith(prefix)]
                return _has_tags(ids) if ids else false()
            case TierCmp(op, tiers):
                spellings = sorted(_tier_spellings(self.expr, op, tiers))
                inside = Contact.tier.in_(spellings) if spellings else false()
                return not_(inside) if op in ("!=", "not in") else inside
            case Flag(name):
                spec: BoolField | None = self.expr.fields.get(name)
                if spec is None or spec.getter is not None:
                    return None
                if name == "has_ordered":
                    return exists(select(Order.order_id).where(Order.contact_id == Contact.id))
                column = _FLAG_COLUMNS.get(name)
                return None if column is None else column.is_(True)
        return None

    def field_function(self, test: FieldTest) -> ColumnElement[bool]:
        call = func.sopbot_field_test(
            literal(self.tests[id(test)]),
            Contact.city,
            Contact.gender,
            Contact.birthday,
            Contact.custom_fields,
        )
        return call == 1

    @staticmethod
    def field_upper(test: FieldTest) -> ColumnElement[bool]:
        """Holds whenever the test can: a value is there (tests that a missing value passes,
        `!=` and `not in`, and an empty value compared, may hold for anyone)."""
        if test.op in ("!=", "not in") or "" in test.values:
            return true()
        column = COLUMNS.get(test.name)
        if column is not None:
            value = getattr(Contact, column)
            return and_(value.is_not(None), value != "")
        return Contact.custom_fields.is_not(None)


def _has_tags(ids: list[int] | None) -> ColumnElement[bool]:
    query = select(ContactTag.tag_id).where(ContactTag.contact_id == Contact.id)
    if ids is not None:
        query = query.where(ContactTag.tag_id == ids[0] if len(ids) == 1 else ContactTag.tag_id.in_(ids))
    return exists(query)


def _tier_spellings(expr: Expr, op: str, tiers: tuple[str, ...]) -> set[str]:
    """What the stored `tier` may hold for the tiers `op` selects (as the compiled
    expression decides it: ids and display names)."""
    ladder = expr.ladder
    rank = ladder.rank(tiers[0])
    selected = {
        "==": tiers, "!=": tiers, "in": tiers, "not in": tiers,
        "<": ladder.ids[:rank], "<=": ladder.ids[: rank + 1],
        ">": ladder.ids[rank + 1 :], ">=": ladder.ids[rank:],
    }[op]  # fmt: skip
    return {spelling for tier in selected for spelling in ladder.spellings(tier)}


def _can_register(session: Session) -> bool:
    """SQLite runs Python functions in its queries; other databases cannot."""
    return session.get_bind().dialect.name == "sqlite"


def _register_field_function(session: Session, expr: Expr, tests: list[FieldTest]) -> None:
    """`sopbot_field_test(i, city, gender, birthday, custom_fields)`: the i-th profile test of
    this expression, decided by the filter language's own compiled code."""
    checks = [Expr(test, expr.ladder, expr.fields).compile() for test in tests]

    def decide(index: int, city: Any, gender: Any, birthday: Any, custom: Any) -> int:
        own = json.loads(custom) if isinstance(custom, str | bytes) and custom else None
        fields = profile(city, gender, birthday, own if isinstance(own, dict) else None)
        return 1 if checks[index](Subject("", frozenset(), {}, fields)) else 0

    raw = session.connection().connection.driver_connection
    raw.create_function(FIELD_FUNCTION, 5, decide, deterministic=True)


def subject_of(row: Any, tags: frozenset[str], has_ordered: bool) -> Subject:
    """The contact as `sopbot contacts --where` evaluates it (for the rows checked again)."""
    flags = {
        "opted_out": bool(row.opted_out),
        "blocked": bool(row.blocked),
        "is_friend": bool(row.is_friend),
        "has_ordered": has_ordered,
    }
    return Subject(row.tier, tags, flags, profile(row.city, row.gender, row.birthday, row.custom_fields))
