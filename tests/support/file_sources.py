"""SQLite and DuckDB files for the tests to read as sources: one way to create and fill either."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb

FILE_SOURCE_TYPES = ("sqlite", "duckdb")


def read_file_source(source_type: str, path: Path, sql: str) -> list[tuple]:
    """The rows of ``sql`` on the SQLite or DuckDB file at ``path``."""
    conn = sqlite3.connect(path) if source_type == "sqlite" else duckdb.connect(str(path))
    try:
        return list(conn.execute(sql).fetchall())
    finally:
        conn.close()


def make_file_source(
    source_type: str,
    path: Path,
    *statements: str,
    rows: tuple[str, list[tuple]] | None = None,
) -> Path:
    """Run ``statements`` on the SQLite or DuckDB file at ``path`` (created when missing), then
    insert ``rows`` (a statement with ``?`` placeholders, and its parameter tuples). Committed and
    closed on return, so a source that opens the file sees it all; returns ``path``."""
    if source_type not in FILE_SOURCE_TYPES:
        raise ValueError(f"not a file source type: {source_type!r}")
    conn = sqlite3.connect(path) if source_type == "sqlite" else duckdb.connect(str(path))
    try:
        for statement in statements:
            conn.execute(statement)
        if rows:
            conn.executemany(*rows)
        conn.commit()
    finally:
        conn.close()
    return path
