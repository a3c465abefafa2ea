"""Data refresh of one table: stream it into a new version directory, then swap the catalog pointer.

Readers resolve ``tables.current_path`` and read that directory; nothing is ever written into a
directory a reader can resolve. The new version becomes visible in one catalog transaction that
also queues the previous directory for deletion after the grace period.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from refresh.catalog import Table, TableVersion, VersionStatus, utcnow
from refresh.claims import Busy, Claim, Heartbeat, claim, wait_for
from refresh.deletions import schedule_deletions
from refresh.errors import Conflict, NotFound, public_message
from refresh.lookup import load_connection, load_table, open_source
from refresh.parquet import WrittenFile, write_parquet
from refresh.prefetch import read_ahead
from refresh.runtime import Runtime
from refresh.schema_refresh import record_discovery
from refresh.sources import DiscoveredTable, Source
from refresh.storage import CacheWriteHandle, StorageError

log = logging.getLogger(__name__)

# Batches the source may read ahead of the Parquet writer: enough to keep both busy, few enough
# that memory stays bounded (a batch is at most BATCH_ROWS rows).
READ_AHEAD = 4


@dataclass
class TableRefreshResult:
    connection_id: str
    schema_name: str
    table_name: str
    rows_synced: int
    duration_ms: int
    warnings: list[dict[str, str]] = field(default_factory=list)


def refresh_table(
    rt: Runtime,
    connection_id: str,
    schema_name: str,
    table_name: str,
    job_id: str | None = None,
) -> TableRefreshResult:
    """Mode 3 of ``POST /refresh``, also run by the per-table jobs of a connection-wide refresh.

    A refresh of a table that is already being refreshed joins it: it waits for that refresh and
    reports its outcome instead of publishing a second version. If that refresh fails, this one
    tries again itself.
    """
    started = time.monotonic()
    with rt.catalog.session() as session:
        connection = load_connection(session, connection_id)
        table = load_table(session, connection_id, schema_name, table_name)
        if table.removed_at is not None:
            raise NotFound(
                f"table not found: {schema_name}.{table_name} (connection {connection_id}); "
                "it was removed at the source"
            )
        source = open_source(rt, connection)

    def result(rows: int, warnings: list[dict[str, str]]) -> TableRefreshResult:
        duration_ms = int((time.monotonic() - started) * 1000)
        return TableRefreshResult(
            connection_id, schema_name, table_name, rows, duration_ms, warnings
        )

    while True:
        handle = rt.storage.prepare_cache_write(connection_id, schema_name, table_name)
        try:
            held = claim(rt, table.id, handle.version, handle.url, job_id)
        except Busy as busy:
            _discard(rt, handle)
            other = wait_for(
                rt,
                busy.version_id,
                rt.settings.refresh_job_timeout_seconds,
                table=f"{schema_name}.{table_name} (connection {connection_id})",
            )
            if other is not None and other.status in (
                VersionStatus.CURRENT,
                VersionStatus.SUPERSEDED,
            ):
                return result(other.rows or 0, [])
            continue
        with Heartbeat(rt, held.version_id):
            written, warnings = _write_and_publish(rt, source, connection_id, held, handle)
        return result(written.rows, warnings)


def _write_and_publish(
    rt: Runtime,
    source: Source,
    connection_id: str,
    held: Claim,
    handle: CacheWriteHandle,
) -> tuple[WrittenFile, list[dict[str, str]]]:
    try:
        # Read under the claim: no other refresh can publish until it is released, so this is
        # the version the compare-and-set must find when publishing.
        with rt.catalog.session() as session:
            table = session.get(Table, held.table_id)
        if table is None:
            raise Conflict("the table was removed from the catalog (its connection deleted?)")
        described = _describe(rt, source, connection_id, table)
        with source.read(described) as batches, read_ahead(batches, READ_AHEAD) as ahead:
            written = write_parquet(ahead, handle.local_path, described.arrow_schema())
        url = rt.storage.finalize_cache_write(handle)
        warnings = _publish(rt, table, held, url, written)
    except BaseException as error:
        _fail(rt, held, handle, error)
        raise
    return written, warnings


def _describe(rt: Runtime, source: Source, connection_id: str, table: Table) -> DiscoveredTable:
    """The table's columns as the source has them now, recorded in the catalog.

    Reading with the catalog's columns would fail on a dropped column and silently miss an added
    one; asking the source (one small query) makes every data refresh match the live table.
    """
    key = (table.schema_name, table.table_name)
    found = [t for t in source.discover(only=[key]) if t.key == key]
    record_discovery(rt, connection_id, found, scope=[key])
    if not found:
        raise NotFound(
            f"table not found: {key[0]}.{key[1]} (connection {connection_id}); "
            "it no longer exists at the source"
        )
    return found[0]


def _publish(
    rt: Runtime, target: Table, held: Claim, url: str, written: WrittenFile
) -> list[dict[str, str]]:
    """Swap the pointer: compare-and-set from ``target``, the table as read under the claim."""
    warnings: list[dict[str, str]] = []
    now = utcnow()
    with rt.catalog.session() as session:
        swapped = session.execute(
            update(Table)
            .where(Table.id == target.id, Table.current_version == target.current_version)
            .values(
                current_version=held.version,
                current_path=url,
                row_count=written.rows,
                size_bytes=written.bytes,
                last_sync=now,
            )
        )
        if swapped.rowcount != 1:
            raise Conflict(
                "the table's cache was changed by another operation during the refresh "
                "(dropped, or its connection deleted); nothing was published"
            )
        session.execute(
            update(TableVersion)
            .where(TableVersion.table_id == target.id, TableVersion.status == VersionStatus.CURRENT)
            .values(status=VersionStatus.SUPERSEDED)
        )
        session.execute(
            update(TableVersion)
            .where(TableVersion.id == held.version_id)
            .values(
                status=VersionStatus.CURRENT,
                path=url,
                rows=written.rows,
                bytes=written.bytes,
                finished_at=now,
                heartbeat_at=None,
            )
        )
        if target.current_path is not None:
            grace = timedelta(seconds=rt.settings.deletion_grace_seconds)
            try:
                with session.begin_nested():
                    schedule_deletions(session, [target.current_path], delete_after=now + grace)
            except SQLAlchemyError as error:
                reason = str(error.orig) if getattr(error, "orig", None) else str(error)
                log.warning("could not queue %s for deletion: %s", target.current_path, reason)
                warnings.append(
                    {
                        "schema_name": target.schema_name,
                        "table_name": target.table_name,
                        "message": f"Failed to schedule deletion of old cache: {reason}",
                    }
                )
    return warnings


def _fail(rt: Runtime, held: Claim, handle: CacheWriteHandle, error: BaseException) -> None:
    """Leave the previous version current and remove (or queue) the half-written directory."""
    _discard(rt, handle)
    try:
        with rt.catalog.session() as session:
            session.execute(
                update(TableVersion)
                .where(TableVersion.id == held.version_id)
                .values(
                    status=VersionStatus.FAILED,
                    error=public_message(error),
                    finished_at=utcnow(),
                    heartbeat_at=None,
                )
            )
    except SQLAlchemyError:
        # The claim goes stale and the next refresh takes it over, queueing the directory.
        log.exception("could not record the failure of table version %s", held.version_id)


def _discard(rt: Runtime, handle: CacheWriteHandle) -> None:
    """Remove what the handle wrote at once, or queue it for the deletion sweep."""
    try:
        rt.storage.abort_cache_write(handle)
    except StorageError:
        log.warning("could not remove %s; queued for deletion", handle.url, exc_info=True)
        with rt.catalog.session() as session:
            schedule_deletions(session, [handle.url], delete_after=utcnow())
