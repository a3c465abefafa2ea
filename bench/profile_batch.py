"""Where a batch of a connection-wide refresh spends its time: one batch, in this process.

    python -m bench.profile_batch [--tables 500] [--rows 1000] [--threads 2] [--rounds 3]
    py-spy record --native -o batch.txt --format raw -- .venv/bin/python -m bench.profile_batch

Builds (or reuses) a source database of ``--tables`` copies of the reference ``orders`` table
with ``--rows`` rows, registers it with a PostgreSQL catalog and a filesystem cache, caches every
table once, then refreshes them all as ONE batch, ``--rounds`` times, exactly as a work horse
does (``refresh.data_refresh.refresh_tables``, outcomes recorded in a Redis of its own). Prints
the wall and CPU time per table; under py-spy (every thread, native frames) it shows where they
go. The profiles in bench/README.md come from it.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.common import PG, private_redis, scratch_database, service_client
from bench.connection_refresh import fill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from refresh.api.context import EXTENSION, JOBS
    from refresh.data_refresh import refresh_tables
    from workers import progress
    from workers.queues import connect

    name = f"rs_bench_profile_{args.tables}x{args.rows}"
    with (
        scratch_database(name, keep=True) as source,
        scratch_database("rs_bench_profile_catalog") as catalog,
        tempfile.TemporaryDirectory(prefix="bench-profile-") as work,
        private_redis() as redis_url,
    ):
        fill(source, args.tables, args.rows)
        catalog_url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{catalog}"
        client = service_client(Path(work), catalog_url=catalog_url)
        config = {**PG, "database": source, "schemas": ["public"]}
        created = client.post(
            "/connections", json={"name": "bench", "source_type": "postgres", "config": config}
        )
        assert created.status_code == 201, created.get_json()
        rt = client.application.extensions[EXTENSION]
        tables = [(t["schema_name"], t["table_name"]) for t in _tables(client)]
        redis = connect(redis_url)

        def report(outcomes: list) -> None:
            progress.record(redis, "warm-up", outcomes, 3600)

        refresh_tables(rt, "bench", tables, None, report, threads=args.threads)  # cache them all
        for round_ in range(args.rounds):
            job_id = f"profile-{round_}"
            cpu, started = sum(os.times()[:2]), time.perf_counter()
            refresh_tables(
                rt, "bench", tables, job_id,
                lambda outcomes, job_id=job_id: progress.record(redis, job_id, outcomes, 3600),
                threads=args.threads,
            )  # fmt: skip
            seconds, cpu = time.perf_counter() - started, sum(os.times()[:2]) - cpu
            failed = [o for o in progress.recorded(redis, job_id).values() if o.error]
            print(
                f"{len(tables)} tables of {args.rows:,} rows, {args.threads} thread(s): "
                f"{seconds:.2f} s, {seconds / len(tables) * 1000:.2f} ms and "
                f"{cpu / len(tables) * 1000:.2f} ms of CPU a table; {len(failed)} failed"
            )
        client.application.extensions[JOBS].close()


def _tables(client: object) -> list[dict]:
    return client.get("/connections/bench/tables").get_json()["tables"]  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
