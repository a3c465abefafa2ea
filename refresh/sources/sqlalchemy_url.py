"""Any database SQLAlchemy can reach, from a URL; discovery by bulk reflection.

The URL's password is the connection's secret: ``split_secret`` takes it out, so the catalog
stores the URL without it, and ``_engine`` puts it back. Validation messages never echo the URL.

Discovery covers the ``schemas`` listed in the config, by default the URL's default schema only
(``public``, the MySQL database, SQLite's ``main``): listing every schema would, on MySQL, mean
every database of the server. Reflection is ``Inspector.get_multi_columns``, one bulk call per
schema. Its generic types map to Arrow (``arrow_type``): SmallInteger/Integer/BigInteger ->
int16/int32/int64, Float -> float32 up to 24 bits of precision else float64, Numeric(p, s) ->
decimal(p, s) (no precision: decimal128(38, 9)), DateTime -> timestamp[us] (with time zone:
tz=UTC), Date -> date32, Time -> time64[us] (with time zone: string), Boolean -> bool,
binary types -> binary, anything else -> string. PostgreSQL domains use their base type.

The connect timeout reaches the drivers known to take ``connect_timeout`` (psycopg, psycopg2,
PyMySQL); other drivers read theirs from the URL's query string, where a user can set it.

Changes cannot be fingerprinted across every engine a URL may name: every table is always
"changed" (the default ``fingerprints``). A ``check_sql`` runs in a transaction that is rolled
back, read-only only where the database enforces it for the URL's user.

``interrupt`` cancels the running statement where the driver can from another thread: SQLite's
``interrupt()``, psycopg's ``cancel_safe()`` (bounded by the connect timeout). Other drivers
(PyMySQL, psycopg2, ...) have no such call: a blocked read then ends by the driver's own timeouts
(a URL can set them), or is abandoned by the refresh.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import pyarrow as pa
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates
from sqlalchemy import Engine, create_engine, inspect, types
from sqlalchemy.dialects.postgresql import DOMAIN
from sqlalchemy.engine import URL, ObjectKind, make_url
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from refresh.sources.base import Column, DiscoveredTable, Since, Source, single_row
from refresh.sources.config import confined_path
from refresh.sources.driver_errors import source_errors
from refresh.sources.sql_stream import stream_table
from refresh.sources.typemap import UNCONSTRAINED_DECIMAL, decimal_type

_CONNECT_TIMEOUT_DRIVERS = frozenset({"psycopg", "psycopg2", "pymysql"})
# ImportError: the URL names a driver that is not installed.
_DRIVER_ERRORS = (SQLAlchemyError, ImportError)


class SQLAlchemyConfigSchema(Schema):
    url = fields.String(required=True)
    schemas = fields.List(
        fields.String(validate=validate.Length(min=1)), validate=validate.Length(min=1)
    )

    @validates("url")
    def parsable(self, value: str, **_: Any) -> None:
        try:
            make_url(value).get_dialect()
        except (ArgumentError, ValueError):
            raise ValidationError("Not a valid SQLAlchemy URL.") from None
        except NoSuchModuleError:
            raise ValidationError("Unknown SQLAlchemy dialect or driver.") from None

    @post_load
    def confined_sqlite_file(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """A SQLite file is a file source like ``sqlite``'s: it must be under FILE_SOURCES_DIR."""
        url = make_url(data["url"])
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return data
        if "uri" in url.query:  # the database would be a URI naming any file
            raise ValidationError(
                "SQLite URI filenames (uri=true) are not supported; give the file's path",
                field_name="url",
            )
        path = confined_path(url.database, "url")
        return {**data, "url": url.set(database=path).render_as_string(hide_password=False)}


def arrow_type(column_type: types.TypeEngine) -> pa.DataType:
    if isinstance(column_type, DOMAIN):
        column_type = column_type.data_type
    if isinstance(column_type, types.Boolean):
        return pa.bool_()
    if isinstance(column_type, types.SmallInteger):
        return pa.int16()
    if isinstance(column_type, types.BigInteger):
        return pa.int64()
    if isinstance(column_type, types.Integer):
        return pa.int32()
    if isinstance(column_type, types.Float):
        single = isinstance(column_type, types.REAL) or (column_type.precision or 53) <= 24
        return pa.float32() if single else pa.float64()
    if isinstance(column_type, types.Numeric):
        if column_type.precision is None:
            return UNCONSTRAINED_DECIMAL
        return decimal_type(column_type.precision, column_type.scale or 0)
    if isinstance(column_type, types.DateTime):
        return pa.timestamp("us", tz="UTC" if column_type.timezone else None)
    if isinstance(column_type, types.Date):
        return pa.date32()
    if isinstance(column_type, types.Time) and not column_type.timezone:
        return pa.time64("us")
    if isinstance(column_type, types.LargeBinary | types.BINARY | types.VARBINARY):
        return pa.binary()
    return pa.string()


class SQLAlchemyURLSource(Source):
    source_type: ClassVar[str] = "sqlalchemy"
    config_schema = SQLAlchemyConfigSchema

    @classmethod
    def split_secret(cls, config: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        url = make_url(config["url"])
        stored = {**config, "url": _without_password(url).render_as_string(hide_password=False)}
        return stored, url.password

    def _engine(self) -> Engine:
        url = make_url(self.config["url"])
        if self.password is not None:
            url = url.set(password=self.password)
        connect_args = {}
        if url.get_driver_name() in _CONNECT_TIMEOUT_DRIVERS:
            connect_args["connect_timeout"] = max(1, math.ceil(self.connect_timeout))
        return create_engine(url, poolclass=NullPool, connect_args=connect_args)

    def discover(self, only: Collection[tuple[str, str]] | None = None) -> list[DiscoveredTable]:
        with source_errors([self.password], _DRIVER_ERRORS):
            engine = self._engine()
            with engine.connect() as connection:
                inspector = inspect(connection)
                default = inspector.default_schema_name
                tables = []
                for schema in self.config.get("schemas") or [default]:
                    names = None
                    if only is not None:
                        names = [table for s, table in only if s == schema]
                        if not names:
                            continue
                    scope = {
                        "schema": None if schema == default else schema,
                        "filter_names": names,
                    }
                    reflected = inspector.get_multi_columns(**scope, kind=ObjectKind.ANY)
                    keys = inspector.get_multi_pk_constraint(**scope, kind=ObjectKind.TABLE)
                    tables.extend(
                        DiscoveredTable(
                            schema,
                            table,
                            _columns(columns, engine),
                            tuple(keys.get(name, {}).get("constrained_columns") or ()),
                        )
                        for name, columns in sorted(reflected.items())
                        for _, table in [name]
                    )
        return tables

    def read(
        self, table: DiscoveredTable, since: Since | None = None
    ) -> AbstractContextManager[Iterator[pa.RecordBatch]]:
        with source_errors([self.password], _DRIVER_ERRORS):
            engine = self._engine()
        return stream_table(
            engine, table, [self.password], _DRIVER_ERRORS, self._stopper, self._canceller, since
        )

    def run_check(self, sql: str) -> tuple[object, ...]:
        self._stopper.check()
        with source_errors([self.password], _DRIVER_ERRORS):
            engine = self._engine()
            with engine.connect() as connection:
                stop = self._canceller(connection.connection.dbapi_connection)
                with (
                    self._stopper.on_interrupt(stop or (lambda: None)),
                    self._stopper.explaining(),
                ):
                    rows = connection.exec_driver_sql(sql).fetchmany(2)
                    connection.rollback()
        return single_row(rows)

    def _canceller(self, dbapi_connection: Any) -> Callable[[], None] | None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            return dbapi_connection.interrupt
        cancel_safe = getattr(dbapi_connection, "cancel_safe", None)  # psycopg 3
        if cancel_safe is not None:
            timeout = max(1, math.ceil(self.connect_timeout))
            return lambda: cancel_safe(timeout=timeout)
        return None


def _without_password(url: URL) -> URL:
    # ``URL.set(password=None)`` means "leave it"; rebuild instead.
    return URL.create(
        url.drivername, url.username, None, url.host, url.port, url.database, url.query
    )


def _columns(columns: list[ReflectedColumn], engine: Engine) -> tuple[Column, ...]:
    return tuple(
        Column(
            column["name"],
            arrow_type(column["type"]),
            column["nullable"],
            _native_type(column["type"], engine),
        )
        for column in columns
    )


def _native_type(column_type: types.TypeEngine, engine: Engine) -> str:
    try:
        return column_type.compile(dialect=engine.dialect)
    except SQLAlchemyError:  # NullType and other types the dialect cannot spell
        return repr(column_type)
