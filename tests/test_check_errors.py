"""Every kind of mistake in SOP files and templates, with the exact message `sopbot check`
prints for it (and the daemon logs when it rejects an edit)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bot.config.errors import ConfigError
from bot.sop.authoring.check import check_all, load_checked
from tests.sop_support import BASIC_TEMPLATES, NOW, project

GOOD_STEP = textwrap.dedent(
    """
    id: daily
    name: 每日
    steps:
      - id: morning
        daily: "10:00"
        template: hello
    """
).lstrip()


def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> list[str]:
    settings = project(tmp_path / "p", {**BASIC_TEMPLATES, **files}, monkeypatch)
    _, issues = check_all(settings, NOW)
    return [str(issue) for issue in issues]


CASES = [
    pytest.param(
        {
            "sop/weekly.yaml": """
                id: weekly
                name: 每周
                steps:
                  - id: mon
                    weekly: [mon]
                    at: "10:00"
                    template: hello
                  - id: wed
                    weekly: [wed]
                    at: "25:00"
                    template: hello
            """
        },
        ["sop/weekly.yaml:10: steps[1].at: '25:00' is not a time"],
        id="bad-time",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', 'daily: ["10:00", "9点"]')},
        ["sop/a.yaml:5: steps[0].daily[1]: '9点' is not a time"],
        id="bad-time-in-list",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace("template: hello", "tempalte: hello")},
        ["sop/a.yaml:6: steps[0].tempalte: unknown field (check the spelling)"],
        id="unknown-field",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace("name: 每日\n", "")},
        ["sop/a.yaml:1: name: required field is missing"],
        id="missing-field",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "weekly: [mon, funday]\n    at: '10:00'")},
        ["sop/a.yaml:5: steps[0].weekly: 'funday' is not a weekday (use mon, tue, wed, thu, fri, sat, sun)"],
        id="bad-weekday",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "monthly: [18, 32]\n    at: '10:00'")},
        [
            "sop/a.yaml:5: steps[0].monthly[1]: 32 is not a day of the month "
            "(write 18, last, '2nd sat', 'last fri', 第2个周六 or 最后一天)"
        ],
        id="bad-month-day",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "on_missed: catch_up\ngrace: soon\n"},
        ["sop/a.yaml:8: grace: 'soon' is not a duration (write it like '15m', '2h' or '3d')"],
        id="bad-duration",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "on_missed: later\n"},
        ["sop/a.yaml:7: on_missed: Input should be 'skip' or 'catch_up' (got 'later')"],
        id="bad-policy",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "timezone: Mars/Olympus\n"},
        ["sop/a.yaml:7: timezone: 'Mars/Olympus' is not an IANA time zone such as 'Asia/Shanghai'"],
        id="bad-timezone",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', 'daily: "10:00"\n    festival: 春节')},
        [
            "sop/a.yaml:4: steps[0]: give exactly one schedule: daily, weekly, monthly, festival, "
            "window, birthday, after (found daily, festival)"
        ],
        id="two-schedules",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "festival: 春节")},
        ["sop/a.yaml:4: steps[0]: a festival step needs 'at' (the time to send, like '10:00')"],
        id="festival-without-time",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "festival: 春截\n    at: '09:00'")},
        [
            "sop/a.yaml:5: steps[0].festival[0]: unknown festival '春截'; did you mean 春节? (add your own dates in sop/dates.yaml)"
        ],
        id="unknown-festival",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "audience:\n  tiers: [复购会员, vip]\n"},
        [
            "sop/a.yaml:8: audience.tiers[1]: unknown tier 'vip' (known: basic 基础用户, prospect 未购会员, "
            "customer 已购会员, repeat 复购会员, koc 品牌KOC)"
        ],
        id="unknown-tier",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "audience:\n  tags: 活动喜好型 and (新品关注型\n"},
        ["sop/a.yaml:8: audience.tags: at column 11: this '(' is never closed"],
        id="bad-tag-expression",
    ),
    pytest.param(
        {
            "sop/groups.yaml": "groups:\n  - match: 【精英会员群】*\n    type: 精英会员群\n",
            "sop/a.yaml": GOOD_STEP.replace("template: hello", "template: group_hello")
            + "audience:\n  to: groups\n  group_types: [VIP群]\n",
        },
        ["sop/a.yaml:9: audience.group_types[0]: unknown group type 'VIP群' (known: 精英会员群)"],
        id="unknown-group-type",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace("template: hello", "template: hallo")},
        ["sop/a.yaml:6: steps[0].template: no template 'hallo' (looked for templates/default/hallo.j2)"],
        id="missing-template",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP, "sop/b.yaml": GOOD_STEP},
        ["sop/b.yaml:1: id: 'daily' is already the id of sop/a.yaml"],
        id="duplicate-sop-id",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "  - id: morning\n    daily: '11:00'\n    template: hello\n"},
        ["sop/a.yaml:7: steps[1].id: 'morning' is used twice in this SOP"],
        id="duplicate-step-id",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "after: 1d")},
        ["sop/a.yaml:5: steps[0].after: a lifecycle step needs an 'event' (on the step or the SOP)"],
        id="lifecycle-without-event",
    ),
    pytest.param(
        {
            "sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "after: 2h\n    at: '10:00'")
            + "event: friend_added\n"
        },
        ["sop/a.yaml:4: steps[0]: 'at' needs 'after' in whole days (like '3d')"],
        id="lifecycle-at-needs-days",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "after: 3000000d") + "event: friend_added\n"},
        ["sop/a.yaml:5: steps[0].after: at most 3650d (got '3000000d')"],
        id="lifecycle-after-too-long",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "event: {kind: tier_changed, to: 大客户}\n"},
        [
            "sop/a.yaml:7: event.to: unknown tier '大客户' (known: basic 基础用户, prospect 未购会员, "
            "customer 已购会员, repeat 复购会员, koc 品牌KOC)"
        ],
        id="event-unknown-tier",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "event: friend_blocked\n"},
        [
            "sop/a.yaml:7: event.kind: Input should be 'friend_added', 'friend_deleted', 'joined_group', "
            "'left_group', 'first_purchase', 'purchase', 'tier_changed', 'tag_added', 'tag_removed', "
            "'opted_out', 'opted_in', 'field_set' or 'referral_converted' (got 'friend_blocked')"
        ],
        id="unknown-event",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "event: friend_deleted\n"},
        [
            "sop/a.yaml:7: event.kind: friend_deleted cannot start a lifecycle step: a contact who "
            "deleted the account cannot be sent to"
        ],
        id="deleted-event",
    ),
    pytest.param(
        {"sop/a.yaml": "id: a\nname: x\nsteps:\n  - id: s\n    daily: '10:00'\n     template: hello\n"},
        [
            "sop/a.yaml:6: invalid YAML: while parsing a block mapping expected <block end>, "
            "but found '<block mapping start>'"
        ],
        id="invalid-yaml",
    ),
    pytest.param(
        {"sop/a.yaml": GOOD_STEP + "name: 又一个\n"},
        ["sop/a.yaml:7: name: key is given twice"],
        id="duplicate-key",
    ),
    pytest.param(
        {"sop/catalog.yaml": "items:\n  - id: scarf\n    name: 围巾\n    price: 很贵\n"},
        ["sop/catalog.yaml:4: items[0].price: '很贵' is not a price"],
        id="catalog-bad-price",
    ),
    pytest.param(
        {"sop/catalog.yaml": "items:\n  - id: scarf\n    name: 围巾\n    price: 99\n    prices: {vip: 89}\n"},
        [
            "sop/catalog.yaml:5: items[0].prices.vip: unknown tier 'vip' (known: basic 基础用户, "
            "prospect 未购会员, customer 已购会员, repeat 复购会员, koc 品牌KOC)"
        ],
        id="catalog-unknown-tier",
    ),
    pytest.param(
        {"sop/dates.yaml": "dates:\n  - id: anniversary\n    name: 周年庆\n    date: 13-45\n"},
        ["sop/dates.yaml:4: dates[0].date: invalid date rule '13-45': month must be in 1..12"],
        id="dates-bad-rule",
    ),
    pytest.param(
        {"templates/default/hello.j2": "你好{{ contact.name }\n"},
        ["templates/default/hello.j2:1: syntax error: unexpected '}'"],
        id="template-syntax",
    ),
    pytest.param(
        {"templates/default/hello.j2": "你好\n{{ customer.name }}\n"},
        [
            "templates/default/hello.j2:2: unknown variable 'customer' (known: contact, group, today, sop, step, catalog)"
        ],
        id="template-unknown-variable",
    ),
    pytest.param(
        {"templates/default/hello.j2": "你好\n\n{{ contact.nmae }}\n"},
        [
            "templates/default/hello.j2:3: unknown attribute 'contact.nmae' (contact has: alias, birthday, "
            "birthday_text, city, days_since_joined, display_name, fields, gender, last_order, name, "
            "order_count, tags, tier, tier_name, total_spent)"
        ],
        id="template-unknown-attribute",
    ),
    pytest.param(
        {"templates/default/hello.j2": "{{ today.next_festival.when }}"},
        [
            "templates/default/hello.j2:1: unknown attribute 'today.next_festival.when' (today.next_festival has: date, days, name)"
        ],
        id="template-unknown-nested-attribute",
    ),
    pytest.param(
        {"templates/default/hello.j2": "{% for item in catalog.pick(2) %}{{ item.prize }}{% endfor %}x"},
        [
            "templates/default/hello.j2:1: unknown attribute 'item.prize' (item has: benefit, currency, description, "
            "discounted, id, image, list_price, name, price, tags, url)"
        ],
        id="template-unknown-item-field",
    ),
    pytest.param(
        {"templates/default/hello.j2": "第一行\n{{ catalog.get('no_such_item').name }}\n"},
        ["templates/default/hello.j2:2: no catalog item 'no_such_item' (sample basic)"],
        id="template-dry-render",
    ),
    pytest.param(
        {"templates/default/hello.j2": "{% if false %}x{% endif %}\n"},
        ["templates/default/hello.j2: renders to an empty message (sample basic)"],
        id="template-empty",
    ),
]


@pytest.mark.parametrize(("files", "expected"), CASES)
def test_each_error_has_its_exact_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: list[str]
) -> None:
    base = (
        {"sop/a.yaml": GOOD_STEP}
        if not any(k.startswith("sop/") and k != "sop/catalog.yaml" and k != "sop/dates.yaml" for k in files)
        else {}
    )
    assert problems(tmp_path, monkeypatch, {**base, **files}) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(
        tmp_path,
        monkeypatch,
        {
            "sop/a.yaml": GOOD_STEP.replace('"10:00"', '"25:00"'),
            "sop/b.yaml": GOOD_STEP.replace("id: daily", "id: other").replace(
                "template: hello", "template: nope"
            ),
            "templates/default/hello.j2": "{{ who }}",
        },
    )
    assert [line.split(":")[0] for line in found] == [
        "sop/a.yaml",
        "sop/b.yaml",
        "templates/default/hello.j2",
    ]


def test_birthday_steps_are_for_contacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = problems(
        tmp_path,
        monkeypatch,
        {
            "sop/a.yaml": GOOD_STEP.replace('daily: "10:00"', "birthday: true\n    at: '09:00'").replace(
                "template: hello", "template: group_hello"
            )
            + "audience:\n  to: groups\n"
        },
    )
    assert found == ["sop/a.yaml:5: steps[0].birthday: birthdays are for contacts, not groups"]


def test_the_shipped_files_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.sop_support import REPO
    from tests.support import make_settings

    monkeypatch.chdir(REPO)
    settings = make_settings(
        tmp_path / "p", f'sop_dir = "{REPO / "sop"}"\ntemplates_dir = "{REPO / "templates"}"\n'
    )
    sopset = load_checked(settings, NOW)
    shipped = {
        "daily_pick",
        "weekly_plan",
        "member_day",
        "festival_year",
        "welcome",
        "post_purchase",
        "koc_care",
    }
    assert shipped <= set(sopset.sops)


def test_load_checked_raises_with_all_issues(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = project(
        tmp_path / "p", {**BASIC_TEMPLATES, "sop/a.yaml": GOOD_STEP.replace("hello", "nope")}, monkeypatch
    )
    with pytest.raises(ConfigError) as caught:
        load_checked(settings, NOW)
    assert [str(i) for i in caught.value.issues] == [
        "sop/a.yaml:6: steps[0].template: no template 'nope' (looked for templates/default/nope.j2)"
    ]
