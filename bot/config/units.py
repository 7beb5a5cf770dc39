"""The small values operators write in SOP files: clock times, durations, weekday names.

Each parser raises ValueError with a reason an operator can act on; the pydantic models in
`bot.sop.authoring.spec` turn that into `file:line: field: reason`.
"""

from __future__ import annotations

import re
from datetime import time, timedelta

# APScheduler 3 (like Python's date.weekday()) counts Monday as 0, unlike cron's Sunday=0;
# names are mapped here, once, and nowhere else.
WEEKDAYS: dict[str, int] = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_WEEKDAY_ALIASES: dict[str, str] = {
    "monday": "mon", "tuesday": "tue", "wednesday": "wed", "thursday": "thu", "friday": "fri",
    "saturday": "sat", "sunday": "sun",
    "周一": "mon", "周二": "tue", "周三": "wed", "周四": "thu", "周五": "fri", "周六": "sat",
    "周日": "sun", "周天": "sun", "星期一": "mon", "星期二": "tue", "星期三": "wed", "星期四": "thu",
    "星期五": "fri", "星期六": "sat", "星期日": "sun", "星期天": "sun",
}  # fmt: skip
WEEKDAY_CN: tuple[str, ...] = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")

_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")
_DURATION = re.compile(r"(\d+)\s*(d|h|m|s|天|小时|分钟|分|秒)")
_UNIT_SECONDS = {
    "d": 86400,
    "天": 86400,
    "h": 3600,
    "小时": 3600,
    "m": 60,
    "分钟": 60,
    "分": 60,
    "s": 1,
    "秒": 1,
}


def parse_time(value: object) -> time:
    """`"10:30"` → 10:30 (in SOP files a bare 10:30 stays text, no quotes needed)."""
    if isinstance(value, time):
        return value
    match = _TIME.match(value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{value!r} is not a time")
    return time(int(match.group(1)), int(match.group(2)))


def parse_duration(value: object) -> timedelta:
    """`15m`, `2h`, `3d`, `1d12h`, `90s`, `2小时`, `0` → a timedelta."""
    if isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return timedelta(0)
    text = value.strip().replace(" ", "") if isinstance(value, str) else None
    if text == "0":
        return timedelta(0)
    if not text or _DURATION.sub("", text) != "":
        raise ValueError(f"{value!r} is not a duration (write it like '15m', '2h' or '3d')")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(text))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out


def parse_weekday(value: object) -> str:
    """`mon`…`sun` (also `Monday`, `周一`, `星期一`) → the short English name."""
    text = value.strip().lower() if isinstance(value, str) else ""
    if text in WEEKDAYS:
        return text
    if text in _WEEKDAY_ALIASES:
        return _WEEKDAY_ALIASES[text]
    raise ValueError(f"{value!r} is not a weekday (use mon, tue, wed, thu, fri, sat, sun)")
