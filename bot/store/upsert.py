"""INSERT … ON CONFLICT for the two backends we support."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def insert_new(
    session: Session, table: Any, rows: Sequence[Mapping[str, Any]], *, conflict: Iterable[str]
) -> int:
    """Insert many rows, skipping those whose `conflict` columns already exist; returns how
    many were new. All rows must have the same keys."""
    if not rows:
        return 0
    statement = insert_for(session, table).on_conflict_do_nothing(index_elements=list(conflict))
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite":
        # psycopg reports no rowcount for executemany; RETURNING names the new rows
        return len(session.execute(statement.returning(*table.primary_key.columns), list(rows)).all())
    # SQLite, the hot path of a 100k fan-out: compile once, convert values with the
    # columns' own bind processors, and let sqlite3's executemany (whose rowcount is the
    # number of rows inserted) do the rest, without per-row statement handling.
    names = list(rows[0])
    compiled = statement.values(dict.fromkeys(names)).compile(dialect=dialect)
    order = list(compiled.positiontup or ())
    if missing := set(order) - set(names):
        # columns with defaults that the rows leave out would need SQLAlchemy's per-row handling
        raise ValueError(f"insert_new needs every column given explicitly; missing {sorted(missing)}")
    processors = {name: table.c[name].type._cached_bind_processor(dialect) for name in names}
    params = [
        tuple(
            processor(row[name]) if (processor := processors[name]) is not None else row[name]
            for name in order
        )
        for row in rows
    ]
    cursor = session.connection().exec_driver_sql(str(compiled), params)
    return int(cursor.rowcount)
