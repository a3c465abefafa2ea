"""The periodic maintenance jobs: deferred deletion and the orphan sweep, on ``maintenance``.

``periodic_jobs`` is the one schedule, which ``workers.scheduler`` registers: in the Procfile's
scheduler process, or in a thread of the web process in embedded mode. Either way a worker runs
the jobs, which are thin wrappers of the ``refresh`` functions
and take no arguments.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from config import Settings
from refresh.versions import deletions, orphans
from workers.process_runtime import current
from workers.queues import MAINTENANCE

ORPHAN_SWEEP_INTERVAL_SECONDS = 3600
# A run stopped by this limit loses nothing: its claims on pending deletions expire and the next
# run takes the rows over.
MAINTENANCE_TIMEOUT_SECONDS = 3600


def process_pending_deletions() -> dict[str, int]:
    return asdict(deletions.process_pending_deletions(current()))


def sweep_orphans() -> dict[str, int]:
    return asdict(orphans.sweep_orphans(current()))


def periodic_jobs(settings: Settings) -> list[dict[str, Any]]:
    """The keyword arguments of ``rq.cron.register`` for each periodic job.

    An interval job first runs when its scheduler starts: due deletions are processed at once
    after a deploy or a restart, and the sweep cleans up what a crash left.
    """
    options = {
        "queue_name": MAINTENANCE,
        "job_timeout": MAINTENANCE_TIMEOUT_SECONDS,
        # RQ keeps a failed job a year by default; one fails every interval while the catalog or
        # the storage is down.
        "failure_ttl": settings.job_result_ttl_seconds,
    }
    return [
        {
            "func": process_pending_deletions,
            "interval": settings.deletion_interval_seconds,
            **options,
        },
        {"func": sweep_orphans, "interval": ORPHAN_SWEEP_INTERVAL_SECONDS, **options},
    ]
