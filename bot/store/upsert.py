"""INSERT … ON CONFLICT for the two backends we support."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def insert_for(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"sopbot supports SQLite and PostgreSQL, not {dialect}")


def upsert(
    session: Session,
    model: Any,
    values: Mapping[str, Any],
    *,
    conflict: Iterable[str],
    update: Iterable[str] = (),
    returning: Any = None,
) -> Any:
    """Insert a row, or update `update` columns of the row that has the same `conflict`
    columns. Returns the `returning` column's value when asked."""
    statement: Insert = insert_for(session, model.__table__).values(**values)
    columns = list(update)
    if columns:
        statement = statement.on_conflict_do_update(
            index_elements=list(conflict),
            set_={name: statement.excluded[name] for name in columns},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    if returning is not None:
        return session.execute(statement.returning(returning)).scalar_one_or_none()
    session.execute(statement)
    return None
