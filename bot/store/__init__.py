"""Storage: SQLModel tables, engines for SQLite and PostgreSQL, migrations and the
small set of operations the rest of the bot uses."""

from bot.store.database import Database

__all__ = ["Database"]
