"""The orphan sweep: version directories that nothing in the catalog references any more.

A refresh killed mid-write leaves its claim (a ``writing`` version whose heartbeat stopped) and
its directory; a crash between creating a directory and claiming it, or a deletion given up after
its retries, leaves a directory no row names at all. Neither would ever be deleted. The sweep
(hourly, from the scheduler) ends the dead claims, whose directories are queued at once as a
refresh taking one over would, then queues with the usual grace period each version directory
that no table's ``current_path``, no ``writing`` version and no pending deletion references and
whose name says it is older than ``ORPHAN_MIN_AGE_SECONDS``. Last, it aborts the S3 multipart
uploads begun before that age: a killed upload keeps its parts, which no listing shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from refresh.catalog import PendingDeletion, Table, TableVersion, VersionStatus, utcnow
from refresh.runtime import Runtime
from refresh.versions.claims import end_stale_claims
from refresh.versions.deletions import retire

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepResult:
    stale_claims: int
    queued: int
    uploads_aborted: int


def sweep_orphans(rt: Runtime) -> SweepResult:
    """Queue the orphaned version directories for deletion; see the module's docstring.

    The directories are listed before the references are read: a directory listed whose refresh
    claims or publishes it meanwhile is referenced by then, and one created after the listing is
    not considered. A directory younger than the minimum age is never queued, so one whose
    refresh has created it but not claimed it yet is safe.
    """
    stale_claims = end_stale_claims(rt)
    now = utcnow()
    cutoff = now - timedelta(seconds=rt.settings.orphan_min_age_seconds)
    old = [d.url for d in rt.storage.version_directories() if d.created_at < cutoff]
    referenced = _referenced(rt)
    orphans = [url for url in old if url not in referenced]
    if orphans:
        with rt.catalog.session() as session:
            retire(rt, session, orphans)
        for url in orphans:
            log.warning("orphaned version directory %s queued for deletion", url)
    aborted = rt.storage.abort_incomplete_uploads(initiated_before=cutoff)
    if aborted:
        log.warning("aborted %d incomplete uploads begun before %s", aborted, cutoff)
    return SweepResult(stale_claims, len(orphans), aborted)


def _referenced(rt: Runtime) -> set[str]:
    with rt.catalog.session() as session:
        current = select(Table.current_path).where(Table.current_path.is_not(None))
        writing = select(TableVersion.path).where(TableVersion.status == VersionStatus.WRITING)
        pending = select(PendingDeletion.path)
        return set(session.scalars(current.union(writing, pending)))
