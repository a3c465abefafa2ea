"""Reading one table through SQLAlchemy with a server-side cursor (the generic URL source).

The SELECT is built from the discovered column list with the dialect's own identifier quoting
(which also escapes ``%`` for drivers that format parameters), run once with ``stream_results``
(a server-side cursor: PyMySQL's SSCursor, psycopg's named cursor, SQLite's stepping cursor), and
fetched ``BATCH_ROWS`` rows at a time, so memory stays bounded by one batch whatever the table
size. One statement means one consistent snapshot on every engine that has snapshots.

Interrupting needs the driver's help: ``cancel(dbapi_connection)`` returns the thread-safe call
that stops its running statement, or None when the driver has none (then only the driver's own
timeouts end a blocked read).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine

from refresh.sources.base import BATCH_ROWS, DiscoveredTable, Since
from refresh.sources.convert import rows_to_batch
from refresh.sources.driver_errors import source_errors
from refresh.sources.interrupt import ReadStopper

Canceller = Callable[[Any], Callable[[], None] | None]


def select_sql(engine: Engine, table: DiscoveredTable, since: Since | None = None) -> str:
    quote = engine.dialect.identifier_preparer.quote_identifier
    columns = ", ".join(quote(column.name) for column in table.columns)
    sql = f"SELECT {columns} FROM {quote(table.schema_name)}.{quote(table.table_name)}"
    return sql if since is None else f"{sql} WHERE {since.condition(quote)}"


@contextmanager
def stream_table(
    engine: Engine,
    table: DiscoveredTable,
    secrets: Collection[str | None],
    driver_errors: tuple[type[BaseException], ...],
    stopper: ReadStopper,
    cancel: Canceller,
    since: Since | None = None,
) -> Iterator[Iterator[pa.RecordBatch]]:
    """Stream ``table``; an interrupt runs the driver's cancel, if it has one.

    A stream abandoned before its end (the consumer failed, a value did not fit) has its cursor
    closed (a server-side cursor is CLOSEd on the server). Errors while abandoning are dropped:
    the connection is discarded anyway, and the error that caused the abandon is the one to
    report.
    """
    schema = table.arrow_schema()
    finished = False

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal finished
        with source_errors(secrets, driver_errors), stopper.explaining():
            for rows in result.partitions(BATCH_ROWS):
                stopper.check()
                yield rows_to_batch(rows, schema)
        finished = True

    stopper.check()
    with source_errors(secrets, driver_errors):
        connection = engine.connect()
    try:
        stop = cancel(connection.connection.dbapi_connection) or _nothing
        with stopper.on_interrupt(stop):
            with source_errors(secrets, driver_errors), stopper.explaining():
                result = connection.execution_options(stream_results=True).exec_driver_sql(
                    select_sql(engine, table, since)
                )
            try:
                yield batches()
            finally:
                if not finished:
                    with suppress(*driver_errors):
                        _close(result.cursor)
    finally:
        # Never reused (NullPool): invalidating closes the connection without the rollback that
        # a normal close sends, which an interrupted statement would answer with an error.
        connection.invalidate()
        connection.close()


def _nothing() -> None:
    pass


def _close(cursor: Any) -> None:
    if cursor is not None:
        cursor.close()
