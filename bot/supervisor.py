"""One owner for every long-lived task of the daemon.

Each task is started with `spawn(name, factory, doing=…)`. When one crashes, the error is
logged at once with the task's name and what it was doing, and the task is started again
after a backoff (0.5 s, doubling to 60 s). Every task the daemon runs can resume that way:
its state lives in the database or in the queue it drains.

A task that keeps crashing is a daemon that cannot work: after `CRASH_LOOP` crashes in a
row — with the backoff, about three minutes of failing without a break (a run of
`HEALTHY_AFTER` seconds without a crash ends the row) — the supervisor gives up, the daemon
stops and `sopbot run` exits with code 3, so a service manager (systemd
`Restart=on-failure`) starts a fresh process. A database that is away for a minute does not
get that far. A task that returns is done; it is not
restarted. APScheduler job errors come here too (`job_failed`), with what the job was doing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("bot.supervisor")

FIRST_BACKOFF = 0.5
MAX_BACKOFF = 60.0
HEALTHY_AFTER = 60.0
CRASH_LOOP = 10
EXIT_TASK_CRASHED = 3


@dataclass
class Supervised:
    """A task under supervision and its history."""

    name: str
    doing: str
    factory: Callable[[], Awaitable[None]]
    crashes: int = 0  # in all
    in_a_row: int = 0
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    runner: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(
        self,
        on_fatal: Callable[[str], None] | None = None,
        *,
        first_backoff: float = FIRST_BACKOFF,
        crash_loop: int = CRASH_LOOP,
    ) -> None:
        self.on_fatal = on_fatal
        self.first_backoff = first_backoff
        self.crash_loop = crash_loop
        self.tasks: dict[str, Supervised] = {}
        self.fatal: str | None = None
        self._stopping = False

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]], *, doing: str) -> Supervised:
        """Start `factory()` as a supervised task called `name` (unique among running ones)."""
        running = self.tasks.get(name)
        if running is not None and running.runner is not None and not running.runner.done():
            raise ValueError(f"a task named {name!r} is already running")
        entry = Supervised(name, doing, factory)
        self.tasks[name] = entry
        entry.runner = asyncio.create_task(self._run(entry), name=f"supervise:{name}")
        return entry

    async def _run(self, entry: Supervised) -> None:
        loop = asyncio.get_running_loop()
        backoff = self.first_backoff
        while not self._stopping:
            started = loop.time()
            entry.task = asyncio.create_task(_run_factory(entry.factory), name=entry.name)
            try:
                await asyncio.shield(entry.task)
                return  # finished on its own
            except asyncio.CancelledError:
                entry.task.cancel()
                raise
            except Exception as error:
                entry.crashes += 1
                if loop.time() - started >= HEALTHY_AFTER:
                    entry.in_a_row, backoff = 0, self.first_backoff
                entry.in_a_row += 1
                if entry.in_a_row >= self.crash_loop:
                    log.critical(
                        "task %s crashed while %s: %s; %d crashes in a row, the daemon stops (exit %d)",
                        entry.name, entry.doing, error, entry.in_a_row, EXIT_TASK_CRASHED, exc_info=error,
                    )  # fmt: skip
                    self._fail(f"task {entry.name} kept crashing while {entry.doing}: {error}")
                    return
                log.error(
                    "task %s crashed while %s: %s; restarting in %.1fs (crash %d in a row)",
                    entry.name, entry.doing, error, backoff, entry.in_a_row, exc_info=error,
                )  # fmt: skip
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    def _fail(self, reason: str) -> None:
        if self.fatal is None:
            self.fatal = reason
            if self.on_fatal is not None:
                self.on_fatal(reason)

    def job_failed(self, job: str, doing: str, error: BaseException | None) -> None:
        """A scheduled job (APScheduler) raised: logged here with what it was doing."""
        log.error("job %s failed while %s: %s", job, doing, error, exc_info=error)

    async def cancel(self, name: str) -> None:
        """Stop one task (and its supervision) and wait for it."""
        entry = self.tasks.pop(name, None)
        if entry is not None:
            await _cancel([entry])

    async def stop(self) -> None:
        """Cancel every task and wait for them; errors on the way out are logged, not dropped."""
        self._stopping = True
        entries, self.tasks = list(self.tasks.values()), {}
        await _cancel(entries)


async def _run_factory(factory: Callable[[], Awaitable[None]]) -> None:
    await factory()


async def _cancel(entries: list[Supervised]) -> None:
    tasks = [t for e in entries for t in (e.runner, e.task) if t is not None]
    for task in tasks:
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for task, outcome in zip(tasks, outcomes, strict=True):
        if isinstance(outcome, Exception):
            log.error("task %s failed while stopping: %s", task.get_name(), outcome, exc_info=outcome)
