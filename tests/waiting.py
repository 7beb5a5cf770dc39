"""Waiting in tests: on progress, never on a fixed wall-clock budget.

The suite runs on loaded 2-core machines where everything may take several times longer
than on an idle one. A wait here fails only when nothing has happened for a generous
stretch (`PATIENCE`, 120 s by default; `SOPBOT_TEST_PATIENCE` changes it), never because
the whole thing took longer than it does on a fast machine. Speed is measured in `bench/`.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

T = TypeVar("T")

PATIENCE = float(os.environ.get("SOPBOT_TEST_PATIENCE", "120"))


class Stalled(AssertionError):
    """Nothing moved for `PATIENCE` seconds."""


def wait_for(
    predicate: Callable[[], T], *, what: str, interval: float = 0.02, patience: float = PATIENCE
) -> T:
    """Poll `predicate` until it returns something truthy (and return that). For a single
    thing that should happen: fails only after `patience` seconds without it."""
    deadline = time.monotonic() + patience
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Stalled(f"nothing happened for {patience:.0f}s while waiting for {what}")
        time.sleep(interval)


def wait_for_progress(
    measure: Callable[[], Any],
    done: Callable[[Any], bool],
    *,
    what: str,
    interval: float = 0.1,
    stall: float = PATIENCE,
) -> Any:
    """Poll `measure()` until `done(value)`. Fails only when the measured value has not
    changed for `stall` seconds: a slow machine that keeps moving is given all the time it
    needs. Returns the final value."""
    last = measure()
    moved_at = time.monotonic()
    while not done(last):
        time.sleep(interval)
        value = measure()
        if value != last:
            last, moved_at = value, time.monotonic()
        elif time.monotonic() - moved_at > stall:
            raise Stalled(f"no progress for {stall:.0f}s while waiting for {what} (stuck at {last!r})")
    return last


class LineReader:
    """Reads a process's text stream on a thread, so a test can wait for lines without
    blocking forever on a process that went quiet."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()
        self.closed = False

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _drain(self, block_for: float) -> None:
        try:
            item = self._queue.get(timeout=block_for)
        except queue.Empty:
            return
        while True:
            if item is None:
                self.closed = True
            else:
                self.lines.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return

    def snapshot(self) -> list[str]:
        """Every line read so far."""
        self._drain(0)
        return list(self.lines)

    def saw(self, fragment: str) -> bool:
        return any(fragment in line for line in self.snapshot())

    def wait_for(self, wanted: list[str], *, stall: float = PATIENCE) -> list[str]:
        """Read until every fragment in `wanted` was seen in some line. Fails when the stream
        ends first, or when no new line came for `stall` seconds."""

        def missing() -> list[str]:
            return [w for w in wanted if not any(w in line for line in self.lines)]

        moved_at = time.monotonic()
        while missing():
            count = len(self.lines)
            self._drain(0.2)
            if len(self.lines) != count:
                moved_at = time.monotonic()
            elif self.closed:
                raise AssertionError(f"stream ended; never saw {missing()}; lines:\n" + "\n".join(self.lines))
            elif time.monotonic() - moved_at > stall:
                raise Stalled(
                    f"no new line for {stall:.0f}s; never saw {missing()}; lines:\n" + "\n".join(self.lines)
                )
        return list(self.lines)

    def wait_for_count(self, fragment: str, count: int, *, within: float = PATIENCE) -> list[str]:
        """Read until `count` lines hold `fragment` (a line the process repeats on a timer).
        A chatty process never stalls, so this fails after `within` seconds in all: a
        generous bound for a line due every few seconds, not a speed target."""
        deadline = time.monotonic() + within
        while (seen := sum(fragment in line for line in self.lines)) < count:
            self._drain(0.2)
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(
                    f"saw {fragment!r} {seen} of {count} times; lines:\n" + "\n".join(self.lines)
                )
        return list(self.lines)

    def rest(self) -> list[str]:
        """Every line, once the stream has ended (the process exited)."""
        self._thread.join(PATIENCE)
        self._drain(0)
        return list(self.lines)


def stop_processes(
    processes: list[subprocess.Popen[Any]], sig: int, *, patience: float = PATIENCE
) -> list[int]:
    """Send `sig` once to every process still running, then wait for their exit codes;
    kills the ones that never exit. Signalled together, they stop side by side."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(patience))
        except subprocess.TimeoutExpired:
            if sig not in (signal.SIGUSR1, signal.SIGUSR2):  # `sopbot run` prints its threads and tasks
                process.send_signal(signal.SIGUSR1)
                time.sleep(1)
                process.send_signal(signal.SIGUSR2)
                time.sleep(1)
            process.kill()
            process.wait()
            raise Stalled(f"a process did not exit within {patience:.0f}s of signal {sig}") from None
    return codes


def stop_process(process: subprocess.Popen[Any], sig: int, *, patience: float = PATIENCE) -> int:
    """Send `sig` (once) and wait for the exit code; kills the process if it never exits."""
    return stop_processes([process], sig, patience=patience)[0]
