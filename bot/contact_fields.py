"""A contact's profile fields: 城市, 性别 and 生日 have columns of their own; every other field
an operator brings in (会员卡号, 职业 …) lives in `Contact.custom_fields`.

One place reads and writes them, so `sopbot import-contacts`, a tag rule's `set_field`, the
filter language (`field:城市 == 上海`) and templates (`{{ contact.fields.城市 }}`) agree on
names and on how a value is written down.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.birthdays import parse_birthday

# the profile fields with a column of their own, by every name an operator may write
PROFILE_ALIASES: Mapping[str, str] = {
    "city": "城市", "城市": "城市", "gender": "性别", "sex": "性别", "性别": "性别",
    "birthday": "生日", "生日": "生日",
}  # fmt: skip


def profile_name(name: str) -> str:
    """The key of a profile field in `Subject.profile`: 城市/性别/生日 for their aliases."""
    return PROFILE_ALIASES.get(name.strip().casefold(), name.strip())


# the fields with a column: their key in profiles → the Contact attribute
COLUMNS: Mapping[str, str] = {"城市": "city", "性别": "gender", "生日": "birthday"}
MAX_NAME = 32
MAX_VALUE = 200
MAX_CUSTOM = 50  # fields per contact: a profile, not a document store

_GENDERS = {
    "男": "男", "male": "男", "m": "男", "男性": "男", "先生": "男", "1": "男",
    "女": "女", "female": "女", "f": "女", "女性": "女", "女士": "女", "2": "女",
}  # fmt: skip
_UNKNOWN = frozenset({"", "未知", "unknown", "0", "-", "—", "保密"})


class FieldValueError(ValueError):
    """A value a field cannot take; the message names the field and what it accepts."""


def field_key(name: str) -> str:
    """The profile key for a name as written: `city` → 城市; other names as they are."""
    key = profile_name(name)
    if not key or len(key) > MAX_NAME:
        raise FieldValueError(f"field name {name!r}: 1-{MAX_NAME} characters")
    return key


def normalise(key: str, raw: object) -> str | None:
    """The stored form of `raw` for field `key`; None clears the field."""
    if raw is None:
        return None
    if key == "生日":
        if not isinstance(raw, str):
            return parse_birthday(raw)  # type: ignore[arg-type]  # an Excel date cell
        text = raw.strip()
        if not text:
            return None
        try:
            return parse_birthday(text)
        except ValueError as error:
            raise FieldValueError(f"生日: {error}") from None
    text = str(raw).strip()
    if key == "性别":
        if text.casefold() in _UNKNOWN:
            return None
        gender = _GENDERS.get(text.casefold())
        if gender is None:
            raise FieldValueError(f"性别: {text!r} is not 男/女 (or male/female, 先生/女士)")
        return gender
    if not text:
        return None
    if len(text) > MAX_VALUE:
        raise FieldValueError(f"{key}: longer than {MAX_VALUE} characters")
    return text


def set_field(contact: Any, key: str, value: str | None) -> bool:
    """Write one normalised value onto a Contact; True when it changed."""
    column = COLUMNS.get(key)
    if column is not None:
        if getattr(contact, column) == value:
            return False
        setattr(contact, column, value)
        return True
    current = dict(contact.custom_fields or {})
    if current.get(key) == value or (value is None and key not in current):
        return False
    if value is None:
        current.pop(key)
    else:
        if key not in current and len(current) >= MAX_CUSTOM:
            raise FieldValueError(f"{key}: a contact keeps at most {MAX_CUSTOM} fields of your own")
        current[key] = value
    contact.custom_fields = current  # a new dict, so the ORM sees the change
    return True


def profile(
    city: str | None, gender: str | None, birthday: str | None, custom: Mapping[str, str] | None
) -> dict[str, str]:
    """Every field with a value, by key: what `field:` tests and templates show."""
    out = dict(custom or {})
    if gender:  # transports write male/female
        gender = _GENDERS.get(gender.casefold(), gender)
    for key, value in (("城市", city), ("性别", gender), ("生日", birthday)):
        if value:
            out[key] = value
    return out
