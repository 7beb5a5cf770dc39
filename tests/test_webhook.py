"""The order webhook over a real socket, started by the daemon: signatures, duplicates,
bad JSON, oversized bodies, invalid orders."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import FrozenClock
from bot.store.models import ContactEvent, Order
from bot.webhook.server import sign
from tests.signals_kit import EventTap, make_project, running_bot
from tests.support import TestBot, sqlite_database

SECRET = b"s3cret-for-tests"
ORDER = {
    "order_id": "W1001",
    "wxid": "wxid_sun_li",
    "amount": "268.00",
    "status": "paid",
    "ordered_at": "2026-11-24T09:30:00+08:00",
    "items": [{"name": "羊绒围巾", "category": "配饰", "qty": 1, "new": True}],
}


@pytest.fixture
def hookbot(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestBot]:
    monkeypatch.setenv("SOPBOT_WEBHOOK_SECRET", SECRET.decode())
    with running_bot(tmp_path / "project", clock, "[webhook]\nenabled = true\nport = 0\n") as bot:
        yield bot


def port_of(bot: TestBot) -> int:
    component = bot.daemon.services.webhook
    assert component.server is not None
    return component.server.port


def post(bot: TestBot, body: bytes, *, signature: str | None = "good", path: str = "/orders",
         method: str = "POST", length: int | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    headers = [f"{method} {path} HTTP/1.1", "Host: localhost", "Content-Type: application/json"]
    if signature == "good":
        headers.append(f"X-Sopbot-Signature: {sign(SECRET, body)}")
    elif signature is not None:
        headers.append(f"X-Sopbot-Signature: {signature}")
    headers.append(f"Content-Length: {len(body) if length is None else length}")
    with socket.create_connection(("127.0.0.1", port_of(bot)), timeout=10) as connection:
        connection.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        with contextlib.suppress(OSError):  # the server may stop reading an oversized body
            connection.sendall(body)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


def count(bot: TestBot, model: Any, *where: Any) -> int:
    with bot.database.session(read_only=True) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_an_order_is_stored_and_a_duplicate_delivery_is_not_counted_twice(hookbot: TestBot) -> None:
    tap = EventTap(hookbot)
    body = json.dumps(ORDER, ensure_ascii=False).encode()
    assert post(hookbot, body) == (200, {"ok": True, "new": 1})
    assert post(hookbot, body) == (200, {"ok": True, "unchanged": 1})
    assert count(hookbot, Order) == 1
    assert count(hookbot, ContactEvent, ContactEvent.kind == "purchase") == 1
    sun = hookbot.contact("wxid_sun_li")
    assert [k for k, _ in tap.kinds(sun.id)].count("purchase") == 1
    assert ("first_purchase", None) in tap.kinds(sun.id)
    assert sun.tier == "customer"


def test_a_batch_and_a_refund(hookbot: TestBot) -> None:
    second = dict(ORDER, order_id="W1002", amount=99)
    assert post(hookbot, json.dumps({"orders": [ORDER, second]}).encode())[0] == 200
    refund = dict(second, status="refunded")
    assert post(hookbot, json.dumps(refund).encode()) == (200, {"ok": True, "refunded": 1})
    assert hookbot.contact("wxid_sun_li").tier == "customer"


def test_a_bad_or_missing_signature_is_refused(hookbot: TestBot) -> None:
    body = json.dumps(ORDER).encode()
    status, answer = post(hookbot, body, signature="sha256=" + "0" * 64)
    assert status == 401 and "X-Sopbot-Signature" in answer["error"]
    assert post(hookbot, body, signature=None)[0] == 401
    assert post(hookbot, body, signature=sign(b"other", body))[0] == 401
    assert count(hookbot, Order) == 0


def test_malformed_json_is_a_400(hookbot: TestBot) -> None:
    status, answer = post(hookbot, b'{"order_id": "W1", "amount": ')
    assert status == 400 and answer["error"].startswith("malformed JSON")
    assert count(hookbot, Order) == 0


def test_a_10_mb_body_is_refused_without_reading_it(hookbot: TestBot) -> None:
    body = b"[" + b" " * (10 * 1024 * 1024) + b"]"
    status, answer = post(hookbot, body)
    assert status == 413 and "body over" in answer["error"]
    assert count(hookbot, Order) == 0


def test_an_invalid_order_is_a_422_and_nothing_of_the_delivery_is_stored(hookbot: TestBot) -> None:
    bad = dict(ORDER, order_id="W2", amount="lots")
    status, answer = post(hookbot, json.dumps([ORDER, bad]).encode())
    assert status == 422
    assert answer["problems"] == ["orders[1].amount: 'lots' is not an amount in yuan (like 199.00)"]
    assert count(hookbot, Order) == 0


def test_wrong_path_method_and_missing_length(hookbot: TestBot) -> None:
    assert post(hookbot, b"{}", path="/other")[0] == 404
    assert post(hookbot, b"", method="GET")[0] == 405
    with socket.create_connection(("127.0.0.1", port_of(hookbot)), timeout=10) as connection:
        connection.sendall(b"POST /orders HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert connection.recv(100).startswith(b"HTTP/1.1 411")


def test_enabled_without_a_secret_stops_at_the_door(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.config.errors import ConfigError

    monkeypatch.delenv("SOPBOT_WEBHOOK_SECRET", raising=False)
    settings = make_project(tmp_path / "p", settings_text="[webhook]\nenabled = true\nport = 0\n")
    with sqlite_database(tmp_path / "p") as db:
        bot = TestBot(settings, db, clock)
        try:
            with pytest.raises(ConfigError, match="SOPBOT_WEBHOOK_SECRET"):
                bot.start()
        finally:
            bot.close()
