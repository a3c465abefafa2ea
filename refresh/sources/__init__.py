"""The source types a connection can have, and how to build one from a catalog row."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from refresh.common.errors import Misconfigured
from refresh.sources.base import Column, DiscoveredTable, Since, Source, SourceError

__all__ = [
    "SOURCE_TYPES",
    "Column",
    "DiscoveredTable",
    "Since",
    "Source",
    "SourceError",
    "build_source",
    "source_class",
]

# Each module is imported on first use: a worker that refreshes PostgreSQL tables does not carry
# DuckDB's or PyMySQL's memory.
_CLASSES: dict[str, tuple[str, str]] = {
    "postgres": ("refresh.sources.postgres", "PostgresSource"),
    "mysql": ("refresh.sources.mysql", "MySQLSource"),
    "sqlite": ("refresh.sources.sqlite", "SQLiteSource"),
    "duckdb": ("refresh.sources.duckdb", "DuckDBSource"),
    "sqlalchemy": ("refresh.sources.sqlalchemy_url", "SQLAlchemyURLSource"),
}
SOURCE_TYPES: tuple[str, ...] = tuple(sorted(_CLASSES))


def source_class(source_type: str) -> type[Source]:
    """Requests are validated against ``SOURCE_TYPES`` first; an unknown type here comes from a
    catalog written by another version of the service."""
    try:
        module, name = _CLASSES[source_type]
    except KeyError:
        known = ", ".join(SOURCE_TYPES)
        raise Misconfigured(
            f"unknown source type {source_type!r} (this version knows: {known})"
        ) from None
    return getattr(importlib.import_module(module), name)


def build_source(
    source_type: str,
    config: Mapping[str, Any],
    password: str | None,
    connect_timeout: float,
    read_streams: int = 1,
) -> Source:
    return source_class(source_type)(config, password, connect_timeout, read_streams)
