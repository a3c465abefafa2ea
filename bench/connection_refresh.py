"""Connection-wide data refresh (mode 4) with 1, 2 and 4 forking workers, beside dlt.

    python -m bench.connection_refresh [--workers 1 2 4] [--keep] [--skip-dlt]

Two PostgreSQL connections built from the reference ``orders`` table (bench/orders.sql):

- ``small``: 200 tables of 10,000 rows (what per-table overhead costs);
- ``large``: 4 tables of 1,000,000 rows (what the data path costs).

For each worker count, the service runs as deployed: the Procfile's ``rq worker`` processes
around a real Redis, a PostgreSQL catalog and a filesystem cache; the time is from
``POST /refresh`` to the job's end. The peer is dlt's ``sql_database`` source (pyarrow backend)
loading the same tables into Parquet files (``bench/peers.py``, in the bench-only environment
``.venv-peers``). Every copy is checked: each table's row count, and one table of each
connection against the checksums of orders.sql.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rq import Worker

from bench.common import PG, ROOT, psql, run_child, scratch_database
from bench.data_refresh import PEERS_PYTHON, check, ensure_peers
from tests.support.workers import RedisDatabase, procfile_command, running

CONNECTIONS = {"small": (200, 10_000), "large": (4, 1_000_000)}


@dataclass(frozen=True)
class Result:
    connection: str
    path: str
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--connections", nargs="+", choices=CONNECTIONS, default=list(CONNECTIONS))
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source tables")
    parser.add_argument("--skip-dlt", action="store_true", help="skip the dlt peer")
    args = parser.parse_args()

    redis = RedisDatabase()
    results: list[Result] = []
    try:
        for name in args.connections:
            tables, rows = CONNECTIONS[name]
            with scratch_database(f"rs_bench_conn_{name}", keep=args.keep) as source:
                fill(source, tables, rows)
                for count in args.workers:
                    seconds = refresh_with_workers(source, count, redis, tables, rows)
                    results.append(Result(name, f"service, {count} worker(s)", seconds))
                if not args.skip_dlt:
                    results.append(Result(name, "dlt sql_database (pyarrow)", run_dlt(source)))
    finally:
        redis.release()
    print_table(results)


def fill(database: str, tables: int, rows: int) -> None:
    """``tables`` copies of orders (``rows`` rows) in schema public; the seed in schema seed."""
    exists = psql(database, "-tAc", f"SELECT to_regclass('public.t{tables - 1:03d}')").strip()
    if exists:
        return
    print(f"creating {tables} tables of {rows:,} rows in {database} ...", file=sys.stderr)
    psql(database, "-c", "CREATE SCHEMA seed")
    psql(
        database,
        "-v",
        f"rows={rows}",
        "-c",
        "SET search_path = seed",
        "-f",
        str(ROOT / "bench/orders.sql"),
        stdout=subprocess.DEVNULL,
    )
    for n in range(tables):
        psql(database, "-c", f"CREATE TABLE public.t{n:03d} AS TABLE seed.orders")
    psql(database, "-c", "VACUUM ANALYZE")


def refresh_with_workers(
    source: str, workers: int, redis: RedisDatabase, tables: int, rows: int
) -> float:
    """Mode 4 over every table of ``source`` with ``workers`` worker processes; seconds."""
    from app import create_app
    from config import load_settings
    from refresh.api.context import JOBS
    from refresh.catalog.migrations import upgrade
    from refresh.runtime import Runtime
    from refresh.storage.filesystem import file_url_path

    redis.client().flushdb()
    with (
        scratch_database("rs_bench_conn_catalog") as catalog,
        tempfile.TemporaryDirectory(prefix="bench-conn-") as work,
    ):
        environ = {
            "DATABASE_URL": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{catalog}",
            "CACHE_URL": Path(work, "cache").as_uri(),
            "REDIS_URL": redis.url,
            "SECRET_KEY": "bench",
            "PARALLEL_REFRESH_COUNT": "4",
        }
        migrating = Runtime.from_settings(load_settings(environ))
        upgrade(migrating.catalog)
        migrating.catalog.dispose()
        app = create_app(load_settings(environ))
        client = app.test_client()
        config = {**PG, "database": source, "schemas": ["public"]}
        created = client.post(
            "/connections", json={"name": "bench", "source_type": "postgres", "config": config}
        )
        assert created.status_code == 201, created.get_json()
        logs = Path(work, "logs")
        logs.mkdir()
        with running(workers, procfile_command("worker"), environ, logs):
            while Worker.count(connection=redis.client()) < workers:  # their start is not measured
                time.sleep(0.05)
            started = time.perf_counter()
            accepted = client.post(
                "/refresh", json={"connection_id": "bench", "data": True, "include_uncached": True}
            )
            assert accepted.status_code == 202, accepted.get_json()
            status_url = accepted.get_json()["status_url"]
            while (job := client.get(status_url).get_json())["status"] not in (
                "finished",
                "failed",
            ):
                time.sleep(0.05)
            seconds = time.perf_counter() - started
        result = job.get("result", {})
        if job["status"] != "finished" or result["tables_refreshed"] != tables:
            raise SystemExit(f"the refresh did not copy every table: {job}")
        if result["total_rows"] != tables * rows:
            raise SystemExit(f"{result['total_rows']} rows copied, {tables * rows} expected")
        first = client.get("/connections/bench/tables/public/t000").get_json()["current_path"]
        check_table(source, f"{file_url_path(first)}/data.parquet")
        app.extensions[JOBS].close()
    print(f"{workers} worker(s): {seconds:.2f} s", file=sys.stderr)
    return seconds


def check_table(database: str, parquet: str) -> None:
    """t000 is a copy of orders: its Parquet must match orders.sql's checksums."""
    psql(database, "-c", "CREATE OR REPLACE VIEW public.orders AS TABLE public.t000")
    try:
        check(database, parquet)
    finally:
        psql(database, "-c", "DROP VIEW public.orders")


def run_dlt(database: str) -> float:
    """dlt's sql_database source over every table of ``public``, in the peers' virtualenv."""
    ensure_peers()
    with tempfile.TemporaryDirectory(prefix="bench-dlt-") as work:
        run = run_child(
            "bench/peers.py",
            "dlt-database",
            database,
            "public",
            work,
            env={"RUNTIME__LOG_LEVEL": "ERROR", "RUNTIME__DLTHUB_TELEMETRY": "false"},
            python=str(PEERS_PYTHON),
        )
    report = json.loads(run.stdout.strip().splitlines()[-1])
    if "error" in report:
        raise SystemExit(f"dlt failed: {report['error']}")
    print(f"dlt: {report['seconds']:.2f} s", file=sys.stderr)
    return report["seconds"]


def print_table(results: list[Result]) -> None:
    print(f"{'connection':12} {'path':32} {'seconds':>8} {'vs 1 worker':>12} {'vs dlt':>8}")
    for result in results:
        same = [r for r in results if r.connection == result.connection]
        one = next((r for r in same if r.path.startswith("service, 1 ")), None)
        dlt = next((r for r in same if r.path.startswith("dlt")), None)
        speedup = f"{one.seconds / result.seconds:.2f}x" if one else "-"
        versus = f"{dlt.seconds / result.seconds:.2f}x" if dlt else "-"
        print(
            f"{result.connection:12} {result.path:32} {result.seconds:>8.2f} "
            f"{speedup:>12} {versus:>8}"
        )


if __name__ == "__main__":
    main()
