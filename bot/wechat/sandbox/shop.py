"""The sandbox shop: the online store of the demo, where the simulated customers buy.

WeChat carries no orders, so the sandbox transport cannot report them: a real shop sends
them to sopbot's webhook or an operator imports a CSV. In a demo run the shop hands each
order to `ingest` (wired where the sandbox's autoplay starts, `bot.accounts`: the signal
engine's `ingest_orders`, source `sandbox`), and sopbot treats it like any other order:
purchase tags, tiers, lifecycle steps, results."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from bot.orders.model import Item, OrderIn

Ingest = Callable[[list[OrderIn]], Awaitable[object]]

SOURCE = "sandbox"  # the orders' `source`, as `sopbot contact` shows it


@dataclass(frozen=True)
class Product:
    name: str
    category: str
    price: Decimal
    new: bool = False


# The products of sop/catalog.yaml, as the shop sells them.
CATALOG: tuple[Product, ...] = (
    Product("羊绒围巾", "配饰", Decimal("399")),
    Product("修护保湿面霜", "护肤", Decimal("268"), new=True),
    Product("轻薄羽绒马甲", "服装", Decimal("459"), new=True),
    Product("桑蚕丝枕套", "家居", Decimal("199")),
    Product("护手霜礼盒", "护肤", Decimal("129")),
    Product("羊毛袜三双装", "服装", Decimal("89")),
    Product("明前龙井礼盒", "茶饮", Decimal("328")),
    Product("羊毛针织开衫", "服装", Decimal("359"), new=True),
)


class SandboxShop:
    """Makes an order for a customer and hands it to `ingest`."""

    def __init__(self, account_id: str, ingest: Ingest) -> None:
        self.account_id = account_id
        self.ingest = ingest
        self.sold: list[OrderIn] = []

    def order(self, wxid: str, at: datetime, rng: random.Random) -> OrderIn:
        """One paid order by `wxid` at `at`: a product of the catalog, sometimes two, sometimes
        at a discount. The id is unique per shop run and second (a restarted demo makes new ones)."""
        product = rng.choice(CATALOG)
        qty = 2 if rng.random() < 0.2 else 1
        discounted = rng.random() < 0.4
        amount = product.price * qty * (Decimal("0.9") if discounted else 1)
        return OrderIn(
            order_id=f"SB{at:%Y%m%d%H%M%S}-{len(self.sold) + 1:04d}",
            amount=amount.quantize(Decimal("0.01")),
            ordered_at=at,
            wxid=wxid,
            account=self.account_id,
            discounted=discounted,
            items=[
                Item(
                    name=product.name,
                    category=product.category,
                    qty=qty,
                    price=product.price,
                    new=product.new,
                )
            ],
        )

    async def buy(self, wxid: str, at: datetime, rng: random.Random) -> OrderIn:
        order = self.order(wxid, at, rng)
        self.sold.append(order)
        await self.ingest([order])
        return order
