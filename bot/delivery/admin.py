"""Admin chat commands: operators listed in `[delivery] admins` can write `#pause`,
`#resume` and `#status` to the bot in a 1:1 chat, and the commands other parts plug in
(the brake's `#刹车` and `#恢复 ID`, `bot.retention.chat`). Anyone else's `#…` is ignored."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from bot.delivery import control, ledger
from bot.delivery.outbox import PlannedMessage, enqueue
from bot.delivery.outlook import NextSend, outlook
from bot.events import Outcome
from bot.policies import Category, Origin
from bot.runtime import BotContext
from bot.store import directory as d
from bot.wechat.types import MessageReceived, Text

log = logging.getLogger("bot.delivery.admin")

HELP = (
    "可用指令：#status 查看发送状态；#pause [原因] 暂停本账号（#pause all 暂停全部）；#resume（#resume all）恢复发送；"
    "#刹车 查看被自动暂停的 SOP；#恢复 ID（#resume-sop ID）恢复该 SOP"
)
# a plugged-in command: (account id, argument, who) → the reply
Command = Callable[[str, str, str], str]
STATE_NAMES = {
    "planned": "待发",
    "sending": "发送中",
    "sent": "已发",
    "skipped": "跳过",
    "failed": "失败",
    "unknown": "未确认",
}


class AdminCommands:
    """A stage of every account's pipeline (after the recorder): a unit of work per message."""

    def __init__(
        self,
        context: BotContext,
        next_send: NextSend | None = None,
        commands: Mapping[str, Command] | None = None,
    ) -> None:
        self.context = context
        self.admins = frozenset(context.settings.delivery.admins)
        self.next_send = next_send
        self.commands = dict(commands or {})

    def command(self, event: MessageReceived) -> Outcome | None:
        message = event.message
        text = message.text.strip()
        if not text.startswith("#") or message.room is not None:
            return None
        if message.talker.wxid not in self.admins:
            log.debug("ignored %r from %s: not an admin", text[:20], message.talker.name)
            return None
        command, _, argument = text[1:].partition(" ")
        reply = self.run(event.account_id, command.lower(), argument.strip(), message.talker.name)
        log.info("admin %s: #%s -> %s", message.talker.name, command, reply)
        now = self.context.clock.now()
        with self.context.database.session() as session:
            contact_id = d.contact_id_for(session, event.account_id, message.talker.wxid)
            if contact_id is None:
                return None
            key = f"admin:{event.account_id}:{message.msg_id}"
            planned = enqueue(
                session,
                [PlannedMessage(key, event.account_id, Origin.ADMIN, [Text(reply)], now, contact_id=contact_id,
                                category=Category.REPLY, priority=100)],
                now,
            )  # fmt: skip
        return Outcome(planned=planned, halt=True)  # a command is not a customer's message

    def run(self, account_id: str, command: str, argument: str, who: str) -> str:
        if command in self.commands:
            return self.commands[command](account_id, argument, who)
        now = self.context.clock.now()
        if command == "status":  # read before the write session below, not nested in it
            ahead = outlook(self.context, self.next_send, now).describe_cn(self.context.settings.tz)
        with self.context.database.session() as session:
            if command == "pause":
                scope = control.ALL_ACCOUNTS if argument.lower() == "all" else account_id
                reason = "" if argument.lower() == "all" else argument
                control.pause(session, scope, reason or f"paused by {who} in chat", who, now)
                return (
                    "已暂停全部账号的发送"
                    if scope == control.ALL_ACCOUNTS
                    else f"已暂停账号 {account_id} 的发送"
                )
            if command == "resume":
                scope = control.ALL_ACCOUNTS if argument.lower() == "all" else account_id
                resumed = control.resume(session, scope)
                what = "全部账号" if scope == control.ALL_ACCOUNTS else f"账号 {account_id} "
                return f"已恢复{what}的发送" if resumed else f"{what}没有暂停"
            if command == "status":
                counts = ledger.state_counts(session, account_id)
                pause = control.pause_of(session, account_id)
                braked = sorted(ledger.braked_sop_ids(session))
                shown = (
                    "，".join(f"{STATE_NAMES.get(s, s)} {n}" for s, n in sorted(counts.items()))
                    or "发件箱为空"
                )
                paused = f"；已暂停：{pause.reason}" if pause else "；正常发送中"
                held = f"\n自动暂停的 SOP：{'、'.join(braked)}（#刹车 查看原因）" if braked else ""
                return f"账号 {account_id}：{shown}{paused}{held}\n{ahead}"
        return HELP
