"""The catalog's engine and sessions, tuned for each backend it runs on."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.dml import Insert

from refresh.common.errors import ServiceUnavailable
from refresh.common.kept import Kept

log = logging.getLogger(__name__)

# A PostgreSQL catalog that does not answer a connection within this time fails the request
# (503) instead of holding its thread for the system's TCP timeout (about 2 minutes); a catalog
# host that vanishes mid-query (its kernel no longer acknowledges) fails it after
# TCP_USER_TIMEOUT_MS. A server that is up but stopped answering still holds the request:
# libpq has no read timeout (docs/decisions.md, D31).
CONNECT_TIMEOUT_SECONDS = 5
TCP_USER_TIMEOUT_MS = 30_000


class Catalog:
    """One engine per process; every unit of work is one short transaction.

    ``session()`` is the ORM's; ``transaction()`` and ``statements()`` are plain SQLAlchemy Core
    on a connection, for the few statements every table of a refresh runs, where the ORM's own
    work per statement costs more than the statement.
    """

    def __init__(self, database_url: str) -> None:
        self.engine = _create_engine(database_url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._autocommit = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT")
            if self.engine.dialect.name == "postgresql"
            else self.engine  # SQLite: one short transaction per block, as cheap in-process
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back when it raises.

        A catalog that cannot be reached (or a SQLite file locked past its busy timeout) raises
        ``ServiceUnavailable``: the request may succeed later, and is not the service's bug.
        """
        with _available(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A Core transaction, committed when the block ends; errors as ``session()``."""
        with _available(), self.engine.begin() as connection:
            yield connection

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """A Core connection whose every statement commits at once (PostgreSQL), for statements
        that stand alone: no BEGIN, no separate COMMIT, one round trip each."""
        with _available(), self._autocommit.begin() as connection:
            yield connection

    def pinned(self) -> PinnedCatalog:
        """A view of the catalog for one thread that runs many short units of work in a row."""
        return PinnedCatalog(self)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


class PinnedCatalog(Catalog):
    """The catalog as one thread of a batch uses it, table after table: ``transaction()`` and
    ``statements()`` reuse a connection each (``Kept``), instead of taking one from the pool (and
    pinging it) for every unit of work, until ``close()``. A connection that failed is dropped;
    the next unit of work takes a fresh one.
    """

    def __init__(self, catalog: Catalog) -> None:  # shares the engine; no super().__init__
        self.engine = catalog.engine
        self._sessions = catalog._sessions
        self._autocommit = catalog._autocommit
        self._transactions: Kept[Connection] = Kept(Connection.close)
        self._statements: Kept[Connection] = Kept(Connection.close)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with (
            _available(),
            self._transactions.use(self.engine.connect) as connection,
            connection.begin(),
        ):
            yield connection

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        with (
            _available(),
            self._statements.use(self._autocommit.connect) as connection,
            connection.begin(),
        ):
            yield connection

    def close(self) -> None:
        self._transactions.close()
        self._statements.close()


@contextmanager
def _available() -> Iterator[None]:
    try:
        yield
    except OperationalError as error:
        # The driver's words go to the log only: they name the catalog's host and user.
        log.error("the catalog database failed: %s", error.orig)
        raise ServiceUnavailable(
            "the catalog database is unavailable right now; the service log has the details"
        ) from error


def insert_ignoring(
    bind: Session | Connection, model: type[DeclarativeBase], **conflict: Any
) -> Insert:
    """An INSERT of ``model`` that skips the rows colliding on the unique index ``conflict``
    names (``index_elements``, and ``index_where`` for a partial one), in the dialect of the
    session or connection: both backends spell it ``ON CONFLICT DO NOTHING``."""
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing(**conflict)


def _create_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend != "sqlite":
        timeouts = (
            {"connect_timeout": CONNECT_TIMEOUT_SECONDS, "tcp_user_timeout": TCP_USER_TIMEOUT_MS}
            if backend == "postgresql"
            else {}
        )
        return create_engine(url, pool_pre_ping=True, connect_args=timeouts)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # A web process, in-process jobs and the sweep share the file: wait for locks instead of
    # failing, and let readers proceed while one writer commits.
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINTs; take BEGIN
        # IMMEDIATE so two writers queue on the lock instead of deadlocking on upgrade.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
