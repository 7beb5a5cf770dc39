"""A minimal HTTP/1.1 server for one route, on asyncio streams (no framework: one POST
endpoint with a size limit and a signature check does not need one).

Answers (JSON bodies):
- 200 `{"ok": true, "new": 1, "unchanged": 0, …}`: stored; a repeated delivery of the
  same order answers 200 with `unchanged`, and is not counted twice.
- 400 malformed JSON · 401 bad or missing signature · 404 other path · 405 not POST
- 411 no Content-Length (chunked bodies are not accepted) · 413 body over the limit
- 422 an order is invalid (`orders[0].amount: reason`); nothing of that delivery is stored
- 500 storing failed; the shop should retry (retries are safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from pydantic import ValidationError

from bot.config.errors import format_loc
from bot.orders.model import OrderIn

log = logging.getLogger("bot.webhook")

PATH = "/orders"
HEAD_LIMIT = 16 * 1024
READ_TIMEOUT = 15.0
LINGER = 2.0
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Payload Too Large", 422: "Unprocessable Entity",
            500: "Internal Server Error"}  # fmt: skip

Handler = Callable[[list[OrderIn]], Awaitable[dict[str, int]]]


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header:
        return False
    given = header.strip().removeprefix("sha256=").lower()
    if not given.isascii():  # compare_digest takes ASCII text only; no valid signature is other
        return False
    return hmac.compare_digest(given, sign(secret, body).removeprefix("sha256="))


@dataclass
class Reply:
    status: int
    body: dict[str, Any]


def parse_orders(body: bytes, tz: tzinfo) -> tuple[list[OrderIn], list[str]] | Reply:
    """One order object, a list of them, or `{"orders": [...]}`."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return Reply(400, {"error": "body is not UTF-8"})
    except json.JSONDecodeError as error:
        return Reply(
            400, {"error": f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"}
        )
    except RecursionError:
        return Reply(400, {"error": "malformed JSON: nested too deeply"})
    if isinstance(data, dict) and "orders" in data:
        data = data["orders"]
    items = data if isinstance(data, list) else [data]
    orders, problems = [], []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"orders[{index}]: an order is a JSON object")
            continue
        try:
            orders.append(OrderIn.model_validate(item, context={"tz": tz}))
        except ValidationError as error:
            for issue in error.errors():
                where = format_loc(("orders", index, *issue["loc"]))
                problems.append(f"{where}: {str(issue['msg']).removeprefix('Value error, ')}")
        except (
            ValueError,
            TypeError,
            ArithmeticError,
            RecursionError,
        ) as error:  # odd values pydantic lets through
            problems.append(f"orders[{index}]: {type(error).__name__}: {error}")
    return orders, problems


class WebhookServer:
    def __init__(
        self,
        handler: Handler,
        *,
        secret: bytes,
        tz: tzinfo,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = 1_048_576,
        signature_header: str = "X-Sopbot-Signature",
    ) -> None:
        self.handler = handler
        self.secret = secret
        self.tz = tz
        self.host = host
        self.port = port
        self.max_body = max_body
        self.signature_header = signature_header
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("order webhook listening on http://%s:%d%s", self.host, self.port, PATH)
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                reply = await self._handle(reader)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
            ValueError,
        ):
            reply = Reply(400, {"error": "incomplete or oversized request head"})
        except Exception:
            log.exception("order webhook failed")
            reply = Reply(500, {"error": "could not store the orders; retry later (retries are safe)"})
        if reply.status >= 400:
            log.warning("order webhook answered %d: %s", reply.status, reply.body.get("error"))
        body = json.dumps(reply.body, ensure_ascii=False).encode()
        head = (
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, '')}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        try:
            writer.write(head.encode() + body)
            await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
            await _linger(reader)
            writer.close()
            await writer.wait_closed()
        except ConnectionError:
            pass

    async def _handle(self, reader: asyncio.StreamReader) -> Reply:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split()
        if len(parts) != 3:
            return Reply(400, {"error": "not an HTTP request"})
        method, target, _ = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().casefold()] = value.strip()
        if target.split("?", 1)[0] != PATH:
            return Reply(404, {"error": f"no such path; POST orders to {PATH}"})
        if method != "POST":
            return Reply(405, {"error": "use POST"})
        if "chunked" in headers.get("transfer-encoding", "").casefold() or "content-length" not in headers:
            return Reply(411, {"error": "send a Content-Length (chunked bodies are not accepted)"})
        try:
            length = int(headers["content-length"])
        except ValueError:
            return Reply(400, {"error": "Content-Length is not a number"})
        if length < 0 or length > self.max_body:
            return Reply(413, {"error": f"body over {self.max_body} bytes"})
        body = await reader.readexactly(length)
        if not signature_ok(self.secret, body, headers.get(self.signature_header.casefold())):
            return Reply(401, {"error": f"bad or missing {self.signature_header} (HMAC-SHA256 of the body)"})
        parsed = parse_orders(body, self.tz)
        if isinstance(parsed, Reply):
            return parsed
        orders, problems = parsed
        if problems:
            return Reply(422, {"error": "invalid order; nothing stored", "problems": problems})
        counts = await self.handler(orders)
        return Reply(200, {"ok": True, **counts})


async def _linger(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client still sends (an oversized body) for a moment before
    closing, so the client gets to read the answer instead of a connection reset."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LINGER
    while (left := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                if not await reader.read(65536):
                    return
        except (TimeoutError, ConnectionError):
            return
