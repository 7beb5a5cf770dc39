"""The SOP runtime: the daemon service that runs the operators' SOP files.

At start it reads and checks `sop/` and `templates/` (an invalid set stops the daemon with
every error), catches up on occurrences missed while the daemon was down (per SOP
`on_missed`/`grace`, each decision recorded in `sop_runs`), then adds one APScheduler job
per calendar step, a lifecycle sweep and a reload poll to an in-memory AsyncIOScheduler.
Contact events trigger lifecycle steps at once. An edit to a file is checked in full and
either replaces the running set or is rejected with its errors logged.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.config.errors import ConfigError
from bot.events import ContactEventRecorded, Outcome
from bot.render import TEMPLATE_SUFFIX
from bot.runtime import BotContext
from bot.sop.authoring.check import load_checked
from bot.sop.authoring.loader import YAML_SUFFIXES, Sop, SopSet, Step
from bot.sop.runtime.group_sync import apply_group_types
from bot.sop.runtime.ledger import last_occurrence
from bot.sop.runtime.occurrences import (
    Planner,
    RunResult,
    resume_unfinished,
    retry_failures,
    run_calendar_step,
    run_lifecycle_step,
)
from bot.sop.runtime.silence import run_spell_step

log = logging.getLogger("bot.sop")

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(*folders: Path) -> Fingerprint:
    """What changed in the watched folders: every file's path, mtime and size."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.suffix in (*YAML_SUFFIXES, TEMPLATE_SUFFIX) and path.is_file():
                stat = path.stat()
                found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(found))


class SopService:
    """The `sop` service and pipeline stage (see the module docstring)."""

    name = "sop"

    def __init__(self, context: BotContext) -> None:
        self.context = context
        self.settings = context.settings
        self.database = context.database
        self.clock = context.clock
        self.sopset: SopSet | None = None
        self.scheduler = AsyncIOScheduler(timezone=self.settings.tz)
        self._cursors: dict[tuple[str, str], datetime] = {}
        self._loaded: Fingerprint = ()
        self._rejected: Fingerprint | None = None
        self._lock = asyncio.Lock()
        self.planner = Planner(context.instance_id, context.stopping)

    # -- service ------------------------------------------------------------------------

    async def start(self) -> None:
        self._loaded = self._fingerprint()
        self.sopset = await asyncio.to_thread(load_checked, self.settings, self.clock.now())
        log.info("SOP files loaded: %s", self._summary(self.sopset))
        await self._init_cursors(self.sopset)
        try:  # a database in trouble does not stop the daemon: the `sop:tick` job tries again
            await asyncio.to_thread(self._apply_group_types)
            await self.tick()  # occurrences missed (or left half planned) while the daemon was down
        except (OperationalError, DBAPIError) as error:
            log.error("SOP catch-up at start failed (%s); it is tried again every %.0fs",
                      error, self.settings.sop.lifecycle_interval)  # fmt: skip
        self._schedule(self.sopset)
        self.scheduler.add_listener(self._job_failed, EVENT_JOB_ERROR)
        if self.context.background:
            self.scheduler.start()

    async def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    # -- running -----------------------------------------------------------------------

    async def tick(self) -> list[RunResult]:
        """Run everything due now: occurrences a stopped daemon left half planned, failed
        ones still within their grace, each calendar step since it was last looked at (a step
        whose run raised is looked at again), then the lifecycle sweep. The scheduler's jobs
        call the same code; the `sop:tick` job runs it every `lifecycle_interval`."""
        results: list[RunResult] = []
        sopset = self.sopset
        if sopset is None:
            return results
        async with self._lock:
            now = self.clock.now()
            results += await asyncio.to_thread(resume_unfinished, self.database, sopset, now, self.planner)
            results += await asyncio.to_thread(retry_failures, self.database, sopset, now, self.planner)
        for sop in sopset.enabled():
            for step in sop.steps:
                if step.trigger is not None and step.spec.enabled:
                    results += await self._run_step(sop.id, step.id)
        results += await self.sweep()
        return results

    async def _run_step(self, sop_id: str, step_id: str) -> list[RunResult]:
        async with self._lock:
            sopset = self.sopset
            if sopset is None or sop_id not in sopset.sops:
                return []
            sop = sopset.sops[sop_id]
            step = sop.step(step_id)
            now = self.clock.now()
            since = self._cursors.get((sop_id, step_id), now)
            results = await asyncio.to_thread(
                run_calendar_step, self.database, sopset, sop, step, since, now, self.planner
            )
            # only now: a run that raised (not even its failure could be recorded) is looked
            # at again by the next tick
            self._cursors[(sop_id, step_id)] = now
            return results

    async def sweep(
        self, contact_ids: list[int] | None = None, kinds: set[str] | None = None
    ) -> list[RunResult]:
        """Plan every lifecycle step that has come due (for some contacts, event kinds).
        The spells of silence and lapse (`silent`, `no_order`) follow no event: only the
        full sweep (every `lifecycle_interval`) looks at them."""
        sopset = self.sopset
        if sopset is None:
            return []
        steps = [
            (sop, step)
            for sop in sopset.enabled()
            for step in sop.steps
            if step.is_lifecycle
            and step.spec.enabled
            and (kinds is None or (step.event and step.event.kind in kinds))
        ]
        results: list[RunResult] = []
        async with self._lock:
            now = self.clock.now()
            for sop, step in steps:
                if step.spell is not None:  # no event: only here when kinds is None
                    results += await asyncio.to_thread(
                        run_spell_step, self.database, sopset, sop, step, now, self.planner
                    )
                else:
                    results += await asyncio.to_thread(
                        run_lifecycle_step, self.database, sopset, sop, step, now, contact_ids
                    )
        return results

    async def contact_event(self, event: ContactEventRecorded) -> Outcome:
        """The `sop` reaction to a committed contact event: the contact's lifecycle steps that
        are due run now, not at the next sweep."""
        results = await self.sweep([event.contact_id], {event.kind.value})
        return Outcome(planned=sum(r.planned for r in results))

    def rooms_changed(self, _event: object) -> None:
        """The `sop` stage after the recorder stored rooms (login, a join, a new topic):
        group types from sop/groups.yaml."""
        self._apply_group_types()

    def _job_failed(self, event: JobExecutionEvent) -> None:
        job = self.scheduler.get_job(event.job_id)
        what = job.name if job is not None else event.job_id
        doing = f"running {event.job_id} for the occurrence at {event.scheduled_run_time:%Y-%m-%d %H:%M}"
        self.context.supervisor.job_failed(what, doing, event.exception)

    def next_send(self, now: datetime) -> tuple[datetime, str] | None:
        """The next calendar step that fires, and when: `(at, "sop/step 名称")`."""
        sopset = self.sopset
        if sopset is None:
            return None
        best: tuple[datetime, str] | None = None
        for sop in sopset.enabled():
            for step in sop.steps:
                if step.trigger is None or not step.spec.enabled:
                    continue
                fire = step.trigger.get_next_fire_time(None, now)
                if fire is not None and (best is None or fire < best[0]):
                    best = (fire, f"{sop.id}/{step.id} {step.spec.name or sop.spec.name}")
        return best

    # -- reload --------------------------------------------------------------------------

    def _fingerprint(self) -> Fingerprint:
        return fingerprint(self.settings.sop_path, self.settings.templates_path)

    async def reload(self) -> bool:
        """Re-read the files if they changed. True when a new set is running."""
        current = self._fingerprint()
        if current in (self._loaded, self._rejected):
            return False
        try:
            sopset = await asyncio.to_thread(load_checked, self.settings, self.clock.now())
        except ConfigError as error:
            self._rejected = current
            log.error(
                "SOP files changed but are invalid; the previous version keeps running:\n%s",
                "\n".join(f"  {issue}" for issue in error.issues),
            )
            return False
        async with self._lock:
            self.sopset = sopset
            self._loaded, self._rejected = current, None
            await self._init_cursors(sopset)
            self._schedule(sopset)
        await asyncio.to_thread(self._apply_group_types)
        log.info("SOP files reloaded: %s", self._summary(sopset))
        return True

    # -- internals -----------------------------------------------------------------------

    async def _init_cursors(self, sopset: SopSet) -> None:
        """Where each calendar step resumes: its latest ledger occurrence, else now (a new
        step does not run its past)."""
        now = self.clock.now()
        wanted = {(sop.id, step.id): (sop, step) for sop in sopset.sops.values() for step in sop.steps}
        self._cursors = {key: at for key, at in self._cursors.items() if key in wanted}
        missing = [(sop, step) for key, (sop, step) in wanted.items() if key not in self._cursors]
        found = await asyncio.to_thread(self._last_occurrences, missing)
        for (sop, step), at in zip(missing, found, strict=True):
            self._cursors[(sop.id, step.id)] = at or now

    def _last_occurrences(self, steps: list[tuple[Sop, Step]]) -> list[datetime | None]:
        with self.database.session(read_only=True) as session:
            return [last_occurrence(session, sop, step) for sop, step in steps]

    def _schedule(self, sopset: SopSet) -> None:
        for job in self.scheduler.get_jobs():
            job.remove()
        for sop in sopset.enabled():
            for step in sop.steps:
                if step.trigger is None or not step.spec.enabled:
                    continue
                self.scheduler.add_job(
                    self._run_step,
                    trigger=step.trigger,
                    args=[sop.id, step.id],
                    id=f"sop:{sop.id}:{step.id}",
                    name=f"{sop.spec.name} / {step.spec.name or step.id}",
                    misfire_grace_time=None,
                    coalesce=True,
                    max_instances=1,
                )
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.settings.sop.lifecycle_interval),
            id="sop:tick",
            name="retries, late steps and the lifecycle sweep",
            coalesce=True,
            max_instances=1,
        )
        self.scheduler.add_job(
            self.reload,
            IntervalTrigger(seconds=self.settings.sop.reload_interval),
            id="sop:reload",
            name="watch sop/ and templates/",
            coalesce=True,
            max_instances=1,
        )

    def _apply_group_types(self) -> None:
        if self.sopset is None or not self.sopset.groups.rules:
            return
        with self.database.session() as session:
            changed = apply_group_types(session, self.sopset.groups, self.clock.now())
        if changed:
            log.info("group types set on %d group(s) from sop/groups.yaml", changed)

    @staticmethod
    def _summary(sopset: SopSet) -> str:
        enabled = sopset.enabled()
        steps = sum(len(sop.steps) for sop in enabled)
        return f"{len(enabled)} SOPs on ({len(sopset.sops) - len(enabled)} off), {steps} steps"
