"""Benchmark: tag rules on inbound messages, and tier recomputation.

    python bench/bench_tagging.py [--messages 10000] [--rules 200] [--contacts 100000]

1. 10,000 inbound messages against 200 tag rules, on SQLite: each message is stored (as
   the recorder does) and run through the rules with their storage (hits, tags, replies),
   then the talkers' tiers are recomputed. Printed: messages/s, and the ratio to the bare
   matcher (the same rules, no storage) measured in the same run.
2. Tier recomputation for 100,000 contacts after a rule change: the time.

Prints figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.clock import FrozenClock
from bot.config.settings import Settings
from bot.recorder import writes as w
from bot.signals.conversation import Said
from bot.signals.engine import SignalEngine
from bot.signals.matcher import Where
from bot.signals.rules import parse_tags
from bot.store import Database
from bot.store import directory as d
from bot.store.eventlog import EventLog
from bot.store.migrate import upgrade
from bot.store.models import Contact, InboundMessage, Order
from bot.store.upsert import insert_for
from bot.wechat.sandbox.population import PERSONAS
from bot.wechat.types import ContactInfo

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
VOCAB = [
    "优惠",
    "打折",
    "满减",
    "优惠券",
    "秒杀",
    "会员价",
    "包邮",
    "链接",
    "多少钱",
    "价格",
    "怎么买",
    "还有货",
    "尺码",
    "颜色",
    "新款",
    "新品",
    "上新",
    "新色",
    "面霜",
    "精华",
    "口红",
    "围巾",
    "大衣",
    "羊绒",
    "礼盒",
    "礼物",
    "生日",
    "会员日",
    "积分",
    "签到",
    "拼团",
    "砍价",
    "分享",
    "推荐",
    "好用",
    "回购",
    "晒单",
    "退货",
    "退款",
    "物流",
    "快递",
    "发货",
    "破损",
    "过敏",
    "敏感肌",
    "干皮",
    "油皮",
    "试用",
    "小样",
    "直播",
    "预售",
    "定金",
    "尾款",
    "双11",
    "双12",
    "年货",
    "春节",
    "情人节",
    "女王节",
    "母亲节",
    "七夕",
    "中秋",
    "国庆",
    "圣诞",
    "元旦",
    "门店",
    "专柜",
    "正品",
    "代购",
    "海外",
    "保质期",
    "成分",
    "香味",
    "质地",
    "色号",
    "显白",
    "保湿",
    "美白",
    "抗老",
    "防晒",
]


def make_rules(count: int, rng: random.Random) -> str:
    lines = ["rules:"]
    for n in range(count):
        kind = n % 10
        picks = [a + b for a, b in zip(rng.sample(VOCAB, 4), rng.sample(VOCAB, 4), strict=True)]
        picks[0] = VOCAB[n % len(VOCAB)] if n % 3 == 0 else picks[0]
        if kind < 6:
            match = "keywords: [" + ", ".join(picks) + "]"
        elif kind < 8:
            match = "words: [" + ", ".join(picks[:3]) + "]"
        elif kind == 8:
            match = f"regex: ['{picks[0]}.{{0,6}}{picks[1]}']"
        else:
            match = "keywords: [" + ", ".join(picks[:2]) + "], exclude: [不要]"
        window = ", min_hits: 2, within: 30d" if n % 7 == 0 else ""
        lines.append(f"  - {{id: r{n}, match: {{{match}}}{window}, actions: [{{add_tag: 标签{n % 60}}}]}}")
    return "\n".join(lines) + "\n"


def make_messages(count: int, contacts: int, rng: random.Random) -> list[tuple[int, str]]:
    lines = [line for persona in PERSONAS for line in persona.lines]
    out = []
    for _ in range(count):
        text = rng.choice(lines)
        if rng.random() < 0.3:
            text += "，" + rng.choice(VOCAB) + rng.choice(["吗", "呀", "？", "", "～"])
        out.append((rng.randrange(contacts), text))
    return out


def bench_messages(folder: Path, message_count: int, rule_count: int, contacts: int = 500) -> None:
    rng = random.Random(4)
    tags = parse_tags(make_rules(rule_count, rng))
    messages = make_messages(message_count, contacts, rng)
    database = Database(f"sqlite:///{folder / 'bench.db'}")
    upgrade(database)
    clock = FrozenClock(T0)
    engine = SignalEngine(Settings(base_dir=folder), database, clock, tags=tags, renderer=None)
    matcher = engine.matcher
    matcher.match("预热分词器")  # jieba loads its dictionary once per process

    started = time.perf_counter()
    bare_hits = sum(len(matcher.match(text, Where())) for _, text in messages)
    bare = time.perf_counter() - started

    with database.session() as session:
        d.ensure_account(session, "main", name="bench", transport="sandbox", now=T0)
        ids = [
            w.upsert_contact(session, "main", ContactInfo(f"wxid_b{n}", f"客户{n}"), T0)
            for n in range(contacts)
        ]
    started = time.perf_counter()
    batch = 500
    for start in range(0, len(messages), batch):
        with database.session() as session:
            events = EventLog(session)
            said, rows = [], []
            for number, (who, text) in enumerate(messages[start : start + batch], start):
                at = T0 + timedelta(seconds=number)
                rows.append({"account_id": "main", "transport_msg_id": f"m{number}", "contact_id": ids[who],
                             "kind": "text", "text": text, "mentions_self": False, "sent_at": at, "received_at": at})  # fmt: skip
                said.append(Said("main", ids[who], f"m{number}", text, at))
            session.execute(insert_for(session, InboundMessage.__table__), rows)  # the recorder's part
            touched = engine.apply_said(session, events, said)
            engine.after_talk(session, events, touched, "消息")
    full = time.perf_counter() - started
    print(
        f"tagging: {message_count} messages x {rule_count} rules, {bare_hits / message_count:.2f} rule hits a message,"
        f" SQLite, batches of {batch}"
    )
    print(f"  bare matcher        {message_count / bare:10,.0f} messages/s  ({bare * 1000:.0f} ms)")
    print(f"  with storage+tiers  {message_count / full:10,.0f} messages/s  ({full * 1000:.0f} ms)")
    print(f"  overhead            {full / bare:10.2f} x the bare matcher")
    database.dispose()


def bench_tiers(folder: Path, contacts: int) -> None:
    database = Database(f"sqlite:///{folder / 'tiers.db'}")
    upgrade(database)
    clock = FrozenClock(T0)
    engine = SignalEngine(
        Settings(base_dir=folder), database, clock, tags=parse_tags("rules: []\n"), renderer=None
    )
    rng = random.Random(7)
    with database.session() as session:
        d.ensure_account(session, "main", name="bench", transport="sandbox", now=T0)
        session.execute(
            insert_for(session, Contact.__table__),
            [{"account_id": "main", "wxid": f"wxid_t{n}", "name": f"客户{n}", "is_friend": True, "blocked": False,
              "opted_out": False, "tier": "basic"} for n in range(contacts)],
        )  # fmt: skip
        orders = []
        for n in range(contacts // 3):
            contact = rng.randrange(contacts) + 1
            orders.append({"order_id": f"o{n}", "contact_id": contact, "amount_cents": 19900, "status": "paid",
                           "discounted": False, "source": "csv", "ordered_at": T0 - timedelta(days=rng.randrange(200))})  # fmt: skip
        session.execute(insert_for(session, Order.__table__), orders)
        messages = [{"account_id": "main", "transport_msg_id": f"t{n}", "contact_id": rng.randrange(contacts) + 1,
                     "kind": "text", "text": "在吗", "mentions_self": False, "sent_at": T0 - timedelta(days=rng.randrange(120))}
                    for n in range(contacts // 2)]  # fmt: skip
        session.execute(insert_for(session, InboundMessage.__table__), messages)
    started = time.perf_counter()
    moved = engine.recompute_all(trigger="规则变更")
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = engine.recompute_all(trigger="规则变更")
    second = time.perf_counter() - started
    print(f"tiers: {contacts:,} contacts, {len(orders):,} orders, {len(messages):,} messages, SQLite")
    print(f"  recompute after a rule change  {first:6.2f} s  ({len(moved):,} contacts moved)")
    print(f"  recompute with nothing to move {second:6.2f} s  ({len(again)} moved)")
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        bench_messages(Path(folder), args.messages, args.rules)
        bench_tiers(Path(folder), args.contacts)


if __name__ == "__main__":
    main()
