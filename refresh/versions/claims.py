"""Single flight: at most one data refresh of a table runs at a time, across processes and machines.

The claim is the table's ``writing`` row in ``table_versions``; a partial unique index allows one
per table, so the catalog arbitrates between any number of web and worker processes. A writer
refreshes ``heartbeat_at`` while its refresh makes progress; a claim whose heartbeat stopped (the
process was killed, or its refresh is stuck) is taken over, its directory queued for deletion,
and the stuck writer can no longer publish (``publish`` requires the claim to be intact).

A refresh that finds its table claimed may wait for the holder, within limits: for
``REFRESH_WAIT_SECONDS`` at most, and never with more than ``MAX_WAITERS`` requests of one
process waiting at once, so waiting requests cannot take every thread of a web process.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from refresh.catalog import TableVersion, VersionStatus, utcnow
from refresh.common.errors import Conflict, RefreshInProgress
from refresh.runtime import Runtime
from refresh.versions.deletions import schedule_deletions

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=30)
WAIT_POLL_SECONDS = 0.25
# Half of the web process's threads (gunicorn.conf.py): the other half keeps answering.
MAX_WAITERS = 4
_waiters = threading.BoundedSemaphore(MAX_WAITERS)


@dataclass(frozen=True)
class Claim:
    table_id: int
    version_id: int
    version: str
    path: str


class Busy(Exception):
    """Another refresh of the table holds the claim."""

    def __init__(self, version_id: int) -> None:
        super().__init__(version_id)
        self.version_id = version_id


def claim(rt: Runtime, table_id: int, version: str, path: str, job_id: str | None) -> Claim:
    """Insert the table's ``writing`` row, or raise ``Busy`` naming the refresh that has it."""
    for _ in range(2):  # the holder may finish between our insert and the look-up: try again
        now = utcnow()
        try:
            with rt.catalog.session() as session:
                row = TableVersion(
                    table_id=table_id,
                    version=version,
                    path=path,
                    status=VersionStatus.WRITING,
                    started_at=now,
                    heartbeat_at=now,
                    job_id=job_id,
                )
                session.add(row)
                session.flush()
                return Claim(table_id, row.id, version, path)
        except IntegrityError:
            holder = _writer(rt, table_id)
            if holder is not None:
                raise Busy(holder) from None
    raise Conflict("the table was removed from the catalog (its connection deleted?) meanwhile")


def wait_for(rt: Runtime, version_id: int, timeout: float, table: str) -> TableVersion | None:
    """Poll until the refresh holding ``version_id`` ends; take over its claim if it went silent.

    Raises ``RefreshInProgress`` naming that refresh (``table`` is its name for the message) when
    it is still running after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    waiting = False
    try:
        while True:
            with rt.catalog.session() as session:
                row = session.get(TableVersion, version_id)
            if row is None or row.status != VersionStatus.WRITING:
                return row
            if _stale(row.heartbeat_at):
                _take_over(rt, row)
                continue
            if time.monotonic() > deadline:
                raise RefreshInProgress(_still_running(row, table, timeout))
            if not waiting:
                waiting = _waiters.acquire(blocking=False)
                if not waiting:
                    raise RefreshInProgress(_still_running(row, table, 0))
            time.sleep(WAIT_POLL_SECONDS)
    finally:
        if waiting:
            _waiters.release()


class Heartbeat:
    """Keeps a claim alive, from a daemon thread, while the refresh reports progress.

    A refresh that reports none for ``stall_seconds`` (a source or an upload that stopped
    moving) stops beating, so its claim goes stale and can be taken over even if the process
    itself is wedged.
    """

    def __init__(self, rt: Runtime, version_id: int, stall_seconds: float) -> None:
        self._rt = rt
        self._version_id = version_id
        self._stall_seconds = stall_seconds
        self._last_progress = time.monotonic()
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

    def progress(self) -> None:
        """The refresh moved on (a batch read, a part uploaded)."""
        self._last_progress = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if time.monotonic() - self._last_progress > self._stall_seconds:
                continue
            try:
                with self._rt.catalog.session() as session:
                    session.execute(
                        update(TableVersion)
                        .where(TableVersion.id == self._version_id)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:
                # A missed beat is harmless unless the catalog stays away long enough for the
                # claim to go stale; the publish step will then fail its compare-and-set.
                log.warning("heartbeat for table version %s failed", self._version_id)


def end_stale_claims(rt: Runtime) -> int:
    """Take over every claim whose heartbeat went stale (its refresh was killed or is stuck), as
    a refresh waiting for it would: the version fails and its directory is queued for deletion.

    For the orphan sweep, so that a killed refresh of a table nobody refreshes again is cleaned up
    too. Returns how many claims were found stale.
    """
    with rt.catalog.session() as session:
        writing = session.scalars(
            select(TableVersion).where(TableVersion.status == VersionStatus.WRITING)
        ).all()
    stale = [row for row in writing if _stale(row.heartbeat_at)]
    for row in stale:
        _take_over(rt, row)
    return len(stale)


def _writer(rt: Runtime, table_id: int) -> int | None:
    with rt.catalog.session() as session:
        return session.scalar(
            select(TableVersion.id).where(
                TableVersion.table_id == table_id, TableVersion.status == VersionStatus.WRITING
            )
        )


def _still_running(row: TableVersion, table: str, waited: float) -> str:
    by = f"job {row.job_id}" if row.job_id else "a request"
    patience = f"still running after {waited:.0f} s of waiting" if waited else "still running"
    return (
        f"{table} is being refreshed by {by} (version {row.version}, started "
        f"{row.started_at:%Y-%m-%d %H:%M:%S} UTC), {patience}; its outcome will be in the "
        "table's history: try again later"
    )


def _stale(heartbeat_at: datetime | None) -> bool:
    return heartbeat_at is None or utcnow() - heartbeat_at > STALE_AFTER


def _take_over(rt: Runtime, row: TableVersion) -> None:
    """End a dead writer's claim; only one of several waiters wins the conditional update."""
    now = utcnow()
    with rt.catalog.session() as session:
        result = session.execute(
            update(TableVersion)
            .where(
                TableVersion.id == row.id,
                TableVersion.status == VersionStatus.WRITING,
                TableVersion.heartbeat_at == row.heartbeat_at,
            )
            .values(
                status=VersionStatus.FAILED,
                finished_at=now,
                error="abandoned: the refreshing process stopped before finishing",
            )
        )
        if result.rowcount == 1:
            schedule_deletions(session, [row.path], delete_after=now)
            log.warning("took over abandoned refresh %s; queued %s for deletion", row.id, row.path)
