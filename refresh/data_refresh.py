"""Data refresh of one table: stream it into a new version directory, then swap the catalog pointer.

Readers resolve ``tables.current_path`` and read that directory; nothing is ever written into a
directory a reader can resolve. The new version becomes visible in one catalog transaction that
also queues the previous directory for deletion after the grace period.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError

from refresh.catalog import Table, TableVersion, VersionStatus, utcnow
from refresh.common.errors import Conflict, NotFound, public_message
from refresh.common.parquet import WrittenFile, write_parquet
from refresh.lookup import load_connection, load_table, open_source
from refresh.prefetch import call_within, read_ahead
from refresh.runtime import Runtime
from refresh.schema_refresh import record_discovery
from refresh.sources import DiscoveredTable, Source
from refresh.storage import CacheWriteHandle, StorageError
from refresh.versions.claims import Busy, Claim, Heartbeat, claim, wait_for
from refresh.versions.deletions import schedule_deletions

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

    A refresh of a table that is already being refreshed joins it: it waits for that refresh
    (``REFRESH_WAIT_SECONDS`` at most, then ``RefreshInProgress``) and reports its outcome instead
    of publishing a second version. If that refresh fails, this one tries again itself.
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
                rt.settings.refresh_wait_seconds,
                table=f"{schema_name}.{table_name} (connection {connection_id})",
            )
            if other is not None and other.status in (
                VersionStatus.CURRENT,
                VersionStatus.SUPERSEDED,
            ):
                return result(other.rows or 0, [])
            continue
        stall_seconds = rt.settings.source_stall_timeout_seconds
        with Heartbeat(rt, held.version_id, stall_seconds) as heartbeat:
            written, warnings = _write_and_publish(
                rt, source, connection_id, held, handle, heartbeat
            )
        return result(written.rows, warnings)


def _write_and_publish(
    rt: Runtime,
    source: Source,
    connection_id: str,
    held: Claim,
    handle: CacheWriteHandle,
    heartbeat: Heartbeat,
) -> tuple[WrittenFile, list[dict[str, str]]]:
    try:
        # Read under the claim: no other refresh can publish until it is released, so this is
        # the version the compare-and-set must find when publishing.
        with rt.catalog.session() as session:
            table = session.get(Table, held.table_id)
        if table is None:
            raise Conflict("the table was removed from the catalog (its connection deleted?)")
        described = _describe(rt, source, connection_id, table)
        written = _write(rt, source, described, handle, heartbeat)
        heartbeat.progress()
        url = rt.storage.finalize_cache_write(handle, on_progress=heartbeat.progress)
        warnings = _publish(rt, table, held, url, written)
    except BaseException as error:
        _fail(rt, held, handle, error)
        raise
    return written, warnings


def _write(
    rt: Runtime,
    source: Source,
    table: DiscoveredTable,
    handle: CacheWriteHandle,
    heartbeat: Heartbeat,
) -> WrittenFile:
    """Stream the source into the version's Parquet file, the source read in its own thread.

    A source that sends nothing for ``SOURCE_STALL_TIMEOUT_SECONDS`` fails the refresh; its query
    is interrupted rather than waited for.
    """
    stall_seconds = rt.settings.source_stall_timeout_seconds

    def counted(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            heartbeat.progress()
            yield batch

    with read_ahead(
        lambda: source.read(table), READ_AHEAD, stall_seconds, source.interrupt
    ) as batches:
        return write_parquet(counted(batches), handle.local_path, table.arrow_schema())


def _describe(rt: Runtime, source: Source, connection_id: str, table: Table) -> DiscoveredTable:
    """The table's columns as the source has them now, recorded in the catalog.

    Reading with the catalog's columns would fail on a dropped column and silently miss an added
    one; asking the source (one small query) makes every data refresh match the live table.
    """
    key = (table.schema_name, table.table_name)
    discovered = call_within(
        lambda: source.discover(only=[key]),
        rt.settings.source_stall_timeout_seconds,
        source.interrupt,
    )
    found = [t for t in discovered if t.key == key]
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
    """Swap the pointer: compare-and-set from ``target``, the table as read under the claim.

    The claim must still be ours: one that went stale (this refresh stalled) may have been taken
    over, its directory queued for deletion, and a newer version published since.
    """
    warnings: list[dict[str, str]] = []
    now = utcnow()
    with rt.catalog.session() as session:
        ours = session.execute(
            update(TableVersion)
            .where(TableVersion.id == held.version_id, TableVersion.status == VersionStatus.WRITING)
            .values(
                status=VersionStatus.CURRENT,
                path=url,
                rows=written.rows,
                bytes=written.bytes,
                finished_at=now,
                heartbeat_at=None,
            )
        )
        if ours.rowcount != 1:
            raise Conflict(
                "this refresh made no progress for too long and its claim was taken over by "
                "another refresh; nothing was published"
            )
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
            .where(
                TableVersion.table_id == target.id,
                TableVersion.status == VersionStatus.CURRENT,
                TableVersion.id != held.version_id,
            )
            .values(status=VersionStatus.SUPERSEDED)
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
                .where(
                    TableVersion.id == held.version_id,
                    TableVersion.status == VersionStatus.WRITING,  # not if taken over meanwhile
                )
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
