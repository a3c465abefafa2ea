"""Single flight: at most one data refresh of a table runs at a time, across processes and machines.

The claim is the table's ``writing`` row in ``table_versions``; a partial unique index allows one
per table, so the catalog arbitrates between any number of web and worker processes. ``claim``
inserts it, or reports the refresh that holds the table.

A writer refreshes ``heartbeat_at`` while its refresh makes progress; a claim whose heartbeat
stopped (the process was killed, or its refresh is stuck) is taken over, its directory queued for
deletion, and the stuck writer can no longer publish (``publish`` requires the claim to be intact).

A request that finds its table claimed may wait for the holder, within limits: for
``REFRESH_WAIT_SECONDS`` at most, and never with more than ``MAX_WAITERS`` requests of one
process waiting at once, so waiting requests cannot take every thread of a web process. A job
never waits here: it defers the table and comes back for it (``refresh.data_refresh``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import Connection, Row, String, bindparam, literal, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from refresh.catalog import ONE_WRITER, Table, TableVersion, VersionStatus, insert_ignoring, utcnow
from refresh.common.errors import RefreshInProgress
from refresh.runtime import Runtime
from refresh.versions.deletions import queue_now

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=30)
WAIT_POLL_SECONDS = 0.25
# Half of the web process's threads (gunicorn.conf.py): the other half keeps answering.
MAX_WAITERS = 4
_waiters = threading.BoundedSemaphore(MAX_WAITERS)

_WRITING = TableVersion.status == VersionStatus.WRITING
GONE = "the table was removed from the catalog (its connection deleted?) meanwhile"


@dataclass(frozen=True)
class Wanted:
    """A table a refresh wants to claim, with the version it would write and the source's change
    fingerprint taken before its read (recorded with the version; None: none taken)."""

    table_id: int
    version: str
    path: str
    fingerprint: str | None = None


@dataclass(frozen=True)
class Claim:
    """A table claimed: its ``writing`` row, which must still be ``writing`` when its refresh
    publishes (``refresh.versions.outcomes.publish``)."""

    table_id: int
    version_id: int
    version: str
    path: str


@dataclass(frozen=True)
class Holder:
    """The ``writing`` row of a table that another refresh holds (``version_id`` 0: one whose
    holder kept changing while it was looked up; look again)."""

    table_id: int
    version_id: int


def claim(rt: Runtime, wanted: Wanted, job_id: str | None) -> Claim | Holder | None:
    """Claim the table unless a live refresh holds it: the claim, that refresh's ``Holder``, or
    None when the table is no longer in the catalog (its connection deleted).

    A holder whose heartbeat went stale is taken over, and the table claimed. The insert is the
    claim: one statement, that commits alone.
    """
    for _ in range(3):  # a stale holder taken over, or a holder ending meanwhile: try again
        now = utcnow()
        with rt.catalog.statements() as connection:
            values = {
                "table_id": wanted.table_id,
                "version": wanted.version,
                "path": wanted.path,
                "fingerprint": wanted.fingerprint,
                "now": now,
                "job_id": job_id,
            }
            inserted = connection.execute(_claim_statement(connection), values).scalar()
            if inserted is not None:
                return Claim(wanted.table_id, inserted, wanted.version, wanted.path)
            holder = connection.execute(_HOLDER, {"table_id": wanted.table_id}).one_or_none()
            present = connection.execute(_PRESENT, {"table_id": wanted.table_id}).scalar()
            if holder is None and present is None:
                return None
        if holder is None:
            continue
        if _stale(holder.heartbeat_at):
            _take_over(rt, holder)
            continue
        return Holder(wanted.table_id, holder.id)
    return Holder(wanted.table_id, 0)


_PRESENT = select(Table.id).where(Table.id == bindparam("table_id"))
_HOLDER = select(TableVersion.id, TableVersion.path, TableVersion.heartbeat_at).where(
    TableVersion.table_id == bindparam("table_id"), _WRITING
)
_claim_statements: dict[str, Insert] = {}


def _claim_statement(connection: Connection) -> Insert:
    """``INSERT INTO table_versions ... SELECT ... FROM tables WHERE id = :table_id ON CONFLICT
    DO NOTHING RETURNING id``: nothing is inserted when the table is gone or already claimed."""
    dialect = connection.dialect.name
    if dialect not in _claim_statements:
        now = bindparam("now", type_=TableVersion.started_at.type)
        row = select(
            Table.id,
            bindparam("version", type_=String),
            bindparam("path", type_=String),
            literal(VersionStatus.WRITING.value, String),
            now,
            now,
            bindparam("job_id", type_=String),
            bindparam("fingerprint", type_=String),
        ).where(Table.id == bindparam("table_id"))
        columns = [
            "table_id",
            "version",
            "path",
            "status",
            "started_at",
            "heartbeat_at",
            "job_id",
            "fingerprint",
        ]
        _claim_statements[dialect] = (
            insert_ignoring(
                connection, TableVersion, index_elements=["table_id"], index_where=ONE_WRITER
            )
            .from_select(columns, row)
            .returning(TableVersion.id)
        )
    return _claim_statements[dialect]


def holders(rt: Runtime, version_ids: Collection[int]) -> dict[int, TableVersion]:
    """The rows of these versions as they stand now, for a refresh joining their refreshes; a
    claim whose heartbeat went stale is taken over first (its row then says ``failed``)."""
    with rt.catalog.session() as session:
        rows = session.scalars(select(TableVersion).where(TableVersion.id.in_(version_ids))).all()
    for row in rows:
        if row.status == VersionStatus.WRITING and _stale(row.heartbeat_at):
            _take_over(rt, row)
    if any(row.status == VersionStatus.WRITING for row in rows):
        with rt.catalog.session() as session:
            rows = session.scalars(
                select(TableVersion).where(TableVersion.id.in_(version_ids))
            ).all()
    return {row.id: row for row in rows}


def wait_for(rt: Runtime, version_id: int, timeout: float, table: str) -> TableVersion | None:
    """Poll until the refresh holding ``version_id`` ends; take over its claim if it went silent.

    Raises ``RefreshInProgress`` naming that refresh (``table`` is its name for the message) when
    it is still running after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    waiting = False
    try:
        while True:
            row = holders(rt, [version_id]).get(version_id)
            if row is None or row.status != VersionStatus.WRITING:
                return row
            if time.monotonic() > deadline:
                raise RefreshInProgress(still_running(row, table, timeout))
            if not waiting:
                waiting = _waiters.acquire(blocking=False)
                if not waiting:
                    raise RefreshInProgress(still_running(row, table, 0))
            time.sleep(WAIT_POLL_SECONDS)
    finally:
        if waiting:
            _waiters.release()


def still_running(row: TableVersion, table: str, waited: float) -> str:
    """Why a refresh of ``table`` did not happen: ``row``'s refresh still holds it."""
    by = f"job {row.job_id}" if row.job_id else "a request"
    patience = f"still running after {waited:.0f} s of waiting" if waited else "still running"
    return (
        f"{table} is being refreshed by {by} (version {row.version}, started "
        f"{row.started_at:%Y-%m-%d %H:%M:%S} UTC), {patience}; its outcome will be in the "
        "table's history: try again later"
    )


class Heartbeat:
    """Keeps claims alive, from a daemon thread, while their refresh reports progress.

    One thread beats every claim added to it, in one statement: the threads of a batch hold a
    claim each. A refresh that reports no progress for ``stall_seconds`` (a source or an
    upload that stopped moving) stops beating, so its claims go stale and can be taken over even
    if the process itself is wedged.
    """

    def __init__(self, rt: Runtime, stall_seconds: float) -> None:
        self._rt = rt
        self._stall_seconds = stall_seconds
        self._last_progress = time.monotonic()
        self._version_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="refresh-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, claims: Collection[Claim]) -> None:
        with self._lock:
            self._version_ids |= {c.version_id for c in claims}
        self.progress()

    def remove(self, claims: Collection[Claim]) -> None:
        with self._lock:
            self._version_ids -= {c.version_id for c in claims}

    def progress(self) -> None:
        """The refresh moved on (a batch read, a part uploaded, a table done)."""
        self._last_progress = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if time.monotonic() - self._last_progress > self._stall_seconds:
                continue
            with self._lock:
                ids = list(self._version_ids)
            if not ids:
                continue
            try:
                with self._rt.catalog.statements() as connection:
                    connection.execute(
                        update(TableVersion)
                        .where(TableVersion.id.in_(ids), _WRITING)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:
                # A missed beat is harmless unless the catalog stays away long enough for the
                # claim to go stale; the publish step will then fail its compare-and-set.
                log.warning("heartbeat for table versions %s failed", ids)


def end_stale_claims(rt: Runtime) -> int:
    """Take over every claim whose heartbeat went stale (its refresh was killed or is stuck), as
    a refresh waiting for it would: the version fails and its directory is queued for deletion.

    For the orphan sweep, so that a killed refresh of a table nobody refreshes again is cleaned up
    too. Returns how many claims were found stale.
    """
    with rt.catalog.session() as session:
        writing = session.scalars(select(TableVersion).where(_WRITING)).all()
    stale = [row for row in writing if _stale(row.heartbeat_at)]
    for row in stale:
        _take_over(rt, row)
    return len(stale)


def _stale(heartbeat_at: datetime | None) -> bool:
    return heartbeat_at is None or utcnow() - heartbeat_at > STALE_AFTER


def _take_over(rt: Runtime, row: TableVersion | Row) -> None:
    """End a dead writer's claim; only one of several takers wins the conditional update."""
    with rt.catalog.session() as session:
        if _end(session, row):
            log.warning("took over abandoned refresh %s; queued %s for deletion", row.id, row.path)


def _end(session: Session, row: TableVersion | Row) -> bool:
    result = session.execute(
        update(TableVersion)
        .where(
            TableVersion.id == row.id,
            _WRITING,
            TableVersion.heartbeat_at == row.heartbeat_at,
        )
        .values(
            status=VersionStatus.FAILED,
            finished_at=utcnow(),
            error="abandoned: the refreshing process stopped before finishing",
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    queue_now(session, [row.path])
    return True
