"""Liveness and readiness of one daemon, as `/livez` and `/healthz` report them.

Live: the event loop answers (the request itself proves it). Ready: the daemon has started,
holds at least one account, and every account it holds is online. A standby daemon (it
holds nothing) is live and not ready: nothing is wrong with it, it just sends for nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.runtime import BotContext


@dataclass(frozen=True)
class Health:
    ready: bool
    accounts: dict[str, dict[str, Any]]
    reason: str

    def body(self) -> dict[str, Any]:
        return {"live": True, "ready": self.ready, "reason": self.reason, "accounts": self.accounts}


def health(context: BotContext, started: bool, now: datetime) -> Health:
    accounts: dict[str, dict[str, Any]] = {}
    leases = context.leases or {}
    for account in context.settings.accounts:
        runtime = context.accounts.get(account.id)
        until = leases.get(account.id)
        accounts[account.id] = {
            "held": runtime is not None,
            "online": runtime is not None and bool(getattr(runtime.transport, "online", False)),
            "lease_until": until.isoformat() if until is not None else None,
        }
    held = [a for a, state in accounts.items() if state["held"]]
    offline = [a for a in held if not accounts[a]["online"]]
    if not started:
        return Health(False, accounts, "starting")
    if not held:
        return Health(False, accounts, "standby: holds no account")
    if offline:
        return Health(False, accounts, f"offline: {', '.join(offline)}")
    return Health(True, accounts, f"{len(held)} account(s) held and online")
