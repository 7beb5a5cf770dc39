"""A read-only HTTP/1.1 server on asyncio streams for `/healthz`, `/livez` and `/metrics`
(GET or HEAD; anything else 404/405). One request per connection, small bounded reads."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

log = logging.getLogger("bot.monitor")

HEAD_LIMIT = 8 * 1024
READ_TIMEOUT = 10.0
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}

Page = tuple[int, str, bytes]  # status, content type, body
Route = Callable[[], Page]


def json_page(status: int, body: object) -> Page:
    return status, "application/json; charset=utf-8", json.dumps(body, ensure_ascii=False).encode()


class MonitorServer:
    def __init__(self, routes: dict[str, Route], host: str, port: int) -> None:
        self.routes = routes
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the port (the given one, or the one the system chose for 0)."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=HEAD_LIMIT)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, kind, body, head_only = await self._answer(reader)
            headers = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            )
            writer.write(headers.encode() + (b"" if head_only else body))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes, bool]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except (asyncio.LimitOverrunError, ValueError):
            return (*json_page(400, {"error": "request head too large"}), False)
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3:
            return (*json_page(400, {"error": "malformed request line"}), False)
        method, target = parts[0], parts[1].split("?", 1)[0]
        route = self.routes.get(target)
        if route is None:
            return (*json_page(404, {"error": f"no such path; try {', '.join(sorted(self.routes))}"}), False)
        if method not in ("GET", "HEAD"):
            return (*json_page(405, {"error": "GET only"}), False)
        try:
            page = await asyncio.to_thread(route)
        except Exception:
            log.exception("monitor page %s failed", target)
            page = json_page(503, {"error": "could not read the daemon's state"})
        return (*page, method == "HEAD")
