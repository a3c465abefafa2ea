"""A table's own refresh settings: its change check, its hold ratio, its staleness bound.

A table without a ``table_settings`` row has the defaults; ``PUT`` changes only the fields it
names (issue 17 adds more fields to the same object, and setting one must not reset another).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from refresh.catalog import TableSettings
from refresh.catalog.models import DEFAULT_HOLD_BELOW_RATIO
from refresh.check_sql import validate_check_sql
from refresh.lookup import load_connection, load_table
from refresh.runtime import Runtime


@dataclass(frozen=True)
class Settings:
    check_sql: str | None = None
    hold_below_ratio: float = DEFAULT_HOLD_BELOW_RATIO
    max_staleness_seconds: int | None = None


FIELDS = ("check_sql", "hold_below_ratio", "max_staleness_seconds")


def get_settings(rt: Runtime, connection_id: str, schema_name: str, table_name: str) -> Settings:
    with rt.catalog.session() as session:
        load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        return _settings(session.get(TableSettings, table.id))


def put_settings(
    rt: Runtime,
    connection_id: str,
    schema_name: str,
    table_name: str,
    changes: Mapping[str, Any],
) -> Settings:
    """Apply ``changes`` (validated fields of ``FIELDS``) and return the whole settings.

    Raises ``NotFound`` and ``InvalidRequest`` (a ``check_sql`` that is not a one-row SELECT in
    the connection's dialect).
    """
    with rt.catalog.session() as session:
        connection = load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        if changes.get("check_sql") is not None:
            validate_check_sql(changes["check_sql"], connection.source_type)
        row = session.get(TableSettings, table.id)
        given = {name: changes[name] for name in FIELDS if name in changes}
        settings = replace(_settings(row), **given)
        if row is None:
            row = TableSettings(table_id=table.id)
            session.add(row)
        for name in FIELDS:
            setattr(row, name, getattr(settings, name))
        return settings


def _settings(row: TableSettings | None) -> Settings:
    if row is None:
        return Settings()
    return Settings(row.check_sql, row.hold_below_ratio, row.max_staleness_seconds)
