"""Opt-out as people type it: the shipped rules in sop/tags.yaml, the real matcher and
conversation code, a real SQLite file. Full-width letters, punctuation, emoji and spaces
do not matter; a sentence that only mentions 退订 does not opt anyone out; a question
about opting out gets told how; and the contact is confirmed once per change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.clock import FrozenClock
from bot.signals.matcher import Matcher
from bot.signals.normalize import fold, phrase_key
from bot.signals.rules import parse_tags
from bot.store.models import Contact, ContactEvent
from tests.signals_kit import EventTap, running_bot
from tests.support import T0, TestBot, outbox_rows

LIN = "wxid_lin_xiaoyu"
GROUP = "10001@chatroom"  # 林小雨 is in it
OPT_RULES = {"opt_out", "opt_in", "opt_out_question"}

OUT, IN = True, False
CONFIRM_OUT, CONFIRM_IN, HOW_TO = "opt_out", "opt_in", "opt_out_question"

# (what the contact types, opted out before, opted out after, the opt reply planned)
CASES = [
    # -- opting out, as typed on phones
    ("退订", IN, OUT, CONFIRM_OUT),
    ("TD", IN, OUT, CONFIRM_OUT),
    ("td", IN, OUT, CONFIRM_OUT),
    ("ＴＤ", IN, OUT, CONFIRM_OUT),  # full-width
    ("ｔｄ", IN, OUT, CONFIRM_OUT),
    ("T", IN, OUT, CONFIRM_OUT),
    ("Ｔ", IN, OUT, CONFIRM_OUT),
    ("T D", IN, OUT, CONFIRM_OUT),
    ("退订。", IN, OUT, CONFIRM_OUT),
    ("退订！", IN, OUT, CONFIRM_OUT),
    ("退订!!!", IN, OUT, CONFIRM_OUT),
    ("退订～", IN, OUT, CONFIRM_OUT),
    ("退订...", IN, OUT, CONFIRM_OUT),
    ("  退订  ", IN, OUT, CONFIRM_OUT),
    ("退\u3000订", IN, OUT, CONFIRM_OUT),  # an ideographic space in between
    ("退订🙏", IN, OUT, CONFIRM_OUT),
    ("退订🙏🏻", IN, OUT, CONFIRM_OUT),  # with a skin tone
    ("❤️退订", IN, OUT, CONFIRM_OUT),
    ("退订[抱拳]", IN, OUT, CONFIRM_OUT),  # a WeChat emoji arrives as its name
    ("【退订】", IN, OUT, CONFIRM_OUT),
    ("“退订”", IN, OUT, CONFIRM_OUT),
    ("退订，谢谢", IN, OUT, CONFIRM_OUT),
    ("退订谢谢！", IN, OUT, CONFIRM_OUT),
    ("退订退订", IN, OUT, CONFIRM_OUT),
    ("退", IN, OUT, CONFIRM_OUT),
    ("取消订阅", IN, OUT, CONFIRM_OUT),
    ("取消推送。", IN, OUT, CONFIRM_OUT),
    ("不要再发了", IN, OUT, CONFIRM_OUT),
    ("不要再发了！！！😡", IN, OUT, CONFIRM_OUT),
    ("别再发了。。。", IN, OUT, CONFIRM_OUT),
    ("别发了", IN, OUT, CONFIRM_OUT),
    ("别发了，谢谢", IN, OUT, CONFIRM_OUT),
    ("拒收", IN, OUT, CONFIRM_OUT),
    ("请勿打扰", IN, OUT, CONFIRM_OUT),
    ("Unsubscribe", IN, OUT, CONFIRM_OUT),
    # -- already opted out: no second confirmation
    ("退订", OUT, OUT, None),
    ("ＴＤ！", OUT, OUT, None),
    # -- opting back in
    ("订阅", OUT, IN, CONFIRM_IN),
    ("订阅。", OUT, IN, CONFIRM_IN),
    ("恢复订阅", OUT, IN, CONFIRM_IN),
    ("重新订阅！", OUT, IN, CONFIRM_IN),
    ("取消退订", OUT, IN, CONFIRM_IN),
    ("继续发", OUT, IN, CONFIRM_IN),
    ("继续发吧😊", OUT, IN, CONFIRM_IN),
    ("恢复推送", OUT, IN, CONFIRM_IN),
    # -- never left: nothing to confirm
    ("订阅", IN, IN, None),
    # -- must NOT opt out: sentences that mention it, other meanings of 退 and T
    ("我不想退订", IN, IN, None),
    ("我没说要退订", IN, IN, None),
    ("上次说退订的那个活动还有吗", IN, IN, None),
    ("退订了吗", IN, IN, None),
    ("这件T恤不错", IN, IN, None),
    ("T恤", IN, IN, None),
    ("TDD", IN, IN, None),
    ("STD", IN, IN, None),
    ("T_T", IN, IN, None),  # a crying face
    ("退货", IN, IN, None),
    ("怎么退款", IN, IN, None),
    ("退订单", IN, IN, None),
    ("怎么退订单？", IN, IN, None),  # asks about an order, not about messages
    ("不需要了", IN, IN, None),  # about a product, most of the time
    ("谢谢", IN, IN, None),
    ("👍", IN, IN, None),
    ("[抱拳]", IN, IN, None),
    # -- must NOT opt back in
    ("订阅号", OUT, OUT, None),
    ("我不想订阅", OUT, OUT, None),
    # -- questions about opting out: told how, nothing decided for them
    ("怎么退订", IN, IN, HOW_TO),
    ("如何退订？", IN, IN, HOW_TO),
    ("请问怎么退订呀", IN, IN, HOW_TO),
    ("怎么取消订阅", IN, IN, HOW_TO),
    ("怎样才能不收到这些消息", IN, IN, HOW_TO),
    ("退订怎么操作", IN, IN, HOW_TO),
    ("可以退订吗", IN, IN, HOW_TO),
    ("能不能退订", IN, IN, HOW_TO),
    ("在哪里退订", IN, IN, HOW_TO),
    ("退订是什么意思", IN, IN, HOW_TO),
    ("怎么恢复订阅", OUT, OUT, HOW_TO),
]


@pytest.fixture(scope="module")
def optbot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestBot, FrozenClock]]:
    """One bot for the whole table (each row sets the contact's state first)."""
    clock = FrozenClock(T0)
    with running_bot(tmp_path_factory.mktemp("optout") / "project", clock) as bot:
        yield bot, clock


def set_opted_out(bot: TestBot, wxid: str, value: bool) -> None:
    with bot.database.session() as session:
        session.execute(update(Contact).where(Contact.wxid == wxid).values(opted_out=value))


def opt_replies(bot: TestBot, msg_id: str) -> list[str]:
    """The opt-out / opt-in / how-to replies planned for one message, by rule id."""
    keys = [row.key.split(":") for row in outbox_rows(bot.database) if row.key.startswith("reply:")]
    return [rule for _, rule, _, ref in keys if ref == msg_id and rule in OPT_RULES]


def test_the_table_has_thirty_real_variants_each_way() -> None:
    assert sum(1 for _, before, after, _ in CASES if before is IN and after is OUT) >= 30
    assert sum(1 for _, before, after, _ in CASES if after == before) >= 30


@pytest.mark.parametrize(("text", "before", "after", "reply"), CASES)
def test_what_people_type(
    optbot: tuple[TestBot, FrozenClock], text: str, before: bool, after: bool, reply: str | None
) -> None:
    bot, clock = optbot
    set_opted_out(bot, LIN, before)
    clock.advance(timedelta(days=2))  # past every rule's cooldown
    message = bot.say(LIN, text)
    assert bot.contact(LIN).opted_out is after
    assert opt_replies(bot, message.msg_id) == ([reply] if reply else [])


def test_in_a_group_it_is_not_an_opt_out(optbot: tuple[TestBot, FrozenClock]) -> None:
    bot, clock = optbot
    set_opted_out(bot, LIN, False)
    clock.advance(timedelta(days=2))
    message = bot.say(LIN, "退订", room=GROUP)
    assert not bot.contact(LIN).opted_out
    assert opt_replies(bot, message.msg_id) == []


def test_saying_it_twice_gets_one_confirmation(tmp_path: Path, clock: FrozenClock) -> None:
    with running_bot(tmp_path / "project", clock) as bot:
        tap = EventTap(bot)
        bot.say(LIN, "退订")
        bot.say(LIN, "退订。")
        bot.say(LIN, "ＴＤ")
        # a burst: the pipeline may take these in one unit of work
        bot.run(bot.transport.say(LIN, "退订！"))
        bot.run(bot.transport.say(LIN, "T"))
        bot.settle()
        contact = bot.contact(LIN)
        assert contact.opted_out and "免打扰" in contact.tags
        confirmations = [r for r in outbox_rows(bot.database) if r.key.startswith("reply:opt_out:")]
        assert len(confirmations) == 1
        sent = [record.content.text for record in bot.deliver() if record.target.wxid == LIN]
        assert len([text for text in sent if "已为您退订" in text]) == 1
        assert [kind for kind, _ in tap.kinds(contact.id)].count("opted_out") == 1

        bot.say(LIN, "订阅")
        bot.say(LIN, "订阅！")
        assert [r.key.split(":")[1] for r in outbox_rows(bot.database)].count("opt_in") == 1
        bot.say(LIN, "退订")  # a real change again: confirmed again
        assert [r.key.split(":")[1] for r in outbox_rows(bot.database)].count("opt_out") == 2
        with bot.database.session(read_only=True) as session:
            kinds = session.execute(
                select(ContactEvent.kind)
                .where(ContactEvent.contact_id == contact.id)
                .order_by(ContactEvent.id)
            ).scalars()
            opt_events = [kind for kind in kinds if kind in ("opted_out", "opted_in")]
        assert opt_events == ["opted_out", "opted_in", "opted_out"]


def test_a_question_is_answered_once_a_day_and_the_answer_says_how(
    tmp_path: Path, clock: FrozenClock
) -> None:
    with running_bot(tmp_path / "project", clock) as bot:
        bot.say(LIN, "怎么退订？")
        bot.say(LIN, "如何退订")
        assert not bot.contact(LIN).opted_out
        [answer] = [r for r in outbox_rows(bot.database) if r.key.startswith("reply:opt_out_question:")]
        text = answer.payload[0]["text"]
        assert text.startswith("林小雨您好") and "回复「退订」" in text and "回复「订阅」" in text


# -- the normalisation on its own ------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("ＴＤ", "td"),
        ("退订。", "退订"),
        ("退订，谢谢！", "退订谢谢"),
        ("退订🙏🏻", "退订"),
        ("退订[抱拳]", "退订"),
        ("[退订]", "退订"),  # only an emoji name: its letters stay
        ("T_T", "tt"),
        ("👍", ""),
        ("我不想退订", "我不想退订"),
    ],
)
def test_phrase_keys(typed: str, key: str) -> None:
    assert phrase_key(typed) == key


def test_keywords_and_excludes_are_compared_folded_and_regex_as_written() -> None:
    matcher = Matcher(
        parse_tags(
            "rules:\n"
            "  - {id: vip, match: {keywords: [VIP]}, actions: [{add_tag: a}]}\n"
            "  - {id: deal, match: {keywords: [优惠], exclude: [ｎｏ]}, actions: [{add_tag: b}]}\n"
            "  - {id: ok, match: {exact: ['👌']}, actions: [{add_tag: c}]}\n"
            "  - {id: colon, match: {regex: ['：']}, actions: [{add_tag: d}]}\n"
        ).rules
    )
    assert [h.rule.id for h in matcher.match("ｖｉｐ价多少")] == ["vip"]
    assert [h.rule.id for h in matcher.match("有优惠吗 no")] == []
    assert [h.rule.id for h in matcher.match("👌")] == ["ok"]  # a phrase of only an emoji still matches
    assert [h.rule.id for h in matcher.match("👌👌")] == []
    assert [h.rule.id for h in matcher.match("价格：")] == ["colon"]
    assert fold("ＶＩＰ") == "vip"
