"""The machinery of an account's pipeline: steps (one stage's handling of one event type),
lanes (an ordered queue and the task that drains it) and the pipeline that joins them.
What runs in which order is declared in `bot.flow`, not here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.events import ContactEventRecorded, Outcome
from bot.supervisor import Supervisor

log = logging.getLogger("bot.pipeline")

Unit = Callable[[Any], Outcome | None]
Io = Callable[[Any], Awaitable[Outcome | None]]


@dataclass(frozen=True)
class Step:
    """One stage's handling of one event type. A `unit` is a unit of work (one database
    transaction) run in a worker thread, so the event loop never waits on the database;
    an `io` step talks to the transport on the loop (and may hand its own database work
    to a thread)."""

    stage: str
    run: Unit | Io
    off_loop: bool

    async def __call__(self, event: object) -> Outcome | None:
        if self.off_loop:
            return await asyncio.to_thread(self.run, event)  # type: ignore[arg-type]
        return await self.run(event)  # type: ignore[misc]


def unit(stage: str, run: Unit) -> Step:
    return Step(stage, run, off_loop=True)


def io(stage: str, run: Io) -> Step:
    return Step(stage, run, off_loop=False)


class Lane:
    """Events of one account, handled one at a time in arrival order: each goes through the
    steps declared for its type. A failing step is logged with the stage and the event and
    does not stop the lane (nor, unless it says `halt`, the later stages)."""

    def __init__(
        self,
        name: str,
        steps: Mapping[type, Sequence[Step]],
        after: Callable[[Outcome], None],
    ) -> None:
        self.name = name
        self.steps = steps
        self._after = after
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.submitted = 0
        self.handled = 0
        self.observers: list[Callable[[object], None]] = []

    def submit(self, event: object) -> None:
        self.submitted += 1
        self.queue.put_nowait(event)

    async def run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.process(event)
            finally:
                self.queue.task_done()

    async def process(self, event: object) -> None:
        for step in self.steps.get(type(event), ()):
            try:
                outcome = await step(event)
            except Exception:
                log.exception("%s: stage %s failed on %s", self.name, step.stage, _describe(event))
                continue
            if outcome is not None:
                self._after(outcome)
                if outcome.halt:
                    break
        self.handled += 1
        for observer in self.observers:
            observer(event)


def _describe(event: object) -> str:
    kind = type(event).__name__
    detail = getattr(event, "kind", None) or getattr(getattr(event, "message", None), "msg_id", None)
    return f"{kind} ({detail})" if detail else kind


class AccountPipeline:
    """One account's lanes: `inbound` takes the transport's events; each reaction lane takes
    the contact events that units of work committed (published only after the commit)."""

    def __init__(
        self,
        account_id: str,
        inbound: Mapping[type, Sequence[Step]],
        reactions: Mapping[str, Mapping[type, Sequence[Step]]],
        *,
        wake_delivery: Callable[[], None],
    ) -> None:
        self.account_id = account_id
        self.inbound = Lane(f"{account_id}/inbound", inbound, self._after)
        self.reactions = [
            Lane(f"{account_id}/{name}", steps, self._after) for name, steps in reactions.items()
        ]
        self._wake_delivery = wake_delivery
        self._observers: list[Callable[[ContactEventRecorded], None]] = []

    @property
    def lanes(self) -> list[Lane]:
        return [self.inbound, *self.reactions]

    async def submit(self, event: object) -> None:
        """The transport's event handler: queue the event and return at once."""
        self.inbound.submit(event)

    def publish(self, events: Sequence[ContactEventRecorded]) -> None:
        """Contact events whose transaction has committed, to every reaction lane."""
        for event in events:
            for lane in self.reactions:
                lane.submit(event)
            for observer in self._observers:
                observer(event)

    def _after(self, outcome: Outcome) -> None:
        self.publish(outcome.events)
        if outcome.planned:
            self._wake_delivery()

    def observe(self, observer: Callable[[object], None]) -> None:
        """Call `observer(event)` on the loop for every transport event once the inbound lane
        has handled it, and for every contact event as it is published."""
        self.inbound.observers.append(observer)
        self._observers.append(observer)

    def start(self, supervisor: Supervisor) -> None:
        for lane in self.lanes:
            supervisor.spawn(lane.name, lane.run, doing=f"handling the {lane.name} events")

    async def stop(self, supervisor: Supervisor) -> None:
        for lane in self.lanes:
            await supervisor.cancel(lane.name)

    async def drained(self) -> None:
        """Wait until every lane has handled everything it was given, including what the
        lanes gave each other on the way."""
        while True:
            submitted = sum(lane.submitted for lane in self.lanes)
            for lane in self.lanes:
                await lane.queue.join()
            if sum(lane.submitted for lane in self.lanes) == submitted:
                return
