"""Fuzzing every door the bot has: SOP YAML, tags.yaml, settings.toml, order CSV rows,
webhook bodies and headers, chat messages. Each case mutates a real, valid input (the
shipped files, a real order) and must end in a result or a clean rejection — a ConfigError
with file and line, a 4xx reason — never a traceback, a hang or a memory blow-up.

`SOPBOT_FUZZ_EXAMPLES` sets the cases per door (default 40 in the test suite; e.g. 5000 for a
long run: `SOPBOT_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py`)."""

from __future__ import annotations

import os
import signal
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config.errors import ConfigError
from bot.config.settings import load_settings
from bot.config.yaml_source import parse_yaml
from bot.orders.csv_import import parse_csv
from bot.signals.matcher import Matcher
from bot.signals.rules import parse_tags
from bot.sop.authoring.loader import load_sop_set
from bot.webhook.server import Reply, parse_orders, signature_ok
from tests.signals_kit import REPO

EXAMPLES = int(os.environ.get("SOPBOT_FUZZ_EXAMPLES", "40"))
CASE_SECONDS = 30  # a case still running after this is a hang (generous: a loaded machine)
MEMORY_BOUND = 128 * 1024 * 1024
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# characters that break parsers: YAML/TOML/CSV/JSON syntax, control characters, Chinese,
# long digit runs, and the BOM
ALPHABET = [
    *list("&*!|>%@`'\"#:-[]{},=\n\t\r\\ 0123456789.eE+"),
    "\x00",
    "\x07",
    "\x1b",
    "\ufeff",
    "哈",
    "退订",
]
PIECES = st.one_of(
    st.sampled_from(ALPHABET),
    st.sampled_from(["9" * 400, "&a [*a, *a]", "[" * 200, "{a: " * 50, "1e999", "-0", "NaN", "\u202e"]),
    st.text(max_size=8),
)


class Hang(Exception):
    pass


@contextmanager
def bounded_case() -> Iterator[None]:
    """Fails the case if it runs past CASE_SECONDS or allocates past MEMORY_BOUND."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {CASE_SECONDS}s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(CASE_SECONDS)
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
        assert peak < MEMORY_BOUND, f"{peak / 1e6:.0f} MB allocated"
    finally:
        tracemalloc.stop()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@st.composite
def mutated(draw: st.DrawFn, seed: str) -> str:
    """`seed` with a few characters inserted, replaced or deleted, or a slice repeated."""
    text = seed
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["insert", "replace", "delete", "repeat"]))
        if action == "insert":
            text = text[:at] + draw(PIECES) + text[at:]
        elif action == "replace":
            text = text[:at] + draw(PIECES) + text[at + 1 :]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        else:
            chunk = text[at : at + draw(st.integers(1, 60))]
            text = text[:at] + chunk * draw(st.integers(2, 50)) + text[at:]
    return text


def rejected_cleanly(action: Callable[[], Any]) -> None:
    """Run `action`; a ConfigError must name a file, and nothing else may escape."""
    issues = []
    with bounded_case():
        try:
            action()
        except ConfigError as error:
            issues = error.issues or [None]
    assert all(issue is not None and issue.file for issue in issues)


# -- operator files ----------------------------------------------------------------------------

SOP_SEED = (REPO / "sop" / "member_day.yaml").read_text(encoding="utf-8")
TAGS_SEED = (REPO / "sop" / "tags.yaml").read_text(encoding="utf-8")
SETTINGS_SEED = (REPO / "settings.toml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "sop").mkdir()
    (folder / "templates").mkdir()
    return folder


@FUZZ
@given(text=mutated(SOP_SEED))
def test_fuzz_sop_files(project: Path, text: str) -> None:
    (project / "sop" / "member_day.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    rejected_cleanly(lambda: load_sop_set(project / "sop", project / "templates", ZoneInfo("Asia/Shanghai")))


@FUZZ
@given(text=mutated(TAGS_SEED))
def test_fuzz_tags_yaml(text: str) -> None:
    rejected_cleanly(lambda: parse_tags(text, "sop/tags.yaml"))


@FUZZ
@given(text=mutated("a: &a [1, 2]\nb: [*a, *a]\nc: {d: [e, f], g: '10:30'}\n"))
def test_fuzz_any_operator_yaml(text: str) -> None:
    rejected_cleanly(lambda: parse_yaml(text, "sop/catalog.yaml"))


@FUZZ
@given(text=mutated(SETTINGS_SEED))
def test_fuzz_settings_toml(project: Path, text: str) -> None:
    path = project / "settings.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    rejected_cleanly(lambda: load_settings(path))


# -- data in -----------------------------------------------------------------------------------

CSV_SEED = (
    "订单号,微信ID,手机号,实付金额,订单状态,下单时间,商品,类目,数量,新品,优惠,推荐人\n"
    "C1001,wxid_wang_fang,,299.00,已付款,2026-11-20 14:03:22,修护面霜,护肤,1,否,是,\n"
    "C1002,,13800000001,1,288.00,交易成功,2026/11/21 10:00,围巾,配饰,2,是,否,wxid_a\n"
)


@FUZZ
@given(text=mutated(CSV_SEED), encoding=st.sampled_from(["utf-8", "gb18030"]))
def test_fuzz_order_csv_rows(text: str, encoding: str) -> None:
    data = text.encode(encoding, errors="replace")
    with bounded_case():
        parsed = parse_csv(data, "orders.csv", UTC)
    assert all(issue.file == "orders.csv" for issue in parsed.issues)


WEBHOOK_SEED = (
    '{"orders": [{"order_id": "W1", "wxid": "wxid_sun_li", "amount": "268.00", "status": "paid",'
    ' "ordered_at": "2026-11-24T09:30:00+08:00", "items": [{"name": "围巾", "qty": 1, "price": "268"}]}]}'
)


@FUZZ
@given(body=mutated(WEBHOOK_SEED), header=st.one_of(st.none(), mutated("sha256=" + "0" * 64)))
def test_fuzz_webhook_bodies_and_signature_headers(body: str, header: str | None) -> None:
    raw = body.encode("utf-8", errors="replace")
    with bounded_case():
        assert signature_ok(b"secret", raw, header) in (True, False)
        parsed = parse_orders(raw, UTC)
    if isinstance(parsed, Reply):
        assert 400 <= parsed.status < 500 and parsed.body.get("error")
    else:
        _orders, problems = parsed
        assert all(p.startswith("orders[") for p in problems)


# -- chat --------------------------------------------------------------------------------------

MATCHER = Matcher(parse_tags(TAGS_SEED).rules)


@FUZZ
@given(text=st.one_of(mutated("这款面霜多少钱？有优惠吗 退订"), st.text(max_size=5000)))
def test_fuzz_chat_messages(text: str) -> None:
    with bounded_case():
        hits = MATCHER.match(text)
    assert all(hit.term for hit in hits)
