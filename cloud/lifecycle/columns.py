"""Columns added to a table after databases with it already exist.

``create_all`` makes missing tables but never alters an existing one, so a database created
by an older release would lack the new columns and every insert would fail. Registering the
columns here adds them (``ALTER TABLE … ADD COLUMN``, with the column's server default for
the rows already there) whenever the table's metadata runs ``create_all`` — which every
entry point does when it opens the database.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateColumn

logger = logging.getLogger(__name__)


def add_on_open(table: sa.Table, *names: str) -> None:
    """Add the columns *names* of *table* to existing databases on ``create_all``."""
    for name in names:
        column = table.c[name]
        if not column.nullable and column.server_default is None:
            raise ValueError(f"{table.name}.{name}: a column added later needs a server default")

    def _after_create(_metadata: sa.MetaData, conn: Connection, **_kw: Any) -> None:
        have = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
        for name in names:
            if name not in have:
                _add(conn, table, table.c[name])

    sa.event.listen(table.metadata, "after_create", _after_create)


def _add(conn: Connection, table: sa.Table, column: sa.Column[Any]) -> None:
    dialect = conn.dialect
    spec = CreateColumn(column).compile(dialect=dialect)
    # PostgreSQL: two processes opening one database at once must not both fail on it
    guard = "IF NOT EXISTS " if dialect.name == "postgresql" else ""
    name = dialect.identifier_preparer.format_table(table)
    conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {guard}{spec}")
    logger.info("table %s: added column %s (created by an older release)", table.name, column.name)
