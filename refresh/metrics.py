"""``GET /metrics``: the service's state in the Prometheus text format, read at scrape time.

Nothing is counted in a process's memory: every figure comes from the catalog (tables, their
refresh outcome counters, pending deletions) and the job queue (RQ's queues and registries), so
any web process answers for all of them, however many web and worker processes run. The metrics
are listed in the README.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from refresh.catalog import PendingDeletion, Table, TableVersion, VersionStatus, utcnow
from refresh.common.errors import RefreshError
from refresh.jobs import JobQueue
from refresh.runtime import Runtime
from refresh.staleness import is_stale

TABLE_LABELS = ("connection", "schema", "table")
OUTCOMES = ("published", "unchanged", "held", "failed")


def render(rt: Runtime, jobs: JobQueue) -> bytes:
    """The exposition text. Raises ``ServiceUnavailable`` when the catalog is unreachable; an
    unreachable job queue only shows as ``refresh_job_queue_up 0``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(rt, jobs))
    return generate_latest(registry)


class _Collector:
    def __init__(self, rt: Runtime, jobs: JobQueue) -> None:
        self._rt = rt
        self._jobs = jobs

    def collect(self) -> Iterator[Metric]:
        yield from _table_metrics(self._rt)
        yield from _deletion_metrics(self._rt)
        yield from _job_metrics(self._jobs)


def _table_metrics(rt: Runtime) -> Iterator[Metric]:
    last_success = GaugeMetricFamily(
        "refresh_table_last_success_timestamp_seconds",
        "When the table's cache was last confirmed fresh (published or unchanged), Unix time",
        labels=TABLE_LABELS,
    )
    rows = GaugeMetricFamily(
        "refresh_table_rows", "Rows of the table's current version", labels=TABLE_LABELS
    )
    size = GaugeMetricFamily(
        "refresh_table_bytes", "Bytes of the table's current version", labels=TABLE_LABELS
    )
    failures = GaugeMetricFamily(
        "refresh_table_consecutive_failures",
        "Refreshes of the table failed since its last success",
        labels=TABLE_LABELS,
    )
    stale = GaugeMetricFamily(
        "refresh_table_stale",
        "1 when the table is older than its max_staleness_seconds, else 0 (tables with one only)",
        labels=TABLE_LABELS,
    )
    outcomes = CounterMetricFamily(
        "refresh_table_refreshes",
        "Data refreshes of the table by how they ended: published, unchanged, held, failed",
        labels=(*TABLE_LABELS, "outcome"),
    )
    now = utcnow()
    with rt.catalog.session() as session:
        tables = session.scalars(
            select(Table)
            .options(selectinload(Table.settings))
            .order_by(Table.connection_id, Table.schema_name, Table.table_name)
        ).all()
    for table in tables:
        labels = [table.connection_id, table.schema_name, table.table_name]
        if table.last_success_at is not None:
            last_success.add_metric(labels, table.last_success_at.timestamp())
        if table.current_path is not None:
            rows.add_metric(labels, table.row_count or 0)
            size.add_metric(labels, table.size_bytes or 0)
        failures.add_metric(labels, table.consecutive_failures)
        table_stale = is_stale(table, now)
        if table_stale is not None:
            stale.add_metric(labels, int(table_stale))
        for outcome in OUTCOMES:
            outcomes.add_metric([*labels, outcome], getattr(table, f"refreshes_{outcome}"))
    yield from (last_success, rows, size, failures, stale, outcomes)


def _deletion_metrics(rt: Runtime) -> Iterator[Metric]:
    with rt.catalog.session() as session:
        pending = session.scalar(select(func.count()).select_from(PendingDeletion))
        retrying = session.scalar(
            select(func.count()).select_from(PendingDeletion).where(PendingDeletion.retry_count > 0)
        )
        abandoned = session.scalar(
            select(func.count())
            .select_from(TableVersion)
            .where(TableVersion.status == VersionStatus.DELETION_FAILED)
        )
    yield GaugeMetricFamily(
        "refresh_pending_deletions", "Version directories queued for deletion", value=pending
    )
    yield GaugeMetricFamily(
        "refresh_pending_deletions_retrying",
        "Queued deletions that failed at least once and will be tried again",
        value=retrying,
    )
    yield GaugeMetricFamily(
        "refresh_abandoned_deletions",
        "Versions whose deletion was given up after MAX_DELETION_RETRIES (their files stay)",
        value=abandoned,
    )


def _job_metrics(jobs: JobQueue) -> Iterator[Metric]:
    try:
        counts = jobs.counts()
    except RefreshError:
        counts = None
    up = int(counts is not None)
    yield GaugeMetricFamily("refresh_job_queue_up", "1 when the job queue answered", value=up)
    family = GaugeMetricFamily(
        "refresh_jobs", "Jobs per queue and state, as RQ counts them", labels=("queue", "state")
    )
    for (queue, state), count in sorted((counts or {}).items()):
        family.add_metric([queue, state], count)
    yield family
