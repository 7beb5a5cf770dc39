"""The contacts page's search: the filter language run as SQL gives exactly the contacts
`sopbot contacts --where` gives (its own code decides the expected set), page by page,
forwards and backwards, on SQLite and PostgreSQL, and when rows must be checked one by one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli.contacts_cmd import _subject
from bot.console import contacts as people
from bot.console import filters
from bot.signals.expr import parse
from bot.signals.tiers_ladder import DEFAULT_LADDER
from bot.store import Database
from bot.store.directory import list_contacts
from bot.store.models import Account, Contact, ContactTag, Order, Tag
from tests.support import sqlite_database

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
TAGS = [
    "活动喜好型",
    "新品关注型",
    "免打扰",
    "VIP 客户",
    "价值等级/高",
    "价值等级/中",
    "价值等级/低",
    "会员",
    "口碑分享",
]
CITIES = ["上海", " 上海 ", "上海\u3000", "北京", "SHANGHAI", "Shanghai", "", None]
GENDERS = ["male", "female", "女", "男", "F", None, "保密"]
CARDS = ["1,200", "800", "abc", "1200.5", None]

EXPRESSIONS = [
    "tier >= customer",
    "tier < prospect or tag:会员",
    "tier in (repeat, koc) and not tag:免打扰",
    'tier not in (basic, "未购会员")',
    "tag:活动喜好型 and tag:新品关注型",
    'tag:"VIP 客户" or tag:价值等级/*',
    "tag:* and not tag:价值等级/*",
    "not tag:*",
    "tag:没有这个标签",
    "not tag:没有这个标签 and is_friend",
    "opted_out or blocked",
    "not (opted_out or blocked) and has_ordered",
    "has_ordered 且 非 tier == koc",
    "field:城市",
    "not field:城市",
    "field:城市 == 上海",
    "field:city == shanghai or field:性别 == 女",
    "field:城市 != 上海 and tier >= prospect",
    "field:性别 in (男, 女)",
    "field:性别 not in (男)",
    "field:会员卡号 > 1000",
    "field:会员卡号 <= 800 or not field:会员卡号",
    "field:职业",
    "not (field:职业 == 教师 or tag:会员) and tier != basic",
    'field:城市 == ""',
]


def seed(database: Database, count: int = 260, seed: int = 17) -> None:
    rng = random.Random(seed)
    with database.session() as session:
        for account in ("main", "second"):
            session.add(Account(id=account, name=account, transport="sandbox", updated_at=NOW))
        session.flush()
        tags = []
        for name in TAGS:
            tag = Tag(name=name)
            session.add(tag)
            tags.append(tag)
        session.flush()
        for number in range(count):
            tier = rng.choice(DEFAULT_LADDER.ids)
            if number % 23 == 0:
                tier = DEFAULT_LADDER.name(tier)  # a display name stored as the tier (older rows)
            own: dict[str, str] = {}
            if (card := rng.choice(CARDS)) is not None:
                own["会员卡号"] = card
            if rng.random() < 0.3:
                own["职业"] = rng.choice(["教师", "医生", " 教师 "])
            contact = Contact(
                account_id=rng.choice(("main", "second")), wxid=f"wxid_{number:04d}", name=f"客户{number:04d}",
                alias=f"备注{number % 7}" if number % 3 else None, tier=tier, is_friend=rng.random() < 0.8,
                opted_out=rng.random() < 0.15, blocked=rng.random() < 0.1, city=rng.choice(CITIES),
                gender=rng.choice(GENDERS), custom_fields=own or None, first_seen_at=NOW,
            )  # fmt: skip
            session.add(contact)
            session.flush()
            for tag in rng.sample(tags, rng.randint(0, 3)):
                session.add(ContactTag(contact_id=contact.id, tag_id=tag.id, source="rule", added_at=NOW))
            if rng.random() < 0.3:
                session.add(
                    Order(
                        order_id=f"o{number}", contact_id=contact.id, amount_cents=100,
                        ordered_at=NOW - timedelta(days=rng.randint(0, 200)), status=rng.choice(["paid", "refunded"]),
                    )
                )  # fmt: skip


def expected(database: Database, text: str) -> list[int]:
    """What `sopbot contacts --where TEXT` lists, by its own code, in id order."""
    from sqlalchemy import select

    expr = parse(text, DEFAULT_LADDER)
    with database.session(read_only=True) as session:
        rows = list_contacts(session)
        blocked = set(session.execute(select(Contact.id).where(Contact.blocked.is_(True))).scalars())
        ordered = set(
            session.execute(select(Order.contact_id).where(Order.contact_id.is_not(None))).scalars()
        )
    return sorted(row.id for row in rows if expr.evaluate(_subject(row, blocked, ordered)))


def every_page(database: Database, query: people.ContactQuery) -> tuple[list[int], list[people.ContactPage]]:
    found: list[int] = []
    pages = []
    cursor: int | None = None
    while True:
        with database.session(read_only=True) as session:
            page = people.search(
                session, people.ContactQuery(where=query.where, text=query.text, after=cursor)
            )
        pages.append(page)
        ids = [row.id for row in page.rows]
        assert len(ids) <= people.PAGE
        found += ids
        if page.next_after is None:
            return found, pages
        assert page.next_after > (cursor or 0)
        cursor = page.next_after


def every_page_backwards(database: Database, query: people.ContactQuery, start: int) -> list[int]:
    found: list[int] = []
    cursor: int | None = start
    while cursor is not None:
        with database.session(read_only=True) as session:
            page = people.search(session, people.ContactQuery(where=query.where, before=cursor))
        found = [row.id for row in page.rows] + found
        cursor = page.prev_before
    return found


@pytest.mark.parametrize("checked_in_python", [False, True], ids=["sql", "checked"])
def test_the_filter_in_sql_lists_what_the_cli_lists(
    database: Database, checked_in_python: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(database)
    if checked_in_python:  # the PostgreSQL way on every backend: a pre-selection checked row by row
        monkeypatch.setattr(filters, "_can_register", lambda session: False)
        monkeypatch.setattr(people, "SCAN_BUDGET", 40)  # pages end early and go on where they stopped
        monkeypatch.setattr(people, "CHUNK", 13)
    inexact = 0
    for text in EXPRESSIONS:
        want = expected(database, text)
        query = people.ContactQuery(where=parse(text, DEFAULT_LADDER))
        found, pages = every_page(database, query)
        assert found == want, text
        if pages[0].total is None:
            inexact += 1
        else:
            assert pages[0].total == len(want), text
        top = (max(want) + 1) if want else 1
        assert every_page_backwards(database, query, top) == want, text
    if checked_in_python or database.dialect != "sqlite":
        assert inexact >= 10  # the field tests took the checked path
    else:
        assert inexact == 0  # on SQLite every expression is exact SQL


def test_name_search_and_the_expression_together(database: Database) -> None:
    seed(database, count=80)
    with database.session(read_only=True) as session:
        page = people.search(session, people.ContactQuery(text="备注3", where=parse("tier >= basic")))
        exact = people.search(session, people.ContactQuery(text="wxid_0005"))
        wildcard = people.search(session, people.ContactQuery(text="%"))
    assert page.rows and all(row.alias == "备注3" for row in page.rows)
    assert [row.wxid for row in exact.rows] == ["wxid_0005"]
    assert wildcard.rows == []  # % is a character here, not a wildcard


def test_a_count_stops_at_its_cap(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(database, count=60)
    monkeypatch.setattr(people, "COUNT_CAP", 25)
    with database.session(read_only=True) as session:
        page = people.search(session, people.ContactQuery())
    assert (page.total, page.total_capped) == (25, True)
    assert len(page.rows) == people.PAGE and page.next_after == page.rows[-1].id and page.prev_before is None


def test_a_long_conversation_stops_where_one_side_was_cut(tmp_path: Path) -> None:
    """300 messages from the contact over ten days and one of ours nine days ago: the page
    shows their newest 200 and does not show ours among gaps of theirs."""
    from bot.console.contacts import CONVERSATION, story
    from bot.store.models import InboundMessage, OutboxMessage

    with sqlite_database(tmp_path) as database:
        now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
        with database.session() as session:
            session.add(Account(id="main", name="a", transport="sandbox"))
            session.flush()
            contact = Contact(account_id="main", wxid="wxid_talker", name="话痨", is_friend=True)
            session.add(contact)
            session.flush()
            for n in range(300):
                at = now - timedelta(hours=n * 0.8)
                session.add(InboundMessage(account_id="main", transport_msg_id=f"m{n}", contact_id=contact.id,
                                           text=f"第{n}条", sent_at=at, received_at=at))  # fmt: skip
            session.add(OutboxMessage(key="k1", account_id="main", origin="sop", contact_id=contact.id,
                                      payload=[{"type": "text", "text": "早安"}], state="sent",
                                      sent_at=now - timedelta(days=9), created_at=now - timedelta(days=9)))  # fmt: skip
            contact_id = contact.id
        with database.session(read_only=True) as session:
            shown = story(session, contact_id)
        assert shown is not None
        theirs = [s for s in shown.conversation if s.inbound]
        assert len(theirs) == CONVERSATION and not [s for s in shown.conversation if not s.inbound]
