"""No input can hang, crash or exhaust the bot: one named regression test per class of
hostile or accidental input (templates, YAML, settings.toml, webhook, chat, lookups, time
zones with daylight saving, secrets in logs)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.calendar import Calendar
from bot.clock import FrozenClock
from bot.config.errors import ConfigError
from bot.config.settings import load_settings
from bot.config.yaml_source import parse_yaml
from bot.render import Renderer, RenderError
from bot.render_limits import PART_LIMIT
from bot.signals.matcher import MATCH_CHARS, Matcher
from bot.signals.profile import find
from bot.signals.rules import parse_tags
from bot.sop.authoring.check import check_all
from bot.sop.authoring.spec import StepSpec
from bot.sop.authoring.triggers import fire_times, trigger_for
from bot.store.models import Account, Contact, Order
from bot.webhook.server import sign
from tests.signals_kit import REPO
from tests.support import TestBot, make_settings, sqlite_database
from tests.test_webhook import SECRET, count

MEMORY_BOUND = 64 * 1024 * 1024  # bytes Python may allocate while rejecting one bad input

# -- templates that build huge values ----------------------------------------------------------

HUGE_TEMPLATES = {
    "repeat": '{{ "哈" * 1000000000 }}',
    "repeat_reversed": "{{ 1000000000 * [1] }}",
    "format_width": '{{ "{:>999999999}".format(contact.name) }}',
    "percent_width": '{{ "%999999999s" % contact.name }}',
    "method_width": "{{ contact.name.ljust(999999999) }}",
    "filter_width": "{{ contact.name|center(999999999) }}",
    "replace_growth": '{{ ("a" * 90000).replace("a", "aaaaaaaaaa") }}',
    "namespace_doubling": '{% set ns = namespace(s="xx") %}{% for i in range(40) %}'
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "join_of_many": '{{ (["x" * 99999] * 99999)|join }}',
    "sum_of_lists": '{{ ([["x"] * 99999] * 99999)|sum(start=[])|length }}',
    "nested_ranges": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}x",
    "loop_over_a_long_string": '{% set s = "a" * 99999 %}{% for i in s %}{% for j in s %}{% endfor %}'
    "{% endfor %}x",
    "long_output": "{% for i in range(100000) %}哈哈哈哈{% endfor %}",
    "recursion": "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "part_too_long": '{{ "哈" * 2001 }}',
    "power": "{{ 99 ** 99999 }}",
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    folder = tmp_path_factory.mktemp("templates")
    (folder / "default").mkdir()
    for name, text in HUGE_TEMPLATES.items():
        (folder / "default" / f"{name}.j2").write_text(text, encoding="utf-8")
    (folder / "default" / "fine.j2").write_text("{{ contact.name }}，你好\n---\n" + "好" * PART_LIMIT)
    return Renderer(folder)


@pytest.mark.parametrize("name", sorted(HUGE_TEMPLATES))
def test_a_template_that_builds_a_huge_value_fails_with_its_file(templates: Renderer, name: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(RenderError) as raised:
            templates.render(name, {"contact": {"name": "王芳"}})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raised.value.issue.file.endswith(f"default/{name}.j2")
    assert peak < MEMORY_BOUND, f"{peak / 1e6:.0f} MB allocated"


def test_a_template_at_the_limits_still_renders(templates: Renderer) -> None:
    rendered = templates.render("fine", {"contact": {"name": "王芳"}})
    assert len(rendered.parts) == 2 and len(rendered.parts[1].text) == PART_LIMIT  # type: ignore[union-attr]


def shipped_project(folder: Path, settings_text: str = "") -> Path:
    shutil.copytree(REPO / "sop", folder / "sop")
    shutil.copytree(REPO / "templates", folder / "templates")
    make_settings(folder, f'database_url = "sqlite:///{folder / "sopbot.db"}"\n' + settings_text)
    return folder


def test_check_names_the_template_line_of_a_huge_value(tmp_path: Path) -> None:
    folder = shipped_project(tmp_path / "project")
    (folder / "templates" / "default" / "daily_pick.j2").write_text(
        "早上好\n{{ '哈' * 10**9 }}\n", encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"], cwd=folder, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "templates/default/daily_pick.j2:2:" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# -- YAML that expands or nests without end ----------------------------------------------------

ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(9)
)
DEEP_FLOW = "steps: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_BLOCK = "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "v\n"
OPERATOR_FILES = ["daily_pick.yaml", "tags.yaml", "dates.yaml", "catalog.yaml", "groups.yaml"]


@pytest.mark.parametrize(
    "bomb", [ALIAS_BOMB, DEEP_FLOW, DEEP_BLOCK], ids=["aliases", "deep-flow", "deep-block"]
)
def test_yaml_that_expands_or_nests_without_end_is_rejected_with_its_line(bomb: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as raised:
            parse_yaml(bomb, "sop/x.yaml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    issue = raised.value.issues[0]
    assert issue.file == "sop/x.yaml" and issue.line is not None
    assert peak < MEMORY_BOUND


@pytest.mark.parametrize("file", OPERATOR_FILES)
def test_every_operator_yaml_file_rejects_an_alias_bomb_at_check(tmp_path: Path, file: str) -> None:
    folder = shipped_project(tmp_path / "project")
    (folder / "sop" / file).write_text(ALIAS_BOMB, encoding="utf-8")
    settings_ = load_settings(folder / "settings.toml")
    _, issues = check_all(settings_, datetime(2026, 12, 2, 2, 0, tzinfo=ZoneInfo("UTC")))
    assert any(i.file.endswith(f"sop/{file}") and "aliases expand" in i.reason for i in issues), issues


def test_a_control_character_in_tags_yaml_names_its_line() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_tags("rules:\n  - id: a\n    match: {keywords: [高\x07端]}\n", "sop/tags.yaml")
    issue = raised.value.issues[0]
    assert (issue.file, issue.line) == ("sop/tags.yaml", 3) and "#x0007" in issue.reason


# -- settings.toml -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("timezone = 'Asia/Shanghai'\nx = " + "[" * 3000 + "]" * 3000 + "\n", 2),
        ("timezone = 'Asia/Shanghai'\nx = " + "{a=" * 3000 + "1" + "}" * 3000 + "\n", 2),
        ('timezone = "Asia/Shanghai"\nlog_level = "INFO', 2),
        ("timezone = 'Asia/Shanghai'\n\nlog_level =\n", 3),
    ],
    ids=["nested-arrays", "nested-tables", "open-string-at-end", "missing-value-at-end"],
)
def test_a_broken_settings_toml_exits_2_with_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    (tmp_path / "settings.toml").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert f"settings.toml:{line}:" in result.stderr
    assert "Traceback" not in result.stderr


# -- the webhook -------------------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestBot]:
    """The daemon on the shipped project (every SOP file and template) with the webhook."""
    monkeypatch.setenv("SOPBOT_WEBHOOK_SECRET", SECRET.decode())
    folder = shipped_project(tmp_path / "project", "[webhook]\nenabled = true\nport = 0\n")
    with sqlite_database(folder) as db:
        bot = TestBot(load_settings(folder / "settings.toml"), db, clock).start()
        try:
            yield bot
        finally:
            bot.close()


def raw_post(bot: TestBot, head: bytes, body: bytes) -> int:
    server = bot.daemon.services.webhook.server
    assert server is not None
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head + body)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    return int(data.split()[1])


def signed(body: bytes, signature: bytes | None = None) -> bytes:
    signature = signature if signature is not None else sign(SECRET, body).encode()
    return (
        b"POST /orders HTTP/1.1\r\nHost: x\r\nX-Sopbot-Signature: " + signature
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )  # fmt: skip


MALFORMED_REQUESTS = {
    "non-ascii-signature": (b'{"order_id": "A"}', "sha256=签名".encode()),
    "timestamp-out-of-range": (b'{"order_id":"A","wxid":"w","amount":"1","ordered_at":1e300}', None),
    "timestamp-year-9999": (
        b'{"order_id":"A","wxid":"w","amount":"1","ordered_at":"9999-12-31T23:59:59"}',
        None,
    ),
    "negative-timestamp": (b'{"order_id":"A","wxid":"w","amount":"1","ordered_at":-99999999999999}', None),
    "deep-json": (b'{"orders": ' + b"[" * 100000 + b"]" * 100000 + b"}", None),
    "amount-nan": (b'{"order_id":"A","wxid":"w","amount":"NaN","ordered_at":"2026-11-20 10:00"}', None),
    "amount-infinity": (
        b'{"order_id":"A","wxid":"w","amount":"-Infinity","ordered_at":"2026-11-20 10:00"}',
        None,
    ),
    "huge-integer": (
        b'{"order_id":"A","wxid":"w","amount":' + b"9" * 5000 + b',"ordered_at":"2026-11-20"}',
        None,
    ),
}


def test_malformed_webhook_input_is_a_4xx_never_a_500_and_the_daemon_goes_on(daemon: TestBot) -> None:
    answers = {
        name: raw_post(daemon, signed(body, sig), body) for name, (body, sig) in MALFORMED_REQUESTS.items()
    }
    assert all(400 <= status < 500 for status in answers.values()), answers
    good = b'{"order_id":"OK1","wxid":"wxid_sun_li","amount":"99","ordered_at":"2026-11-20 10:00"}'
    assert raw_post(daemon, signed(good), good) == 200
    assert count(daemon, Order) == 1


# -- the daemon keeps its last good set --------------------------------------------------------

BAD_FILES = {
    "sop/daily_pick.yaml": ALIAS_BOMB,
    "sop/dates.yaml": DEEP_FLOW,
    "sop/catalog.yaml": DEEP_BLOCK,
    "sop/groups.yaml": "groups:\n  - name: 高\x07端\n",
    "templates/default/daily_pick.j2": "{{ '哈' * 10**9 }}",
}


def test_bad_files_through_hot_reload_leave_the_daemon_sending_and_answering(daemon: TestBot) -> None:
    base = daemon.settings.base_dir
    service = daemon.daemon.services.sop
    before = set(service.sopset.sops) if service.sopset else set()
    rejected = 0
    for relative, text in BAD_FILES.items():
        path = base / relative
        good = path.read_bytes()
        path.write_text(text, encoding="utf-8")
        rejected += daemon.run(service.reload()) is False
        path.write_bytes(good)
    assert rejected == len(BAD_FILES)
    assert service.sopset is not None and set(service.sopset.sops) == before
    daemon.say("wxid_wang_fang", "这款多少钱？")
    sent = daemon.deliver()
    assert any(record.target.wxid == "wxid_wang_fang" for record in sent), sent


# -- chat messages -----------------------------------------------------------------------------


def test_rules_read_the_first_part_of_a_long_message_only() -> None:
    tags = parse_tags(
        "rules:\n  - id: price\n    match: {keywords: [多少钱]}\n    actions: [{add_tag: 询价}]\n"
    )
    matcher = Matcher(tags.rules)
    filler = "啊" * (MATCH_CHARS - 3)
    assert [h.rule.id for h in matcher.match(filler + "多少钱" + "啊" * 50_000)] == ["price"]
    assert matcher.match(filler + "啊多少钱" + "啊" * 50_000) == []


# -- contact lookups ---------------------------------------------------------------------------


def test_lookup_wildcards_are_plain_characters_and_a_huge_needle_is_no_error(tmp_path: Path) -> None:
    with sqlite_database(tmp_path) as db:
        with db.session() as session:
            session.add(Account(id="main"))
        with db.session() as session:
            for wxid, name in [("w1", "王芳"), ("w2", "李_雷"), ("w3", "100%纯棉")]:
                session.add(Contact(account_id="main", wxid=wxid, name=name, alias=""))
        with db.session(read_only=True) as session:
            assert [c.wxid for c in find(session, "%")] == ["w3"]
            assert [c.wxid for c in find(session, "_")] == ["w2"]
            assert find(session, "芳" * 50_000) == []
            assert [c.wxid for c in find(session, "芳")] == ["w1"]


# -- daylight saving ---------------------------------------------------------------------------

DST_ZONES = [
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Santiago",
    "Australia/Lord_Howe",
]


def transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """Local midnights of the days on which the zone's UTC offset changes."""
    days, day = [], datetime(year, 1, 1, tzinfo=zone)
    while day.year == year:
        if day.utcoffset() != (day + timedelta(days=1)).utcoffset():
            days.append(day)
        day += timedelta(days=1)
    return days


def daily_trigger(zone: ZoneInfo, at: time, schedule: str = "daily", **extra: object) -> BaseTrigger:
    spec = {"id": "s", "template": "hi", schedule: f"{at:%H:%M}", **extra}
    if schedule != "daily":
        spec = {"id": "s", "template": "hi", schedule: extra.pop("on"), "at": f"{at:%H:%M}", **extra}
    trigger = trigger_for(StepSpec.model_validate(spec), zone, Calendar())
    assert trigger is not None
    return trigger


@settings(max_examples=80, deadline=None)
@given(
    zone_name=st.sampled_from(DST_ZONES),
    year=st.integers(2026, 2030),
    which=st.integers(0, 1),
    minute=st.integers(0, 24 * 60 - 1),
)
def test_a_daily_time_fires_once_a_day_across_daylight_saving(
    zone_name: str, year: int, which: int, minute: int
) -> None:
    zone = ZoneInfo(zone_name)
    change = transitions(zone, year)[which]
    at = time(minute // 60, minute % 60)
    trigger = daily_trigger(zone, at)
    start, end = change - timedelta(days=2), change + timedelta(days=3) - timedelta(seconds=1)
    fires = list(fire_times(trigger, start, end))
    local_days = [f.astimezone(zone).date() for f in fires]
    assert len(fires) == len(set(local_days)) == 5, fires  # once on each of the five days
    assert fires == sorted(fires)
    for fire in fires:
        wall = datetime.combine(fire.astimezone(zone).date(), at)
        real = fire.astimezone(zone).replace(tzinfo=None)
        if real != wall:  # only a time the clocks skipped moves, and only forward to the jump
            assert real > wall and real - wall <= timedelta(hours=1)
            assert wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall
        else:  # a repeated time fires at its first occurrence
            assert fire.astimezone(zone).fold == 0


@settings(max_examples=40, deadline=None)
@given(zone_name=st.sampled_from(DST_ZONES), year=st.integers(2026, 2030), minute=st.integers(0, 24 * 60 - 1))
def test_weekly_and_monthly_steps_fire_on_their_days_across_daylight_saving(
    zone_name: str, year: int, minute: int
) -> None:
    zone = ZoneInfo(zone_name)
    at = time(minute // 60, minute % 60)
    start = transitions(zone, year)[0] - timedelta(days=40)
    end = start + timedelta(days=80)
    weekly = list(fire_times(daily_trigger(zone, at, "weekly", on=["sun"]), start, end))
    assert {f.astimezone(zone).weekday() for f in weekly} == {6} and len(weekly) in (11, 12)
    monthly = list(fire_times(daily_trigger(zone, at, "monthly", on=[1, "last"]), start, end))
    days = {f.astimezone(zone).date() for f in monthly}
    assert len(days) == len(monthly) and all(d.day == 1 or (d + timedelta(days=1)).day == 1 for d in days)


def test_plan_shows_the_real_fire_time_in_a_daylight_saving_zone(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    (folder / "sop").mkdir(parents=True)
    (folder / "templates" / "default").mkdir(parents=True)
    (folder / "templates" / "default" / "hi.j2").write_text("早 {{ contact.name }}", encoding="utf-8")
    (folder / "sop" / "night.yaml").write_text(
        "id: night\nname: 夜\naudience:\n  to: contacts\nsteps:\n  - id: s\n    daily: ['01:30', '02:30']\n    template: hi\n",
        encoding="utf-8",
    )
    make_settings(folder, 'timezone = "America/Los_Angeles"\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot", "plan", "--from", "2027-03-13", "--days", "2"],
        cwd=folder, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "03:00" in result.stdout and "02:30" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "bot", "plan", "--from", "2027-11-06", "--days", "3"],
        cwd=folder, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("01:30") == 3, result.stdout


def test_the_daylight_saving_rule_on_named_examples() -> None:
    zone = ZoneInfo("America/Los_Angeles")
    fall = list(fire_times(daily_trigger(zone, time(1, 30)), datetime(2027, 11, 6, tzinfo=zone),
                           datetime(2027, 11, 8, 12, tzinfo=zone)))  # fmt: skip
    assert [f.isoformat() for f in fall] == [
        "2027-11-06T01:30:00-07:00", "2027-11-07T01:30:00-07:00", "2027-11-08T01:30:00-08:00",
    ]  # fmt: skip
    spring = list(fire_times(daily_trigger(zone, time(2, 30)), datetime(2027, 3, 13, tzinfo=zone),
                             datetime(2027, 3, 15, 12, tzinfo=zone)))  # fmt: skip
    assert [f.isoformat() for f in spring] == [
        "2027-03-13T02:30:00-08:00", "2027-03-14T03:00:00-07:00", "2027-03-15T02:30:00-07:00",
    ]  # fmt: skip
