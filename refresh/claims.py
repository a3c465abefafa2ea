"""Single flight: at most one data refresh of a table runs at a time, across processes and machines.

The claim is the table's ``writing`` row in ``table_versions``; a partial unique index allows one
per table, so the catalog arbitrates between any number of web and worker processes. A live
writer refreshes ``heartbeat_at``; a claim whose heartbeat stopped (the process was killed) is
taken over, and its directory queued for deletion.
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
from refresh.deletions import schedule_deletions
from refresh.errors import Conflict, RefreshInProgress
from refresh.runtime import Runtime

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=30)
WAIT_POLL_SECONDS = 0.25


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
        time.sleep(WAIT_POLL_SECONDS)


class Heartbeat:
    """Keeps a claim alive while the refresh runs, from a daemon thread."""

    def __init__(self, rt: Runtime, version_id: int) -> None:
        self._rt = rt
        self._version_id = version_id
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

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
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
    """Take over every claim whose heartbeat went stale (its refresh was killed), as a refresh
    waiting for it would: the version fails and its directory is queued for deletion at once.

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
    return (
        f"{table} is being refreshed by {by} (version {row.version}, started "
        f"{row.started_at:%Y-%m-%d %H:%M:%S} UTC), still running after {waited:.0f} s of waiting; "
        "its outcome will be in the table's history: try again later"
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
