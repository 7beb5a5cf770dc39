"""The audience expression language: who an SOP step reaches, and `sopbot contacts --where`.

    tier >= customer and tag:活动喜好型 and not tag:免打扰
    tier in (repeat, koc) or tag:"VIP 客户"
    not (tag:新品关注型 or tag:活动喜好型) and not opted_out
    tag:价值等级/* 且 非 blocked

Grammar (keywords are case-insensitive; 且/或/非 are aliases of and/or/not and, like them,
need spaces or parentheses around them):

    expr    := and_expr (("or" | "或") and_expr)*
    and_expr:= unary (("and" | "且") unary)*
    unary   := ("not" | "非") unary | atom
    atom    := "(" expr ")" | "tag:" NAME ["*"] | "tier" CMP TIER
             | "tier" ["not"] "in" "(" TIER ("," TIER)* ")" | FIELD
             | "field:" NAME [CMP VALUE | ["not"] "in" "(" VALUE ("," VALUE)* ")"]
    CMP     := "==" | "!=" | "<" | "<=" | ">" | ">="
    NAME    := bare run of letters/digits/_ - / . ·  |  "quoted" (\\" and \\\\ escapes)

`TIER` is a ladder id or display name, bare or quoted; `<`/`>` follow the ladder order.
`tag:PREFIX*` matches any tag starting with PREFIX (`tag:*`: has any tag). `FIELD` is a
yes/no flag from a small registry (`DEFAULT_FIELDS`: opted_out, blocked, is_friend,
has_ordered). `field:NAME` tests a contact's profile (城市, 性别, 生日 or the operator's own
fields from `sopbot import-contacts`): alone it means "has a value"; `==`/`!=`/`in` compare
text (case and surrounding spaces ignored), `<`/`>` compare numbers and are false when either
side is not a number. Full-width （）， 、 “” ： are accepted too.

`parse()` checks everything up front (unknown tiers and fields are errors with a column and
a 'did you mean') and compiles the expression to one Python function, so evaluating it over
a whole contact list costs one call per contact.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from bot.contact_fields import profile_name
from bot.signals.tiers_ladder import DEFAULT_LADDER, TierLadder

__all__ = [
    "DEFAULT_FIELDS",
    "DEFAULT_LADDER",
    "And",
    "BoolField",
    "Expr",
    "ExprError",
    "FieldTest",
    "Flag",
    "Node",
    "Not",
    "Or",
    "Subject",
    "SubjectLike",
    "Tag",
    "TierCmp",
    "TierLadder",
    "parse",
]

MAX_DEPTH = 100
_S = TypeVar("_S")


# --------------------------------------------------------------------------- subjects & fields


class SubjectLike(Protocol):
    """What an expression is evaluated against: a contact's tier, tags and yes/no flags."""

    @property
    def tier(self) -> str: ...
    @property
    def tags(self) -> frozenset[str]: ...  # any set-like container with `in` works
    @property
    def flags(self) -> Mapping[str, bool]: ...

    # optional: `profile`, the contact's fields by name (城市, 性别, 生日, custom), for `field:`


@dataclass(frozen=True, slots=True)
class Subject:
    """A ready-made `SubjectLike`: `Subject("repeat", frozenset({"活动喜好型"}), {"opted_out": False})`."""

    tier: str
    tags: frozenset[str] = frozenset()
    flags: Mapping[str, bool] = field(default_factory=dict)
    profile: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BoolField:
    """A yes/no field operators may name in an expression.

    Without a getter the value is `subject.flags.get(name, False)`; a getter computes it
    from the subject instead (it must return a bool)."""

    name: str
    help: str = ""
    getter: Callable[[SubjectLike], bool] | None = None

    def __post_init__(self) -> None:
        if not _IDENT.fullmatch(self.name) or self.name.casefold() in _RESERVED:
            raise ValueError(f"field name {self.name!r} must be an identifier and not a keyword")


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED = frozenset({"and", "or", "not", "in", "tier", "tag", "且", "或", "非"})

DEFAULT_FIELDS: Mapping[str, BoolField] = {
    f.name: f
    for f in (
        BoolField("opted_out", "said 退订/TD: no marketing messages"),
        BoolField("blocked", "deleted or blocked us"),
        BoolField("is_friend", "a 1:1 friend of the account"),
        BoolField("has_ordered", "at least one order on record"),
    )
}


# --------------------------------------------------------------------------- errors


class ExprError(ValueError):
    """A bad expression. `str(e)` is 'at column N: reason'; `position` is the 0-based offset."""

    def __init__(self, reason: str, text: str, position: int, length: int = 1) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        self.length = max(1, length)
        line_start = text.rfind("\n", 0, position) + 1
        self.line = text.count("\n", 0, position) + 1
        self.column = position - line_start + 1
        where = f"line {self.line}, column {self.column}" if "\n" in text else f"column {self.column}"
        super().__init__(f"at {where}: {reason}")

    def caret(self) -> str:
        """The offending line with ^ under the bad token (wide CJK characters count double)."""
        start = self.text.rfind("\n", 0, self.position) + 1
        end = self.text.find("\n", self.position)
        line = self.text[start : end if end >= 0 else len(self.text)]
        col = self.position - start
        token = line[col : col + self.length]
        pad = "".join("\t" if ch == "\t" else " " * _width(ch) for ch in line[:col])
        marks = "^" * max(1, sum(_width(ch) for ch in token))
        return f"{line}\n{pad}{marks}"


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


# --------------------------------------------------------------------------- syntax tree


class Node:
    """One node of a parsed expression; `str()` gives the canonical form."""

    __slots__ = ()

    def children(self) -> tuple[Node, ...]:
        return ()

    def walk(self) -> Iterable[Node]:
        yield self
        for child in self.children():
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class Tag(Node):
    name: str
    prefix: bool = False

    def __str__(self) -> str:
        return f"tag:{_quote(self.name) if self.name else ''}{'*' if self.prefix else ''}"


@dataclass(frozen=True, slots=True)
class TierCmp(Node):
    """`tier OP id`, or `tier in (ids)` / `tier not in (ids)` with ids in ladder order."""

    op: str
    tiers: tuple[str, ...]

    def __str__(self) -> str:
        if self.op in ("in", "not in"):
            return f"tier {self.op} ({', '.join(_quote(t, keyword_safe=True) for t in self.tiers)})"
        return f"tier {self.op} {_quote(self.tiers[0], keyword_safe=True)}"


@dataclass(frozen=True, slots=True)
class Flag(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class FieldTest(Node):
    """`field:NAME` (has a value), `field:NAME OP VALUE`, `field:NAME [not] in (VALUES)`."""

    name: str
    op: str = ""
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        head = f"field:{_quote(self.name)}"
        if not self.op:
            return head
        if self.op in ("in", "not in"):
            return f"{head} {self.op} ({', '.join(_quote_value(v) for v in self.values)})"
        return f"{head} {self.op} {_quote_value(self.values[0])}"


@dataclass(frozen=True, slots=True)
class Not(Node):
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"not ({inner})" if isinstance(self.operand, And | Or) else f"not {inner}"


@dataclass(frozen=True, slots=True)
class And(Node):
    operands: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.operands

    def __str__(self) -> str:
        return " and ".join(f"({o})" if isinstance(o, Or) else str(o) for o in self.operands)


@dataclass(frozen=True, slots=True)
class Or(Node):
    operands: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.operands

    def __str__(self) -> str:
        return " or ".join(str(o) for o in self.operands)


_BARE = re.compile(r"[\w\-/.·]+")


def _quote_value(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quote(name: str, *, keyword_safe: bool = False) -> str:
    if _BARE.fullmatch(name) and not (keyword_safe and name.casefold() in _RESERVED):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------- the parsed expression


@dataclass(frozen=True, eq=False)
class Expr:
    """A parsed, checked and compiled expression. Build it with `parse()`."""

    root: Node
    ladder: TierLadder
    fields: Mapping[str, BoolField]
    source: str = ""
    _fn: Callable[[SubjectLike], bool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_fn", _Compiler(self.ladder, self.fields).compile(self.root))

    def evaluate(self, subject: SubjectLike) -> bool:
        return self._fn(subject)

    __call__ = evaluate

    def compile(self) -> Callable[[SubjectLike], bool]:
        """The plain compiled function: the fastest way to test many subjects."""
        return self._fn

    def filter(self, subjects: Iterable[_S]) -> list[_S]:
        fn = self._fn
        return [s for s in subjects if fn(s)]

    def tags_referenced(self) -> frozenset[str]:
        """Exact tag names the expression tests (`tag:X`), for linting against known tags."""
        return frozenset(n.name for n in self.root.walk() if isinstance(n, Tag) and not n.prefix)

    def tag_prefixes_referenced(self) -> frozenset[str]:
        """Prefixes tested with `tag:X*`."""
        return frozenset(n.name for n in self.root.walk() if isinstance(n, Tag) and n.prefix)

    def tiers_referenced(self) -> frozenset[str]:
        """Tier ids the expression names (as written, not the ranges `>=` expands to)."""
        return frozenset(t for n in self.root.walk() if isinstance(n, TierCmp) for t in n.tiers)

    def fields_referenced(self) -> frozenset[str]:
        return frozenset(n.name for n in self.root.walk() if isinstance(n, Flag))

    def __str__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"Expr({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expr) and (self.root, self.ladder) == (other.root, other.ladder)

    def __hash__(self) -> int:
        return hash((self.root, self.ladder))


def _has_prefix(tags: Iterable[str], prefix: str) -> bool:
    return any(tag.startswith(prefix) for tag in tags)


def _field_value(subject: SubjectLike, name: str) -> str:
    profile = getattr(subject, "profile", None)
    value = profile.get(name) if profile else None
    return "" if value is None else str(value).strip()


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _field_matches(subject: SubjectLike, test: FieldTest) -> bool:
    value = _field_value(subject, test.name)
    if not test.op:
        return value != ""
    if test.op in ("==", "!=", "in", "not in"):
        found = value.casefold() in test.values
        return found if test.op in ("==", "in") else not found
    left, right = _number(value), _number(test.values[0])
    if left is None or right is None:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[test.op]


class _Compiler:
    """Turns a tree into the source of one lambda; every user string is a bound constant."""

    def __init__(self, ladder: TierLadder, fields: Mapping[str, BoolField]) -> None:
        self.ladder = ladder
        self.fields = fields
        self.consts: dict[str, object] = {}

    def const(self, value: object) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def compile(self, root: Node) -> Callable[[SubjectLike], bool]:
        source = f"lambda s: {self.emit(root)}"
        namespace: dict[str, object] = {
            "__builtins__": {"bool": bool},
            "_has_prefix": _has_prefix,
            "_field_matches": _field_matches,
        }
        namespace.update(self.consts)
        return eval(compile(source, "<audience expression>", "eval"), namespace)

    def spellings(self, ids: Iterable[str]) -> frozenset[str]:
        return frozenset(s for t in ids for s in self.ladder.spellings(t))

    def emit(self, node: Node) -> str:
        match node:
            case Tag(name, False):
                return f"({self.const(name)} in s.tags)"
            case Tag("", True):
                return "(not not s.tags)"
            case Tag(name, True):
                return f"_has_prefix(s.tags, {self.const(name)})"
            case TierCmp(op, tiers):
                rank = self.ladder.rank(tiers[0])
                ids = self.ladder.ids
                selected = {
                    "==": tiers,
                    "!=": tiers,
                    "in": tiers,
                    "not in": tiers,
                    "<": ids[:rank],
                    "<=": ids[: rank + 1],
                    ">": ids[rank + 1 :],
                    ">=": ids[rank:],
                }[op]
                negate = " not" if op in ("!=", "not in") else ""
                return f"(s.tier{negate} in {self.const(self.spellings(selected))})"
            case Flag(name):
                spec = self.fields[name]
                if spec.getter is None:
                    return f"bool(s.flags.get({self.const(name)}, False))"
                return f"bool({self.const(spec.getter)}(s))"
            case FieldTest():
                return f"_field_matches(s, {self.const(node)})"
            case Not(operand):
                return f"(not {self.emit(operand)})"
            case And(operands):
                return "(" + " and ".join(self.emit(o) for o in operands) + ")"
            case Or(operands):
                return "(" + " or ".join(self.emit(o) for o in operands) + ")"
        raise TypeError(f"not an expression node: {node!r}")


# --------------------------------------------------------------------------- lexer

# token kinds
_WORD, _STRING, _TAG, _FIELD, _OP, _LPAREN, _RPAREN, _COMMA, _COLON, _EOF = (
    "word", "string", "tag", "field", "op", "(", ")", ",", ":", "end"
)  # fmt: skip

_OP_CHARS = frozenset("=!<>~&|^")
_QUOTES = {'"': '"', "“": "”", "”": "”"}
_SINGLE = {"(": _LPAREN, "（": _LPAREN, ")": _RPAREN, "）": _RPAREN, ",": _COMMA, "，": _COMMA, "、": _COMMA}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: str  # a word as written, a string's content, a tag's name, an operator
    start: int
    end: int
    prefix: bool = False  # tags: tag:NAME*

    @property
    def key(self) -> str:
        return self.value.casefold() if self.kind == _WORD else ""


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in _SINGLE:
            tokens.append(_Token(_SINGLE[ch], ch, i, i + 1))
            i += 1
        elif ch in _QUOTES:
            value, j = _read_string(text, i)
            tokens.append(_Token(_STRING, value, i, j))
            i = j
        elif ch in _OP_CHARS:
            j = i
            while j < n and text[j] in _OP_CHARS:
                j += 1
            tokens.append(_Token(_OP, text[i:j], i, j))
            i = j
        elif ch in ":：":
            tokens.append(_Token(_COLON, ch, i, i + 1))
            i += 1
        elif m := _BARE.match(text, i):
            j = m.end()
            if m.group().casefold() == "tag" and j < n and text[j] in ":：":
                tokens.append(_read_tag(text, i, j + 1))
            elif m.group().casefold() == "field" and j < n and text[j] in ":：":
                tokens.append(_read_field(text, i, j + 1))
            else:
                tokens.append(_Token(_WORD, m.group(), i, j))
            i = tokens[-1].end
        else:
            raise ExprError(f"unexpected character {ch!r}", text, i)
    tokens.append(_Token(_EOF, "", n, n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    close = _QUOTES[text[start]]
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
            out.append(text[i + 1])
            i += 2
        elif ch == close or (close == "”" and ch == '"'):
            return "".join(out), i + 1
        else:
            out.append(ch)
            i += 1
    raise ExprError("this quote is never closed", text, start)


def _read_tag(text: str, start: int, i: int) -> _Token:
    """`tag:` at start, the name at i: quoted, bare, or nothing before a `*`."""
    n = len(text)
    if i < n and text[i] in _QUOTES:
        name, j = _read_string(text, i)
    elif m := _BARE.match(text, i):
        name, j = m.group(), m.end()
    else:
        name, j = "", i
    prefix = j < n and text[j] == "*"
    if prefix:
        j += 1
    elif not name:
        raise ExprError(
            "'tag:' needs a tag name right after the colon, e.g. tag:活动喜好型", text, start, i - start
        )
    if j < n and text[j] in ":：":
        raise ExprError(
            f"unexpected {text[j]!r} after tag {name!r} (keywords such as 且/或/and/or need spaces around them)",
            text,
            j,
        )
    return _Token(_TAG, name, start, j, prefix)


def _read_field(text: str, start: int, i: int) -> _Token:
    """`field:` at start, the name at i: quoted or bare."""
    if i < len(text) and text[i] in _QUOTES:
        name, j = _read_string(text, i)
    elif m := _BARE.match(text, i):
        name, j = m.group(), m.end()
    else:
        raise ExprError(
            "'field:' needs a field name right after the colon, e.g. field:城市 == 上海",
            text,
            start,
            i - start,
        )
    return _Token(_FIELD, name, start, j)


# --------------------------------------------------------------------------- parser

_CMP = ("==", "!=", "<", "<=", ">", ">=")
_OP_HINTS = {
    "=": "==", "===": "==", "=>": ">=", "=<": "<=", "<>": "!=", "!==": "!=", "~=": "!=",
    "&&": "and", "&": "and", "||": "or", "|": "or", "!": "not", "~": "not", ":": "==", "：": "==",
}  # fmt: skip
_AND, _OR, _NOT = frozenset({"and", "且"}), frozenset({"or", "或"}), frozenset({"not", "非"})
_KEYWORDS = _AND | _OR | _NOT | {"in"}


def parse(
    text: str,
    ladder: TierLadder = DEFAULT_LADDER,
    *,
    fields: Mapping[str, BoolField] | None = None,
    bare_tags: bool = False,
) -> Expr:
    """Parse, check and compile an audience expression; `ExprError` says where it is wrong.

    With `bare_tags`, a word that is not a field (or a quoted string) is a tag name, so
    `活动喜好型 and not 免打扰` works where only tags are expected."""
    fields = DEFAULT_FIELDS if fields is None else fields
    root = _Parser(text, ladder, fields, bare_tags).parse()
    return Expr(root, ladder, fields, text)


class _Parser:
    def __init__(
        self, text: str, ladder: TierLadder, fields: Mapping[str, BoolField], bare_tags: bool
    ) -> None:
        self.text = text
        self.ladder = ladder
        self.fields = fields
        self.bare_tags = bare_tags
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers -----------------------------------------------------------------

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, reason: str, tok: _Token) -> ExprError:
        return ExprError(reason, self.text, tok.start, tok.end - tok.start)

    def shown(self, tok: _Token) -> str:
        return "the end of the expression" if tok.kind == _EOF else repr(self.text[tok.start : tok.end])

    def is_kw(self, tok: _Token, words: frozenset[str]) -> bool:
        return tok.kind == _WORD and tok.key in words

    # grammar -----------------------------------------------------------------

    def parse(self) -> Node:
        if self.peek().kind == _EOF:
            raise self.error("the expression is empty", self.peek())
        node = self.parse_or()
        tok = self.peek()
        if tok.kind != _EOF:
            raise self.unexpected_after(tok)
        return node

    def unexpected_after(self, tok: _Token) -> ExprError:
        if tok.kind == _RPAREN:
            return self.error("this ')' has no matching '('", tok)
        if tok.kind in (_OP, _COLON) and tok.value in _OP_HINTS:
            return self.error(f"unknown operator {tok.value!r} (did you mean {_OP_HINTS[tok.value]!r}?)", tok)
        if tok.kind in (_OP, _COLON):
            return self.error(f"unknown operator {tok.value!r}", tok)
        return self.error(
            f"unexpected {self.shown(tok)} after a complete condition (missing 'and' or 'or'?)", tok
        )

    def parse_or(self) -> Node:
        parts = [self.parse_and()]
        while self.is_kw(self.peek(), _OR):
            self.next()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else Or(_flatten(parts, Or))

    def parse_and(self) -> Node:
        parts = [self.parse_unary()]
        while self.is_kw(self.peek(), _AND):
            self.next()
            parts.append(self.parse_unary())
        return parts[0] if len(parts) == 1 else And(_flatten(parts, And))

    def parse_unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"the expression is nested more than {MAX_DEPTH} levels deep", self.peek())
        try:
            if self.is_kw(self.peek(), _NOT):
                self.next()
                return Not(self.parse_unary())
            return self.parse_atom()
        finally:
            self.depth -= 1

    def parse_atom(self) -> Node:
        tok = self.peek()
        before = self.tokens[self.i - 1] if self.i else None
        after = f" after {self.shown(before)}" if before else ""
        if tok.kind == _LPAREN:
            self.next()
            node = self.parse_or()
            close = self.peek()
            if close.kind == _EOF:
                raise self.error("this '(' is never closed", tok)
            if close.kind != _RPAREN:
                raise self.unexpected_after(close)
            self.next()
            return node
        if tok.kind == _TAG:
            self.next()
            return Tag(tok.value, tok.prefix)
        if tok.kind == _FIELD:
            return self.parse_field()
        if tok.kind == _WORD and tok.key not in _KEYWORDS:
            return self.parse_word(tok)
        if tok.kind == _STRING and self.bare_tags:
            self.next()
            return Tag(tok.value)
        if tok.kind == _STRING:
            raise self.error(f'expected a condition, got quoted text (write a tag as tag:"{tok.value}")', tok)
        if tok.kind in (_OP, _COLON):
            hint = f" (did you mean {_OP_HINTS[tok.value]!r}?)" if tok.value in _OP_HINTS else ""
            raise self.error(f"unknown operator {tok.value!r}{hint}", tok)
        raise self.error(f"expected a condition{after}, got {self.shown(tok)}", tok)

    def parse_word(self, tok: _Token) -> Node:
        if tok.key == "tier":
            return self.parse_tier()
        self.next()
        if tok.value in self.fields:
            follow = self.peek()
            if follow.kind in (_OP, _COLON):
                raise self.error(
                    f"{tok.value!r} is a yes/no field: write '{tok.value}' or 'not {tok.value}'", follow
                )
            return Flag(tok.value)
        if self.bare_tags and self.peek().kind != _COLON:
            return Tag(tok.value)
        raise self.error(f"unknown field {tok.value!r} ({self.field_hint(tok.value)})", tok)

    def field_hint(self, word: str) -> str:
        if word[0] in "且或非" and len(word) > 1:
            return f"put a space after {word[0]!r}"
        if self.ladder.resolve(word):
            return f"a tier is written tier == {word}"
        known = ["tier", "tag", *self.fields]
        close = difflib.get_close_matches(word.casefold(), known, n=1, cutoff=0.6)
        if close:
            return f"did you mean {close[0] + ':' if close[0] == 'tag' else close[0]!r}?"
        return f"a tag is written tag:{_quote(word)}; fields are tier, " + ", ".join(self.fields)

    def parse_field(self) -> Node:
        field_tok = self.next()
        name = profile_name(field_tok.value)
        tok = self.peek()
        if tok.kind == _OP and tok.value in _CMP:
            self.next()
            value = self.field_value(tok)
            if tok.value in ("==", "!="):
                return FieldTest(name, tok.value, (value.casefold(),))
            if _number(value) is None:
                raise self.error(
                    f"{tok.value!r} compares numbers; {value!r} is not a number", self.tokens[self.i - 1]
                )
            return FieldTest(name, tok.value, (value,))
        if self.is_kw(tok, frozenset({"in"})) or (
            self.is_kw(tok, _NOT) and self.is_kw(self.peek(1), frozenset({"in"}))
        ):
            op = "in" if self.is_kw(self.next(), frozenset({"in"})) else "not in"
            if op == "not in":
                self.next()
            return FieldTest(name, op, self.field_values())
        if tok.kind in (_OP, _COLON):
            hint = _OP_HINTS.get(tok.value)
            hint = f"did you mean {hint!r}?" if hint in _CMP else "use ==, !=, <, <=, >, >=, in (...)"
            raise self.error(f"unknown operator {tok.value!r} ({hint})", tok)
        return FieldTest(name)

    def field_value(self, after: _Token) -> str:
        tok = self.next()
        if tok.kind not in (_WORD, _STRING):
            raise self.error(f"expected a value after {self.shown(after)}, got {self.shown(tok)}", tok)
        return tok.value.strip()

    def field_values(self) -> tuple[str, ...]:
        open_tok = self.next()
        if open_tok.kind != _LPAREN:
            raise self.error(
                f"expected '(' with the values, e.g. field:城市 in (上海, 杭州), got {self.shown(open_tok)}",
                open_tok,
            )
        values = [self.field_value(open_tok).casefold()]
        while True:
            tok = self.next()
            if tok.kind == _RPAREN:
                return tuple(dict.fromkeys(values))
            if tok.kind == _EOF:
                raise self.error("this '(' is never closed", open_tok)
            if tok.kind != _COMMA:
                raise self.error(f"expected ',' or ')' in the value list, got {self.shown(tok)}", tok)
            values.append(self.field_value(tok).casefold())

    def parse_tier(self) -> Node:
        tier_tok = self.next()
        tok = self.next()
        if tok.kind == _OP and tok.value in _CMP:
            return TierCmp(tok.value, (self.tier_value(tok),))
        if self.is_kw(tok, frozenset({"in"})):
            return TierCmp("in", self.tier_list(tok))
        if self.is_kw(tok, _NOT) and self.is_kw(self.peek(), frozenset({"in"})):
            return TierCmp("not in", self.tier_list(self.next()))
        if tok.kind in (_OP, _COLON):
            hint = _OP_HINTS.get(tok.value)
            hint = f"did you mean {hint!r}?" if hint in _CMP else "use ==, !=, <, <=, >, >=, in (...)"
            raise self.error(f"unknown operator {tok.value!r} ({hint})", tok)
        raise self.error(
            f"expected a comparison after {self.shown(tier_tok)} (==, !=, <, <=, >, >=, in), got {self.shown(tok)}",
            tok,
        )

    def tier_value(self, after: _Token) -> str:
        tok = self.next()
        if tok.kind not in (_WORD, _STRING):
            raise self.error(f"expected a tier after {self.shown(after)}, got {self.shown(tok)}", tok)
        tier_id = self.ladder.resolve(tok.value)
        if tier_id is None:
            suggestion = self.ladder.suggest(tok.value)
            if suggestion:
                hint = f"did you mean {suggestion!r}?"
            else:
                hint = "tiers: " + ", ".join(f"{i} {n}" for i, n in self.ladder.pairs())
            raise self.error(f"unknown tier {tok.value!r} ({hint})", tok)
        return tier_id

    def tier_list(self, in_tok: _Token) -> tuple[str, ...]:
        open_tok = self.next()
        if open_tok.kind != _LPAREN:
            raise self.error(
                f"expected '(' after {self.shown(in_tok)}, e.g. tier in (repeat, koc), got {self.shown(open_tok)}",
                open_tok,
            )
        if self.peek().kind == _RPAREN:
            raise self.error("the tier list is empty", self.peek())
        found = {self.tier_value(open_tok)}
        while True:
            tok = self.next()
            if tok.kind == _RPAREN:
                break
            if tok.kind == _EOF:
                raise self.error("this '(' is never closed", open_tok)
            if tok.kind != _COMMA:
                raise self.error(f"expected ',' or ')' in the tier list, got {self.shown(tok)}", tok)
            found.add(self.tier_value(tok))
        return tuple(sorted(found, key=self.ladder.rank))


def _flatten(parts: list[Node], kind: type[And] | type[Or]) -> tuple[Node, ...]:
    out: list[Node] = []
    for part in parts:
        out.extend(part.operands if isinstance(part, kind) else (part,))
    return tuple(out)
