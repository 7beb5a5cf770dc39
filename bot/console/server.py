"""The console's HTTP server: uvicorn, run inside the caller's event loop (the daemon's own).

`uvicorn.Server.serve()` would install its own SIGINT/SIGTERM handlers over the daemon's; we
drive its three phases instead: `startup` on a socket bound here (so a port in use is an
`OSError` the caller handles, not a `sys.exit`), `main_loop` as a supervised task, and
`shutdown`, which ends open connections within `GRACE` seconds.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger("bot.console")

GRACE = 3  # seconds open requests get at a stop
KEEP_ALIVE = 5  # seconds an idle browser connection stays open
MAX_CONNECTIONS = 200


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when the host is).

    Made with the protocol named (IPPROTO_TCP), not 0: asyncio turns Nagle's algorithm off
    only on such sockets, and with it on, every response after the first on a kept-alive
    connection waits ~40 ms for the client's delayed ACK (headers and body are two writes)."""
    family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class ConsoleServer:
    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None

    async def start(self) -> int:
        """Listen and accept connections; returns the port (the chosen one for port 0)."""
        sock = bind(self.host, self.port)
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, http="h11", ws="none", lifespan="off",
            log_config=None, access_log=False, server_header=False, timeout_graceful_shutdown=GRACE,
            timeout_keep_alive=KEEP_ALIVE, limit_concurrency=MAX_CONNECTIONS,
            # no X-Forwarded-For: on loopback every local process could pick its own address
            # and walk around the login limit (app._secure reads X-Forwarded-Proto itself)
            proxy_headers=False,
        )  # fmt: skip
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)  # what `serve()` would set: off
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._socket, self._server = sock, server
        self.port = int(sock.getsockname()[1])
        return self.port

    async def keep_serving(self) -> None:
        """uvicorn's housekeeping (the Date header) until `stop`."""
        if self._server is not None:
            await self._server.main_loop()

    async def stop(self) -> None:
        server, sock = self._server, self._socket
        self._server = self._socket = None
        if server is not None and sock is not None:
            server.should_exit = True
            await server.shutdown(sockets=[sock])
