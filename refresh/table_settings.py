"""A table's own refresh settings: its change check, its hold ratio, its staleness bound, and how
it is refreshed (full, append or merge by a cursor column).

A table without a ``table_settings`` row has the defaults; ``PUT`` changes only the fields it
names, so setting one never resets another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from refresh.catalog import Table, TableSettings
from refresh.catalog.models import DEFAULT_HOLD_BELOW_RATIO, RefreshMode
from refresh.check_sql import validate_check_sql
from refresh.common.arrow_types import type_from_string
from refresh.common.errors import InvalidRequest
from refresh.cursors import is_cursor_type
from refresh.lookup import load_connection, load_table
from refresh.runtime import Runtime


@dataclass(frozen=True)
class Settings:
    check_sql: str | None = None
    hold_below_ratio: float = DEFAULT_HOLD_BELOW_RATIO
    max_staleness_seconds: int | None = None
    refresh_mode: str = RefreshMode.FULL.value
    cursor_column: str | None = None
    primary_key: tuple[str, ...] | None = None
    cursor_overlap: float = 0.0
    full_refresh_every_seconds: int | None = None


FIELDS = (
    "check_sql",
    "hold_below_ratio",
    "max_staleness_seconds",
    "refresh_mode",
    "cursor_column",
    "primary_key",
    "cursor_overlap",
    "full_refresh_every_seconds",
)
# The fields checked against the table's columns when a PUT names any of them.
INCREMENTAL_FIELDS = ("refresh_mode", "cursor_column", "primary_key")


def get_settings(rt: Runtime, connection_id: str, schema_name: str, table_name: str) -> Settings:
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        return settings_of(session.get(TableSettings, table.id))


def put_settings(
    rt: Runtime,
    connection_id: str,
    schema_name: str,
    table_name: str,
    changes: Mapping[str, Any],
) -> Settings:
    """Apply ``changes`` (validated fields of ``FIELDS``) and return the whole settings.

    Raises ``NotFound`` and ``InvalidRequest``: a ``check_sql`` that is not a one-row SELECT in
    the connection's dialect; an append or merge mode without its cursor column (an integer,
    date or timestamp column of the table) or, for merge, without a primary key (columns of the
    table: the setting's, else the one discovery found at the source).
    """
    with rt.catalog.session() as session:
        connection = load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        if changes.get("check_sql") is not None:
            validate_check_sql(changes["check_sql"], connection.source_type)
        row = session.get(TableSettings, table.id)
        given = {name: changes[name] for name in FIELDS if name in changes}
        if given.get("primary_key") is not None:
            given["primary_key"] = tuple(given["primary_key"])
        settings = replace(settings_of(row), **given)
        if any(name in given for name in INCREMENTAL_FIELDS):
            _check_incremental(settings, table)
        if row is None:
            row = TableSettings(table_id=table.id)
            session.add(row)
        for name in FIELDS:
            value = getattr(settings, name)
            setattr(row, name, list(value) if isinstance(value, tuple) else value)
        return settings


def settings_of(row: TableSettings | None) -> Settings:
    """A table's settings from its row (None: the defaults)."""
    if row is None:
        return Settings()
    return Settings(
        row.check_sql,
        row.hold_below_ratio,
        row.max_staleness_seconds,
        row.refresh_mode,
        row.cursor_column,
        tuple(row.primary_key) if row.primary_key is not None else None,
        row.cursor_overlap,
        row.full_refresh_every_seconds,
    )


def _check_incremental(settings: Settings, table: Table) -> None:
    """An append or merge refresh needs a cursor, a merge a primary key, among the table's
    columns as last discovered."""
    if settings.refresh_mode == RefreshMode.FULL:
        return
    columns = {c["name"]: c["type"] for c in table.arrow_schema.get("columns", [])}
    mode = settings.refresh_mode
    cursor = settings.cursor_column
    if cursor is None:
        raise InvalidRequest(f"cursor_column is required for refresh_mode {mode}")
    if cursor not in columns:
        raise InvalidRequest(f"cursor_column {cursor!r} is not a column of the table")
    if not is_cursor_type(type_from_string(columns[cursor])):
        raise InvalidRequest(
            f"cursor_column {cursor!r} is {columns[cursor]}: a cursor must be an integer, date "
            "or timestamp column"
        )
    if mode == RefreshMode.MERGE:
        _check_primary_key(settings.primary_key or table.primary_key, columns)


def _check_primary_key(key: Sequence[str] | None, columns: Mapping[str, str]) -> None:
    """``key``: the setting, else the primary key discovery found at the source."""
    if not key:
        raise InvalidRequest(
            "primary_key is required for refresh_mode merge: the columns that identify a row "
            "(the source declares no primary key for this table)"
        )
    missing = [name for name in key if name not in columns]
    if missing:
        raise InvalidRequest(f"primary_key column {missing[0]!r} is not a column of the table")
    if len(set(key)) != len(key):
        raise InvalidRequest("primary_key names a column twice")
