"""Connection-wide data refresh (mode 4) with 1, 2 and 4 forking workers, beside its peers.

    python -m bench.connection_refresh [--connections small many large] [--workers 1 2 4]
                                       [--rounds 1] [--keep] [--skip-dlt]

Three PostgreSQL connections built from the reference ``orders`` table (bench/orders.sql):

- ``small``: 200 tables of 10,000 rows; ``many``: 1,000 tables of 1,000 rows (what the work a
  table needs besides its data costs);
- ``large``: 4 tables of 1,000,000 rows (what the data path costs).

And, only when named in ``--connections``, MariaDB ones with the columns of ``orders`` and
generated rows (``bench.native_refresh.fill_mysql``, made once and kept): ``mariadb-small`` (200
tables of 10,000 rows) and ``mariadb-tiny`` (200 tables of 10 rows). They have no peer here (the
DuckDB loop reads PostgreSQL; DuckDB's MySQL scanner is an extension this machine cannot
download); their copies are checked by row count.

For each worker count the service runs as deployed: the Procfile's ``rq worker`` processes around
a Redis server of the benchmark's own, a PostgreSQL catalog and a filesystem cache; the time is
from ``POST /refresh`` (mode 4, every table) to the job seen finished, twice in the same
processes: the first refresh, when no table has a size in the catalog yet, and again, when the
batches are planned on the sizes of the versions just written. The peers, in the
bench-only environment ``.venv-peers`` (``bench/peers.py``):

- one DuckDB 1.4.4 process that ATTACHes the database and COPYs each table to zstd Parquet, timed
  as a whole process (extension load and ATTACH included);
- dlt's ``sql_database`` source (pyarrow backend) loading the same tables into Parquet.

Every copy is checked: the service's row count of every table (in the job's result), the number
of files each peer wrote, and one table of each copy against the checksums of orders.sql.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from bench.common import (
    PG,
    ROOT,
    private_redis,
    procfile_processes,
    psql,
    run_child,
    scratch_database,
)
from bench.data_refresh import PEERS_PYTHON, check, ensure_peers
from bench.native_refresh import MYSQL, fill_mysql

CONNECTIONS = {"small": (200, 10_000), "many": (1_000, 1_000), "large": (4, 1_000_000)}
MARIADB_CONNECTIONS = {"mariadb-small": (200, 10_000), "mariadb-tiny": (200, 10)}
DUCKDB_LOOP = "DuckDB loop (one process)"
DLT = "dlt sql_database (pyarrow)"
# The same refresh once more, in the same processes: every table now has a cached size.
AGAIN = ", again"


def service_path(workers: int, suffix: str = "") -> str:
    return f"service, {workers} worker(s){suffix}"


@dataclass(frozen=True)
class Result:
    connection: str
    path: str
    seconds: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--connections",
        nargs="+",
        choices=[*CONNECTIONS, *MARIADB_CONNECTIONS],
        default=list(CONNECTIONS),
    )
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (medians)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source tables")
    parser.add_argument("--skip-dlt", action="store_true", help="skip the dlt peer")
    args = parser.parse_args()

    ensure_peers()
    peers = {DUCKDB_LOOP: "duckdb-database"} | ({} if args.skip_dlt else {DLT: "dlt-database"})
    results: list[Result] = []
    for name in args.connections:
        with source(name, args.keep) as (source_type, config, tables, rows):
            times: dict[str, list[float]] = {}
            for _ in range(args.rounds):
                for count in args.workers:
                    first, again = refresh_with_workers(source_type, config, count, tables, rows)
                    times.setdefault(service_path(count), []).append(first)
                    times.setdefault(service_path(count, AGAIN), []).append(again)
                for path, peer in peers.items() if source_type == "postgres" else ():
                    times.setdefault(path, []).append(run_peer(peer, config["database"], tables))
            results += [Result(name, path, statistics.median(ts)) for path, ts in times.items()]
    print_table(results)


@contextmanager
def source(name: str, keep: bool) -> Iterator[tuple[str, dict[str, Any], int, int]]:
    """Connection ``name``'s source type, config, tables and rows, its database filled."""
    if name in MARIADB_CONNECTIONS:
        tables, rows = MARIADB_CONNECTIONS[name]
        yield "mysql", {**MYSQL, "database": fill_mysql(tables, rows)}, tables, rows
        return
    tables, rows = CONNECTIONS[name]
    with scratch_database(f"rs_bench_conn_{name}", keep=keep) as database:
        fill(database, tables, rows)
        yield "postgres", {**PG, "database": database, "schemas": ["public"]}, tables, rows


def fill(database: str, tables: int, rows: int) -> None:
    """``tables`` copies of orders (``rows`` rows) in schema public, made from the one in schema
    ``template`` (which the peers, reading ``public``, do not see)."""
    exists = psql(database, "-tAc", f"SELECT to_regclass('public.t{tables - 1:04d}')").strip()
    if exists:
        return
    print(f"creating {tables} tables of {rows:,} rows in {database} ...", file=sys.stderr)
    psql(database, "-c", "CREATE SCHEMA template")
    psql(
        database,
        "-v",
        f"rows={rows}",
        "-c",
        "SET search_path = template",
        "-f",
        str(ROOT / "bench/orders.sql"),
        stdout=subprocess.DEVNULL,
    )
    for n in range(tables):
        psql(database, "-c", f"CREATE TABLE public.t{n:04d} AS TABLE template.orders")
    psql(database, "-c", "VACUUM ANALYZE")


def refresh_with_workers(
    source_type: str, config: dict[str, Any], workers: int, tables: int, rows: int
) -> tuple[float, float]:
    """Mode 4 over every table of the source with ``workers`` worker processes, twice: seconds of
    the first refresh (no table cached: batches are planned on guessed sizes) and of the next
    (batches planned on the sizes of the versions just written). A PostgreSQL copy of
    ``orders``'s is checked against its checksums too."""
    from rq import Worker

    from app import create_app
    from config import load_settings
    from refresh.api.context import JOBS
    from refresh.catalog.migrations import upgrade
    from refresh.runtime import Runtime
    from refresh.storage.filesystem import file_url_path
    from workers.queues import connect

    with (
        private_redis() as redis_url,
        scratch_database("rs_bench_conn_catalog") as catalog,
        tempfile.TemporaryDirectory(prefix="bench-conn-") as work,
    ):
        environ = {
            "DATABASE_URL": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{catalog}",
            "CACHE_URL": Path(work, "cache").as_uri(),
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench",
            "PARALLEL_REFRESH_COUNT": "4",
        }
        migrating = Runtime.from_settings(load_settings(environ))
        upgrade(migrating.catalog)
        migrating.catalog.dispose()
        app = create_app(load_settings(environ))
        client = app.test_client()
        created = client.post(
            "/connections", json={"name": "bench", "source_type": source_type, "config": config}
        )
        assert created.status_code == 201, created.get_json()
        logs = Path(work, "logs")
        logs.mkdir()
        redis = connect(redis_url)
        with procfile_processes("worker", workers, environ, logs):
            while Worker.count(connection=redis) < workers:  # their start is not measured
                time.sleep(0.05)
            seconds = [refresh_all(client, tables, rows) for _ in range(2)]
        if source_type == "postgres":
            table = client.get("/connections/bench/tables/public/t0000").get_json()
            check_table(config["database"], f"{file_url_path(table['current_path'])}/*.parquet")
        app.extensions[JOBS].close()
    print(f"{workers} worker(s): {seconds[0]:.2f} s, again {seconds[1]:.2f} s", file=sys.stderr)
    return seconds[0], seconds[1]


def refresh_all(client: FlaskClient, tables: int, rows: int) -> float:
    """``POST /refresh`` mode 4 with every table, to the job seen finished; seconds."""
    started = time.perf_counter()
    accepted = client.post(
        "/refresh", json={"connection_id": "bench", "data": True, "include_uncached": True}
    )
    assert accepted.status_code == 202, accepted.get_json()
    status_url = accepted.get_json()["status_url"]
    while (job := client.get(status_url).get_json())["status"] not in ("finished", "failed"):
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    result = job.get("result", {})
    if job["status"] != "finished" or result["tables_refreshed"] != tables:
        raise SystemExit(f"the refresh did not copy every table: {job}")
    if result["total_rows"] != tables * rows:
        raise SystemExit(f"{result['total_rows']} rows copied, {tables * rows} expected")
    return seconds


def run_peer(peer: str, database: str, tables: int) -> float:
    """A peer over every table of ``public``, in the peers' virtualenv; seconds.

    The DuckDB loop is timed as a whole process (extension load and ATTACH included); dlt by its
    own report (the pipeline alone, not its imports).
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-{peer}-") as work:
        run = run_child(
            "bench/peers.py",
            peer,
            database,
            "public",
            work,
            env={"RUNTIME__LOG_LEVEL": "ERROR", "RUNTIME__DLTHUB_TELEMETRY": "false"},
            python=str(PEERS_PYTHON),
        )
        report = json.loads(run.stdout.strip().splitlines()[-1])
        if "error" in report:
            raise SystemExit(f"{peer} failed: {report['error']}")
        files = sorted(glob.glob(report["parquet"]))
        if len(files) < tables:
            raise SystemExit(f"{peer} wrote {len(files)} files for {tables} tables")
        check_table(database, next(f for f in files if "t0000" in f))
    seconds = run.seconds if peer == "duckdb-database" else report["seconds"]
    print(f"{peer}: {seconds:.2f} s", file=sys.stderr)
    return seconds


def check_table(database: str, parquet: str) -> None:
    """t0000 is a copy of orders: its Parquet must match orders.sql's checksums."""
    psql(database, "-c", "CREATE OR REPLACE VIEW public.orders AS TABLE public.t0000")
    try:
        check(database, parquet)
    finally:
        psql(database, "-c", "DROP VIEW public.orders")


def print_table(results: list[Result]) -> None:
    header = f"{'connection':12} {'path':35} {'seconds':>8} {'vs 1 worker':>12} {'vs DuckDB':>10}"
    print(f"{header} {'vs dlt':>8}")
    for result in results:
        same = {r.path: r.seconds for r in results if r.connection == result.connection}
        one = service_path(1, AGAIN if result.path.endswith(AGAIN) else "")
        ratios = [
            f"{same[reference] / result.seconds:.2f}x" if reference in same else "-"
            for reference in (one, DUCKDB_LOOP, DLT)
        ]
        print(
            f"{result.connection:12} {result.path:35} {result.seconds:>8.2f} "
            f"{ratios[0]:>12} {ratios[1]:>10} {ratios[2]:>8}"
        )
    for connection in dict.fromkeys(r.connection for r in results):
        same = {r.path: r.seconds for r in results if r.connection == connection}
        for suffix, which in (("", "first refresh"), (AGAIN, "again")):
            one, two = same.get(service_path(1, suffix)), same.get(service_path(2, suffix))
            if one and DUCKDB_LOOP in same:
                ratio = same[DUCKDB_LOOP] / one
                verdict = "met" if ratio >= 1 else "NOT met"
                print(
                    f"{connection}, {which}: 1 worker vs the DuckDB loop: {ratio:.2f}x "
                    f"(target 1x: {verdict})"
                )
            if one and two:
                ratio = one / two
                verdict = "met" if ratio >= 1.6 else "NOT met"
                print(
                    f"{connection}, {which}: 2 workers vs 1: {ratio:.2f}x (target 1.6x: {verdict})"
                )


if __name__ == "__main__":
    main()
