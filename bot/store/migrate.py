"""Schema migrations (Alembic), run from inside sopbot."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot.store.database import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    """The revision this code needs ("a+b" while feature branches await their merge)."""
    heads = ScriptDirectory.from_config(_config()).get_heads()
    return "+".join(sorted(heads)) or None


def current_revision(database: Database) -> str | None:
    with database.engine.connect() as connection:
        heads = MigrationContext.configure(connection).get_current_heads()
    return "+".join(sorted(heads)) or None


def upgrade(database: Database, revision: str = "heads") -> tuple[str | None, str | None]:
    """Bring the schema to `revision`; returns (before, after)."""
    before = current_revision(database)
    config = _config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return before, current_revision(database)


def make_revision(database: Database, message: str) -> None:
    """Developer helper: autogenerate a new migration from the models."""
    config = _config()
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
