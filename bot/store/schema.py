"""Start-up schema check: the embedded SQLite database upgrades itself; a server database
is upgraded by the operator with `sopbot db upgrade`."""

from __future__ import annotations

import logging

from bot.store.database import Database
from bot.store.migrate import current_revision, head_revision, upgrade

log = logging.getLogger("bot.store")


class SchemaOutOfDate(Exception):
    pass


def ensure_schema(database: Database) -> None:
    current, head = current_revision(database), head_revision()
    if current == head:
        return
    if database.dialect == "sqlite":
        before, after = upgrade(database)
        log.info("database schema upgraded from %s to %s", before or "empty", after)
        return
    raise SchemaOutOfDate(
        f"database schema is at {current or 'empty'}, this sopbot needs {head}: run `sopbot db upgrade`"
    )
