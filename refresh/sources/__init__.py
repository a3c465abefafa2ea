"""The source types a connection can have, and how to build one from a catalog row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refresh.sources.base import Column, DiscoveredTable, Source, SourceError
from refresh.sources.duckdb import DuckDBSource
from refresh.sources.mysql import MySQLSource
from refresh.sources.postgres import PostgresSource
from refresh.sources.sqlalchemy_url import SQLAlchemyURLSource
from refresh.sources.sqlite import SQLiteSource

__all__ = [
    "SOURCE_TYPES",
    "Column",
    "DiscoveredTable",
    "Source",
    "SourceError",
    "build_source",
    "source_class",
]

SOURCE_TYPES: dict[str, type[Source]] = {
    cls.source_type: cls
    for cls in (PostgresSource, MySQLSource, SQLiteSource, DuckDBSource, SQLAlchemyURLSource)
}


def source_class(source_type: str) -> type[Source]:
    try:
        return SOURCE_TYPES[source_type]
    except KeyError:
        known = ", ".join(sorted(SOURCE_TYPES))
        raise ValueError(f"unknown source type {source_type!r} (known: {known})") from None


def build_source(
    source_type: str, config: Mapping[str, Any], password: str | None, connect_timeout: float
) -> Source:
    return source_class(source_type)(config, password, connect_timeout)
