"""Version directories, catalog rows and pending deletions set up for the deletion tests.

Directories are planted straight into the storage (one small file each, the layout's
``data.parquet``) rather than written by a refresh: the deletion never reads them, and a backlog
of thousands is then quick to make.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from refresh.catalog import Connection, PendingDeletion, Table, TableVersion, utcnow
from refresh.runtime import Runtime
from refresh.storage import LEGACY_DATA_FILE
from refresh.storage.base import new_version
from refresh.versions.deletions import schedule_deletions
from tests.support.backends import ROOT, Backend


def old_version(number: int) -> str:
    """A version name from 2020: older than any ``ORPHAN_MIN_AGE_SECONDS`` a test uses."""
    return f"20200101T000000000Z-{number:08x}"


def plant_versions(
    backend: Backend, count: int, table: str = "t", versions: Iterable[str] | None = None
) -> list[str]:
    """``count`` version directories of table ``c.s.{table}`` (new versions unless given);
    returns their URLs."""
    names = list(versions) if versions is not None else [new_version() for _ in range(count)]
    return [
        backend.plant(f"{ROOT}/c/s/{table}/{version}/{LEGACY_DATA_FILE}").removesuffix(
            f"/{LEGACY_DATA_FILE}"
        )
        for version in names[:count]
    ]


def add_table(rt: Runtime, name: str = "t", current_path: str | None = None) -> int:
    """Table ``c.s.{name}`` in the catalog (connection ``c`` created if needed); its id."""
    with rt.catalog.session() as session:
        if session.get(Connection, "c") is None:
            session.add(Connection(id="c", source_type="sqlite", config={"path": "/c.db"}))
        table = Table(
            connection_id="c",
            schema_name="s",
            table_name=name,
            arrow_schema={"columns": []},
            schema_hash="0" * 64,
            current_version=current_path.rsplit("/", 1)[1] if current_path else None,
            current_path=current_path,
        )
        session.add(table)
        session.flush()
        return table.id


def add_versions(rt: Runtime, table_id: int, urls: Iterable[str], status: str) -> None:
    """History rows of the table for the version directories ``urls``."""
    now = utcnow()
    with rt.catalog.session() as session:
        for url in urls:
            session.add(
                TableVersion(
                    table_id=table_id,
                    version=url.rsplit("/", 1)[1],
                    path=url,
                    status=status,
                    started_at=now,
                    heartbeat_at=now,
                )
            )


def queue(rt: Runtime, urls: Iterable[str], delete_after: datetime) -> None:
    with rt.catalog.session() as session:
        schedule_deletions(session, urls, delete_after=delete_after)


def pending(rt: Runtime) -> dict[str, PendingDeletion]:
    """The pending deletions by path."""
    with rt.catalog.session() as session:
        return {row.path: row for row in session.scalars(select(PendingDeletion))}


def history(rt: Runtime) -> dict[str, TableVersion]:
    """Every version of every table, by path."""
    with rt.catalog.session() as session:
        return {row.path: row for row in session.scalars(select(TableVersion))}


def moment_gone(backend: Backend, url: str, timeout: float) -> datetime:
    """Poll until nothing is stored under ``url`` and return the first moment it was seen gone,
    to compare with when it was due; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while backend.holds(url):
        assert time.monotonic() < deadline, f"{url} still there after {timeout} s"
        time.sleep(0.05)
    return utcnow()
