"""ADBC drivers (PostgreSQL, SQLite) through ADBC's low-level API.

ADBC's DB-API module imports pyarrow.dataset and pandas: memory in every process for nothing the
service uses. Statements here stream Arrow batches built by the driver in C++, outside the
GIL.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress

import adbc_driver_manager
import pyarrow as pa

Connection = adbc_driver_manager.AdbcConnection


def preload_driver(library: str) -> None:
    """Load a driver's shared library into this process now.

    The driver manager loads it on a process's first connection: dynamic linking of PostgreSQL's
    (libpq and OpenSSL are inside), paid by every work horse unless the worker loaded it before
    forking. The manager's own load of the same file then finds it loaded.
    """
    ctypes.CDLL(library)


@contextmanager
def connect(database: adbc_driver_manager.AdbcDatabase, autocommit: bool) -> Iterator[Connection]:
    """A connection of ``database`` (a driver's ``connect(...)``), closed with the database."""
    with database, adbc_driver_manager.AdbcConnection(database) as connection:
        if not autocommit:
            connection.set_autocommit(False)
        yield connection


class Opened:
    """A connection kept open beyond one block: ``connecting`` entered (``connect``), left by
    ``close``, which never raises."""

    def __init__(self, connecting: AbstractContextManager[Connection]) -> None:
        self._opened = ExitStack()
        self.connection = self._opened.enter_context(connecting)

    def close(self) -> None:
        with suppress(adbc_driver_manager.Error):
            self._opened.close()


def execute(connection: Connection, sql: str) -> None:
    """Run a statement whose rows, if any, are not wanted."""
    with adbc_driver_manager.AdbcStatement(connection) as statement:
        statement.set_sql_query(sql)
        statement.execute_update()


@contextmanager
def query(
    connection: Connection, sql: str, options: Mapping[str, str]
) -> Iterator[pa.RecordBatchReader]:
    """The rows of ``sql`` as the driver's batches; ``options`` are the statement's."""
    with adbc_driver_manager.AdbcStatement(connection) as statement:
        statement.set_options(**options)
        statement.set_sql_query(sql)
        stream, _ = statement.execute_query()
        with pa.RecordBatchReader.from_stream(stream) as reader:
            yield reader
