"""The product catalog (`sop/catalog.yaml`) and the view templates get of it.

Templates see `catalog` for the day and the recipient's tier: `catalog.pick(2)` gives the
day's featured items, rotating so that consecutive days never repeat a pick (as long as
the pool has at least twice as many items as are picked); each item's `price` and
`benefit` are the tier's own when the catalog gives one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from bot.sop.authoring.spec import Id, NameList


def _price(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a price")
    try:
        price = Decimal(str(value).strip().removesuffix("元").removeprefix("¥"))
    except ArithmeticError:
        raise ValueError(f"{value!r} is not a price") from None
    if price < 0 or not price.is_finite():
        raise ValueError(f"{value!r} is not a price")
    return price


Price = Annotated[Decimal, BeforeValidator(_price)]


class CatalogItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Id
    name: str
    price: Price
    prices: dict[str, Price] = Field(default_factory=dict)  # tier → price
    benefits: dict[str, str] = Field(default_factory=dict)  # tier (or default) → benefit
    description: str = ""
    image: str | None = None
    url: str | None = None
    tags: NameList = Field(default_factory=list)
    featured: bool = True


class CatalogFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = "元"
    items: list[CatalogItem] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> CatalogFile:
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                raise ValueError(f"item id {item.id!r} is used twice")
            seen.add(item.id)
        return self


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def item_for_tier(item: CatalogItem, tier: str | None, currency: str) -> dict[str, Any]:
    """An item as a template sees it: plain data, priced for the tier."""
    price = item.prices.get(tier or "", item.price)
    return {
        "id": item.id,
        "name": item.name,
        "price": _number(price),
        "list_price": _number(item.price),
        "discounted": price < item.price,
        "benefit": item.benefits.get(tier or "", item.benefits.get("default", "")),
        "description": item.description,
        "image": item.image or "",
        "url": item.url or "",
        "tags": list(item.tags),
        "currency": currency,
    }


class CatalogView:
    """The catalog for one day and one tier (what `catalog` is in a template)."""

    def __init__(self, catalog: CatalogFile, day: date, tier: str | None) -> None:
        self._catalog = catalog
        self._day = day
        self._tier = tier
        self._items = [item_for_tier(item, tier, catalog.currency) for item in catalog.items]
        self._picks: dict[tuple[int, str | None], list[dict[str, Any]]] = {}

    @property
    def items(self) -> list[dict[str, Any]]:
        return list(self._items)

    def get(self, item_id: str) -> dict[str, Any]:
        for item in self._items:
            if item["id"] == item_id:
                return item
        raise KeyError(f"no catalog item {item_id!r}")

    def pick(self, n: int = 1, tag: str | None = None) -> list[dict[str, Any]]:
        """The day's `n` featured items (optionally only those with `tag`)."""
        key = (n, tag)
        if key not in self._picks:
            pool = [
                shown
                for item, shown in zip(self._catalog.items, self._items, strict=True)
                if item.featured and (tag is None or tag in item.tags)
            ]
            self._picks[key] = rotate(pool, self._day, n)
        return list(self._picks[key])

    def first(self, tag: str | None = None) -> dict[str, Any]:
        """The day's single featured item."""
        picked = self.pick(1, tag)
        if not picked:
            raise KeyError("the catalog has no featured item" + (f" tagged {tag!r}" if tag else ""))
        return picked[0]


def rotate(pool: list[Any], day: date, n: int) -> list[Any]:
    """`n` consecutive items of `pool`, moving on by `n` every day: day D and D+1 share
    nothing while `len(pool) >= 2n`."""
    if not pool or n <= 0:
        return []
    n = min(n, len(pool))
    start = (day.toordinal() * n) % len(pool)
    return [pool[(start + i) % len(pool)] for i in range(n)]


def tier_keys(catalog: CatalogFile) -> Mapping[tuple[str | int, ...], str]:
    """Every tier named in the catalog with where it is: for the loader's tier check."""
    out: dict[tuple[str | int, ...], str] = {}
    for index, item in enumerate(catalog.items):
        for tier in item.prices:
            out[("items", index, "prices", tier)] = tier
        for tier in item.benefits:
            if tier != "default":
                out[("items", index, "benefits", tier)] = tier
    return out
