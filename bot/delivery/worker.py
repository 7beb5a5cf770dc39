"""The delivery worker: drains each account's outbox through its transport, at the
account's pace, under the delivery rules, exactly once.

Each account has a lane (a supervised task). Every database step of a lane (the pause check,
the claim, recording an outcome) is a short transaction in a worker thread: the event loop
only waits on the transport."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update

from bot.config.settings import AccountSettings, Settings
from bot.delivery import control, ledger
from bot.delivery.ledger import Claimed
from bot.delivery.outbox import OutboxState
from bot.delivery.pacing import DAY, Pace, Pacer
from bot.delivery.payload import from_json, summary
from bot.delivery.policy import Rules
from bot.policies import Guarantee, Origin
from bot.runtime import AccountRuntime, BotContext
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

BATCH = 1000
IDLE_POLL = 1.0
HEARTBEAT = 5.0


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


def pace_for(account: AccountSettings, settings: Settings) -> Pace:
    own, default = account.pacing, settings.delivery
    return Pace(
        min_interval=default.min_interval if own.min_interval is None else own.min_interval,
        jitter=default.jitter if own.jitter is None else own.jitter,
        hourly_cap=own.hourly_cap or default.hourly_cap,
        daily_cap=own.daily_cap or default.daily_cap,
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
    stats: StepResult = field(default_factory=StepResult)

    @property
    def transport(self) -> Transport:
        return self.account.transport


class DeliveryWorker:
    """A daemon service; tests drive it with `step()` and a frozen clock."""

    name = "delivery"

    def __init__(
        self, context: BotContext, *, worker_id: str | None = None, rng: random.Random | None = None
    ):
        self.context = context
        self.worker_id = worker_id or f"{control.this_host()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.rng = rng or random.Random()
        self.rules = rules_from(context.settings)
        self.lanes: dict[str, Lane] = {}
        self._wake = asyncio.Event()
        self._registered = False

    # -- service ------------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._register)
        for runtime in self.context.accounts.values():
            pace = pace_for(runtime.settings, self.context.settings)
            history = await asyncio.to_thread(self._recent_sends, runtime.account_id)
            self.lanes[runtime.account_id] = Lane(runtime, Pacer(pace, self.rng, history))
        await self.recover()
        if self.context.background:
            supervisor = self.context.supervisor
            for account_id in self.lanes:
                supervisor.spawn(
                    f"delivery-{account_id}", lambda a=account_id: self._run_lane(a),  # type: ignore[misc]
                    doing=f"sending account {account_id}'s outbox",
                )  # fmt: skip
            supervisor.spawn("delivery-heartbeat", self._heartbeat, doing="renewing the worker's lease")
        log.info("delivery worker %s started for %s", self.worker_id, ", ".join(self.lanes) or "no accounts")

    async def stop(self) -> None:
        """The supervisor has stopped the lanes; take the worker off the registry."""
        if self._registered:
            await asyncio.to_thread(self._unregister)

    def _register(self) -> None:
        with self.context.database.session() as session:
            control.register(session, self.worker_id, self.context.clock.now())
        self._registered = True

    def _unregister(self) -> None:
        with self.context.database.session() as session:
            control.unregister(session, self.worker_id)
        self._registered = False

    def _recent_sends(self, account_id: str) -> list[datetime]:
        now = self.context.clock.now()
        with self.context.database.session(read_only=True) as session:
            return ledger.recent_sends(session, account_id, now - DAY)

    def wake(self) -> None:
        """Something was just planned: look at the outbox now rather than at the next poll."""
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------

    async def _run_lane(self, account_id: str) -> None:
        while True:
            result = await self.step(account_id)
            if result.active and result.wait == 0:
                continue
            await self._sleep(result.wait or IDLE_POLL)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            await asyncio.to_thread(self._beat)

    def _beat(self) -> None:
        with self.context.database.session() as session:
            control.heartbeat(session, self.worker_id, self.context.clock.now())

    # -- one step -----------------------------------------------------------------------

    async def step(self, account_id: str) -> StepResult:
        """Claim what is due for the account now, send it, and record the outcome."""
        lane = self.lanes[account_id]
        now = self.context.clock.now()
        result = StepResult()
        pause = await asyncio.to_thread(self._pause_of, account_id)
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
        allowance = lane.pacer.allowance(now)
        if allowance == 0:
            result.wait = max((lane.pacer.next_allowed(now) - now).total_seconds(), 0.01)
            result.paced = True
            return result
        claim = await asyncio.to_thread(self._claim, account_id, now, min(allowance, BATCH), origins)
        result.skipped, result.deferred = len(claim.skipped), len(claim.deferred)
        for row_id, reason in claim.skipped:
            log.info("outbox %d skipped: %s", row_id, reason)
        sent: list[tuple[int, datetime, str | None, int]] = []
        try:
            for index, row in enumerate(claim.claimed):
                outcome = await self._send(lane, row)
                if outcome is None:  # risk control: the account is paused now
                    rest = claim.claimed[index + 1 :]
                    await asyncio.to_thread(self._requeue, rest, "account paused before this was sent")
                    result.paused = "risk control"
                    break
                if isinstance(outcome, tuple):
                    sent.append(outcome)
                    lane.pacer.record(outcome[1])
                elif outcome == "retry":
                    result.retried += 1
                else:
                    result.failed += outcome == "failed"
                    result.skipped += outcome == "skipped"
                    result.unknown += outcome == "unknown"
        finally:
            if sent:  # in a thread, so it completes even if this task is being cancelled
                await asyncio.to_thread(self._mark_sent, sent)
        result.sent = len(sent)
        return result

    def _pause_of(self, account_id: str) -> DeliveryPause | None:
        with self.context.database.session(read_only=True) as session:
            return control.pause_of(session, account_id)

    def _claim(self, account_id: str, now: datetime, limit: int, origins: list[Origin] | None) -> ledger.ClaimResult:
        with self.context.database.session(background=True) as session:
            return ledger.claim_due(session, account_id, now, limit, self.worker_id, self.rules, origins=origins)

    def _mark_sent(self, sent: list[tuple[int, datetime, str | None, int]]) -> None:
        with self.context.database.session(background=True) as session:
            ledger.mark_sent(session, sent)

    def _mark_progress(self, row_id: int, parts_sent: int) -> None:
        with self.context.database.session() as session:
            ledger.mark_progress(session, row_id, parts_sent, self.context.clock.now())

    async def _send(self, lane: Lane, row: Claimed) -> tuple[int, datetime, str | None, int] | str | None:
        """Send every remaining part of the row. Returns the sent tuple, or what happened."""
        target = Target(row.target_wxid, is_room=row.room_id is not None)
        parts = from_json(row.payload)
        msg_id: str | None = None
        index = row.parts_sent
        try:
            for index in range(row.parts_sent, len(parts)):
                receipt = await lane.transport.send(target, parts[index], ref=f"{row.key}#{index}")
                msg_id = receipt.msg_id or msg_id
                if index < len(parts) - 1:
                    await asyncio.to_thread(self._mark_progress, row.id, index + 1)
        except RiskControlError as error:
            await asyncio.to_thread(self._pause_for_risk, row, f"risk control: {error}")
            log.error(
                "account %s PAUSED after WeChat pushed back (%s). Check the account, then `sopbot resume --account %s`.",
                row.account_id, error, row.account_id,
            )  # fmt: skip
            return None
        except RecipientGoneError as error:
            await asyncio.to_thread(self._skip_gone, row, str(error))
            log.info("outbox %d skipped: %s", row.id, error)
            return "skipped"
        except DeliveryUncertainError as error:
            return await self._uncertain(lane, row, index, str(error))
        except (TransportError, OSError, TimeoutError) as error:
            return await asyncio.to_thread(self._retry_or_fail, row, f"{type(error).__name__}: {error}")
        except Exception as error:
            log.exception("unexpected error sending outbox row %d", row.id)
            return await asyncio.to_thread(self._retry_or_fail, row, f"{type(error).__name__}: {error}")
        if log.isEnabledFor(logging.INFO):
            log.info("sent to %s: %s", row.target_name or row.target_wxid, summary(row.payload))
        return (row.id, self.context.clock.now(), msg_id, len(parts))

    def _pause_for_risk(self, row: Claimed, reason: str) -> None:
        now = self.context.clock.now()
        with self.context.database.session() as session:
            control.pause(session, row.account_id, reason, "risk-control", now)
            ledger.set_state(session, [row.id], OutboxState.PLANNED, "account paused before this was sent", now)

    def _skip_gone(self, row: Claimed, reason: str) -> None:
        with self.context.database.session() as session:
            self._mark_gone(session, row)
            ledger.set_state(session, [row.id], OutboxState.SKIPPED, reason, self.context.clock.now())

    async def _uncertain(self, lane: Lane, row: Claimed, index: int, reason: str) -> str:
        """The call for part `index` was cut off: it may have been delivered."""
        if row.guarantee is Guarantee.AT_LEAST_ONCE:
            return await asyncio.to_thread(self._retry_or_fail, row, f"delivery uncertain ({reason})")
        confirmed = await lane.transport.was_sent(f"{row.key}#{index}")
        if confirmed is False:
            return await asyncio.to_thread(self._retry_or_fail, row, f"not delivered ({reason})")
        return await asyncio.to_thread(self._record_uncertain, row, index, reason, confirmed)

    def _record_uncertain(self, row: Claimed, index: int, reason: str, confirmed: bool | None) -> str:
        now = self.context.clock.now()
        with self.context.database.session() as session:
            if confirmed:  # that part arrived; the rest is sent on the next try
                ledger.mark_progress(session, row.id, index + 1, now)
                ledger.set_state(session, [row.id], OutboxState.PLANNED, "resuming after a cut-off call", now)
                return "retry"
            ledger.set_state(
                session, [row.id], OutboxState.UNKNOWN,
                f"the connection dropped mid-send and WeChat cannot confirm it: not resent (at-most-once): {reason}",
                now,
            )  # fmt: skip
        log.warning("outbox %d: delivery uncertain, recorded as unknown: %s", row.id, reason)
        return "unknown"

    def _retry_or_fail(self, row: Claimed, reason: str) -> str:
        now = self.context.clock.now()
        settings = self.context.settings.delivery
        with self.context.database.session() as session:
            if row.attempts >= settings.max_attempts:
                ledger.set_state(
                    session,
                    [row.id],
                    OutboxState.FAILED,
                    f"gave up after {row.attempts} tries: {reason}",
                    now,
                )
                log.warning("outbox %d failed after %d tries: %s", row.id, row.attempts, reason)
                return "failed"
            delay = timedelta(seconds=settings.retry_backoff * 2 ** (row.attempts - 1))
            ledger.set_state(
                session, [row.id], OutboxState.PLANNED, f"try {row.attempts} failed ({reason}); retrying",
                now, not_before=now + delay,
            )  # fmt: skip
        log.info("outbox %d: %s; retry in %ds", row.id, reason, delay.total_seconds())
        return "retry"

    def _requeue(self, rows: list[Claimed], reason: str) -> None:
        if rows:
            with self.context.database.session() as session:
                ledger.set_state(
                    session, [r.id for r in rows], OutboxState.PLANNED, reason, self.context.clock.now()
                )

    @staticmethod
    def _mark_gone(session: object, row: Claimed) -> None:
        if row.room_id is not None:
            session.execute(update(Room).where(Room.id == row.room_id).values(dissolved=True))  # type: ignore[attr-defined]
        elif row.contact_id is not None:
            session.execute(update(Contact).where(Contact.id == row.contact_id).values(blocked=True))  # type: ignore[attr-defined]

    # -- after a crash ------------------------------------------------------------------

    async def recover(self) -> dict[str, int]:
        """Resolve rows left in `sending` by workers that died (see README: crash safety)."""
        rows = await asyncio.to_thread(self._orphans)
        outcome = {"sent": 0, "resent": 0, "unknown": 0}
        for row in rows:
            transport = self.lanes[row.account_id].transport
            if row.guarantee is Guarantee.AT_LEAST_ONCE:
                state, reason, key = (
                    OutboxState.PLANNED,
                    "worker died mid-send; sending again (at-least-once)",
                    "resent",
                )
            else:
                confirmed, parts_done = await self._confirm(transport, row)
                if parts_done > row.parts_sent:
                    await asyncio.to_thread(self._mark_progress, row.id, parts_done)
                if confirmed is True:
                    state, reason, key = OutboxState.SENT, "confirmed by WeChat after a restart", "sent"
                elif confirmed is False:
                    state, reason, key = (
                        OutboxState.PLANNED,
                        "not sent before a restart; sending now",
                        "resent",
                    )
                else:
                    state = OutboxState.UNKNOWN
                    reason = (
                        "worker died while sending and WeChat cannot confirm it: not resent (at-most-once)"
                    )
                    key = "unknown"
            await asyncio.to_thread(self._settle_recovered, row, state, reason)
            outcome[key] += 1
        if rows:
            log.warning(
                "recovered %d interrupted sends: %d confirmed sent, %d to send again, %d unknown",
                len(rows), outcome["sent"], outcome["resent"], outcome["unknown"],
            )  # fmt: skip
        return outcome

    def _orphans(self) -> list[Claimed]:
        now = self.context.clock.now()
        lease = timedelta(seconds=self.context.settings.delivery.lease)
        with self.context.database.session(read_only=True) as session:
            live = control.live_workers(session, now, lease) | {self.worker_id}
            return ledger.orphaned(session, live, list(self.lanes))

    def _settle_recovered(self, row: Claimed, state: OutboxState, reason: str) -> None:
        now = self.context.clock.now()
        with self.context.database.session() as session:
            ledger.set_state(session, [row.id], state, reason, now)
            if state is OutboxState.SENT:
                ledger.mark_sent(session, [(row.id, now, None, len(row.payload))])

    @staticmethod
    async def _confirm(transport: Transport, row: Claimed) -> tuple[bool | None, int]:
        """(True if every part went out, False if the next part did not, None if the
        transport cannot tell; how many parts are confirmed sent). The confirmed parts of a
        partly sent row are recorded so they are not sent again."""
        done = row.parts_sent
        for index in range(row.parts_sent, len(row.payload)):
            answer = await transport.was_sent(f"{row.key}#{index}")
            if answer is not True:
                return answer, done
            done = index + 1
        return True, done
