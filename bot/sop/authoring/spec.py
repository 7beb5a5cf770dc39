"""The SOP file format: what an operator may write in `sop/<name>.yaml`.

These models check each file on its own (types, times, durations, weekday names, exactly
one schedule per step). Checks that need other files (templates, tiers, tag expressions,
festival names, group types) are done by `bot.sop.authoring.loader`. See docs/sop-files.md.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.config.units import parse_duration, parse_time, parse_weekday
from bot.events import ContactEventKind
from bot.policies import Category, Guarantee, OnMissed, QuietPolicy

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,47}$")
_MONTH_DAY_CN = re.compile(r"^(?:第([1-5一二三四五])个|(最后一个))(?:周|星期)([一二三四五六日天])$")
_MONTH_DAY_EN = re.compile(r"^(1st|2nd|3rd|4th|5th|last)\s+(mon|tue|wed|thu|fri|sat|sun)$")
_CN_NUMBER = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
_CN_WEEKDAY = {
    "一": "mon",
    "二": "tue",
    "三": "wed",
    "四": "thu",
    "五": "fri",
    "六": "sat",
    "日": "sun",
    "天": "sun",
}
_ORDINAL = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th"}

SCHEDULE_KINDS = (
    "daily",
    "weekly",
    "monthly",
    "festival",
    "window",
    "birthday",
    "after",
    "silent",
    "no_order",
)
# lifecycle steps fire per contact: after an event (`after`), or once per spell of silence
# (`silent`: no message from the contact) or of no new order (`no_order`: a buyer's lapse)
LIFECYCLE_KINDS = ("after", "silent", "no_order")
SPELL_KINDS = ("silent", "no_order")
_SPELL_START = {
    "silent": "the silence counts from the contact's last message",
    "no_order": "the lapse counts from the buyer's latest paid order",
}
MAX_SPAN = timedelta(days=3650)


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> Any:
    """Operators write `618` or `520` unquoted: a number where text is expected is text."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _check_id(value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{value!r} is not an id (use letters, digits, '-' or '_', at most 48)")
    return value


def parse_month_day(value: object) -> str:
    """A day of the month as APScheduler's cron `day` field reads it: `18`, `last`,
    `2nd sat`, `last fri`. Chinese forms: `18号`, `最后一天`, `第2个周六`, `最后一个周五`."""
    text = str(value).strip().lower() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    text = text.removesuffix("号").removesuffix("日")
    if text.isdigit() and 1 <= int(text) <= 31:
        return str(int(text))
    if text in {"last", "最后一天", "月末"}:
        return "last"
    if match := _MONTH_DAY_EN.match(text):
        return f"{match.group(1)} {match.group(2)}"
    if match := _MONTH_DAY_CN.match(str(value).strip()):
        n = "last" if match.group(2) else _ORDINAL[_CN_NUMBER.get(match.group(1)) or int(match.group(1))]
        return f"{n} {_CN_WEEKDAY[match.group(3)]}"
    raise ValueError(
        f"{value!r} is not a day of the month (write 18, last, '2nd sat', 'last fri', 第2个周六 or 最后一天)"
    )


def _weekly(value: Any) -> dict[str, str | None]:
    """`[mon, wed]` or `{mon: template_a, wed: template_b}` → {day: template or None}."""
    items: dict[Any, Any] = value if isinstance(value, dict) else dict.fromkeys(_as_list(value))
    out: dict[str, str | None] = {}
    for day, template in items.items():
        name = parse_weekday(day)
        if name in out:
            raise ValueError(f"{day!r} is given twice")
        if template is not None and not isinstance(template, str):
            raise ValueError(f"the template for {day} must be a template name, not {template!r}")
        out[name] = template
    if not out:
        raise ValueError("name at least one weekday")
    return out


Text = Annotated[str, BeforeValidator(_text)]
Id = Annotated[str, BeforeValidator(_check_id)]
Time = Annotated[time, BeforeValidator(parse_time)]


def _times(value: Any) -> Any:
    # a single time is checked here, so its error points at the field, not at item [0]
    return value if isinstance(value, list) else [parse_time(value)]


TimeList = Annotated[list[Time], BeforeValidator(_times), Field(min_length=1)]
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
MonthDay = Annotated[str, BeforeValidator(parse_month_day)]
NameList = Annotated[list[Text], BeforeValidator(_as_list)]
IntList = Annotated[list[int], BeforeValidator(_as_list)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudienceSpec(_Model):
    """Who receives an SOP (or a step, which narrows its SOP's audience)."""

    to: Literal["contacts", "groups"] | None = None
    tiers: NameList | None = None
    tags: Text | None = None  # a tag expression: 活动喜好型 and not 已退订
    exclude: Text | None = None  # a tag expression: who to leave out
    exclude_tiers: NameList | None = None
    group_types: NameList | None = None
    group_names: NameList | None = None  # topic patterns: *VIP*, 【精英会员群】*
    group_tags: NameList | None = None
    exclude_groups: NameList | None = None  # topic patterns
    accounts: NameList | None = None


class EventSpec(_Model):
    """What a lifecycle step is anchored on: `friend_added`, or `{kind: tier_changed, to: koc}`."""

    kind: ContactEventKind
    to: Text | None = None  # tier_changed: the new tier
    tag: Text | None = None  # tag_added / tag_removed: the tag

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"kind": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _qualifiers(self) -> EventSpec:
        if self.to is not None and self.kind != ContactEventKind.TIER_CHANGED:
            raise ValueError("'to' only goes with kind: tier_changed")
        if self.tag is not None and self.kind not in (
            ContactEventKind.TAG_ADDED,
            ContactEventKind.TAG_REMOVED,
        ):
            raise ValueError("'tag' only goes with kind: tag_added or tag_removed")
        return self


class WindowSpec(_Model):
    """Every day from one festival (plus offset days) to another: `{from: 腊八, to: 除夕}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: Text = Field(alias="from")
    end: Text | None = Field(default=None, alias="to")
    from_offset: int = 0
    to_offset: int = 0


class StepSpec(_Model):
    """One message of an SOP, with its own schedule and template."""

    id: Id
    name: Text | None = None
    enabled: bool = True
    template: str | None = None
    daily: TimeList | None = None
    weekly: Annotated[dict[str, str | None], BeforeValidator(_weekly)] | None = None
    monthly: Annotated[list[MonthDay], BeforeValidator(_as_list), Field(min_length=1)] | None = None
    festival: NameList | None = None
    window: WindowSpec | None = None
    birthday: bool | None = None
    after: Duration | None = None
    silent: Duration | None = None  # this long without a message from the contact
    no_order: Duration | None = None  # this long after a buyer's latest paid order
    event: EventSpec | None = None
    at: TimeList | None = None
    offset: IntList | None = None  # days relative to the festival / birthday: -3 = 3 days before
    working_days_only: bool = False
    audience: AudienceSpec | None = None
    expires: Duration | None = None

    @field_validator("offset")
    @classmethod
    def _offsets(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and any(abs(n) > 60 for n in value):
            raise ValueError("offsets are days between -60 and 60")
        return value

    @field_validator("silent", "no_order")
    @classmethod
    def _whole_days(cls, value: timedelta | None) -> timedelta | None:
        if value is None:
            return value
        if value < timedelta(days=1) or value % timedelta(days=1):
            raise ValueError("write it in whole days, at least '1d' (like '14d')")
        if value > MAX_SPAN:
            raise ValueError(f"at most {MAX_SPAN.days}d")
        return value

    @field_validator("after", "expires")
    @classmethod
    def _bounded(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value > MAX_SPAN:  # beyond it, date arithmetic overflows
            raise ValueError(f"at most {MAX_SPAN.days}d")
        return value

    @property
    def kind(self) -> str:
        return next(k for k in SCHEDULE_KINDS if getattr(self, k) not in (None, False))

    @property
    def span(self) -> timedelta | None:
        """How long after its anchor (the event, the start of the silence, the latest
        order) a lifecycle step is due; None for calendar steps."""
        return next((v for v in (self.after, self.silent, self.no_order) if v is not None), None)

    @property
    def spell(self) -> str | None:
        """`silent` or `no_order` for a step that fires once per spell; else None."""
        return next((kind for kind in SPELL_KINDS if getattr(self, kind) is not None), None)

    @model_validator(mode="after")
    def _one_schedule(self) -> StepSpec:
        given = [k for k in SCHEDULE_KINDS if getattr(self, k) not in (None, False)]
        if len(given) != 1:
            # the spell kinds are named when they are in play (or nothing was given)
            shown = [
                k
                for k in SCHEDULE_KINDS
                if k not in SPELL_KINDS or not given or set(given) & set(SPELL_KINDS)
            ]
            found = f" (found {', '.join(given)})" if given else ""
            raise ValueError(f"give exactly one schedule: {', '.join(shown)}{found}")
        kind = given[0]
        if kind == "daily" and self.at is not None:
            raise ValueError("a daily step lists its times under 'daily', not 'at'")
        if kind in ("weekly", "monthly", "festival", "window", "birthday") and self.at is None:
            raise ValueError(f"a {kind} step needs 'at' (the time to send, like '10:00')")
        if self.offset is not None and kind not in ("festival", "birthday"):
            raise ValueError("'offset' only goes with festival or birthday steps")
        if self.after is not None and self.at is not None and self.after % timedelta(days=1):
            raise ValueError("'at' needs 'after' in whole days (like '3d')")
        if kind in LIFECYCLE_KINDS and self.at is not None and len(self.at) != 1:
            raise ValueError("a lifecycle step has one 'at' time")
        if kind in LIFECYCLE_KINDS and self.working_days_only:
            raise ValueError("working_days_only does not go with lifecycle steps")
        if self.event is not None and kind in SPELL_KINDS:
            raise ValueError(f"'event' does not go with {kind}: {_SPELL_START[kind]}")
        if self.event is not None and kind != "after":
            raise ValueError("'event' only goes with lifecycle steps ('after')")
        needs_template = kind != "weekly" or any(t is None for t in (self.weekly or {}).values())
        if needs_template and not self.template:
            raise ValueError("a step needs a 'template'")
        return self

    def templates(self) -> list[str]:
        """Every template this step may use."""
        names = [t for t in (self.weekly or {}).values() if t]
        if self.template and (self.weekly is None or None in self.weekly.values()):
            names.append(self.template)
        return list(dict.fromkeys(names))

    def times(self) -> list[time]:
        return list(self.daily or self.at or [])


class SopSpec(_Model):
    """One SOP file."""

    id: Id
    name: Text
    description: str | None = None
    enabled: bool = True
    timezone: str | None = None
    category: Literal[Category.MARKETING, Category.LIFECYCLE] = Category.MARKETING
    priority: int = Field(default=0, ge=-100, le=100)
    on_missed: OnMissed = OnMissed.SKIP
    grace: Duration = timedelta(hours=1)
    quiet_policy: QuietPolicy = QuietPolicy.WAIT  # inside quiet hours: wait for the morning, or skip
    guarantee: Guarantee = Guarantee.AT_MOST_ONCE  # a send cut off by a crash: unknown, or sent again
    audience: AudienceSpec = AudienceSpec()
    event: EventSpec | None = None
    steps: list[StepSpec] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file
                raise ValueError(f"{value!r} is not an IANA time zone such as 'Asia/Shanghai'") from None
        return value
