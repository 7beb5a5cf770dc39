"""Bounds on what one template render may cost: time, size of any value, size of the output.

Operators' templates run in Jinja's immutable sandbox, which stops attribute escapes but not
a template that builds a huge value (`"哈" * 10**9`, `"{:>999999999}".format(x)`, a
namespace doubled in a loop) or loops without end. Here:

- **Values**: no string, list or tuple built in a template may exceed `VALUE_LIMIT` items.
  Operators that multiply (`*`, `**`, `%`-formatting, `str.format` widths, `ljust`/`center`,
  `replace`, `join`, filters with a width) are checked *before* they run; every other call,
  filter and namespace assignment is checked on its result.
- **Loops**: `range()` yields at most `LOOP_LIMIT` numbers in one render, all calls together.
- **Time**: a render running longer than `RENDER_SECONDS` is interrupted (an asynchronous
  exception in the rendering thread, delivered between two Python bytecodes).
- **Output**: at most `OUTPUT_LIMIT` characters, read as the template streams them; each
  message part at most `PART_LIMIT` characters (WeChat's input box takes 2,000).

A render that breaks a bound fails with `LimitExceeded`, which `bot.render` turns into the
template's file:line like any other render error.
"""

from __future__ import annotations

import contextvars
import ctypes
import functools
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from jinja2 import Environment
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

PART_LIMIT = 2_000  # characters in one message part (WeChat's input box limit)
OUTPUT_LIMIT = 20_000  # characters a whole render may produce
VALUE_LIMIT = 100_000  # items in any string, list or tuple built while rendering
LOOP_LIMIT = 100_000  # numbers `range()` may yield in one render
RENDER_SECONDS = 2.0  # wall time of one render

_SIZED = (str, list, tuple, bytes)
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "format", "format_map"})
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d+))?")
_BRACE_SPEC = re.compile(r"\{[^{}]*?:([^{}]*)\}")
_NUMBER = re.compile(r"\d+")
_PASSED = (Context, EvalContext, Environment)  # what Jinja hands `pass_context` & co. filters


class LimitExceeded(Exception):
    """A template tried to build or run past a bound."""


def _check_size(value: Any, what: str = "a value") -> Any:
    if isinstance(value, _SIZED) and len(value) > VALUE_LIMIT:
        raise LimitExceeded(f"{what} of {len(value):,} items is over the limit of {VALUE_LIMIT:,}")
    return value


def _check_number(value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > VALUE_LIMIT:
        raise LimitExceeded(f"the number {value:,} is over the limit of {VALUE_LIMIT:,} for a width or count")


def _check_format(text: str) -> None:
    """Widths and precisions in `%`- and `{}`-format strings."""
    for match in _PERCENT_SPEC.finditer(text):
        for number in match.groups():
            if number:
                _check_number(int(number))
    for spec in _BRACE_SPEC.findall(text):
        for number in _NUMBER.findall(spec):
            _check_number(int(number))


def _check_repeat(sequence: Any, times: Any) -> None:
    if isinstance(sequence, _SIZED) and isinstance(times, int) and len(sequence) * times > VALUE_LIMIT:
        raise LimitExceeded(
            f"repeating {len(sequence):,} items {times:,} times is over the limit of {VALUE_LIMIT:,}"
        )


def _check_join(separator: Any, items: Any) -> None:
    if isinstance(items, list | tuple) and isinstance(separator, str):
        total = len(separator) * max(0, len(items) - 1)
        total += sum(len(item) if isinstance(item, _SIZED) else 20 for item in items)
        if total > VALUE_LIMIT:
            raise LimitExceeded(f"joining to {total:,} characters is over the limit of {VALUE_LIMIT:,}")


def _check_replace(text: str, old: str, new: str) -> None:
    grows = text.count(old) * max(0, len(new) - len(old)) if old else len(text) * len(new)
    if len(text) + grows > VALUE_LIMIT:
        raise LimitExceeded(f"replace() would build {len(text) + grows:,} characters")


def _check_power(base: Any, exponent: Any) -> None:
    numbers = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0
    if numbers and exponent * abs(base).bit_length() > 4096:
        raise LimitExceeded(f"{base} ** {exponent} is too large a number")


def _check_call(function: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for argument in (*args, *kwargs.values()):
        _check_number(argument)
    target = getattr(function, "__wrapped__", function)  # Jinja wraps str.format
    owner = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if isinstance(owner, str):
        if name in _WIDTH_METHODS:
            _check_format(owner)
        elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
            grows = (
                owner.count(args[0]) * max(0, len(args[1]) - len(args[0]))
                if args[0]
                else len(owner) * len(args[1])
            )
            if len(owner) + grows > VALUE_LIMIT:
                raise LimitExceeded(f"replace() would build {len(owner) + grows:,} characters")
        elif name == "join" and args:
            _check_join(owner, list(args[0]) if isinstance(args[0], list | tuple) else args[0])


# -- loops -----------------------------------------------------------------------------------

_loops_left: contextvars.ContextVar[list[int]] = contextvars.ContextVar("loops_left")


def bounded_range(*args: int) -> Iterator[int]:
    numbers = range(*args)
    budget = _loops_left.get(None)
    if budget is not None:
        budget[0] -= len(numbers)
        if budget[0] < 0:
            raise LimitExceeded(f"range() would count past {LOOP_LIMIT:,} numbers in one message")
    elif len(numbers) > LOOP_LIMIT:
        raise LimitExceeded(f"range() of {len(numbers):,} numbers is over the limit of {LOOP_LIMIT:,}")
    return iter(numbers)


class BoundedNamespace(Namespace):
    """`namespace()` whose attributes cannot grow past the value limit (a loop doubling a
    string in a namespace reaches a gigabyte in 30 rounds)."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _check_size(value, f"namespace value {name!r}"))


# -- the environment -------------------------------------------------------------------------


class BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+", "//"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = bounded_range
        self.globals["namespace"] = BoundedNamespace
        self.globals.pop("lipsum", None)
        self.filters = _BoundedFilters(self.filters)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
        return _check_size(super().call_binop(context, operator, left, right))

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_call(__obj, args, kwargs)
        return _check_size(super().call(__context, __obj, *args, **kwargs))


class _BoundedFilters(dict[str, Any]):
    """The environment's filters, each checked on its arguments and its result."""

    def __init__(self, filters: Mapping[str, Any]) -> None:
        super().__init__({name: _bounded_filter(name, f) for name, f in filters.items()})

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _bounded_filter(name, value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for name, value in dict(*args, **kwargs).items():
            self[name] = value


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(function, "_bounded", False):
        return function

    def bounded(*args: Any, **kwargs: Any) -> Any:
        values = [a for a in args if not isinstance(a, _PASSED)]  # pass_context & co. filters
        for argument in (*values[1:], *kwargs.values()):
            _check_number(argument)
        if values:
            _check_filter(name, values[0], values[1:], kwargs)
        return _check_size(function(*args, **kwargs), f"the result of |{name}")

    functools.update_wrapper(bounded, function)  # keeps Jinja's pass_context marks
    bounded._bounded = True  # type: ignore[attr-defined]
    return bounded


def _check_filter(name: str, value: Any, args: list[Any], kwargs: Mapping[str, Any]) -> None:
    """Filters whose result can be far larger than their input, checked before they run."""
    if name == "format" and isinstance(value, str):
        _check_format(value)
    elif name == "join" and isinstance(value, list | tuple):
        _check_join(str(args[0] if args else kwargs.get("d", "")), value)
    elif name == "sum" and isinstance(value, list | tuple):
        total = sum(len(item) for item in value if isinstance(item, _SIZED))
        if total > VALUE_LIMIT:
            raise LimitExceeded(f"sum() would build {total:,} items")
    elif name == "replace" and isinstance(value, str) and len(args) >= 2:
        _check_replace(value, str(args[0]), str(args[1]))
    elif name == "indent" and isinstance(value, str):
        width = args[0] if args else kwargs.get("width", 4)
        prefix = len(width) if isinstance(width, str) else int(width) if isinstance(width, int) else 4
        if len(value) + prefix * (value.count("\n") + 1) > VALUE_LIMIT:
            raise LimitExceeded("indent would build too long a text")


# -- time and output -------------------------------------------------------------------------


class _Watchdog:
    """One thread that interrupts renders past their deadline."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, tuple[float, object]] = {}  # thread id → (deadline, token)
        self._fired: set[object] = set()
        self._thread: threading.Thread | None = None

    def watch(self, seconds: float) -> object:
        token = object()
        with self._lock:
            self._active[threading.get_ident()] = (time.monotonic() + seconds, token)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="render-watchdog", daemon=True)
                self._thread.start()
        return token

    def release(self, token: object) -> bool:
        """Stop watching; True when the deadline had passed (an interrupt may be pending,
        and is cleared here so it cannot land outside the render)."""
        ident = threading.get_ident()
        with self._lock:
            self._active.pop(ident, None)
            fired = token in self._fired
            self._fired.discard(token)
            if fired:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
        return fired

    def _run(self) -> None:
        while True:
            time.sleep(0.05)
            now = time.monotonic()
            with self._lock:
                for ident, (deadline, token) in list(self._active.items()):
                    if now >= deadline and token not in self._fired:
                        self._fired.add(token)
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(ident), ctypes.py_object(RenderTimeout)
                        )


class RenderTimeout(Exception):
    """Raised inside a render that ran past `RENDER_SECONDS`."""


_watchdog = _Watchdog()


def render_bounded(template: Any, context: Mapping[str, Any], seconds: float = RENDER_SECONDS) -> str:
    """Render `template` within the time, loop and output bounds."""
    budget = _loops_left.set([LOOP_LIMIT])
    token = _watchdog.watch(seconds)
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > OUTPUT_LIMIT:
                raise LimitExceeded(f"the message is over {OUTPUT_LIMIT:,} characters")
            chunks.append(chunk)
    except RenderTimeout:
        raise LimitExceeded(f"rendering took more than {seconds:g} s (a loop without end?)") from None
    finally:
        _watchdog.release(token)
        _loops_left.reset(budget)
    return "".join(chunks)
