"""Order and contact files uploaded in the console: read and checked first (a dry run that
stores nothing, with every bad row as `file:LINE: column: reason`), kept in memory for a
while, then imported on the operator's word by the same code `sopbot import-orders` and
`sopbot import-contacts` use."""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePath
from typing import Literal

from bot.clock import Clock
from bot.config.errors import ConfigError, ConfigIssue
from bot.config.settings import Settings
from bot.events import ContactEventRecorded
from bot.orders.importer import ParsedFile, parse_table
from bot.people.importer import ParsedContacts, parse_contacts
from bot.signals.engine import OrderReport, ProfileReport, SignalEngine
from bot.tables.read import read_bytes
from bot.tables.spec import Preset

Kind = Literal["orders", "contacts"]
KINDS: tuple[Kind, ...] = ("orders", "contacts")
MAX_UPLOAD = 20 * 1024 * 1024
KEEP = timedelta(minutes=30)
ORDER_OUTCOMES = (
    "new",
    "updated",
    "refunded",
    "unchanged",
    "ignored",
)  # as `sopbot import-orders` lists them
MAX_KEPT = 8
_UNSAFE = re.compile(r"[^\w.\-()（）\u4e00-\u9fff ]+")


@dataclass
class Upload:
    id: str
    kind: Kind
    name: str  # the file's name as shown in problems
    data: bytes
    at: datetime
    owner: str  # the session that uploaded it: nobody else may import it
    imported: bool = False


def shown_name(filename: str | None) -> str:
    """The uploaded file's own name, without any folder and with odd characters dropped."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _UNSAFE.sub("_", base).strip(" .")[:100]
    return cleaned or "upload.csv"


@dataclass
class Uploads:
    """The files waiting for their import: a few, for a while, per session."""

    clock: Clock
    _kept: OrderedDict[str, Upload] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def keep(self, kind: Kind, filename: str | None, data: bytes, owner: str) -> Upload:
        now = self.clock.now()
        upload = Upload(secrets.token_urlsafe(12), kind, shown_name(filename), data, now, owner)
        with self._lock:
            self._forget_old(now)
            self._kept[upload.id] = upload
            while len(self._kept) > MAX_KEPT:
                self._kept.popitem(last=False)
        return upload

    def get(self, upload_id: str, owner: str) -> Upload | None:
        with self._lock:
            self._forget_old(self.clock.now())
            upload = self._kept.get(upload_id)
        return upload if upload is not None and upload.owner == owner else None

    def _forget_old(self, now: datetime) -> None:
        for key in [k for k, u in self._kept.items() if now - u.at > KEEP]:
            del self._kept[key]


def mappings(settings: Settings, kind: Kind) -> tuple[list[Preset], list[ConfigIssue]]:
    """The operator's column names from sop/columns.yaml (as the import commands read it)."""
    from bot.orders.columns import SCHEMA as ORDERS
    from bot.people.columns import SCHEMA as CONTACTS
    from bot.tables.mapfile import MAPPING_FILE, load_mappings

    path = settings.sop_path / MAPPING_FILE
    if not path.is_file():
        return [], []
    try:
        return load_mappings(path, ORDERS if kind == "orders" else CONTACTS, settings.base_dir), []
    except ConfigError as error:
        return [], list(error.issues)


@dataclass(frozen=True)
class DryRun:
    upload: Upload
    parsed: ParsedFile | ParsedContacts | None
    mapping_issues: list[ConfigIssue]

    @property
    def good(self) -> int:
        if isinstance(self.parsed, ParsedFile):
            return len(self.parsed.orders)
        return len(self.parsed.rows) if self.parsed is not None else 0


def dry_run(upload: Upload, settings: Settings) -> DryRun:
    """Read and check the file; nothing is stored."""
    presets, problems = mappings(settings, upload.kind)
    if problems:
        return DryRun(upload, None, problems)
    table = read_bytes(upload.data, upload.name, suffix=PurePath(upload.name).suffix)
    if upload.kind == "orders":
        return DryRun(upload, parse_table(table, settings.tz, presets), [])
    return DryRun(upload, parse_contacts(table, settings.tz, presets), [])


@dataclass(frozen=True)
class Imported:
    orders: OrderReport | None = None
    contacts: ProfileReport | None = None

    def describe(self) -> str:
        """`3 new, 1 refunded` (the import commands' words and order)."""
        if self.orders is None:
            return ""
        counts = self.orders.outcomes
        shown = [f"{counts[k]} {k}" for k in ORDER_OUTCOMES if counts.get(k)]
        shown += [f"{n} {k}" for k, n in counts.items() if k not in ORDER_OUTCOMES and n]
        return ", ".join(shown) or "nothing stored"

    @property
    def events(self) -> Sequence[ContactEventRecorded]:
        report = self.orders or self.contacts
        return report.events if report is not None else []


def import_file(checked: DryRun, engine: SignalEngine, *, relay: bool) -> Imported:
    """Store the good rows of a file read by `dry_run` (bad rows stay out, as on the CLI)."""
    if isinstance(checked.parsed, ParsedFile):
        orders = [order for _, order in checked.parsed.orders]
        return Imported(orders=engine.ingest_orders(orders, source="csv", relay=relay))
    if isinstance(checked.parsed, ParsedContacts):
        return Imported(contacts=engine.ingest_profiles(checked.parsed.rows, relay=relay))
    return Imported()
