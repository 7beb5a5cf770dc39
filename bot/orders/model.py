"""One order as the shop reports it, validated the same way for CSV rows and webhook
JSON, so both answer `field: reason` for the same mistakes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from bot.orders.states import CANCELLED, PAID, REFUNDED, STATUSES, UNPAID
from bot.tables.values import choice_key, normalize_phone, parse_amount, parse_time, parse_yes_no

__all__ = [
    "CANCELLED", "PAID", "REFUNDED", "STATUSES", "UNPAID", "Item", "OrderIn", "identity_keys",
    "normalize_phone", "parse_bool", "parse_items",
]  # fmt: skip

_STATUS_KEYS = {choice_key(written): status for written, status in STATUSES.items()}
_ITEM = re.compile(r"^(?P<name>[^*@]+?)\s*(?:\*\s*(?P<qty>\d+))?\s*(?:@\s*(?P<category>.+))?$")


def parse_bool(value: Any) -> bool:
    return parse_yes_no(value)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    sku: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=64)
    qty: int = Field(default=1, ge=1, le=100_000)
    price: Decimal | None = Field(default=None, ge=0)
    new: bool = False  # a new arrival

    def stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "qty": self.qty, "new": self.new}
        if self.sku:
            out["sku"] = self.sku
        if self.category:
            out["category"] = self.category
        if self.price is not None:
            out["price_cents"] = int(self.price * 100)
        return out


class OrderIn(BaseModel):
    """An order. `amount` is in yuan (元); at least one of wxid, phone, unionid says who."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    order_id: str = Field(min_length=1, max_length=64)
    status: str = PAID
    amount: Decimal = Field(ge=0, le=Decimal("100000000"))
    ordered_at: datetime
    wxid: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=32)
    unionid: str | None = Field(default=None, max_length=64)
    account: str | None = Field(default=None, max_length=32)
    discounted: bool = False
    referrer: str | None = Field(default=None, max_length=128)
    items: list[Item] = Field(default_factory=list, max_length=500)

    @field_validator("amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return parse_amount(value) if isinstance(value, str | float) else value

    @field_validator("status", mode="before")
    @classmethod
    def _status(cls, value: Any) -> str:
        status = _STATUS_KEYS.get(choice_key(str(value or "paid")))
        if status == UNPAID:
            raise ValueError(f"{value!r}: the order is not paid yet (send it once it is)")
        if status is None:
            raise ValueError(f"{value!r} is not a status (paid/已付款, refunded/已退款, cancelled/已取消)")
        return status

    @field_validator("ordered_at", mode="before")
    @classmethod
    def _time(cls, value: Any, info: ValidationInfo) -> Any:
        tz: tzinfo = (info.context or {}).get("tz", UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                moment = datetime.fromtimestamp(value, UTC)
            except (OverflowError, OSError, ValueError):
                raise ValueError(f"{value!r} is not a Unix time in seconds") from None
            if not 2000 <= moment.year <= 2100:
                raise ValueError(f"{value!r} is not a time between the years 2000 and 2100")
            return moment
        return parse_time(value, tz)

    @field_validator("wxid", "unionid", "referrer", "account", mode="before")
    @classmethod
    def _blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("phone", mode="before")
    @classmethod
    def _phone(cls, value: Any) -> Any:
        phone = normalize_phone(str(value)) if value not in (None, "") else None
        if phone is not None and not re.fullmatch(r"\+?\d{5,20}", phone):
            raise ValueError(f"{value!r} is not a phone number")
        return phone

    @field_validator("discounted", mode="before")
    @classmethod
    def _flag(cls, value: Any) -> bool:
        return parse_bool(value)

    @model_validator(mode="after")
    def _who(self) -> OrderIn:
        if not (self.wxid or self.phone or self.unionid):
            raise ValueError("say who bought: wxid, phone or unionid")
        return self

    @property
    def amount_cents(self) -> int:
        return int((self.amount * 100).to_integral_value())

    def buyer_keys(self) -> list[str]:
        return identity_keys(self.wxid, self.phone, self.unionid)


def identity_keys(wxid: str | None, phone: str | None, unionid: str | None) -> list[str]:
    keys = []
    if wxid:
        keys.append(f"wxid:{wxid}")
    if phone:
        keys.append(f"phone:{normalize_phone(phone)}")
    if unionid:
        keys.append(f"unionid:{unionid}")
    return keys


def parse_items(text: str, *, new: bool = False) -> list[dict[str, Any]]:
    """`名称*数量@品类; …` (quantity and category optional) → item dicts."""
    items = []
    for chunk in re.split(r"[;；\n]", text):
        if not chunk.strip():
            continue
        match = _ITEM.match(chunk.strip())
        if not match:
            raise ValueError(f"{chunk.strip()!r} is not an item (write 名称*数量@品类)")
        items.append(
            {
                "name": match["name"].strip(),
                "qty": int(match["qty"] or 1),
                "category": (match["category"] or "").strip() or None,
                "new": new,
            }
        )
    return items
