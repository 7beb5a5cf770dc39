"""The accounts this daemon runs: each one's lease, transport and pipeline.

At start the daemon takes the lease of every configured account (`bot.leases`). An account
another daemon holds is not started: this daemon says who holds it, in one line, and waits
as its standby. Every third of a lease the held leases are renewed and the standby accounts
tried again; an account whose lease was lost (taken over after this daemon could not renew
it) is stopped at once — its delivery lane had already stopped sending a third of a lease
before the expiry (`BotContext.may_send`)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from bot import leases
from bot.config.settings import AccountSettings
from bot.flow import Services, account_pipeline
from bot.monitor.metrics import LEASE_CHANGES
from bot.orders.model import OrderIn
from bot.runtime import AccountRuntime, BotContext
from bot.store import directory as d
from bot.store.models import Account
from bot.wechat.factory import build_transport
from bot.wechat.sandbox import SandboxTransport
from bot.wechat.sandbox.shop import SOURCE as SHOP_SOURCE
from bot.wechat.sandbox.shop import SandboxShop
from bot.wechat.transport import Transport

log = logging.getLogger("bot.accounts")


class Accounts:
    def __init__(
        self,
        context: BotContext,
        services: Services,
        *,
        transports: dict[str, Transport] | None = None,
        autoplay: bool = True,
    ) -> None:
        self.context = context
        self.services = services
        self.autoplay = autoplay
        self._given = transports or {}
        self.standby: dict[str, AccountSettings] = {}
        self.started = False  # the shared services run: new accounts join them at once
        self.lease = timedelta(seconds=context.settings.delivery.lease)

    # -- start-up -----------------------------------------------------------------------

    async def start_all(self) -> None:
        for account in self.context.settings.accounts:
            await asyncio.to_thread(self._ensure_account, account)
            if not self.context.settings.may_run(account.id):
                log.info("account %s is left to other daemons (run_accounts)", account.id)
                continue
            await self._try(account)

    async def _try(self, account: AccountSettings) -> bool:
        """Start the account if its lease is ours now; else wait as its standby."""
        lease = await asyncio.to_thread(self._acquire, account.id)
        tz = self.context.settings.tz
        if not lease.ours:
            if account.id not in self.standby and lease.other is not None:
                log.warning(
                    "account %s is run by %s: this daemon waits as its standby",
                    account.id,
                    lease.other.describe(tz),
                )
            self.standby[account.id] = account
            return False
        self.standby.pop(account.id, None)
        LEASE_CHANGES.labels(account.id, "taken_over" if lease.other is not None else "acquired").inc()
        if lease.other is not None:
            log.warning(
                "account %s: taking over from %s, which is gone", account.id, lease.other.describe(tz)
            )
        await self._start(account)
        return True

    async def _start(self, account: AccountSettings) -> None:
        context = self.context
        transport = self._given.get(account.id) or build_transport(
            account, context.settings, context.clock, context.database, supervisor=context.supervisor
        )
        pipeline = account_pipeline(account, transport, self.services, context)
        runtime = AccountRuntime(account, transport, pipeline)
        context.accounts[account.id] = runtime
        pipeline.start(context.supervisor)
        if isinstance(transport, SandboxTransport):
            log.info(
                "account %s: no WeChat token configured, running on the built-in sandbox WeChat "
                '(set transport = "wechaty" and %s for a real account)',
                account.id,
                account.token_env,
            )
        try:
            await transport.start(pipeline.submit)
        except BaseException:
            await self._stop(account.id)
            raise
        if self.started:
            await self.services.delivery.add_account(runtime)
        await asyncio.to_thread(self._record_online)
        if self.autoplay and context.settings.sandbox.autoplay and isinstance(transport, SandboxTransport):
            interval = context.settings.sandbox.event_interval
            shop = SandboxShop(account.id, self._sandbox_orders)  # the customers buy there
            context.supervisor.spawn(
                f"sandbox-autoplay-{account.id}", lambda: transport.autoplay(interval, shop=shop),
                doing="playing the sandbox's simulated customers",
            )  # fmt: skip

    async def _sandbox_orders(self, orders: list[OrderIn]) -> None:
        """The sandbox shop's orders reach sopbot as a shop's webhook orders would."""
        engine = self.services.signals.engine
        report = await asyncio.to_thread(engine.ingest_orders, orders, source=SHOP_SOURCE)
        self.context.publish(report.events)

    # -- keeping the leases ----------------------------------------------------------------

    async def keep(self) -> None:
        """Renew the held leases and try the standby accounts, every third of a lease; say
        in the database whether each held account is online (for `sopbot status`)."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                held = await asyncio.to_thread(self._renew, list(self.context.accounts))
            except (OperationalError, DBAPIError) as error:
                log.warning(
                    "could not renew the account leases (%s); sending stops before they run out", error
                )
                continue
            try:
                await asyncio.to_thread(self._record_online)
            except (OperationalError, DBAPIError) as error:  # the leases are renewed: only `status` lags
                log.warning("could not record whether the accounts are online (%s)", error)
            for account_id in list(self.context.accounts):
                if account_id not in held:
                    log.error(
                        "account %s: its lease was taken over by another daemon; stopping it here", account_id
                    )
                    LEASE_CHANGES.labels(account_id, "lost").inc()
                    account = self.context.accounts[account_id].settings
                    await self._stop(account_id)
                    self.standby[account_id] = account
            for account in list(self.standby.values()):
                await self._try(account)

    def _acquire(self, account_id: str) -> leases.Acquired:
        now = self.context.clock.now()
        with self.context.database.session() as session:
            lease = leases.acquire(session, account_id, self.context.instance_id, now, self.lease)
        if lease.ours and self.context.leases is not None:
            self.context.leases[account_id] = now + self.lease
        return lease

    def _renew(self, account_ids: list[str]) -> set[str]:
        now = self.context.clock.now()
        with self.context.database.session() as session:
            held = leases.renew(session, account_ids, self.context.instance_id, now, self.lease)
        if self.context.leases is not None:
            for account_id in account_ids:
                if account_id in held:
                    self.context.leases[account_id] = now + self.lease
                else:
                    self.context.leases.pop(account_id, None)
        return held

    def _ensure_account(self, account: AccountSettings) -> None:
        with self.context.database.session() as session:
            d.ensure_account(
                session, account.id, name=account.name or account.id, transport=account.transport,
                now=self.context.clock.now(),
            )  # fmt: skip

    # -- stopping -------------------------------------------------------------------------

    async def _stop(self, account_id: str) -> None:
        runtime = self.context.accounts.pop(account_id, None)
        if self.context.leases is not None:
            self.context.leases.pop(account_id, None)
        if runtime is None:
            return
        await self.services.delivery.remove_account(account_id)
        await runtime.pipeline.stop(self.context.supervisor)
        await self.context.supervisor.cancel(f"sandbox-autoplay-{account_id}")
        try:
            await runtime.transport.stop()
        except Exception:
            log.exception("account %s did not stop cleanly", account_id)

    async def stop_transports(self) -> None:
        for runtime in list(self.context.accounts.values()):
            try:
                await runtime.transport.stop()
            except Exception:
                log.exception("account %s did not stop cleanly", runtime.account_id)

    async def release(self) -> None:
        """A clean stop gives the leases back: a standby takes over at once."""
        held = list(self.context.accounts)
        try:
            await asyncio.to_thread(self._release, held)
        except Exception as error:
            log.warning("could not release the account leases (%s); they run out by themselves", error)

    def _record_online(self) -> None:
        """Each held account's connection state in `accounts.status`, written on change."""
        states = {
            account_id: "online" if getattr(runtime.transport, "online", False) else "offline"
            for account_id, runtime in list(self.context.accounts.items())
        }
        with self.context.database.session() as session:
            _set_status(session, states)

    def _release(self, account_ids: list[str]) -> None:
        with self.context.database.session() as session:
            leases.release(session, account_ids, self.context.instance_id)
            _set_status(session, dict.fromkeys(account_ids, "offline"))
        for account_id in account_ids:
            LEASE_CHANGES.labels(account_id, "released").inc()


def _set_status(session: Session, states: dict[str, str]) -> None:
    for account_id, state in states.items():
        session.execute(
            update(Account).where(Account.id == account_id, Account.status != state).values(status=state)
        )
