"""The admins' chat commands for the brake: `#刹车` (`#brakes`) lists the SOPs it holds,
`#恢复 ID` (`#resume-sop ID`) lifts one. Plugged into `bot.delivery.admin.AdminCommands`."""

from __future__ import annotations

from collections.abc import Callable

from bot.clock import Clock
from bot.retention import store
from bot.store import Database

ChatCommand = Callable[[str, str, str], str]  # (account id, argument, who) → the reply


def chat_commands(database: Database, clock: Clock) -> dict[str, ChatCommand]:
    def brakes(account_id: str, argument: str, who: str) -> str:
        with database.session(read_only=True) as session:
            held = [
                (b.sop_id, b.reason, store.waiting_rows(session, b.sop_id))
                for b in store.braked_sops(session)
            ]
        if not held:
            return "没有被自动暂停的 SOP"
        lines = [f"{sop_id}：{reason}（待发 {waiting} 条）" for sop_id, reason, waiting in held]
        return "自动暂停的 SOP：\n" + "\n".join(lines) + "\n回复 #恢复 ID 恢复发送"

    def resume(account_id: str, argument: str, who: str) -> str:
        sop_id = argument.split()[0] if argument.split() else ""
        if not sop_id:
            return brakes(account_id, argument, who)
        with database.session() as session:
            lifted = store.resume_sop(session, sop_id, f"{who} (WeChat)", clock.now())
            waiting = store.waiting_rows(session, sop_id)
        if not lifted:
            return f"SOP {sop_id} 没有被自动暂停"
        return f"已恢复 SOP {sop_id}：待发的 {waiting} 条消息按节奏发出"

    return {"brakes": brakes, "刹车": brakes, "resume-sop": resume, "恢复": resume}
