"""The delivery worker: drains each account's outbox through its transport, at the
account's pace, under the delivery rules, exactly once.

Each account this daemon holds has a lane (a supervised task). Every database step of a lane
(the pause check, the claim, recording an outcome) is a short transaction in a worker thread:
the event loop only waits on the transport.

What can go wrong, and what then happens (README: crash safety):
- A lane claims at most `IN_FLIGHT` rows at a time (one when paced), so a crash leaves at
  most that many rows in `sending` for recovery to resolve.
- Once the transport was called for a part, this worker never sends that part again. A send
  cut off mid-call is confirmed with the transport where it can, else recorded `unknown`
  (sent again only under `guarantee: at_least_once`). A send that went out but could not be
  recorded (the database was away) is kept in memory and recorded as soon as the database
  answers; if the process dies first, recovery resolves the row like any crash.
- Rows left in `sending` by a worker that died are recovered by the live worker that holds
  the account: when it starts, and every few seconds after (`recover`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from bot.config.settings import AccountSettings, Settings
from bot.delivery import control, health, ledger
from bot.delivery.health import Refusals
from bot.delivery.ledger import Claimed
from bot.delivery.outbox import OutboxState
from bot.delivery.pacing import DAY, Pace, Pacer
from bot.delivery.payload import from_json, summary
from bot.delivery.policy import Rules
from bot.delivery.warmup import first_send_day, warm_up
from bot.events import ContactEventRecorded, DeletionSeen
from bot.monitor.metrics import PACE_SLOWDOWN, PACER_WAITS
from bot.policies import Guarantee, Origin
from bot.runtime import AccountRuntime, BotContext
from bot.store import friendships
from bot.store.eventlog import EventLog
from bot.store.models import Contact, DeliveryPause, Room
from bot.wechat.transport import (
    DeliveryUncertainError,
    RecipientGoneError,
    RiskControlError,
    Transport,
    TransportError,
)
from bot.wechat.types import Target

log = logging.getLogger("bot.delivery")

IN_FLIGHT = 20  # rows a lane has claimed and not yet recorded, at most
IDLE_POLL = 1.0
HEARTBEAT = 5.0  # the worker's heartbeat, and how often it looks for a dead worker's rows
CAPPED_RECHECK = 30.0  # seconds: a capped lane still sends what the admins are told
DATABASE_RETRY = 2.0  # seconds before a lane tries again after the database failed

Write = Callable[[Session], None]
Sent = tuple[int, datetime, str | None, int]  # (row id, sent at, transport message id, parts)


def rules_from(settings: Settings) -> Rules:
    delivery = settings.delivery
    return Rules(
        tz=settings.tz,
        quiet=delivery.quiet,
        replies_in_quiet_hours=delivery.replies_in_quiet_hours,
        contact_daily_cap=delivery.contact_daily_cap,
        contact_weekly_cap=delivery.contact_weekly_cap,
        lifecycle_exempt=delivery.lifecycle_exempt,
        room_daily_cap=delivery.room_daily_cap,
    )


def pace_for(account: AccountSettings, settings: Settings, first_send: date | None = None) -> Pace:
    """The account's pace: its own `pacing` over `[delivery]`, with its warm-up schedule
    counted from `warmup_from` or the day it first sent (`first_send`; its first send if never)."""
    own, default = account.pacing, settings.delivery
    # the sandbox is no WeChat account to protect: it warms up only when told to
    shared = default.warmup if account.transport == "wechaty" else []
    caps = shared if own.warmup is None else own.warmup
    return Pace(
        min_interval=default.min_interval if own.min_interval is None else own.min_interval,
        jitter=default.jitter if own.jitter is None else own.jitter,
        hourly_cap=own.hourly_cap or default.hourly_cap,
        daily_cap=own.daily_cap or default.daily_cap,
        warmup=warm_up(caps, own.warmup_from or first_send, settings.tz),
    )


@dataclass
class StepResult:
    """What one step of a lane did."""

    sent: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    wait: float = 0.0  # seconds until the lane may try again (pacing, pause, offline)
    paced: bool = False  # the wait is the account's pace
    paused: str | None = None

    @property
    def active(self) -> bool:
        """Whether the step settled or moved any row."""
        return bool(self.sent or self.skipped or self.deferred or self.retried or self.failed or self.unknown)


@dataclass
class Lane:
    """One account's queue."""

    account: AccountRuntime
    pacer: Pacer
    last_pause: str | None = None
    refusals: Refusals = field(default_factory=Refusals)  # risk-smelling refused sends
    health_at: datetime | None = None  # when the account's health was last looked at
    # ledger writes for sends that went out while the database could not record them
    unrecorded: list[tuple[str, Write]] = field(default_factory=list)
    checked_own: bool = False  # rows this worker left in `sending` (a crashed lane) resolved

    @property
    def transport(self) -> Transport:
        return self.account.transport

    @property
    def account_id(self) -> str:
        return self.account.account_id


class _Stop(Exception):
    """The batch stops here: the account was paused, the database went away, or a send was
    cut off (the connection is in doubt: the next rows wait for it rather than risk the
    same). `outcome`: what became of the row it stopped at, if it was settled."""

    def __init__(self, reason: str, outcome: str | None = None) -> None:
        super().__init__(reason)
        self.outcome = outcome


class DeliveryWorker:
    """A daemon service; tests drive it with `step()` and a frozen clock."""

    name = "delivery"

    def __init__(self, context: BotContext, *, rng: random.Random | None = None) -> None:
        self.context = context
        self.worker_id = context.instance_id
        self.rng = rng or random.Random()
        self.rules = rules_from(context.settings)
        self.lanes: dict[str, Lane] = {}
        self._wake = asyncio.Event()
        self._registered = False

    # -- service ------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._register)
        for runtime in list(self.context.accounts.values()):
            await self.add_account(runtime)
        if self.context.background:
            self.context.supervisor.spawn(
                "delivery-heartbeat", self._heartbeat, doing="renewing the worker's heartbeat and recovering"
            )
        log.info("delivery worker %s started for %s", self.worker_id, ", ".join(self.lanes) or "no accounts")

    async def add_account(self, runtime: AccountRuntime) -> None:
        """A lane for an account this daemon now holds; the rows a dead worker left are
        recovered first."""
        history, first_send = await asyncio.to_thread(self._recent_sends, runtime.account_id)
        pace = pace_for(runtime.settings, self.context.settings, first_send)
        self.lanes[runtime.account_id] = Lane(runtime, Pacer(pace, self.rng, history))
        await self.recover([runtime.account_id])
        if self.context.background:
            self.context.supervisor.spawn(
                f"delivery-{runtime.account_id}", lambda: self._run_lane(runtime.account_id),
                doing=f"sending account {runtime.account_id}'s outbox",
            )  # fmt: skip

    async def remove_account(self, account_id: str) -> None:
        """Stop sending for an account (its lease is gone); what could not be recorded is
        tried once more."""
        await self.context.supervisor.cancel(f"delivery-{account_id}")
        lane = self.lanes.pop(account_id, None)
        if lane is not None:
            await self._flush_or_report(lane)

    async def stop(self) -> None:
        """The supervisor has stopped the lanes: record what is left, leave the registry."""
        for lane in self.lanes.values():
            await self._flush_or_report(lane)
        if self._registered:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._unregister)

    def _register(self) -> None:
        with self.context.database.session() as session:
            control.register(session, self.worker_id, self.context.clock.now())
        self._registered = True

    def _unregister(self) -> None:
        with self.context.database.session() as session:
            control.unregister(session, self.worker_id)
        self._registered = False

    def _recent_sends(self, account_id: str) -> tuple[list[datetime], date | None]:
        now = self.context.clock.now()
        with self.context.database.session(read_only=True) as session:
            history = ledger.recent_sends(session, account_id, now - DAY)
            return history, first_send_day(session, account_id, self.context.settings.tz)

    def wake(self) -> None:
        """Something was just planned: look at the outbox now rather than at the next poll."""
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------

    async def _run_lane(self, account_id: str) -> None:
        self.lanes[account_id].checked_own = False  # (re)started: look for rows a crash left
        while True:
            try:
                result = await self.step(account_id)
            except (OperationalError, DBAPIError) as error:  # the database is away: not a crash
                log.warning("account %s: database unavailable (%s); trying again", account_id, _short(error))
                result = StepResult(wait=DATABASE_RETRY)
            if result.active and result.wait == 0:
                continue
            # a wait for the caps can be hours: look again now and then (the admins' messages)
            await self._sleep(min(result.wait or IDLE_POLL, CAPPED_RECHECK))

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                await asyncio.to_thread(self._beat)
                await self.recover(list(self.lanes))
            except (OperationalError, DBAPIError) as error:
                log.warning("delivery heartbeat: database unavailable (%s)", _short(error))

    def _beat(self) -> None:
        with self.context.database.session() as session:
            control.heartbeat(session, self.worker_id, self.context.clock.now())

    # -- one step -----------------------------------------------------------------------

    async def step(self, account_id: str) -> StepResult:
        """Claim what is due for the account now, send it, and record the outcome."""
        lane = self.lanes[account_id]
        result = StepResult()
        if lane.unrecorded and not await self._flush(lane):
            result.paused, result.wait = "database unavailable", DATABASE_RETRY
            return result
        if not lane.checked_own:  # a lane that crashed mid-batch left rows claimed by us
            await self.recover([account_id], mine_too=True)
            lane.checked_own = True
        now = self.context.clock.now()
        if not self.context.may_send(account_id, now):
            result.paused, result.wait = "lease not renewed", IDLE_POLL
            return result
        pause, braked = await asyncio.to_thread(self._holds, account_id)
        origins: list[Origin] | None = None
        if pause is not None:
            if lane.last_pause != pause.reason:
                log.warning(
                    "account %s is paused (%s): nothing is sent until `sopbot resume`",
                    account_id,
                    pause.reason,
                )
                lane.last_pause = pause.reason
            result.paused, result.wait = pause.reason, IDLE_POLL * 2
            origins = [Origin.ADMIN]  # answers to the operator's own #commands still go out
        else:
            lane.last_pause = None
        if not getattr(lane.transport, "online", True):
            result.wait = IDLE_POLL
            return result
        if self.context.settings.delivery.risk_slowdown:
            await self._check_health(lane, now)
        allowance = lane.pacer.allowance(now)
        claim: ledger.ClaimResult | None = None
        if allowance == 0 and lane.pacer.interval_allows(now) and origins is None:
            # the caps are reached, the interval is not: the admins' own messages (answers,
            # alerts, a brake) still go — the days an account is capped are when they matter
            claim = await asyncio.to_thread(self._claim, account_id, now, 1, [Origin.ADMIN], braked)
            if not claim.claimed:
                claim = None
        if allowance == 0 and claim is None:
            result.wait = max((lane.pacer.next_allowed(now) - now).total_seconds(), 0.01)
            result.paced = True
            PACER_WAITS.labels(account_id).inc()
            return result
        if claim is None:
            claim = await asyncio.to_thread(
                self._claim, account_id, now, min(allowance, IN_FLIGHT), origins, braked
            )
        result.skipped, result.deferred = len(claim.skipped), len(claim.deferred)
        for row_id, reason in claim.skipped:
            log.info("outbox %d skipped: %s", row_id, reason)
        sent: list[Sent] = []
        done = 0  # rows whose outcome is known (recorded, or in `sent`)
        try:
            for row in claim.claimed:
                try:
                    outcome = await self._send(lane, row)
                except _Stop as stop:
                    done += 1
                    if stop.outcome is not None:
                        _count(result, stop.outcome)
                    rest = [r.id for r in claim.claimed[done:]]
                    if rest:
                        reason = f"not sent yet: {stop}"
                        await self._record(
                            lane, f"{len(rest)} rows back to planned", _set_planned(rest, reason, now)
                        )
                    done = len(claim.claimed)
                    result.paused = str(stop)
                    break
                done += 1
                if isinstance(outcome, tuple):
                    sent.append(outcome)
                    lane.pacer.record(outcome[1])
                else:
                    _count(result, outcome)
        finally:
            # also when the lane is cancelled (the daemon stops): what went out is recorded,
            # the rows not yet tried go back to planned; only a row cut off mid-send is left
            # `sending`, for recovery to confirm
            if sent:
                await self._record(lane, f"{len(sent)} sends", _mark_sent(sent))
            untried = [r.id for r in claim.claimed[done + 1 :]]
            if done < len(claim.claimed) and untried:
                await self._record(
                    lane, "untried rows back to planned", _set_planned(untried, "not sent yet", now)
                )
        result.sent = len(sent)
        return result

    async def _check_health(self, lane: Lane, now: datetime) -> None:
        """Every CHECK_EVERY: slow the account down (or speed it up again) by its risk signals."""
        if lane.health_at is not None and now - lane.health_at < health.CHECK_EVERY:
            return
        lane.health_at = now
        deletions, complaints = await asyncio.to_thread(self._signals, lane.account_id, now)
        sends = lane.pacer.sent_since(now - health.WINDOW)
        refused = lane.refusals.since(now - health.WINDOW)
        verdict = health.assess(health.Signals(deletions, complaints, refused, sends))
        if verdict.slowdown != lane.pacer.slowdown:
            faster = verdict.slowdown < lane.pacer.slowdown
            log.log(
                logging.INFO if faster else logging.WARNING,
                "account %s: pace ×%d slower (was ×%d): %s",
                lane.account_id, verdict.slowdown, lane.pacer.slowdown, verdict.reason,
            )  # fmt: skip
            lane.pacer.slowdown = verdict.slowdown
        PACE_SLOWDOWN.labels(lane.account_id).set(verdict.slowdown)

    def _signals(self, account_id: str, now: datetime) -> tuple[int, int]:
        words = self.context.settings.retention.complaint_words
        with self.context.database.session(read_only=True) as session:
            return health.count_signals(session, account_id, now, words)

    def _holds(self, account_id: str) -> tuple[DeliveryPause | None, frozenset[str]]:
        """The account's pause, and the SOPs the brake holds (their rows wait): one read."""
        with self.context.database.session(read_only=True) as session:
            return control.pause_of(session, account_id), ledger.braked_sop_ids(session)

    def _claim(
        self,
        account_id: str,
        now: datetime,
        limit: int,
        origins: list[Origin] | None,
        braked: frozenset[str] = frozenset(),
    ) -> ledger.ClaimResult:
        with self.context.database.session(background=True) as session:
            # look at a few more rows than can be claimed: the ones the rules skip or defer are
            # settled on the way, and a short scan keeps the write lock short
            return ledger.claim_due(
                session, account_id, now, limit, self.worker_id, self.rules, origins=origins, scan=limit * 4,
                held_sops=braked,
            )  # fmt: skip

    async def _send(self, lane: Lane, row: Claimed) -> Sent | str:
        """Send every remaining part of the row. Returns the sent tuple, or what happened."""
        target = Target(row.target_wxid, is_room=row.room_id is not None)
        parts = from_json(row.payload)
        msg_id: str | None = None
        for index in range(row.parts_sent, len(parts)):
            try:
                receipt = await lane.transport.send(target, parts[index], ref=f"{row.key}#{index}")
            except RiskControlError as error:
                await self._record(
                    lane, f"risk-control pause of {row.account_id}", self._risk_pause(row, error)
                )
                log.error(
                    "account %s PAUSED after WeChat pushed back (%s). Check the account, then `sopbot resume --account %s`.",
                    row.account_id, error, row.account_id,
                )  # fmt: skip
                raise _Stop("account paused (risk control)") from None
            except RecipientGoneError as error:
                deleted: list[ContactEventRecorded] = []
                if await self._record(lane, f"outbox {row.id} skipped", self._gone(row, str(error), deleted)):
                    self.context.publish(deleted)
                log.info("outbox %d skipped: %s", row.id, error)
                return "skipped"
            except DeliveryUncertainError as error:
                outcome = await self._uncertain(lane, row, index, str(error))
                raise _Stop("a send was cut off", outcome) from None
            except TransportError as error:  # the transport says: not sent
                return await self._retry_or_fail(lane, row, f"{type(error).__name__}: {error}")
            except Exception as error:  # nobody knows whether it went out
                log.exception("unexpected error sending outbox row %d", row.id)
                outcome = await self._uncertain(lane, row, index, f"{type(error).__name__}: {error}")
                raise _Stop("a send failed unexpectedly", outcome) from None
            msg_id = receipt.msg_id or msg_id
            if index < len(parts) - 1 and not await self._record(
                lane, f"progress of outbox {row.id}", _progress(row.id, index + 1, self.context.clock.now())
            ):
                # the part went out and is remembered; the rest waits for the database
                reason, now = "resuming after a database error", self.context.clock.now()
                lane.unrecorded.append(
                    (f"outbox {row.id} back to planned", _set_planned([row.id], reason, now))
                )
                raise _Stop("database unavailable")
        if log.isEnabledFor(logging.INFO):
            log.info("sent to %s: %s", row.target_name or row.target_wxid, summary(row.payload))
        return (row.id, self.context.clock.now(), msg_id, len(parts))

    async def _uncertain(self, lane: Lane, row: Claimed, index: int, reason: str) -> str:
        """The call for part `index` may or may not have reached WeChat."""
        now = self.context.clock.now()
        if row.guarantee is Guarantee.AT_LEAST_ONCE:
            return await self._retry_or_fail(lane, row, f"delivery uncertain ({reason})")
        try:
            confirmed = await lane.transport.was_sent(f"{row.key}#{index}")
        except Exception:
            confirmed = None
        if confirmed is False:
            return await self._retry_or_fail(lane, row, f"not delivered ({reason})")
        if confirmed:  # that part arrived; the rest is sent on the next try
            await self._record(lane, f"outbox {row.id} resumes", _resume(row.id, index + 1, now))
            return "retry"
        text = f"the send was cut off and WeChat cannot confirm it: not resent (at-most-once): {reason}"
        await self._record(
            lane, f"outbox {row.id} unknown", _set_state([row.id], OutboxState.UNKNOWN, text, now)
        )
        log.warning("outbox %d: delivery uncertain, recorded as unknown: %s", row.id, reason)
        return "unknown"

    async def _retry_or_fail(self, lane: Lane, row: Claimed, reason: str) -> str:
        now = self.context.clock.now()
        if health.smells_of_risk(reason):
            lane.refusals.add(now)
        settings = self.context.settings.delivery
        if row.attempts >= settings.max_attempts:
            text = f"gave up after {row.attempts} tries: {reason}"
            await self._record(
                lane, f"outbox {row.id} failed", _set_state([row.id], OutboxState.FAILED, text, now)
            )
            log.warning("outbox %d failed after %d tries: %s", row.id, row.attempts, reason)
            return "failed"
        delay = timedelta(seconds=settings.retry_backoff * 2 ** (row.attempts - 1))
        text = f"try {row.attempts} failed ({reason}); retrying"
        await self._record(
            lane, f"outbox {row.id} retry", _set_state([row.id], OutboxState.PLANNED, text, now, now + delay)
        )
        log.info("outbox %d: %s; retry in %ds", row.id, reason, delay.total_seconds())
        return "retry"

    def _risk_pause(self, row: Claimed, error: Exception) -> Write:
        now = self.context.clock.now()

        def write(session: Session) -> None:
            control.pause(session, row.account_id, f"risk control: {error}", "risk-control", now)
            ledger.set_state(
                session, [row.id], OutboxState.PLANNED, "account paused before this was sent", now
            )

        return write

    def _gone(self, row: Claimed, reason: str, deleted: list[ContactEventRecorded]) -> Write:
        """WeChat refused the send: the room is gone, or the contact deleted (or blocked) the
        account. A friend's deletion is recorded once (FRIEND_DELETED, `send_refused`); the
        events go to `deleted`, to be published once written."""
        now = self.context.clock.now()

        def write(session: Session) -> None:
            deleted.clear()  # a write kept while the database was away runs again later
            if row.room_id is not None:
                session.execute(update(Room).where(Room.id == row.room_id).values(dissolved=True))
            elif row.contact_id is not None:
                events = EventLog(session)
                friendships.unfriend(session, events, [row.contact_id], DeletionSeen.SEND_REFUSED, now)
                events.flush()
                session.execute(update(Contact).where(Contact.id == row.contact_id).values(blocked=True))
                deleted.extend(events.events)
            ledger.set_state(session, [row.id], OutboxState.SKIPPED, reason, now)

        return write

    # -- recording, whatever the database does --------------------------------------------

    async def _record(self, lane: Lane, what: str, write: Write) -> bool:
        """Write an outcome now; if the database fails, keep it and write it later (before
        anything else of this lane). True when it is written."""
        if lane.unrecorded:  # keep the order: nothing overtakes what is waiting
            lane.unrecorded.append((what, write))
            return False
        try:
            await asyncio.to_thread(self._write, [write])
        except Exception as error:
            log.warning(
                "account %s: could not record %s (%s): kept, and recorded once the database answers",
                lane.account_id, what, _short(error),
            )  # fmt: skip
            lane.unrecorded.append((what, write))
            return False
        return True

    async def _flush(self, lane: Lane) -> bool:
        try:
            await asyncio.to_thread(self._write, [write for _, write in lane.unrecorded])
        except Exception as error:
            log.debug("still cannot record %d outcomes: %s", len(lane.unrecorded), _short(error))
            return False
        log.warning(
            "account %s: the database answers again; recorded %d outcomes kept meanwhile: %s",
            lane.account_id, len(lane.unrecorded), "; ".join(what for what, _ in lane.unrecorded[:5]),
        )  # fmt: skip
        lane.unrecorded.clear()
        return True

    async def _flush_or_report(self, lane: Lane) -> None:
        if lane.unrecorded and not await self._flush(lane):
            log.error(
                "account %s: %d outcomes could not be recorded before stopping; their rows stay "
                "`sending` and are resolved by recovery (confirmed with WeChat, else unknown): %s",
                lane.account_id, len(lane.unrecorded), "; ".join(what for what, _ in lane.unrecorded[:5]),
            )  # fmt: skip

    def _write(self, writes: Sequence[Write]) -> None:
        with self.context.database.session(background=True) as session:
            for write in writes:
                write(session)

    # -- after a crash ------------------------------------------------------------------

    async def recover(self, account_ids: Sequence[str], *, mine_too: bool = False) -> dict[str, int]:
        """Resolve rows left in `sending` by workers that died (see README: crash safety):
        confirmed with the transport where it can (sent, or sent now), else `unknown`; rows
        under `at_least_once` are sent again. With `mine_too`, also this worker's own rows
        (a lane that crashed mid-batch)."""
        accounts = [a for a in account_ids if a in self.lanes]
        outcome = {"sent": 0, "resent": 0, "unknown": 0}
        if not accounts:
            return outcome
        rows = await asyncio.to_thread(self._orphans, accounts, mine_too)
        now = self.context.clock.now()
        writes: list[Write] = []
        for row in rows:
            transport = self.lanes[row.account_id].transport
            if row.guarantee is Guarantee.AT_LEAST_ONCE:
                reason, key = "worker died mid-send; sending again (at-least-once)", "resent"
                writes.append(_set_planned([row.id], reason, now))
            else:
                confirmed, parts_done = await self._confirm(transport, row)
                if parts_done > row.parts_sent:
                    writes.append(_progress(row.id, parts_done, now))
                if confirmed is True:
                    key = "sent"
                    writes.append(
                        _set_state([row.id], OutboxState.SENT, "confirmed by WeChat after a restart", now)
                    )
                    writes.append(_mark_sent([(row.id, now, None, len(row.payload))]))
                elif confirmed is False:
                    key = "resent"
                    reason = (
                        f"resuming after part {parts_done} of {len(row.payload)} (confirmed by WeChat)"
                        if parts_done
                        else "not sent before the worker died; sending now"
                    )
                    writes.append(_set_planned([row.id], reason, now))
                else:
                    key = "unknown"
                    text = "worker died while sending and WeChat cannot confirm it: not resent (at-most-once)"
                    writes.append(_set_state([row.id], OutboxState.UNKNOWN, text, now))
            outcome[key] += 1
        if writes:
            await asyncio.to_thread(self._write, writes)
            log.warning(
                "recovered %d interrupted sends: %d confirmed sent, %d to send again, %d unknown",
                len(rows), outcome["sent"], outcome["resent"], outcome["unknown"],
            )  # fmt: skip
            self.wake()
        return outcome

    def _orphans(self, account_ids: list[str], mine_too: bool) -> list[Claimed]:
        now = self.context.clock.now()
        lease = timedelta(seconds=self.context.settings.delivery.lease)
        with self.context.database.session(background=True) as session:
            live = control.live_workers(session, now, lease) | {self.worker_id}
            return ledger.take_orphans(session, self.worker_id, live, account_ids, mine_too=mine_too)

    @staticmethod
    async def _confirm(transport: Transport, row: Claimed) -> tuple[bool | None, int]:
        """(True if every part went out, False if the next part did not, None if the
        transport cannot tell; how many parts are confirmed sent)."""
        done = row.parts_sent
        for index in range(row.parts_sent, len(row.payload)):
            answer = await transport.was_sent(f"{row.key}#{index}")
            if answer is not True:
                return answer, done
            done = index + 1
        return True, done


def _count(result: StepResult, outcome: str) -> None:
    result.retried += outcome == "retry"
    result.failed += outcome == "failed"
    result.skipped += outcome == "skipped"
    result.unknown += outcome == "unknown"


# -- ledger writes, as values (kept and replayed when the database was away) -----------------


def _mark_sent(sent: list[Sent]) -> Write:
    return lambda session: ledger.mark_sent(session, sent)


def _progress(row_id: int, parts_sent: int, now: datetime) -> Write:
    return lambda session: ledger.mark_progress(session, row_id, parts_sent, now)


def _set_state(
    row_ids: list[int], state: OutboxState, reason: str, now: datetime, not_before: datetime | None = None
) -> Write:
    return lambda session: ledger.set_state(session, row_ids, state, reason, now, not_before=not_before)


def _set_planned(row_ids: list[int], reason: str, now: datetime) -> Write:
    return lambda session: ledger.set_state(session, row_ids, OutboxState.PLANNED, reason, now)


def _resume(row_id: int, parts_sent: int, now: datetime) -> Write:
    def write(session: Session) -> None:
        ledger.mark_progress(session, row_id, parts_sent, now)
        ledger.set_state(session, [row_id], OutboxState.PLANNED, "resuming after a cut-off call", now)

    return write


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:160]}"
