"""The order file importer under its first name: files are read by `bot.orders.importer`
(CSV in any usual encoding, and `.xlsx`)."""

from __future__ import annotations

from bot.orders.importer import ParsedFile, parse_csv, read_orders
from bot.tables.read import decode

__all__ = ["ParsedFile", "decode", "parse_csv", "read_orders"]
