"""How a claimed version ends: published by compare-and-set, or failed; and how a current version
stops being current when its cache is dropped.

Publishing swaps ``tables.current_path`` to the new directory in the same transaction that marks
the version ``current``, the previous one ``superseded``, and queues the previous directory for
deletion after the grace period, so a reader that resolves ``current_path`` at any moment reads one
complete version.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Float,
    Select,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Update

from refresh.catalog import PendingDeletion, Table, TableVersion, VersionStatus, utcnow
from refresh.common.errors import Conflict, RefreshError, public_message
from refresh.runtime import Runtime
from refresh.storage import CacheWriteHandle, StorageError
from refresh.versions.claims import GONE, Claim
from refresh.versions.deletions import deletion_due, queue_now, retire

log = logging.getLogger(__name__)

TAKEN_OVER = (
    "this refresh made no progress for too long and its claim was taken over by another "
    "refresh; nothing was published"
)
DROPPED = "the table's cache was dropped while this refresh ran"


@dataclass(frozen=True)
class Written:
    """A version written and stored under its claim, ready to become current: ``rows`` and
    ``bytes`` are the whole version's, ``rows_read`` what came from the source; ``mode`` and
    ``watermark`` are its manifest's."""

    claim: Claim
    schema_name: str
    table_name: str
    url: str
    rows: int
    bytes: int
    rows_read: int
    mode: str
    watermark: str | None


@dataclass(frozen=True)
class Published:
    """What ``publish`` did: the version became current, or it was held (``held``, the previous
    version stays current); ``warnings`` say what the caller should tell the user."""

    warnings: tuple[dict[str, str], ...] = ()
    held: bool = False


def publish(rt: Runtime, written: Written, hold_below: float | None) -> Published:
    """Make the written version current, unless it looks like a source emptied or truncated by
    mistake; raises ``Conflict`` when it may not be published at all.

    The claim must still be intact: one that went stale may have been taken over (its directory
    queued for deletion, and a newer version published since), and dropping the table's cache
    or deleting its connection ends the claims in progress. A version is held (``held``, the
    previous one stays current, its directory is queued like a superseded one's) when the
    current version has rows and it has none, or fewer than ``hold_below`` times as many
    (``hold_below`` None: never). The previous directory is queued for deletion after the grace
    period in the same transaction as the swap; when queueing it fails, the swap is made without
    it and the refresh succeeds with a warning (the orphan sweep finds the directory later).
    The table's freshness counters move in the same transaction. On PostgreSQL all of it is one
    statement when nothing goes wrong (decisions D105).
    """
    previous: list[str] = []
    if rt.catalog.dialect == "postgresql":
        try:
            return _publish_at_once(rt, written, hold_below)
        except DBAPIError:
            pass  # the steps below find which step failed, and what to do about it
    try:
        with rt.catalog.transaction() as connection:
            current_rows = _swap(connection, written, hold_below)
            if current_rows is not None:
                assert hold_below is not None
                return _hold(rt, connection, written, current_rows, hold_below)
            previous = _superseded(connection, written.claim)
            retire(rt, connection, previous)
        return Published()
    except DBAPIError as error:
        if not previous:
            raise
        reason = str(error.orig) if error.orig is not None else str(error)
    log.warning("could not queue %s for deletion: %s", previous, reason)
    with rt.catalog.transaction() as connection:
        _swap(connection, written, None)
        _superseded(connection, written.claim)
    message = f"Failed to schedule deletion of old cache: {reason}"
    return Published((_warning(written, message),))


def _publish_at_once(rt: Runtime, written: Written, hold_below: float | None) -> Published:
    """``publish`` in one statement (PostgreSQL): the swap, the version made current, the
    previous one superseded and queued, as the steps of ``publish`` do them one by one. A version
    to hold, or a claim no longer ours, changes nothing here and is settled as ``publish`` does."""
    claim = written.claim
    values = {
        **_finished(written),
        "of_table": claim.table_id,
        "new_version": claim.version,
        "ratio": hold_below,
        "now": utcnow(),
        "due": deletion_due(rt),
    }
    statement = _PUBLISH_AT_ONCE if hold_below is None else _PUBLISH_AT_ONCE_UNLESS_HELD
    with rt.catalog.transaction() as connection:
        done = connection.execute(statement, values).one()
        if done.swapped == 0:  # nothing changed: held, or the table is gone
            assert hold_below is not None
            current_rows = _current_rows(connection, claim.table_id)
            return _hold(rt, connection, written, current_rows, hold_below)
        if done.made != 1:  # rolled back: the table keeps its current version
            raise Conflict(_why_not_ours(connection, claim))
    return Published()


def _swap(connection: Connection, written: Written, hold_below: float | None) -> int | None:
    """Point the table at the written version (unless it is to be held: then the current
    version's row count, and nothing changed), and make the version current."""
    claim = written.claim
    now = utcnow()
    values = {
        "of_table": claim.table_id,
        "new_version": claim.version,
        "new_path": written.url,
        "new_rows": written.rows,
        "new_bytes": written.bytes,
        "now": now,
    }
    if hold_below is None:
        swapped = connection.execute(_SWAP_POINTER, values)
    else:
        swapped = connection.execute(_SWAP_POINTER_UNLESS_HELD, {**values, "ratio": hold_below})
    if swapped.rowcount != 1:
        return _current_rows(connection, claim.table_id)
    ours = connection.execute(_MAKE_CURRENT, {**_finished(written), "now": now})
    if ours.rowcount != 1:
        raise Conflict(_why_not_ours(connection, claim))
    return None


def _current_rows(connection: Connection, table_id: int) -> int:
    """The rows of the table's current version, for a swap that did not happen (the new version
    is to be held); ``Conflict`` when the table is gone."""
    current = connection.execute(_ROW_COUNT, {"of_table": table_id}).one_or_none()
    if current is None:
        raise Conflict(f"{GONE}; nothing was published")
    return int(current.row_count)


def _superseded(connection: Connection, claim: Claim) -> list[str]:
    """Mark the versions the new one replaces superseded; their directories."""
    rows = connection.execute(
        _SUPERSEDE, {"of_table": claim.table_id, "version_id": claim.version_id}
    )
    return list(rows.scalars())


def _hold(
    rt: Runtime, connection: Connection, written: Written, current_rows: int, ratio: float
) -> Published:
    claim = written.claim
    reason = (
        f"held, not published: the new version has {written.rows:,} rows where the current one "
        f"has {current_rows:,} (hold_below_ratio {ratio:g}); the previous version stays "
        'current. Refresh with "force": true to publish what the source has now'
    )
    held = connection.execute(_HOLD, {**_finished(written), "reason": reason, "now": utcnow()})
    if held.rowcount != 1:
        raise Conflict(_why_not_ours(connection, claim))
    connection.execute(_COUNT_HELD, {"table_id": claim.table_id, "now": utcnow()})
    retire(rt, connection, [written.url])
    return Published((_warning(written, reason),), held=True)


def _finished(written: Written) -> dict[str, object]:
    """The values ``_finish_writing`` records of the written version."""
    return {
        "version_id": written.claim.version_id,
        "new_path": written.url,
        "new_rows": written.rows,
        "new_bytes": written.bytes,
        "new_mode": written.mode,
        "new_watermark": written.watermark,
    }


def _warning(written: Written, message: str) -> dict[str, str]:
    return {
        "schema_name": written.schema_name,
        "table_name": written.table_name,
        "message": message,
    }


def _why_not_ours(connection: Connection, claim: Claim) -> str:
    """Why a claim is no longer this refresh's, in the words of whoever ended it."""
    error = connection.execute(_ENDED, {"version_id": claim.version_id}).scalar()
    if error == DROPPED:
        return f"{DROPPED}; nothing was published"
    if error is None:
        return f"{GONE}; nothing was published"
    return TAKEN_OVER


def confirm_unchanged(rt: Runtime, table_ids: Sequence[int]) -> None:
    """The tables' change checks found their sources as their current versions were read: the
    caches are confirmed fresh without writing anything."""
    with rt.catalog.statements() as connection:
        connection.execute(_COUNT_UNCHANGED, {"table_ids": list(table_ids), "now": utcnow()})


# Built once: a refresh runs them for every table, and building a statement costs more Python
# than running it.
_NOW = bindparam("now", type_=TableVersion.finished_at.type)


def _finish_writing(status: VersionStatus, **values: object) -> Update:
    """The claim's row, if still this refresh's (``writing``), finished as ``status`` with the
    version written."""
    return (
        update(TableVersion)
        .where(
            TableVersion.id == bindparam("version_id"),
            TableVersion.status == VersionStatus.WRITING,
        )
        .values(
            status=status,
            path=bindparam("new_path"),
            rows=bindparam("new_rows"),
            bytes=bindparam("new_bytes"),
            mode=bindparam("new_mode"),
            watermark=bindparam("new_watermark"),
            finished_at=_NOW,
            heartbeat_at=None,
            **values,
        )
    )


_MAKE_CURRENT = _finish_writing(VersionStatus.CURRENT)
_SWAP_POINTER = (
    update(Table)
    .where(Table.id == bindparam("of_table"))
    .values(
        current_version=bindparam("new_version"),
        current_path=bindparam("new_path"),
        row_count=bindparam("new_rows"),
        size_bytes=bindparam("new_bytes"),
        last_sync=_NOW,
        last_success_at=_NOW,
        last_checked_at=_NOW,
        consecutive_failures=0,
        refreshes_published=Table.refreshes_published + 1,
    )
)
# ...but not over a current version with rows when the new one has none, or fewer than ``ratio``
# times as many: a source emptied or truncated by mistake must not replace a good cache.
_SWAP_POINTER_UNLESS_HELD = _SWAP_POINTER.where(
    or_(
        Table.row_count.is_(None),
        Table.row_count == 0,
        and_(
            bindparam("new_rows") > 0,
            bindparam("new_rows") >= Table.row_count * bindparam("ratio", type_=Float),
        ),
    )
)
_ROW_COUNT = select(func.coalesce(Table.row_count, 0).label("row_count")).where(
    Table.id == bindparam("of_table")
)
_HOLD = _finish_writing(VersionStatus.HELD, error=bindparam("reason"))
_COUNT_HELD = (
    update(Table)
    .where(Table.id == bindparam("table_id"))
    .values(refreshes_held=Table.refreshes_held + 1, last_checked_at=_NOW)
)
_COUNT_UNCHANGED = (
    update(Table)
    .where(Table.id.in_(bindparam("table_ids", expanding=True)))
    .values(
        last_success_at=_NOW,
        last_checked_at=_NOW,
        consecutive_failures=0,
        refreshes_unchanged=Table.refreshes_unchanged + 1,
    )
)
_COUNT_FAILED = (
    update(Table)
    .where(Table.id == bindparam("table_id"))
    .values(
        last_checked_at=_NOW,
        consecutive_failures=Table.consecutive_failures + 1,
        refreshes_failed=Table.refreshes_failed + 1,
    )
)
_SUPERSEDE = (
    update(TableVersion)
    .where(
        TableVersion.table_id == bindparam("of_table"),
        TableVersion.status == VersionStatus.CURRENT,
        TableVersion.id != bindparam("version_id"),
    )
    .values(status=VersionStatus.SUPERSEDED)
    .returning(TableVersion.path)
)


def _at_once(swap: Update) -> Select:
    """``swap``, then (only if it swapped) ``_MAKE_CURRENT``, ``_SUPERSEDE`` and the superseded
    directories queued, as data-modifying CTEs of one statement; it says what it changed.

    No parameter may be named after a column of ``table_versions`` or ``pending_deletions``:
    SQLAlchemy would add it to those updates' SET (hence ``of_table`` and ``due``)."""
    swapped = swap.returning(Table.id).cte("swapped")
    made = _MAKE_CURRENT.where(exists(swapped.select())).returning(TableVersion.id).cte("made")
    superseded = _SUPERSEDE.where(exists(made.select())).cte("superseded")
    queued = (
        postgresql.insert(PendingDeletion)
        .from_select(
            ["path", "delete_after", "retry_count", "created_at"],
            select(superseded.c.path, _DUE, literal(0), _NOW),
        )
        .on_conflict_do_nothing(index_elements=["path"])
        .cte("queued")
    )
    return select(
        select(func.count()).select_from(swapped).scalar_subquery().label("swapped"),
        select(func.count()).select_from(made).scalar_subquery().label("made"),
    ).add_cte(queued)


_DUE = bindparam("due", type_=PendingDeletion.delete_after.type)
_PUBLISH_AT_ONCE = _at_once(_SWAP_POINTER)
_PUBLISH_AT_ONCE_UNLESS_HELD = _at_once(_SWAP_POINTER_UNLESS_HELD)
_ENDED = select(TableVersion.error).where(TableVersion.id == bindparam("version_id"))
_FAIL = (
    update(TableVersion)
    .where(
        TableVersion.id == bindparam("version_id"),
        TableVersion.status == VersionStatus.WRITING,  # not if taken over meanwhile
    )
    .values(
        status=VersionStatus.FAILED,
        error=bindparam("reason"),
        finished_at=_NOW,
        heartbeat_at=None,
    )
)


def fail(rt: Runtime, claim: Claim, handle: CacheWriteHandle, error: BaseException) -> None:
    """Leave the previous version current, record why, and remove (or queue) what was written."""
    discard(rt, handle)
    try:
        with rt.catalog.transaction() as connection:
            failed = connection.execute(
                _FAIL,
                {"version_id": claim.version_id, "reason": public_message(error), "now": utcnow()},
            )
            if failed.rowcount == 1:
                connection.execute(_COUNT_FAILED, {"table_id": claim.table_id, "now": utcnow()})
    except RefreshError:
        # The claim goes stale and the next refresh takes it over, queueing the directory.
        log.exception("could not record the failure of table version %s", claim.version_id)


def discard(rt: Runtime, handle: CacheWriteHandle) -> None:
    """Remove what the handle wrote at once, or queue it for the deletion sweep."""
    try:
        rt.storage.abort_cache_write(handle)
    except StorageError:
        log.warning("could not remove %s; queued for deletion", handle.url, exc_info=True)
        with rt.catalog.session() as session:
            queue_now(session, [handle.url])


def uncache(rt: Runtime, session: Session, table_ids: Sequence[int]) -> None:
    """Drop the tables' caches: uncached, their current versions superseded, every directory of
    theirs but those a refresh is still writing queued after the grace period, like after a swap.
    A refresh in progress is ended (``failed``, saying why): it cannot publish, and removes its
    own directory when it finds out."""
    if not table_ids:
        return
    paths = session.scalars(
        select(TableVersion.path).where(
            TableVersion.table_id.in_(table_ids),
            TableVersion.status.not_in((VersionStatus.WRITING, VersionStatus.DELETED)),
        )
    ).all()
    session.execute(
        update(Table)
        .where(Table.id.in_(table_ids))
        .values(current_version=None, current_path=None, row_count=None, size_bytes=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(TableVersion)
        .where(TableVersion.table_id.in_(table_ids), TableVersion.status == VersionStatus.CURRENT)
        .values(status=VersionStatus.SUPERSEDED)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(TableVersion)
        .where(TableVersion.table_id.in_(table_ids), TableVersion.status == VersionStatus.WRITING)
        .values(status=VersionStatus.FAILED, error=DROPPED, finished_at=utcnow(), heartbeat_at=None)
        .execution_options(synchronize_session=False)
    )
    retire(rt, session, paths)
