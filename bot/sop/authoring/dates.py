"""Operator-defined dates (`sop/dates.yaml`): brand anniversary, member days, campaign
windows. They join the built-in festivals of `bot.calendar`, by id, name or alias.

`holidays:` holds official 放假/调休 schedules typed in from the State Council notice, for
a year sopbot has no official data for yet, possibly one holiday at a time: what is
entered replaces that holiday's statutory estimate, the rest of the year keeps the
estimate; `sopbot check` notes a year entered in part (`holiday_notes`)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.calendar import (
    STATUTORY_HOLIDAYS,
    Festival,
    HolidaySchedule,
    Window,
    official_schedule_years,
    parse_rule,
    statutory_days_off,
    statutory_holidays_in,
)
from bot.config.errors import ConfigError, ConfigIssue
from bot.config.yaml_source import YamlDocument, load_yaml
from bot.sop.authoring.spec import NameList, WindowSpec


class DateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str = Field(min_length=1)
    date: str | None = None  # 09-08, 2026-08-08, 农历08-15, 5月第2个周日, 节气:清明
    window: WindowSpec | None = None
    aliases: NameList = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _ascii_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", value):
            raise ValueError(f"{value!r} is not an id (use ASCII letters, digits, '-' or '_')")
        return value

    @field_validator("date")
    @classmethod
    def _rule(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rule(str(value))
        return value

    @model_validator(mode="after")
    def _one(self) -> DateSpec:
        if (self.date is None) == (self.window is None):
            raise ValueError("give either 'date' or 'window'")
        return self

    def festival(self) -> Festival:
        if self.window is not None:
            w = self.window
            rule: object = Window(w.start, w.end, w.from_offset, w.to_offset)
        else:
            rule = parse_rule(str(self.date))
        return Festival(self.id, self.name, rule, tuple(self.aliases), "custom")  # type: ignore[arg-type]


_DAY = re.compile(r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})\s*$")


def _day(text: object) -> date:
    match = _DAY.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a date (write it like 2027-02-05)")
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (write it like 2027-02-05)") from None


def parse_days(value: object) -> list[date]:
    """`2027-02-05`, `2027-02-05..2027-02-11` (both included) or a list of either."""
    out: list[date] = []
    for item in value if isinstance(value, list) else [value]:
        first, sep, last = str(item).partition("..")
        start = _day(first)
        end = _day(last) if sep else start
        if end < start or (end - start).days > 40:
            raise ValueError(f"{item!r} is not a range of at most 40 days")
        out.extend(start + timedelta(days=i) for i in range((end - start).days + 1))
    return out


class HolidaysSpec(BaseModel):
    """An official 放假/调休 schedule typed in from the State Council notice, for a year the
    built-in calendar does not know yet: `off` and `work` map holiday names to days. It may
    hold some holidays only; the others keep the statutory estimate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    off: dict[str, Annotated[list[date], BeforeValidator(parse_days)]] = Field(default_factory=dict)
    work: dict[str, Annotated[list[date], BeforeValidator(parse_days)]] = Field(default_factory=dict)

    def schedule(self, year: int) -> HolidaySchedule:
        days_off = {d: name for name, days in self.off.items() for d in days}
        workdays = {d: name for name, days in self.work.items() for d in days}
        return HolidaySchedule(year, days_off, workdays)


class DatesFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dates: list[DateSpec] = Field(default_factory=list)
    holidays: dict[int, HolidaysSpec] = Field(default_factory=dict)

    def schedules(self) -> list[HolidaySchedule]:
        return [spec.schedule(year) for year, spec in sorted(self.holidays.items())]


def holiday_notes(doc: YamlDocument, dates: DatesFile) -> list[ConfigIssue]:
    """Notes (not errors) on `holidays:` for `sopbot check`, for years sopbot has no official
    data for: a year entered in part (which holidays keep the estimate), an `off` name
    that is no statutory holiday, a statutory day off an entered holiday does not list."""
    notes: list[ConfigIssue] = []
    for year, spec in sorted(dates.holidays.items()):
        if year in official_schedule_years():
            continue  # the days entered correct the library's data, day by day
        key: int | str = year if ("holidays", year) in doc.lines else str(year)
        listed = {d for days in spec.off.values() for d in days}
        law = statutory_days_off(year, makeup=False)
        entered: list[str] = []
        first = len(notes)
        for name in spec.off:
            holidays = statutory_holidays_in(name)
            entered.extend(holidays)
            where = ("holidays", key, "off", name)
            if not holidays:
                known = "、".join(STATUTORY_HOLIDAYS)
                notes.append(_note(doc, where, f"{name!r} names none of {known}; its days count as days off"))
            for holiday in holidays:
                missing = [
                    d.isoformat()
                    for d, owner in law.items()
                    if holiday in owner.split("、") and d not in listed
                ]
                if missing:
                    notes.append(
                        _note(
                            doc,
                            where,
                            f"{holiday} does not list its statutory day off {', '.join(missing)} "
                            "(全国年节及纪念日放假办法 第二条)",
                        )
                    )
        rest = [h for h in STATUTORY_HOLIDAYS if h not in entered]
        if rest and len(rest) < len(STATUTORY_HOLIDAYS):
            done = "、".join(h for h in STATUTORY_HOLIDAYS if h in entered)
            notes.insert(
                first,
                _note(
                    doc,
                    ("holidays", key),
                    f"{year} is entered in part ({done}); {'、'.join(rest)} keep the statutory "
                    "estimate (补假 included, no 调休) until you enter them from the State Council notice",
                ),
            )
    return notes


def _note(doc: YamlDocument, loc: tuple[str | int, ...], reason: str) -> ConfigIssue:
    # format_loc would print the year key as a list index (holidays[2027])
    return ConfigIssue(doc.file, doc.line(loc), ".".join(map(str, loc)), f"note: {reason}")


def read_holiday_notes(sop_dir: Path) -> list[ConfigIssue]:
    """`holiday_notes` of `sop_dir/dates.yaml`; none when the file is missing or invalid
    (its errors are reported by the loader)."""
    found = [p for p in (sop_dir / "dates.yml", sop_dir / "dates.yaml") if p.is_file()]
    if not found:
        return []
    path = found[0]  # the loader's choice when both exist
    try:
        doc = load_yaml(path)
        dates = doc.validate(DatesFile) if isinstance(doc.data, dict) else None
    except ConfigError:
        return []
    return holiday_notes(doc, dates) if dates is not None else []
