"""settings.toml: defaults, environment overrides, secrets, and errors with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.errors import ConfigError
from bot.config.settings import load_settings
from tests.support import write_project


def issues_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    return [str(issue) for issue in caught.value.issues]


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.timezone == "Asia/Shanghai"
    assert settings.accounts[0].transport == "sandbox"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'data/sopbot.db'}"
    assert str(settings.delivery.quiet_hours) == "22:00-08:00"


def test_the_shipped_settings_file_is_valid() -> None:
    settings = load_settings(Path(__file__).parents[1] / "settings.toml")
    assert [a.id for a in settings.accounts] == ["main"]


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_project(tmp_path, 'timezone = "Asia/Tokyo"\n[delivery]\nhourly_cap = 50\n')
    monkeypatch.setenv("SOPBOT_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("SOPBOT_DELIVERY__QUIET_HOURS", "23:00-07:30")
    settings = load_settings(path)
    assert settings.timezone == "Asia/Shanghai"
    assert str(settings.delivery.quiet_hours) == "23:00-07:30"
    assert settings.delivery.hourly_cap == 50  # the file's value survives a partial env override


def test_token_comes_from_the_environment_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_project(
        tmp_path, '[[accounts]]\nid = "shop-1"\ntransport = "wechaty"\nendpoint = "127.0.0.1:8788"\n'
    )
    monkeypatch.setenv("SOPBOT_TOKEN_SHOP_1", "puppet_secret_value")
    account = load_settings(path).accounts[0]
    assert account.token_env == "SOPBOT_TOKEN_SHOP_1"
    token = account.token()
    assert token is not None and token.get_secret_value() == "puppet_secret_value"
    assert "puppet_secret_value" not in repr(account.token()) and "puppet_secret_value" not in str(token)


def test_a_token_in_the_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write_project(tmp_path, '[[accounts]]\nid = "main"\ntoken = "puppet_abc"\n')
    assert issues_of(path) == [
        f"{path}:3: accounts[0].token: secrets are read from the environment only, never from this file"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('timezone = "Asia/Shanghai"\nlog_level = INFO\n', ":2: invalid TOML: Invalid value"),
        (
            'timezone = "Asia/Shanghai"\n\n[delivery]\nquiet_hour = "22:00-08:00"\n',
            ":4: delivery.quiet_hour: unknown field (check the spelling)",
        ),
        (
            '[delivery]\nhourly_cap = "lots"\n',
            ":2: delivery.hourly_cap: Input should be a valid integer, "
            "unable to parse string as an integer (got 'lots')",
        ),
        (
            '[delivery]\nquiet_hours = "22:00-25:00"\n',
            ":2: delivery.quiet_hours: '22:00-25:00' has a time outside 00:00-23:59",
        ),
        (
            'timezone = "Mars/Olympus"\n',
            ":1: timezone: 'Mars/Olympus' is not an IANA time zone such as 'Asia/Shanghai'",
        ),
        (
            '[[accounts]]\nid = "a"\n[[accounts]]\nid = "b"\nendpoint = "localhost"\n',
            ":5: accounts[1].endpoint: 'localhost' is not host:port",
        ),
    ],
    ids=["bad-toml", "unknown-field", "wrong-type", "bad-quiet-hours", "bad-timezone", "bad-endpoint"],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write_project(tmp_path, text)
    found = issues_of(path)
    assert len(found) == 1
    assert found[0].startswith(f"{path}:")
    assert found[0].endswith(expected), found[0]


def test_every_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = write_project(tmp_path, 'log_level = "LOUD"\n[delivery]\nhourly_cap = 0\ndaily_cap = -1\n')
    found = issues_of(path)
    assert [line.split(": ")[1] for line in found] == [
        "log_level",
        "delivery.hourly_cap",
        "delivery.daily_cap",
    ]
    assert [line.split(": ")[0].rsplit(":", 1)[1] for line in found] == ["1", "3", "4"]


def test_a_bad_environment_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_project(tmp_path, "")
    monkeypatch.setenv("SOPBOT_LOG_LEVEL", "CHATTY")
    found = issues_of(path)
    assert found[0].startswith("environment SOPBOT_LOG_LEVEL: log_level: Input should be")


def test_run_accounts_from_the_file_or_one_machines_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_project(tmp_path, '[[accounts]]\nid = "a"\n[[accounts]]\nid = "b"\n')
    assert load_settings(path).may_run("b")  # empty: every account
    monkeypatch.setenv("SOPBOT_RUN_ACCOUNTS", '["a"]')
    settings = load_settings(path)
    assert settings.run_accounts == ["a"] and settings.may_run("a") and not settings.may_run("b")
    monkeypatch.setenv("SOPBOT_RUN_ACCOUNTS", '["a", "c"]')
    with pytest.raises(ConfigError, match="run_accounts: c: no such account"):
        load_settings(path)
