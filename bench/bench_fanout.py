"""Fan one SOP step out to 100,000 contacts on SQLite: resolve the audience, render per
tier, write the outbox and the run ledger, exactly as the daemon does; compared with a
bare baseline measured in the same run: the same Jinja renders plus one bulk insert of
the same outbox rows.

    python bench/bench_fanout.py [--contacts 100000]

Targets (issue 5): ≤ 5 s on SQLite and ≤ 2× the baseline. Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, insert, select

from bot.delivery.outbox import PlannedMessage, enqueue, recipient_ref, sop_key
from bot.policies import Category, Origin
from bot.render import parse_parts
from bot.sop.authoring.loader import load_sop_set
from bot.sop.runtime.audience import load_directory, select_contacts
from bot.sop.runtime.context import ContextFactory
from bot.sop.runtime.ledger import RunDecision
from bot.sop.runtime.occurrences import execute
from bot.store import Database
from bot.store.migrate import upgrade
from bot.store.models import Account, Contact, ContactTag, OutboxMessage, SopRun, Tag

TIERS = ("basic", "prospect", "customer", "repeat", "koc")
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

FILES = {
    "sop/catalog.yaml": """
        items:
          - {id: a, name: 羊绒围巾, price: 399, prices: {repeat: 349, koc: 329}, benefits: {default: 满299减30}}
          - {id: b, name: 修护面霜, price: 268, prices: {koc: 228}, benefits: {default: 送旅行装}}
          - {id: c, name: 羽绒马甲, price: 459, benefits: {default: 顺丰包邮}}
    """,
    "sop/daily.yaml": """
        id: daily
        name: 每日好物
        audience:
          exclude: 免打扰
        steps:
          - id: pick
            daily: "10:00"
            template: pick
    """,
    "templates/default/pick.j2": """
        {% set item = catalog.first() %}
        {{ contact.display_name }}，{{ today.weekday }}好物：{{ item.name }}
        {{ contact.tier_name }}价 {{ item.price }}{{ item.currency }}，{{ item.benefit }}
    """,
    "templates/koc/pick.j2": """
        {% set item = catalog.first() %}
        亲爱的{{ contact.display_name }}，KOC专享：{{ item.name }} {{ item.price }}{{ item.currency }}
        ---
        [图片] https://img.example.com/{{ item.id }}.jpg
    """,
}


def seed(database: Database, count: int) -> None:
    now = AT
    with database.session() as session:
        session.execute(
            insert(Account), [{"id": "main", "name": "bench", "transport": "sandbox", "status": "online"}]
        )
        session.execute(
            insert(Contact),
            [
                {
                    "account_id": "main",
                    "wxid": f"wxid_{i}",
                    "name": f"客户{i}",
                    "alias": None if i % 3 else f"备注{i}",
                    "is_friend": True,
                    "blocked": False,
                    "opted_out": i % 97 == 0,
                    "tier": TIERS[i % 5],
                    "friend_added_at": now,
                    "first_seen_at": now,
                }
                for i in range(count)
            ],
        )
        session.execute(insert(Tag), [{"name": "活动喜好型"}, {"name": "免打扰"}])
        session.execute(
            insert(ContactTag),
            [
                {"contact_id": i + 1, "tag_id": 1 if i % 4 else 2, "source": "rule", "added_at": now}
                for i in range(0, count, 2)
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, text in FILES.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        database = Database(f"sqlite:///{root / 'bench.db'}")
        upgrade(database)
        started = time.perf_counter()
        seed(database, args.contacts)
        print(f"seeded {args.contacts:,} contacts in {time.perf_counter() - started:.2f}s")
        sopset = load_sop_set(root / "sop", root / "templates", ZoneInfo("Asia/Shanghai"))
        sop = sopset.sops["daily"]
        step = sop.steps[0]

        # the baseline: the same renders and rows, with the contexts prepared beforehand
        with database.session(read_only=True) as session:
            people = select_contacts(load_directory(session, sopset.groups), step)
        factory = ContextFactory(
            sop, step, AT.astimezone(sop.tz), sopset.calendar, sopset.catalog, sopset.tiers
        )
        contexts = [(c, factory.for_contact(c)) for c in people]
        templates = {t: sopset.renderer.env.get_template(sopset.renderer.resolve("pick", [t])) for t in TIERS}
        started = time.perf_counter()
        messages = [
            PlannedMessage(
                key=sop_key("daily", "pick", "bench", recipient_ref(contact_id=c.id)),
                account_id="main",
                origin=Origin.SOP,
                parts=parse_parts(templates[c.tier].render(ctx)),
                not_before=AT,
                contact_id=c.id,
                category=Category.MARKETING,
                sop_id="daily",
                step_id="pick",
                occurrence="bench",
            )
            for c, ctx in contexts
        ]
        with database.session() as session:
            enqueue(session, messages, AT)
        baseline = time.perf_counter() - started
        with database.session() as session:
            session.execute(delete(OutboxMessage))

        started = time.perf_counter()
        result = execute(database, sopset, sop, step, AT, RunDecision.RAN, AT)
        full = time.perf_counter() - started
        with database.session(read_only=True) as session:
            ledger = len(session.execute(select(SopRun.id)).all())
        print(
            f"recipients: {result.planned:,} planned ({len(messages):,} in the baseline), ledger rows: {ledger}"
        )
        print(f"baseline (renders + bulk insert): {baseline:.2f}s")
        print(f"full fan-out (audience + context + renders + outbox + ledger): {full:.2f}s")
        print(f"ratio: {full / baseline:.2f}x   (targets: ≤ 5 s, ≤ 2x)")
        database.dispose()


if __name__ == "__main__":
    main()
