"""Schema migrations (Alembic), run from inside sopbot."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

from bot.store.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The revision this code needs ("a+b" while feature branches await their merge)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(_config()).get_heads()
    return "+".join(sorted(heads)) or None


def current_revision(database: Database) -> str | None:
    """The schema revision the database is at (read from alembic's table with plain SQL:
    every command asks, and importing alembic costs a tenth of a second)."""
    with database.engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        heads = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return "+".join(sorted(str(head) for head in heads)) or None


def upgrade(database: Database, revision: str = "heads") -> tuple[str | None, str | None]:
    """Bring the schema to `revision`; returns (before, after)."""
    from alembic import command

    before = current_revision(database)
    config = _config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(database)


def make_revision(database: Database, message: str) -> None:
    """Developer helper: autogenerate a new migration from the models."""
    from alembic import command

    config = _config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
