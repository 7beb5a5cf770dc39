"""Birthdays as people write them (solar and lunar) and `field:` in the filter language."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.birthdays import BirthdayError, birthday_matches, describe, parse_birthday
from bot.clock import FrozenClock
from bot.config.errors import ConfigError
from bot.signals.expr import ExprError, FieldTest, Subject, parse
from bot.signals.rules import parse_tags
from bot.store.models import ContactEvent
from tests.signals_kit import running_bot
from tests.support import T0

LIN = "wxid_lin_xiaoyu"


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("1990-05-20", "1990-05-20"),
        ("1990/5/20", "1990-05-20"),
        ("1990年5月20日", "1990-05-20"),
        ("5月20日", "05-20"),
        ("5月20号", "05-20"),
        ("05-20", "05-20"),
        ("5.20", "05-20"),
        ("02-29", "02-29"),
        (date(1988, 12, 1), "1988-12-01"),  # an Excel date cell
        ("农历八月十五", "农历08-15"),
        ("农历8月15日", "农历08-15"),
        ("阴历腊月初八", "农历12-08"),
        ("八月十五（农历）", "农历08-15"),
        ("正月初一", "农历01-01"),  # Chinese month names are the lunar calendar
        ("农历冬月廿三", "农历11-23"),
        ("农历 1990-08-15", "农历1990-08-15"),
        ("农历三月三十", "农历03-30"),
    ],
)
def test_birthdays_are_read_as_people_write_them(written: str | date, stored: str) -> None:
    assert parse_birthday(written) == stored
    assert parse_birthday(stored) == stored  # the stored form reads back as itself


@pytest.mark.parametrize(
    "bad", ["明天", "13月1日", "02-30", "1990-02-29", "农历十三月初一", "农历八月三十一", ""]
)
def test_a_non_birthday_is_refused_with_what_is_accepted(bad: str) -> None:
    with pytest.raises(BirthdayError, match=r"not a birthday|no day|lunar month|day is out of range"):
        parse_birthday(bad)


def test_a_lunar_birthday_falls_on_its_lunar_date_every_year() -> None:
    # 中秋 (八月十五): 2025-10-06, 2026-09-25, 2027-09-15
    for year, day in ((2025, date(2025, 10, 6)), (2026, date(2026, 9, 25)), (2027, date(2027, 9, 15))):
        hits = [d for d in _year(year) if birthday_matches("农历08-15", d)]
        assert hits == [day], year
    assert describe("农历08-15") == "农历八月十五"
    assert describe("农历12-08") == "农历腊月初八"


def test_a_lunar_30th_falls_on_the_29th_in_a_short_month_and_a_leap_month_repeats_nothing() -> None:
    # 2025 has a leap sixth month (闰六月, 2025-07-25..08-22): a 六月十五 birthday falls once
    hits = [d for d in _year(2025) if birthday_matches("农历06-15", d)]
    assert hits == [date(2025, 7, 9)]
    # every year: one day for a 30th, whether the month has 30 days or 29
    for year in (2025, 2026, 2027):
        assert len([d for d in _year(year) if birthday_matches("农历03-30", d)]) == 1, year


def test_a_solar_birthday_on_the_29th_of_february_falls_on_the_28th_in_common_years() -> None:
    assert birthday_matches("02-29", date(2027, 2, 28))
    assert birthday_matches("2000-02-29", date(2028, 2, 29))
    assert not birthday_matches("2000-02-29", date(2028, 2, 28))


def _year(year: int) -> list[date]:
    start = date(year, 1, 1)
    return [start + timedelta(days=n) for n in range((date(year + 1, 1, 1) - start).days)]


# --------------------------------------------------------------------------- field: in the filter language


def person(**profile: str) -> Subject:
    return Subject("basic", frozenset(), {}, profile)


def test_field_compares_text_case_and_spaces_ignored() -> None:
    shanghai = parse('field:城市 == "上海"')
    assert shanghai(person(城市=" 上海 "))
    assert not shanghai(person(城市="北京"))
    assert not shanghai(person())  # no value is not 上海
    assert parse("field:城市 != 上海")(person())
    assert parse("field:city in (上海, 杭州)")(person(城市="杭州"))  # city is 城市
    assert parse("field:职业 == Teacher")(person(职业="teacher"))
    assert parse("field:城市 not in （上海，杭州）")(person(城市="苏州"))  # full-width as typed


def test_field_alone_means_has_a_value() -> None:
    card = parse("field:会员卡号 and not field:推荐人")
    assert card(person(会员卡号="A001"))
    assert not card(person(会员卡号="  "))
    assert not card(person(会员卡号="A001", 推荐人="王芳"))


def test_field_number_comparisons_are_false_for_non_numbers() -> None:
    adult = parse("field:年龄 >= 18")
    assert adult(person(年龄="30"))
    assert not adult(person(年龄="17"))
    assert not adult(person(年龄="三十"))
    assert not adult(person())


def test_field_expressions_round_trip_through_their_canonical_form() -> None:
    for text in (
        'field:城市 == "上海"',
        "field:city in (上海, 杭州)",
        'field:"职业 类别"',
        "field:年龄 < 18",
    ):
        once = parse(text)
        assert parse(str(once)) == once, str(once)
    assert any(isinstance(n, FieldTest) for n in parse("field:性别 == 女").root.walk())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("field:", "needs a field name"),
        ("field:年龄 >= 三十", "compares numbers"),
        ("field:城市 = 上海", "did you mean '=='"),
        ("field:城市 in 上海", "expected '('"),
        ("field:城市 in (上海", "never closed"),
        ("field:城市 ==", "expected a value"),
    ],
)
def test_a_bad_field_expression_says_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ExprError, match=re.escape(message)):
        parse(text)


# --------------------------------------------------------------------------- a tag rule sets a field


@pytest.mark.parametrize(
    ("said", "stored"),
    [
        ("我生日是5月20号", "05-20"),
        ("我的生日是农历八月十五哦", "农历08-15"),
        ("本人生日在 12月1日", "12-01"),
        ("我生日是腊月初八", "农历12-08"),
    ],
)
def test_the_shipped_rule_records_a_birthday_a_contact_tells(tmp_path: Path, said: str, stored: str) -> None:
    with running_bot(tmp_path / "project", FrozenClock(T0)) as bot:
        bot.say(LIN, said)
        contact = bot.contact(LIN)
        assert contact.profile["生日"] == stored
        assert "已知生日" in contact.tags
        with bot.database.session(read_only=True) as session:
            details = session.execute(
                select(ContactEvent.detail).where(
                    ContactEvent.contact_id == contact.id, ContactEvent.kind == "field_set"
                )
            ).scalars()
            assert list(details) == [f"生日={stored}"]


def test_a_birthday_that_is_no_date_leaves_the_field_as_it_was(tmp_path: Path) -> None:
    with running_bot(tmp_path / "project", FrozenClock(T0)) as bot:
        bot.say(LIN, "我生日是5月20号")
        bot.say(LIN, "我生日是2月30号")  # no such day: logged, not stored
        assert bot.contact(LIN).profile["生日"] == "05-20"


def test_set_field_without_a_regex_group_to_read_is_refused_with_the_line() -> None:
    text = "rules:\n  - id: city\n    match:\n      keywords: [上海]\n    actions:\n      - set_field: 城市\n"
    with pytest.raises(ConfigError) as caught:
        parse_tags(text)
    assert "tags.yaml:2" in str(caught.value) or "tags.yaml:" in str(caught.value)
    assert "takes its value from a regex group" in str(caught.value)
    fixed = parse_tags(text.replace("set_field: 城市", "set_field: {城市: 上海}"))
    action = fixed.rules[0].actions[0]
    assert fixed.rules[0].field_value(action, "我在上海") == ("城市", "上海")


def test_a_fixed_set_field_writes_its_value_when_the_rule_fires(tmp_path: Path) -> None:
    tags = (
        "rules:\n  - id: shanghai\n    match:\n      keywords: [我在上海]\n"
        "    actions:\n      - set_field: {城市: 上海}\n      - set_field: {会员等级: 金卡}\n"
    )
    with running_bot(tmp_path / "project", FrozenClock(T0), tags=tags) as bot:
        bot.say(LIN, "我在上海工作")
        profile = bot.contact(LIN).profile
        assert (profile["城市"], profile["会员等级"]) == ("上海", "金卡")


def test_templates_see_profile_fields_and_a_missing_field_is_empty(tmp_path: Path) -> None:
    from bot.render import Renderer
    from bot.sop.authoring.targeting import load_tiers
    from bot.sop.runtime.context import contact_context, sample_contact

    (tmp_path / "default").mkdir()
    (tmp_path / "default" / "card.j2").write_text(
        "{{ contact.city }}{{ contact.gender }} {{ contact.birthday_text }} "
        "卡号{{ contact.fields.会员卡号 }}{% if contact.fields.职业 %}有职业{% endif %}|{{ contact.fields.职业 }}|",
        encoding="utf-8",
    )
    contact = sample_contact("customer", datetime(2026, 11, 23, tzinfo=UTC))
    lunar = replace(contact, birthday="农历08-15", profile={**contact.profile, "生日": "农历08-15"})
    context = {"contact": contact_context(lunar, load_tiers(), date(2026, 11, 23), UTC)}
    rendered = Renderer(tmp_path).render("card", context)
    assert rendered.parts[0].text == "上海女 农历八月十五 卡号VIP0042||"
