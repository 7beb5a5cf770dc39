"""The values shop and CRM exports write in their cells, read into Python values.

Each parser takes a cell as the reader gives it (text, or an int, float or datetime from an
Excel file) and raises ValueError with a reason an operator can act on; the table mapping
turns that into `file:LINE: column: reason`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

# Cells that mean "nothing here": exports write a dash rather than leave a cell empty.
BLANKS = frozenset({"", "-", "--", "—", "——", "/", "\\n", "null", "none", "nan", "n/a"})
YES = frozenset({"1", "true", "yes", "y", "是", "有", "√", "✓", "✔", "参与"})
NO = frozenset({"0", "false", "no", "n", "否", "无", "×", "✗", "不是", "未参与"})
MAX_EXACT = 2**53  # floats above this lost digits before we saw them (Excel keeps 15 digits)

_MONEY_NOISE = re.compile(r"[¥￥\s,，\u00a0\u2009\u3000]|元$|^rmb|^cny", re.IGNORECASE)
_MASKED = re.compile(r"\*{2,}|密文|^#{2}|^\${2}|\*\*\*")
_PHONE_PUNCT = re.compile(r"[\s\-()（）.]")
_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_WEEKDAY = re.compile(r"\s*[(（]?(星期|周)[一二三四五六日天][)）]?")
_TIME_LAYOUTS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%d %H",
    "%Y-%m-%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
)
_EXCEL_EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (with its 1900 leap-year bug)


class MaskedValue(ValueError):
    """A cell the shop hid (`138****0001`, `$$密文`): not an error in itself, but no use."""


def text(cell: Any) -> str:
    """A cell as text: numbers without a trailing `.0`, times as `2026-11-20 14:03:00`."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, float) and cell.is_integer() and abs(cell) < MAX_EXACT:
        return str(int(cell))
    if isinstance(cell, datetime):
        return cell.isoformat(" ")
    return str(cell).strip()


def is_blank(cell: Any) -> bool:
    return text(cell).casefold() in BLANKS


def parse_text(cell: Any) -> str:
    """Text; a long number that Excel stored as a float (an order id, a phone) is refused,
    because its last digits are gone."""
    if isinstance(cell, float) and abs(cell) >= 1e15:
        raise ValueError(
            f"{text(cell)!r} is a number too long for Excel: its last digits were lost "
            "(export the column as text)"
        )
    return text(cell)


def parse_amount(cell: Any) -> Decimal:
    """Yuan: `199`, `199.00`, `¥1,299.00`, `￥88`, `88元`, `RMB 20` → a Decimal."""
    if isinstance(cell, bool):
        raise ValueError(f"{cell!r} is not an amount in yuan (like 199.00)")
    if isinstance(cell, int | Decimal):
        return Decimal(cell)
    if isinstance(cell, float):
        return Decimal(str(cell))
    written = text(cell)
    try:
        amount = Decimal(_MONEY_NOISE.sub("", written))
    except InvalidOperation:
        raise ValueError(f"{written!r} is not an amount in yuan (like 199.00)") from None
    if not amount.is_finite():
        raise ValueError(f"{written!r} is not an amount in yuan (like 199.00)")
    return amount


def parse_time(cell: Any, tz: tzinfo = UTC) -> datetime:
    """A moment as shops write it, in `tz` unless it says its own offset:
    `2026-11-20 14:03:22`, `2026/11/20 14:03`, `2026年11月20日 14:03`, `2026.11.20`,
    ISO 8601, `20261120140322`, an Excel date cell or an Excel day number."""
    if isinstance(cell, datetime):
        moment = cell
    elif isinstance(cell, date):
        moment = datetime(cell.year, cell.month, cell.day)
    elif isinstance(cell, int | float) and not isinstance(cell, bool) and 20_000 <= cell <= 80_000:
        moment = _EXCEL_EPOCH + timedelta(days=float(cell))  # a date cell read as its number
        moment = moment.replace(microsecond=0)
    else:
        moment = _parse_time_text(text(cell))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=tz)
    if not 2000 <= moment.year <= 2100:
        raise ValueError(f"{text(cell)!r} is not a time between the years 2000 and 2100")
    return moment


def parse_date(cell: Any) -> date:
    """A calendar day in any of the forms `parse_time` reads (`1990年5月20日`, `1990/5/20`,
    an Excel date), years 1900 to 2100 (birthdays are old)."""
    if isinstance(cell, datetime):
        day = cell.date()
    elif isinstance(cell, date):
        day = cell
    elif isinstance(cell, int | float) and not isinstance(cell, bool) and 1 <= cell <= 80_000:
        day = (_EXCEL_EPOCH + timedelta(days=float(cell))).date()
    else:
        written = text(cell)
        try:
            day = _parse_time_text(written).date()
        except ValueError:
            raise ValueError(f"{written!r} is not a date (like 1990-05-20)") from None
    if not 1900 <= day.year <= 2100:
        raise ValueError(f"{text(cell)!r} is not a date between the years 1900 and 2100")
    return day


def _parse_time_text(written: str) -> datetime:
    shown = written
    written = _WEEKDAY.sub(" ", written).strip()
    written = _CN_DATE.sub(r"\1-\2-\3 ", written)
    written = re.sub(r"(\d+)\s*[时点]\s*(\d+)\s*分(?:\s*(\d+)\s*秒)?", _clock, written)
    written = re.sub(r"(?<=\d)[/.](?=\d)", "-", written)
    written = " ".join(written.split())
    try:
        return datetime.fromisoformat(written)
    except ValueError:
        pass
    for layout in _TIME_LAYOUTS:
        try:
            return datetime.strptime(written, layout)
        except ValueError:
            continue
    raise ValueError(f"{shown!r} is not a time (like 2026-11-20 14:30:00)")


def _clock(match: re.Match[str]) -> str:
    return f"{match[1]}:{match[2]}" + (f":{match[3]}" if match[3] else "")


def parse_yes_no(cell: Any) -> bool:
    """是/否, yes/no, y/n, 1/0, true/false, √/×, 有/无; an empty cell is no."""
    if isinstance(cell, bool):
        return cell
    written = text(cell).casefold()
    if written in YES:
        return True
    if written in NO or written in BLANKS:
        return False
    raise ValueError(f"{text(cell)!r} is not yes/no (是/否)")


def parse_mark(cell: Any) -> bool:
    """Any sign of something: a yes, an amount above zero or a label (`满300减30`) is true;
    an empty cell, a no, `0`, `0.00` or `-` is false."""
    if isinstance(cell, bool):
        return cell
    written = text(cell).casefold()
    if written in BLANKS or written in NO:
        return False
    if written in YES:
        return True
    try:
        return parse_amount(cell) != 0  # discounts are often written negative
    except ValueError:
        return True  # a label: the name of a campaign or coupon


def parse_count(cell: Any) -> int:
    """A whole number of pieces: `2`, `2.0`, `2件`, `x2`, `×2`."""
    if isinstance(cell, int) and not isinstance(cell, bool):
        return cell
    written = text(cell)
    match = re.fullmatch(
        r"[x×*]?\s*(\d+)(?:\.0+)?\s*(?:件|个|份|瓶|盒|支|套|条|双|只|袋|包)?", written, re.IGNORECASE
    )
    if not match:
        raise ValueError(f"{written!r} is not a number of pieces (like 2)")
    return int(match[1])


def normalize_phone(value: str | None) -> str | None:
    """`+86 138-0000-0001` → `13800000001`; other numbers lose only their punctuation."""
    if not value:
        return None
    digits = _PHONE_PUNCT.sub("", value)
    digits = re.sub(r"^(?:\+?86|0086)(?=1\d{10}$)", "", digits)
    return digits or None


def parse_phone(cell: Any) -> str:
    """A phone number, normalized; a masked one (`138****0001`, `$$密文`) raises MaskedValue."""
    written = text(cell)
    if _MASKED.search(written):
        raise MaskedValue(
            f"{written!r} is hidden by the shop (masked or encrypted): export plain numbers, or add a "
            "column the buyer can be found by (微信号)"
        )
    phone = normalize_phone(written)
    if phone is None or not re.fullmatch(r"\+?\d{5,20}", phone):
        raise ValueError(f"{written!r} is not a phone number")
    return phone


def choice_key(written: str) -> str:
    """How a choice is looked up: any case, no spaces or punctuation (`买家已付款，等待卖家发货`
    and `买家已付款,等待卖家发货` are the same)."""
    return re.sub(r"[\s,，.。、:：;；!！()（）\[\]【】\-_/]", "", written).casefold()


def parse_choice(cell: Any, values: Mapping[str, str], what: str) -> str:
    """One of the known values (`values` maps written forms, keyed by `choice_key`, to the
    canonical value)."""
    written = text(cell)
    found = values.get(choice_key(written))
    if found is None:
        raise ValueError(f"{written!r} is not {what}")
    return found
