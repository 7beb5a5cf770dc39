"""One account's python-wechaty client and its connection to a puppet-service gateway.

We drive `Wechaty` by hand instead of `Wechaty.start()`: on an unreachable endpoint that
stops the whole event loop, and after a dropped stream it sleeps a fixed 60 s. We also skip
its event bridge: that starts a plugin web server on a local port and a job scheduler on
the first login, and delivers each event on its own task (out of order). Instead every raw
puppet event goes, in arrival order, into one queue the transport reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from bot.wechat.wechaty_tls import WECHATY_ROOT_CA

log = logging.getLogger("bot.wechat.wechaty")

# Raw puppet events we translate; the rest (dong, heartbeat, ready, reset) carry nothing.
EVENTS = (
    "login",
    "logout",
    "scan",
    "message",
    "friendship",
    "room-join",
    "room-leave",
    "room-topic",
    "error",
)

RawEvent = tuple[int, str, Any]  # (connection generation, event name, payload)
CLOSE_TIMEOUT = 2.0


def free_port() -> int:
    """A local TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class GatewaySession:
    """A `Wechaty` instance bound to one endpoint. `connect()` may be called again after the
    connection died; each connection gets a fresh puppet (and so fresh object pools)."""

    def __init__(
        self,
        wechaty: ModuleType,
        *,
        name: str,
        endpoint: str,
        token: str,
        tls: bool = False,
        tls_server_name: str = "insecure",
        tls_ca_file: Path | None = None,
        sink: Callable[[RawEvent], None],
    ) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler
        from wechaty_puppet import PuppetOptions

        self.endpoint = endpoint
        self._token = token
        self._tls = tls
        self._tls_server_name = tls_server_name
        self._tls_ca_file = tls_ca_file
        self._sink = sink
        self.generation = 0
        self.stream: asyncio.Task[None] | None = None
        # Our own options and scheduler: the library's defaults are shared, mutable, and would
        # put a SQLite job store in its cache folder; a free port keeps its plugin server
        # (never started here) from colliding with anything.
        self.options = wechaty.WechatyOptions(
            name=name,
            puppet="wechaty-puppet-service",
            puppet_options=PuppetOptions(token=token, end_point=endpoint),
            host="127.0.0.1",
            port=free_port(),
            token=token,
            endpoint=endpoint,
            scheduler=AsyncIOScheduler(),
        )
        self.bot: Any = wechaty.Wechaty(self.options)

    @property
    def puppet(self) -> Any:
        return self.bot.puppet

    async def connect(self) -> asyncio.Task[None]:
        """Open a new connection; returns the task that carries the event stream (it ends,
        with the error, when the connection does)."""
        await self.close()
        self.generation += 1
        generation = self.generation
        self.options.puppet = "wechaty-puppet-service"  # a fresh PuppetService each time
        await self.bot.init_puppet()
        puppet = self.bot.puppet
        if self._tls:
            puppet._init_puppet = self._tls_init(puppet)
        for name in EVENTS:
            puppet.on(name, self._forward(generation, name))
        self.stream = asyncio.create_task(puppet.start(), name=f"wechaty-stream-{self.options.name}")
        self.stream.add_done_callback(_consume_error)  # the transport watches the stream; see close()
        return self.stream

    def _forward(self, generation: int, name: str) -> Callable[[Any], None]:
        def forward(payload: Any = None) -> None:
            self._sink((generation, name, payload))

        return forward

    async def healthy(self, timeout: float = 2.0) -> bool:  # noqa: ASYNC109 - a probe, not a caller deadline
        """The gateway answers a cheap call in time (catches a hung gateway, which keeps
        the TCP connection open and so never ends the stream)."""
        try:
            async with asyncio.timeout(timeout):
                await self.puppet.puppet_stub.version()
        except Exception:
            return False
        return True

    async def close(self) -> None:
        """Drop the connection without telling the gateway to stop: a gRPC `stop` would log
        the upstream WeChat account out, and the next connect restarts it anyway. The socket
        is closed first and the stream given `CLOSE_TIMEOUT` to end: a gateway that stopped
        answering cannot hold this up."""
        stream, self.stream = self.stream, None
        try:
            puppet = self.bot.puppet
        except Exception:
            puppet = None
        if puppet is not None:
            with contextlib.suppress(Exception):
                puppet._event_stream.remove_all_listeners()
            channel = getattr(puppet, "channel", None)
            if channel is not None:
                with contextlib.suppress(Exception):
                    channel.close()
        if stream is not None:
            stream.cancel()
            await asyncio.wait({stream}, timeout=CLOSE_TIMEOUT)
            if not stream.done():
                log.warning(
                    "the gateway's event stream did not end within %.0fs of closing; left behind",
                    CLOSE_TIMEOUT,
                )
        if puppet is not None:
            puppet.channel = None
            puppet._puppet_stub = None

    def _tls_init(self, puppet: Any) -> Callable[[], None]:
        """Replaces PuppetService._init_puppet (plaintext only) with a TLS channel."""
        from grpclib.client import Channel
        from grpclib.config import Configuration
        from wechaty_grpc.wechaty import PuppetStub

        host, _, port = self.endpoint.rpartition(":")
        if self._tls_ca_file is not None:
            context = ssl.create_default_context(cafile=str(self._tls_ca_file))
        else:
            context = ssl.create_default_context(cadata=WECHATY_ROOT_CA)
        context.set_alpn_protocols(["h2"])

        def init() -> None:
            channel = Channel(
                host=host,
                port=int(port),
                ssl=context,
                config=Configuration(ssl_target_name_override=self._tls_server_name),
            )
            channel._authority = self._token  # how wechaty carries the token
            puppet.channel = channel
            puppet._puppet_stub = PuppetStub(channel)

        return init


def _consume_error(task: asyncio.Task[None]) -> None:
    """Mark a finished stream's error as seen: a stream ended by `close()` fails with
    "Connection lost", which is the point, and asyncio would log it as a traceback."""
    if not task.cancelled():
        task.exception()
