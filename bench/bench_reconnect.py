"""Reconnecting to a wechaty gateway that was killed and started again: how long after the
gateway is ready the account is back online, beside how long the gateway itself takes to
start (the floor of the same run). Needs Node.js and `npm ci` in tests/gateway.

    python bench/bench_reconnect.py [--cycles 5]

Target: back online ≤ 5 s after the gateway is ready (python-wechaty on its own waits a fixed
60 s). Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import SystemClock
from bot.config.settings import load_settings
from bot.wechat.wechaty_transport import WechatyTransport
from tests.gateway.harness import Gateway, ensure_installed


async def until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    waited = 0.0
    while not predicate():
        await asyncio.sleep(0.01)
        waited += 0.01
        if waited > 300:
            raise SystemExit(f"gave up waiting for {what}")


async def cycles(gateway: Gateway, folder: Path, count: int) -> list[float]:
    (folder / "settings.toml").write_text(
        f'[[accounts]]\nid = "main"\ntransport = "wechaty"\nendpoint = "{gateway.endpoint}"\n'
        "health_interval = 0.5\nreconnect_max = 1.0\n",
        encoding="utf-8",
    )
    os.environ["SOPBOT_TOKEN_MAIN"] = gateway.token
    settings = load_settings(folder / "settings.toml")
    transport = WechatyTransport(settings.accounts[0], settings, SystemClock())

    async def ignore(_event: object) -> None:
        return None

    await transport.start(ignore)
    back: list[float] = []
    try:
        for _ in range(count):
            gateway.kill()
            await until(lambda: not transport.online, "offline")
            await asyncio.to_thread(gateway.start)
            ready = time.perf_counter()
            reconnects = transport.reconnects
            await until(
                lambda seen=reconnects: transport.reconnects > seen and transport.online, "back online"
            )
            back.append(time.perf_counter() - ready)
    finally:
        await transport.stop()
    return back


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=5)
    args = parser.parse_args()
    ensure_installed()
    logging.getLogger("bot.wechat").setLevel(logging.ERROR)  # the reconnect warnings are expected here
    gateway = Gateway().start()
    starts = [gateway.started_in or 0.0]
    try:
        with tempfile.TemporaryDirectory() as folder:
            back = asyncio.run(cycles(gateway, Path(folder), args.cycles))
            starts.append(gateway.started_in or 0.0)
    finally:
        gateway.terminate()
    print(f"{args.cycles} kill/restart cycles of the gateway (health_interval 0.5 s, reconnect_max 1 s)")
    print(f"gateway start to ready (floor): median {statistics.median(starts):.2f}s")
    print(
        f"back online after the gateway was ready: median {statistics.median(back):.2f}s, "
        f"worst {max(back):.2f}s (target ≤ 5 s)"
    )
    print(f"ratio: {statistics.median(back) / statistics.median(starts):.2f} × the gateway's own start")


if __name__ == "__main__":
    main()
