"""What comes next: said by the daemon at start, every few minutes, and by `#status`.

Per account: online or not, paused (and why), messages queued. Then the next SOP send and
when, and whether quiet hours are holding messages back — so an operator who starts the
demo at night sees why nothing goes out ("quiet hours 22:00-08:00 hold 12 messages until
08:00; next SOP send: daily_pick/morning at 12-03 10:00")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.delivery import control, ledger
from bot.delivery.policy import in_quiet_hours, quiet_end
from bot.delivery.worker import rules_from
from bot.runtime import BotContext

NextSend = Callable[[datetime], tuple[datetime, str] | None]  # the SOP service's `next_send`


@dataclass(frozen=True)
class AccountLine:
    account_id: str
    online: bool
    paused: str | None
    queued: int
    braked: int = 0  # of the queued: rows of SOPs the brake holds


@dataclass(frozen=True)
class Outlook:
    accounts: list[AccountLine]
    next_sop: tuple[datetime, str] | None
    quiet: str
    quiet_now: bool
    held: int  # queued messages waiting for quiet hours to end
    quiet_until: datetime | None

    def describe(self, tz: object) -> str:
        parts = []
        for a in self.accounts:
            state = "online" if a.online else "offline"
            if a.paused:
                state += f", PAUSED ({a.paused})"
            held = f" ({a.braked} held by the brake)" if a.braked else ""
            parts.append(f"account {a.account_id} {state}, {a.queued} queued{held}")
        if self.quiet_now and self.quiet_until is not None:
            parts.append(
                f"quiet hours {self.quiet} hold {self.held} until {self.quiet_until.astimezone(tz):%H:%M}"
            )  # type: ignore[arg-type]
        if self.next_sop is not None:
            at, what = self.next_sop
            parts.append(f"next SOP send: {what} at {at.astimezone(tz):%m-%d %H:%M}")  # type: ignore[arg-type]
        else:
            parts.append("no SOP send scheduled")
        return "; ".join(parts)

    def describe_cn(self, tz: object) -> str:
        lines = []
        if self.quiet_now and self.quiet_until is not None:
            until = self.quiet_until.astimezone(tz)  # type: ignore[arg-type]
            lines.append(f"免打扰时段 {self.quiet}：{self.held} 条消息等到 {until:%H:%M} 再发")
        if self.next_sop is not None:
            at, what = self.next_sop
            lines.append(f"下一次SOP发送：{what}，{at.astimezone(tz):%m-%d %H:%M}")  # type: ignore[arg-type]
        else:
            lines.append("没有已排期的SOP发送")
        return "；".join(lines)


def outlook(context: BotContext, next_send: NextSend | None, now: datetime) -> Outlook:
    rules = rules_from(context.settings)
    quiet_now = in_quiet_hours(now, rules)
    until = quiet_end(now, rules) if quiet_now else None
    with context.database.session(read_only=True) as session:
        queued = ledger.queued_by_account(session)
        braked = ledger.held_by_account(session, ledger.braked_sop_ids(session))
        held = ledger.waiting_for_quiet_hours(session, now, until) if until is not None else 0
        accounts = [
            AccountLine(
                account.id,
                bool(getattr(runtime.transport, "online", False))
                if (runtime := context.accounts.get(account.id))
                else False,
                pause.reason if (pause := control.pause_of(session, account.id)) else None,
                int(queued.get(account.id, 0)),
                braked.get(account.id, 0),
            )
            for account in context.settings.accounts
        ]
    return Outlook(accounts, next_send(now) if next_send else None, str(rules.quiet), quiet_now, held, until)
