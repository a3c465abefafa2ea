"""Deferred deletion of version directories that are no longer current.

Readers may still hold an old ``current_path`` after a swap, so a directory is only queued here
and removed once its grace period has passed, by ``process_pending_deletions`` (the scheduler runs
it every ``DELETION_INTERVAL_SECONDS``). ``queued_deletions`` and ``plan_pending_deletions``
show the queue, and what a run would do now, without changing anything (``flask refresh gc``).

Any number of processors may run at once (two schedulers, a run still going when the next one
starts). Each claims a batch of due rows for ``CLAIM_SECONDS`` in one short transaction (``FOR
UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serializes the claims), deletes
outside any transaction, and records the outcomes in short ones, only for the rows it still
claims: a failure at once, the deletions of a batch together when the batch ends (one
transaction for up to ``BATCH_SIZE`` rows; a transaction per row cost three times the deletion
itself). A processor killed mid-batch leaves its claims to expire; another one then takes the
rows over, and deletes again what is already gone, which succeeds. However long the backlog, no
more than a batch is in memory and no transaction lasts long.
"""

from __future__ import annotations

import enum
import logging
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    and_,
    delete,
    false,
    func,
    not_,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from refresh.catalog import (
    PendingDeletion,
    Table,
    TableVersion,
    VersionStatus,
    insert_ignoring,
    utcnow,
)
from refresh.runtime import Runtime
from refresh.storage import StorageError

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# How long a claim holds: far longer than a batch of deletions takes. A processor stops taking
# rows of its batch once less than CLAIM_MARGIN is left, so a row is not deleted by two.
CLAIM_SECONDS = 300
CLAIM_MARGIN_SECONDS = 60
DEFER_UNREADABLE = timedelta(hours=24)

# How SQLAlchemy stores a timestamp in SQLite (text, "9" a digit); anything else cannot be read.
_SQLITE_SHAPE = "9999-99-99 99:99:99.999999"
_SQLITE_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_SQLITE_REGEX = re.compile("".join(r"\d" if c == "9" else re.escape(c) for c in _SQLITE_SHAPE))
_SQLITE_GLOB = "".join("[0-9]" if c == "9" else c for c in _SQLITE_SHAPE)


def retire(rt: Runtime, session: Session | Connection, paths: Iterable[str]) -> None:
    """Queue the directories of versions that stopped being current (replaced, uncached, their
    connection deleted, or orphaned): a reader that resolved one just before keeps a readable
    copy for ``DELETION_GRACE_SECONDS``."""
    schedule_deletions(session, paths, delete_after=deletion_due(rt))


def deletion_due(rt: Runtime) -> datetime:
    """When a directory that stops being current now may be deleted."""
    return utcnow() + timedelta(seconds=rt.settings.deletion_grace_seconds)


def queue_now(session: Session | Connection, paths: Iterable[str]) -> None:
    """Queue directories no reader was ever given (a failed or abandoned write): due at once."""
    schedule_deletions(session, paths, delete_after=utcnow())


def schedule_deletions(
    session: Session | Connection, paths: Iterable[str], delete_after: datetime
) -> None:
    """Queue each path once: a path already queued keeps its row and its retry count."""
    now = utcnow()
    rows = [
        {"path": path, "delete_after": delete_after, "retry_count": 0, "created_at": now}
        for path in dict.fromkeys(paths)
    ]
    if not rows:
        return
    session.execute(insert_ignoring(session, PendingDeletion, index_elements=["path"]), rows)


@dataclass
class DeletionRun:
    """What one ``process_pending_deletions`` did, row by row."""

    deleted: int = 0
    failed: int = 0  # will be retried by a later run
    given_up: int = 0
    deferred: int = 0  # unreadable ``delete_after``
    current: int = 0  # dropped from the queue: a table's current version
    being_written: int = 0  # left for a later run: a refresh is writing it


@dataclass(frozen=True)
class _Claimed:
    id: int
    path: str
    retry_count: int
    delete_after: datetime | None  # None: the stored value cannot be read
    stored: object  # the stored value, for the warning when it cannot be read


def process_pending_deletions(rt: Runtime) -> DeletionRun:
    """Delete the directory of every due row (``delete_after <= now``), a batch at a time.

    Success removes the row and marks the version ``deleted`` in its table's history, with when.
    A failure counts an attempt on the row (``retry_count``, ``last_error``), retried by the next
    run; the ``MAX_DELETION_RETRIES``-th gives up: the row goes, the files stay, and the version's
    history says ``deletion_failed`` and why. A row whose ``delete_after`` cannot be read is
    deferred by 24 hours. Each row is tried once per run.
    """
    run = DeletionRun()
    token = secrets.token_hex(16)
    after_id = 0
    while True:
        batch, after_id = _claim(rt, token, after_id, run)
        if not batch:
            break
        stop_at = time.monotonic() + CLAIM_SECONDS - CLAIM_MARGIN_SECONDS
        deleted: list[_Claimed] = []
        try:
            for position, row in enumerate(batch):
                if position and time.monotonic() > stop_at:  # a slow storage: claim the rest afresh
                    _release(rt, token, [r.id for r in batch[position:]])
                    after_id = row.id - 1
                    break
                if _process(rt, token, row, run):
                    deleted.append(row)
        finally:  # also when the run is stopped mid-batch (a job's time limit)
            _record_deletions(rt, token, deleted)
    if run != DeletionRun():
        log.info("pending deletions processed: %s", run)
    return run


def _claim(rt: Runtime, token: str, after_id: int, run: DeletionRun) -> tuple[list[_Claimed], int]:
    """Claim the next due rows after ``after_id``, except those whose directory is in use;
    returns them and the id to continue after (none claimed: nothing is left).

    A table's current version is dropped from the queue: kept, the row would still be due when the
    version is superseded later, and the directory would go without its grace period. A version a
    refresh is writing is left for a later run: the refresh may fail and need it deleted. Neither
    happens but in a race (the orphan sweep with a tiny ``ORPHAN_MIN_AGE_SECONDS``, a failing
    refresh queueing its directory just before it records its failure).
    """
    dialect = rt.catalog.dialect
    while True:
        now = utcnow()
        with rt.catalog.session() as session:
            rows = session.execute(
                select(
                    PendingDeletion.id,
                    PendingDeletion.path,
                    PendingDeletion.retry_count,
                    _stored_delete_after(dialect),
                )
                .where(PendingDeletion.id > after_id, _due(dialect, now), _unclaimed(now))
                .order_by(PendingDeletion.id)
                .limit(BATCH_SIZE)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return [], after_id
            current, writing = _in_use(session, [row.path for row in rows])
            if current:
                session.execute(delete(PendingDeletion).where(PendingDeletion.path.in_(current)))
            claimed = [row for row in rows if row.path not in current | writing]
            session.execute(
                update(PendingDeletion)
                .where(PendingDeletion.id.in_([row.id for row in claimed]))
                .values(claim_token=token, claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
            )
        for path in current:
            log.warning("not deleting %s: it is a table's current version; dropped", path)
        for path in writing:
            log.info("not deleting %s yet: a refresh is writing it", path)
        run.current += len(current)
        run.being_written += len(writing)
        after_id = rows[-1].id
        if claimed:
            return [
                _Claimed(row.id, row.path, row.retry_count, _read_timestamp(row.stored), row.stored)
                for row in claimed
            ], after_id


def _due(dialect: str, now: datetime) -> ColumnElement[bool]:
    """The rows a run takes: due, or holding a ``delete_after`` that cannot be read (deferred)."""
    return or_(PendingDeletion.delete_after <= now, _unreadable(dialect))


def _unclaimed(now: datetime) -> ColumnElement[bool]:
    """The rows no other run holds (a claim whose holder was killed expires)."""
    return or_(PendingDeletion.claimed_until.is_(None), PendingDeletion.claimed_until < now)


def _in_use(session: Session, paths: list[str]) -> tuple[set[str], set[str]]:
    """Which of ``paths`` are a table's current version, and which a refresh is writing."""
    current = session.scalars(select(Table.current_path).where(Table.current_path.in_(paths)))
    writing = session.scalars(
        select(TableVersion.path).where(
            TableVersion.path.in_(paths), TableVersion.status == VersionStatus.WRITING
        )
    )
    return set(current), set(writing)


def _process(rt: Runtime, token: str, row: _Claimed, run: DeletionRun) -> bool:
    """Delete the row's directory (True), or record why not."""
    if row.delete_after is None:
        _defer(rt, token, row)
        run.deferred += 1
        return False
    try:
        rt.storage.delete_prefix(row.path)
    except StorageError as error:  # anything else (a job's time limit) ends the run
        if _record_failure(rt, token, row, str(error)):
            run.given_up += 1
        else:
            run.failed += 1
        return False
    run.deleted += 1
    return True


def _record_deletions(rt: Runtime, token: str, rows: list[_Claimed]) -> None:
    """Remove the rows whose directories went, and mark their versions ``deleted``; a row whose
    claim expired meanwhile belongs to the processor that took it over, which records it."""
    if not rows:
        return
    with rt.catalog.session() as session:
        ours = session.scalars(
            delete(PendingDeletion)
            .where(PendingDeletion.id.in_([row.id for row in rows]))
            .where(PendingDeletion.claim_token == token)
            .returning(PendingDeletion.path)
        ).all()
        if ours:
            session.execute(
                update(TableVersion)
                .where(TableVersion.path.in_(ours))
                .values(status=VersionStatus.DELETED, deleted_at=utcnow())
            )


def _record_failure(rt: Runtime, token: str, row: _Claimed, reason: str) -> bool:
    """Count the failed attempt; True when it was the last one allowed and the row was given up."""
    attempt = row.retry_count + 1
    limit = rt.settings.max_deletion_retries
    with rt.catalog.session() as session:
        if attempt < limit:
            session.execute(
                update(PendingDeletion)
                .where(PendingDeletion.id == row.id, PendingDeletion.claim_token == token)
                .values(
                    retry_count=attempt, last_error=reason, claim_token=None, claimed_until=None
                )
            )
            log.warning(
                "could not delete %s (attempt %d of %d; the next run tries again): %s",
                row.path,
                attempt,
                limit,
                reason,
            )
            return False
        if not _remove(session, token, row):
            return False
        given_up = (
            f"deleting its directory failed {attempt} times; given up, the files stay: {reason}"
        )
        for version in session.scalars(select(TableVersion).where(TableVersion.path == row.path)):
            version.status = VersionStatus.DELETION_FAILED
            version.error = f"{version.error}; then {given_up}" if version.error else given_up
    log.error(
        "gave up deleting %s after %d failed attempts; its files stay: %s",
        row.path,
        attempt,
        reason,
    )
    return True


def _defer(rt: Runtime, token: str, row: _Claimed) -> None:
    later = utcnow() + DEFER_UNREADABLE
    with rt.catalog.session() as session:
        session.execute(
            update(PendingDeletion)
            .where(PendingDeletion.id == row.id, PendingDeletion.claim_token == token)
            .values(delete_after=later, claim_token=None, claimed_until=None)
        )
    log.warning(
        "the deletion time of %s cannot be read (%r); not deleted, deferred 24 hours to %s",
        row.path,
        row.stored,
        f"{later:%Y-%m-%d %H:%M:%S} UTC",
    )


def _remove(session: Session, token: str, row: _Claimed) -> bool:
    """Remove a claimed row; False when the claim had expired and another processor has it."""
    removed = session.execute(
        delete(PendingDeletion).where(
            PendingDeletion.id == row.id, PendingDeletion.claim_token == token
        )
    )
    return removed.rowcount == 1


def _release(rt: Runtime, token: str, ids: list[int]) -> None:
    with rt.catalog.session() as session:
        session.execute(
            update(PendingDeletion)
            .where(PendingDeletion.id.in_(ids), PendingDeletion.claim_token == token)
            .values(claim_token=None, claimed_until=None)
        )


def _stored_delete_after(dialect: str) -> ColumnElement[object]:
    """``delete_after`` as stored: SQLite may hold anything in it (a hand edit, an old version),
    which reading it as a timestamp would fail on; PostgreSQL holds timestamps only."""
    column = PendingDeletion.delete_after
    stored = type_coerce(column, Text) if dialect == "sqlite" else column
    return stored.label("stored")


def _unreadable(dialect: str) -> ColumnElement[bool]:
    """Rows whose ``delete_after`` is not a timestamp, claimed whether due or not to be deferred.

    On SQLite a text value compares with ``now`` character by character, so a malformed one may
    never look due; a value of the right shape but impossible (February 31) is found when read.
    """
    if dialect != "sqlite":
        return false()
    stored = type_coerce(PendingDeletion.delete_after, Text)
    return not_(and_(func.typeof(stored) == "text", stored.op("GLOB")(_SQLITE_GLOB)))


def _read_timestamp(stored: object) -> datetime | None:
    if isinstance(stored, datetime):
        return stored
    if not isinstance(stored, str) or not _SQLITE_REGEX.fullmatch(stored):
        return None
    try:
        return datetime.strptime(stored, _SQLITE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class QueuedDeletion:
    """A row of the deletion queue, as an operator reads it."""

    path: str
    delete_after: datetime | None  # None: the stored value cannot be read
    stored: object  # the stored ``delete_after``, to show when it cannot be read
    retry_count: int  # failed attempts so far
    last_error: str | None
    claimed_until: datetime | None  # a run held the row, or holds it, until then
    due: bool  # a run now takes it (to delete it, or to defer an unreadable one)...
    held: bool  # ...unless another run holds it now


def queued_deletions(rt: Runtime) -> list[QueuedDeletion]:
    """The whole queue, in the order a run walks it; reading it changes nothing."""
    dialect = rt.catalog.dialect
    now = utcnow()
    with rt.catalog.session() as session:
        rows = session.execute(
            select(
                PendingDeletion.path,
                _stored_delete_after(dialect),
                PendingDeletion.retry_count,
                PendingDeletion.last_error,
                PendingDeletion.claimed_until,
                _due(dialect, now).label("due"),
                not_(_unclaimed(now)).label("held"),
            ).order_by(PendingDeletion.id)
        ).all()
    return [
        QueuedDeletion(
            row.path,
            _read_timestamp(row.stored),
            row.stored,
            row.retry_count,
            row.last_error,
            row.claimed_until,
            bool(row.due),
            bool(row.held),
        )
        for row in rows
    ]


class Action(enum.StrEnum):
    """What a run does with a due row (``_claim``, ``_process``)."""

    DELETE = "delete"  # delete_prefix; a failure counts an attempt (the last one gives up)
    DEFER = "defer"  # ``delete_after`` cannot be read: deferred 24 hours, nothing deleted
    DROP = "drop"  # a table's current version: dropped from the queue, nothing deleted
    WAIT = "wait"  # a refresh is writing it: left for a later run
    HELD = "held"  # another run holds it (``claimed_until``): left to that run


@dataclass(frozen=True)
class PlannedDeletion:
    row: QueuedDeletion
    action: Action
    last_attempt: bool  # a deletion that fails now gives the row up (MAX_DELETION_RETRIES)


def plan_pending_deletions(rt: Runtime) -> list[PlannedDeletion]:
    """What ``process_pending_deletions`` would do now with each due row, without doing it.

    The same rules decide: whether a row is due, held by another run, or its path still in use.
    Whether a deletion would succeed only the storage can tell, so a row on its last allowed
    attempt is marked as one that a failure would give up.
    """
    due = [row for row in queued_deletions(rt) if row.due]
    limit = rt.settings.max_deletion_retries
    plans = []
    for start in range(0, len(due), BATCH_SIZE):
        batch = due[start : start + BATCH_SIZE]
        with rt.catalog.session() as session:
            current, writing = _in_use(session, [row.path for row in batch])
        for row in batch:
            if row.held:
                action = Action.HELD
            elif row.path in current:
                action = Action.DROP
            elif row.path in writing:
                action = Action.WAIT
            elif row.delete_after is None:
                action = Action.DEFER
            else:
                action = Action.DELETE
            last = action is Action.DELETE and row.retry_count + 1 >= limit
            plans.append(PlannedDeletion(row, action, last))
    return plans
