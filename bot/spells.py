"""The name of a spell of silence or of a buyer's lapse, as the run ledger and the outbox
keep it: `silent:42:20261124T020000` (contact 42, silent since that UTC second) or
`order:42:…` (their latest paid order). The SOP sweep names the spells it plans messages for;
the delivery claim reads the name back to drop a message whose spell ended while it waited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

SILENT = "silent"
ORDER = "order"
STAMP = "%Y%m%dT%H%M%S"


@dataclass(frozen=True)
class Spell:
    kind: str  # SILENT or ORDER
    contact_id: int
    anchor: datetime  # when it began, to the second (UTC)


def spell_name(kind: str, contact_id: int, anchor: datetime) -> str:
    return f"{kind}:{contact_id}:{anchor.astimezone(UTC).strftime(STAMP)}"


def parse_spell(occurrence: str | None) -> Spell | None:
    """The spell an occurrence names, or None for any other occurrence."""
    if not occurrence or not occurrence.startswith((f"{SILENT}:", f"{ORDER}:")):
        return None
    kind, _, rest = occurrence.partition(":")
    contact, _, stamp = rest.partition(":")
    try:
        return Spell(kind, int(contact), datetime.strptime(stamp, STAMP).replace(tzinfo=UTC))
    except ValueError:
        return None
