"""The `sopbot` command line."""

from __future__ import annotations

import signal
import sys
from types import FrameType


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """The console script. A stop signal that comes before the daemon is up (while Python
    is still importing) ends the command quietly, like one that comes later."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from bot.cli.app import main as run

        run()
    except KeyboardInterrupt:
        print("sopbot: stopped", file=sys.stderr)
        raise SystemExit(0) from None


__all__ = ["main"]
