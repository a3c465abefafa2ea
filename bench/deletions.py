"""What deleting the superseded versions costs, beside what writing them cost, in one process.

    python -m bench.deletions [--tables 1000] [--rows 10] [--catalog postgres sqlite]
                              [--cache-url s3://bucket/prefix]

Every refresh of a table supersedes a version, which the deletion sweep removes after its grace
period: in the scheduler process when deployed, in the web process in embedded mode, where it
shares a core with the refreshes. For each catalog: a source of ``--tables`` copies of the
reference ``orders`` table (``--rows`` rows), registered with a filesystem cache (or
``--cache-url``, with ``S3_ENDPOINT_URL`` and the ``AWS_*`` variables for S3), every table
refreshed twice as one batch (the second refresh is timed: what a version costs to write), then
the superseded versions made due and ``process_pending_deletions`` run once (timed: what a
version costs to delete). Prints wall and CPU time per version for both.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bench.common import PG, scratch_database, service_client
from bench.connection_refresh import fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--catalog", nargs="+", default=["postgres", "sqlite"])
    parser.add_argument("--cache-url", help="CACHE_URL (default: a temporary directory)")
    args = parser.parse_args()

    with scratch_database(f"rs_bench_profile_{args.tables}x{args.rows}", keep=True) as source:
        fill(source, args.tables, args.rows)
        for catalog in args.catalog:
            measure(source, catalog, args.tables, args.cache_url)


def measure(source: str, catalog: str, tables: int, cache_url: str | None) -> None:
    from sqlalchemy import update

    from refresh.api.context import EXTENSION, JOBS
    from refresh.catalog import PendingDeletion, utcnow
    from refresh.data_refresh import refresh_tables
    from refresh.versions.deletions import DeletionRun, process_pending_deletions

    with (
        _catalog_url(catalog) as catalog_url,
        tempfile.TemporaryDirectory(prefix="bench-deletions-") as work,
    ):
        client = service_client(
            Path(work),
            catalog_url=catalog_url,
            cache_url=cache_url,
            DELETION_GRACE_SECONDS="86400",  # nothing is deleted before the timed run
        )
        config = {**PG, "database": source, "schemas": ["public"]}
        created = client.post(
            "/connections", json={"name": "bench", "source_type": "postgres", "config": config}
        )
        assert created.status_code == 201, created.get_json()
        rt = client.application.extensions[EXTENSION]
        listed = client.get("/connections/bench/tables").get_json()["tables"]
        names = [(t["schema_name"], t["table_name"]) for t in listed]

        def refresh_all() -> None:
            refresh_tables(rt, "bench", names, None, lambda outcomes: None, threads=2)

        refresh_all()
        written = _timed(refresh_all)
        with rt.catalog.session() as session:
            session.execute(update(PendingDeletion).values(delete_after=utcnow() - timedelta(1)))
        runs: list[DeletionRun] = []
        deleted = _timed(lambda: runs.append(process_pending_deletions(rt)))
        client.application.extensions[JOBS].close()
        assert runs == [DeletionRun(deleted=tables)], runs
        for what, (seconds, cpu) in (("written", written), ("deleted", deleted)):
            print(
                f"{catalog} catalog, {tables} versions {what}: "
                f"{seconds / tables * 1000:.2f} ms and {cpu / tables * 1000:.2f} ms of CPU each"
            )


@contextmanager
def _catalog_url(catalog: str) -> Iterator[str | None]:
    """A PostgreSQL catalog of the run's own, or None: the embedded SQLite one."""
    if catalog != "postgres":
        yield None
        return
    with scratch_database("rs_bench_deletions_catalog") as database:
        yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{database}"


def _timed(work: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds of ``work()``."""
    cpu, started = time.process_time(), time.perf_counter()
    work()
    return time.perf_counter() - started, time.process_time() - cpu


if __name__ == "__main__":
    main()
