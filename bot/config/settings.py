"""The `settings.toml` model.

Precedence, highest first: environment variables (`SOPBOT_…`, nested with `__`, e.g.
`SOPBOT_DELIVERY__QUIET_HOURS`), then `settings.toml`, then the defaults below. Secrets
(puppet tokens) are never read from the file: each account's token comes from the
environment variable named by `AccountSettings.token_env`.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from bot.config.errors import ConfigError, ConfigIssue, describe_error, display_path, format_loc
from bot.config.toml_lines import key_lines, line_of
from bot.config.units import parse_duration

ENV_PREFIX = "SOPBOT_"
DEFAULT_SETTINGS_FILE = "settings.toml"

_ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_CLOCK_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PacingSettings(_Section):
    """Per-account sending pace. Any field left out comes from `[delivery]`."""

    min_interval: float | None = Field(default=None, ge=0)
    jitter: float | None = Field(default=None, ge=0)
    hourly_cap: int | None = Field(default=None, ge=1)
    daily_cap: int | None = Field(default=None, ge=1)
    warmup: list[int] | None = Field(
        default=None, description="This account's warm-up daily caps; [] for an account that needs none."
    )
    warmup_from: date | None = Field(
        default=None, description="The account's first day (default: the day sopbot first sent from it)."
    )

    @field_validator("warmup")
    @classmethod
    def _check_warmup(cls, value: list[int] | None) -> list[int] | None:
        return None if value is None else check_warmup(value)


def check_warmup(caps: list[int]) -> list[int]:
    if len(caps) > 90:
        raise ValueError(f"{len(caps)} warm-up days: at most 90")
    for day, cap in enumerate(caps, start=1):
        if cap < 1:
            raise ValueError(f"day {day}: a daily cap of {cap} (at least 1)")
    return caps


class AccountSettings(_Section):
    """One WeChat account the daemon logs in to."""

    id: str = Field(description="Your short name for the account: a-z, 0-9, '-', '_'.")
    name: str = Field(default="", description="Display name in logs and reports.")
    transport: Literal["sandbox", "wechaty"] = "sandbox"
    endpoint: str | None = Field(default=None, description="wechaty puppet-service gateway as host:port.")
    tls: bool = Field(default=False, description="The gateway speaks TLS (wechaty's certificate scheme).")
    tls_server_name: str = Field(default="insecure", description="Name on the gateway's TLS certificate.")
    tls_ca_file: Path | None = Field(
        default=None, description="CA for the gateway; default: wechaty's root CA."
    )
    health_interval: float = Field(default=10.0, ge=0.2, le=600, description="Seconds between gateway pings.")
    reconnect_max: float = Field(
        default=60.0, ge=0.5, le=3600, description="Longest wait between reconnects."
    )
    call_timeout: float = Field(
        default=20.0,
        ge=1,
        le=600,
        description="Seconds a gateway call may take; a send cut off then may have gone out (unknown).",
    )
    pacing: PacingSettings = Field(default_factory=PacingSettings)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ACCOUNT_ID.match(value):
            raise ValueError("use 1-32 characters a-z, 0-9, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port")
        return value

    @property
    def token_env(self) -> str:
        """The environment variable holding this account's puppet token."""
        return f"{ENV_PREFIX}TOKEN_{re.sub(r'[^A-Z0-9]', '_', self.id.upper())}"

    def token(self) -> SecretStr | None:
        value = os.environ.get(self.token_env, "").strip()
        return SecretStr(value) if value else None


class SandboxSettings(_Section):
    """The built-in simulated WeChat used when no real account is configured."""

    event_interval: float = Field(default=3.0, gt=0, le=3600, description="Seconds between simulated events.")
    seed: int = Field(default=2026, description="Random seed, so a demo run is repeatable.")
    autoplay: bool = Field(default=True, description="Simulated customers talk by themselves.")
    extra_contacts: int = Field(
        default=0, ge=0, le=1_000_000, description="Synthetic contacts for load tests."
    )
    journal: Path | None = Field(
        default=Path("data/sandbox-sent.jsonl"),
        description="Where the sandbox records what was sent (plays WeChat's server side).",
    )
    send_delay: float = Field(
        default=0.0, ge=0, le=60, description="Seconds each send takes (a real gateway's round trip)."
    )


class QuietHours(_Section):
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(value: Any) -> QuietHours:
    if isinstance(value, QuietHours):
        return value
    match = _CLOCK_RANGE.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a range like '22:00-08:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{value!r} has a time outside 00:00-23:59")
    return QuietHours(start=time(h1, m1), end=time(h2, m2))


class DeliverySettings(_Section):
    """How fast and how often the bot may send: conservative defaults for personal WeChat."""

    quiet_hours: str = Field(default="22:00-08:00", description="No marketing sends inside.")
    replies_in_quiet_hours: bool = Field(default=True, description="Answer people who write at night.")
    min_interval: float = Field(default=8.0, ge=0, description="Seconds between two sends.")
    jitter: float = Field(default=6.0, ge=0, description="Random extra seconds per send.")
    hourly_cap: int = Field(default=120, ge=1)
    daily_cap: int = Field(default=800, ge=1)
    room_daily_cap: int = Field(default=3, ge=1, description="Messages to one group a day.")
    contact_daily_cap: int = Field(default=2, ge=0, description="Marketing messages a day.")
    contact_weekly_cap: int = Field(default=6, ge=0, description="Marketing messages a week.")
    lifecycle_exempt: bool = Field(default=True, description="Lifecycle messages skip the contact caps.")
    max_attempts: int = Field(default=5, ge=1, description="Tries before a message is failed.")
    retry_backoff: float = Field(default=30.0, gt=0, description="Seconds before the first retry; doubles.")
    admins: list[str] = Field(
        default_factory=list, description="wxids allowed to send #pause/#resume/#status."
    )
    lease: float = Field(default=30.0, gt=0, description="Seconds without heartbeat before a worker is gone.")
    reply_max_age: float = Field(
        default=1800.0, gt=0, le=86400, description="Seconds a rule's reply may wait; later it is skipped."
    )
    outlook_interval: float = Field(
        default=300.0, ge=1, le=86400, description="Seconds between two 'what comes next' log lines."
    )
    warmup: list[int] = Field(
        default_factory=lambda: [50, 80, 120, 180, 250, 350, 500],
        description="养号: daily caps of a new WeChat account's first days (day 1, day 2, …), then daily_cap.",
    )
    risk_slowdown: bool = Field(
        default=True, description="Slow an account down on risk signals before anything pauses it."
    )

    @field_validator("warmup")
    @classmethod
    def _check_warmup(cls, value: list[int]) -> list[int]:
        return check_warmup(value)

    @field_validator("quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        return str(parse_quiet_hours(value))

    @property
    def quiet(self) -> QuietHours:
        return parse_quiet_hours(self.quiet_hours)


class FriendshipSettings(_Section):
    auto_accept: bool = Field(default=True, description="Accept every friend request.")


class TierRequirement(_Section):
    """What a contact must show to reach a tier; every field given must hold."""

    min_orders: int = Field(default=0, ge=0, description="Paid orders in the current period.")
    min_lifetime_orders: int = Field(default=0, ge=0, description="Paid orders ever (lapsed buyers).")
    min_messages: int = Field(default=0, ge=0, description="Messages to the bot in the period.")
    min_referrals: int = Field(default=0, ge=0, description="People they brought in who then bought.")
    min_spent: float = Field(default=0, ge=0, description="Yuan spent in the period.")
    tags: list[str] = Field(default_factory=list, description="Carries any one of these tags.")


class TierLevel(_Section):
    """One rung of the ladder; reached when any one of `when` holds (the first rung: always)."""

    id: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=32)
    when: list[TierRequirement] = Field(default_factory=list)


class TierSettings(_Section):
    """Relationship tiers: which ladder, the current period, the thresholds."""

    ladder: Literal["default", "aipl"] = Field(default="default", description="Preset ladder.")
    period_days: int = Field(default=90, ge=1, le=3650, description="The current period.")
    prospect_min_messages: int = Field(default=1, ge=0, description="Messages that make a member.")
    member_tags: list[str] = Field(default_factory=lambda: ["会员"], description="Tags that make a member.")
    repeat_min_orders: int = Field(default=2, ge=2, description="Paid orders in the period for 复购.")
    koc_min_referrals: int = Field(default=1, ge=1, description="Converted referrals for KOC.")
    levels: list[TierLevel] = Field(default_factory=list, description="A ladder of your own.")
    respect_wechat_tags: bool = Field(default=True, description="A WeChat tier tag is a floor.")
    mirror_to_wechat: bool = Field(default=True, description="Copy tier and tags to WeChat tags.")


class WebhookSettings(_Section):
    """The order webhook (`POST /orders`): off unless enabled; the secret is read from the
    environment variable named by `secret_env`."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8787, ge=0, le=65535)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    secret_env: str = Field(default="SOPBOT_WEBHOOK_SECRET", pattern=r"^[A-Z_][A-Z0-9_]*$")
    signature_header: str = Field(default="X-Sopbot-Signature", min_length=1)


class SopSettings(_Section):
    """How the SOP runtime watches `sop/` and `templates/` and follows contact events."""

    reload_interval: float = Field(
        default=2.0, gt=0, le=3600, description="Seconds between checks for edits."
    )
    lifecycle_interval: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds between lifecycle sweeps."
    )


class MonitorSettings(_Section):
    """`/healthz`, `/livez` and `/metrics` of the running daemon (docs/deploy.md)."""

    enabled: bool = True
    host: str = Field(default="127.0.0.1", description="Loopback by default: the pages have no login.")
    port: int = Field(default=9464, ge=0, le=65535)


class ResultsSettings(_Section):
    """How `sopbot report` counts and attributes (docs/metrics.md): the attribution windows
    are durations such as '24h', '7d', '30m'."""

    reply_window: str = Field(
        default="24h", description="A message this soon after an SOP message is a reply to it."
    )
    order_window: str = Field(
        default="7d", description="An order this soon after a marketing message is attributed to it."
    )
    deletion_window: str = Field(
        default="24h", description="A deletion this soon after a message is blamed on it (short)."
    )
    deletion_window_long: str = Field(default="7d", description="The same, the long window.")
    service_minutes: int = Field(
        default=30, ge=1, le=1440, description="Minutes a 1:1 question may wait for its answer."
    )
    top_tags: int = Field(default=10, ge=1, le=200, description="Tags shown in the tag distribution.")
    rollup_interval: float = Field(
        default=60.0, ge=1, le=86400, description="Seconds between two rollup updates in the daemon."
    )
    digest: Literal["off", "daily", "weekly"] = Field(
        default="off", description="数据订阅: send the admins yesterday's (or last week's) figures in WeChat."
    )
    digest_at: str = Field(default="09:00", description="Local time the digest goes out (weekly: Mondays).")

    @field_validator("digest_at")
    @classmethod
    def _check_digest_at(cls, value: str) -> str:
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError(f"{value!r} is not a time of day like 09:00")
        return value.strip()

    @field_validator("reply_window", "order_window", "deletion_window", "deletion_window_long")
    @classmethod
    def _check_window(cls, value: str) -> str:
        window = parse_duration(value)
        if window.total_seconds() <= 0:
            raise ValueError(f"{value!r} must be longer than 0")
        if window.days > 90:
            raise ValueError(f"{value!r} is longer than 90 days")
        return value.strip()

    @model_validator(mode="after")
    def _short_before_long(self) -> ResultsSettings:
        if self.deletion > self.deletion_long:
            raise ValueError(
                f"deletion_window {self.deletion_window} is longer than "
                f"deletion_window_long {self.deletion_window_long}"
            )
        return self

    @property
    def reply(self) -> timedelta:
        return parse_duration(self.reply_window)

    @property
    def order(self) -> timedelta:
        return parse_duration(self.order_window)

    @property
    def deletion(self) -> timedelta:
        return parse_duration(self.deletion_window)

    @property
    def deletion_long(self) -> timedelta:
        return parse_duration(self.deletion_window_long)

    @property
    def service(self) -> timedelta:
        return timedelta(minutes=self.service_minutes)


class RetentionSettings(_Section):
    """Keeping people (docs/retention.md): loss alerts and the automatic brake on SOPs whose
    messages are followed by deletions, opt-outs or complaints."""

    brake: bool = Field(default=True, description="Pause an SOP that drives people away.")
    brake_min_sends: int = Field(
        default=200,
        ge=20,
        le=1_000_000,
        description="Sends of the SOP (since its last resume) before it may brake.",
    )
    brake_deletion_rate: float = Field(
        default=0.01, gt=0, le=1, description="Deletions within deletion_window after its sends, per send."
    )
    brake_optout_rate: float = Field(
        default=0.02,
        gt=0,
        le=1,
        description="Opt-outs and complaints within reply_window after its sends, per send.",
    )
    complaint_words: list[str] = Field(
        default_factory=lambda: [
            "骚扰",
            "别发了",
            "别再发",
            "烦死",
            "好烦",
            "投诉",
            "举报",
            "拉黑",
            "垃圾广告",
            "广告狗",
        ],
        description="Words that make a reply to an SOP message a complaint.",
    )
    alert_hour: int = Field(
        default=5, ge=1, description="Deletions on one account within an hour that alert."
    )
    alert_day: int = Field(default=20, ge=1, description="Deletions on one account within a day that alert.")
    alert_sop: int = Field(
        default=5, ge=1, description="Deletions within 24 h after one SOP's messages that alert."
    )
    check_interval: float = Field(
        default=60.0, ge=1, le=3600, description="Seconds between two looks at deletions and brakes."
    )


class ConsoleSettings(_Section):
    """The operator console in the browser (docs/console.md)."""

    enabled: bool = Field(default=True, description="Serve the console from `sopbot run`.")
    host: str = Field(default="127.0.0.1", description="Anything but loopback needs the token set.")
    port: int = Field(default=8780, ge=0, le=65535)
    token_env: str = Field(
        default="SOPBOT_CONSOLE_TOKEN",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Variable holding the login token.",
    )
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30, description="Hours a login lasts.")
    language: Literal["zh", "en"] = Field(default="zh", description="Default language of the pages.")


def _default_accounts() -> list[AccountSettings]:
    return [AccountSettings(id="main", name="演示账号", transport="sandbox")]


class Settings(BaseSettings):
    """Everything an operator can set in `settings.toml`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    timezone: str = "Asia/Shanghai"
    database_url: str = "sqlite:///data/sopbot.db"
    sop_dir: Path = Path("sop")
    templates_dir: Path = Path("templates")
    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    accounts: list[AccountSettings] = Field(default_factory=_default_accounts, min_length=1)
    run_accounts: list[str] = Field(
        default_factory=list,
        description="The accounts this daemon may run (empty: all); daemons sharing a database split them.",
    )
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    friendship: FriendshipSettings = Field(default_factory=FriendshipSettings)
    sop: SopSettings = Field(default_factory=SopSettings)
    tiers: TierSettings = Field(default_factory=TierSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    results: ResultsSettings = Field(default_factory=ResultsSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)

    # Where the file was read from; relative paths are resolved against its folder.
    base_dir: Path = Field(default=Path("."), exclude=True)
    source: str = Field(default="(defaults)", exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
            raise ValueError(f"{value!r} is not an IANA time zone such as 'Asia/Shanghai'") from None
        return value

    @field_validator("accounts")
    @classmethod
    def _unique_accounts(cls, value: list[AccountSettings]) -> list[AccountSettings]:
        seen: set[str] = set()
        for account in value:
            if account.id in seen:
                raise ValueError(f"account id {account.id!r} is used twice")
            seen.add(account.id)
        return value

    @field_validator("run_accounts")
    @classmethod
    def _known_run_accounts(cls, value: list[str], info: ValidationInfo) -> list[str]:
        known = [a.id for a in info.data.get("accounts", [])]
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: no such account in [[accounts]] ({', '.join(known)})")
        return value

    def may_run(self, account_id: str) -> bool:
        return not self.run_accounts or account_id in self.run_accounts

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() else (self.base_dir / value)

    @property
    def sop_path(self) -> Path:
        return self.path(self.sop_dir)

    @property
    def templates_path(self) -> Path:
        return self.path(self.templates_dir)

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def resolved_database_url(self) -> str:
        """The database URL with a relative SQLite path anchored at the settings folder."""
        prefix = "sqlite:///"
        url = self.database_url
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str((self.base_dir / rest).resolve())
        return url

    def account(self, account_id: str) -> AccountSettings:
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise KeyError(account_id)


def _toml_error_line(error: tomllib.TOMLDecodeError, text: str) -> tuple[int | None, str]:
    match = re.search(r"\(at line (\d+), column \d+\)", str(error))
    if match:
        return int(match.group(1)), re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
    if "(at end of document)" in str(error):  # the last line of the file
        reason = str(error).replace(" (at end of document)", "") + " at the end of the file"
        return max(1, text.count("\n") + (0 if text.endswith("\n") else 1)), reason
    return None, str(error)


def _deepest_line(text: str) -> int:
    """The line where brackets and braces are nested deepest (what made the parser give up)."""
    depth, deepest, line, at = 0, 0, 1, 1
    for char in text:
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, line
        elif char in "]}":
            depth -= 1
        elif char == "\n":
            line += 1
    return at


def _env_name(loc: tuple[str | int, ...]) -> str | None:
    name = ENV_PREFIX + "__".join(str(part).upper() for part in loc if isinstance(part, str))
    top = ENV_PREFIX + str(loc[0]).upper() if loc else name
    for candidate in (name, top):
        if candidate in os.environ:
            return candidate
    return None


MAX_SETTINGS_CHARS = 1_000_000


def load_settings(path: Path | None = None) -> Settings:
    """Read settings.toml (if present) and the environment, or raise ConfigError whose issues
    read `settings.toml:LINE: field: reason`."""
    file = path or Path(os.environ.get(ENV_PREFIX + "SETTINGS", DEFAULT_SETTINGS_FILE))
    shown = display_path(file)
    data: dict[str, Any] = {}
    lines: dict[tuple[str | int, ...], int] = {}
    if file.exists():
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError([ConfigIssue(shown, None, "", f"not UTF-8 text ({error.reason})")]) from None
        if len(text) > MAX_SETTINGS_CHARS:
            raise ConfigError([ConfigIssue(shown, None, "", f"over {MAX_SETTINGS_CHARS:,} characters")])
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            line, reason = _toml_error_line(error, text)
            raise ConfigError([ConfigIssue(shown, line, "", f"invalid TOML: {reason}")]) from None
        except RecursionError:
            line = _deepest_line(text)
            raise ConfigError(
                [ConfigIssue(shown, line, "", "invalid TOML: arrays or tables nested too deeply")]
            ) from None
        lines = key_lines(text)
    elif path is not None or ENV_PREFIX + "SETTINGS" in os.environ:  # named by -s or SOPBOT_SETTINGS
        raise ConfigError([ConfigIssue(shown, None, "", "file not found")])

    for forbidden in ("base_dir", "source"):
        if forbidden in data:
            raise ConfigError(
                [ConfigIssue(shown, lines.get((forbidden,)), forbidden, "unknown field (check the spelling)")]
            )
    secret_like = [
        (loc, line)
        for loc, line in lines.items()
        if loc and str(loc[-1]).lower() in {"token", "secret", "password"}
    ]
    if secret_like:
        loc, line = secret_like[0]
        raise ConfigError(
            [
                ConfigIssue(
                    shown,
                    line,
                    format_loc(loc),
                    "secrets are read from the environment only, never from this file",
                )
            ]
        )

    try:
        return Settings(**data, base_dir=file.resolve().parent, source=shown)
    except SettingsError as error:
        cause = error.__cause__ or error
        raise ConfigError([ConfigIssue("environment", None, "", f"{error} ({cause})")]) from None
    except ValidationError as error:
        issues = []
        for item in error.errors():
            loc = tuple(item["loc"])
            env = _env_name(loc)
            if env and not (loc and line_of(lines, loc)):
                issues.append(ConfigIssue(f"environment {env}", None, format_loc(loc), describe_error(item)))
            else:
                issues.append(ConfigIssue(shown, line_of(lines, loc), format_loc(loc), describe_error(item)))
        raise ConfigError(issues) from None
