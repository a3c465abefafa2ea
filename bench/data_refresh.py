"""Single-table data refresh of the reference ``orders`` table, beside its references.

    python -m bench.data_refresh [--rows 5000000] [--double] [--keep] [--skip-pandas]

Measured in the same run, on the same table:

- the floor: ``COPY orders TO STDOUT (FORMAT binary)`` by psql into /dev/null;
- the service: ``POST /refresh`` (mode 3) in a fresh process with the embedded defaults (SQLite
  catalog, filesystem cache), peak RSS of that whole process;
- the naive path: ``pandas.read_sql`` + ``DataFrame.to_parquet``.

The copy is then checked against the checksums of ``bench/orders.sql`` (computed by PostgreSQL
on the source and by DuckDB on the Parquet). ``--double`` repeats the service run on a table twice
as big, to show that memory stays flat.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from bench.common import (
    PG,
    ROOT,
    Run,
    psql,
    run_child,
    scratch_database,
    service_client,
    timed_command,
)

CHECKSUMS_PG = """
SELECT count(*), sum(amount), count(*) - count(note), count(*) FILTER (WHERE note = ''),
       count(*) - count(amount), count(*) - count(flag), count(*) FILTER (WHERE flag),
       count(*) - count(score), sum((extract(epoch FROM created_at) * 1000000)::bigint)
FROM orders
"""
CHECKSUMS_DUCKDB = """
SELECT count(*), sum(amount), count(*) - count(note), count(*) FILTER (WHERE note = ''),
       count(*) - count(amount), count(*) - count(flag), count(*) FILTER (WHERE flag),
       count(*) - count(score), sum(epoch_us(created_at))
FROM read_parquet(?)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--double", action="store_true", help="also refresh 2x rows (RSS flat?)")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the source tables")
    parser.add_argument("--skip-pandas", action="store_true", help="skip the naive pandas path")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "DATABASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        {"service": child_service, "pandas": child_pandas}[args.child[0]](args.child[1])
        return

    sizes = [args.rows, 2 * args.rows] if args.double else [args.rows]
    results: list[tuple[str, int, Run, int]] = []
    for rows in sizes:
        with scratch_database(f"rs_bench_orders_{rows}", keep=args.keep) as database:
            if not psql(database, "-tAc", "SELECT to_regclass('orders')").strip():
                print(f"creating orders with {rows:,} rows ...", file=sys.stderr)
                psql(database, "-v", f"rows={rows}", "-f", str(ROOT / "bench/orders.sql"))
            copy = ["psql", "-X", "-h", PG["host"], "-U", PG["user"], "-d", database]
            copy += ["-c", "COPY orders TO STDOUT (FORMAT binary)"]
            floor = min((timed_command(copy) for _ in range(2)), key=lambda run: run.seconds)
            results.append(("COPY binary to /dev/null (floor)", rows, floor, rows))
            service = run_child("-m", "bench.data_refresh", "--child", "service", database)
            report = json.loads(service.stdout)
            check(database, report["parquet"])
            seconds = report["duration_ms"] / 1000
            results.append(
                ("service: POST /refresh", rows, Run(seconds, service.peak_rss_mb, ""), rows)
            )
            if not args.skip_pandas and rows == args.rows:
                naive = run_child("-m", "bench.data_refresh", "--child", "pandas", database)
                pandas_seconds = json.loads(naive.stdout)["seconds"]
                results.append(
                    (
                        "naive pandas.read_sql + to_parquet",
                        rows,
                        Run(pandas_seconds, naive.peak_rss_mb, ""),
                        rows,
                    )
                )
    print_table(results)


def print_table(results: list[tuple[str, int, Run, int]]) -> None:
    floors = {rows: run for name, rows, run, _ in results if name.startswith("COPY")}
    print(f"{'path':38} {'rows':>11} {'seconds':>8} {'rows/s':>11} {'peak RSS':>9} {'vs floor':>9}")
    for name, rows, run, count in results:
        rate = count / run.seconds
        ratio = floors[rows].seconds / run.seconds
        print(
            f"{name:38} {rows:>11,} {run.seconds:>8.2f} {rate:>11,.0f} "
            f"{run.peak_rss_mb:>7.0f}MB {ratio:>8.2f}x"
        )


def check(database: str, parquet: str) -> None:
    """The copy must match the source's checksums exactly (orders.sql's last query)."""
    import duckdb
    import psycopg

    with psycopg.connect(**PG, dbname=database) as conn:
        expected = conn.execute(CHECKSUMS_PG).fetchone()
    actual = duckdb.connect().execute(CHECKSUMS_DUCKDB, [parquet]).fetchone()
    if tuple(expected) != tuple(actual):
        raise SystemExit(f"checksums differ:\n source  {expected}\n parquet {actual}")
    print(f"checksums match: {tuple(expected)}", file=sys.stderr)


def child_service(database: str) -> None:
    """The service's own code path, in a process of its own, embedded defaults in a temp dir."""
    from refresh.storage.filesystem import file_url_path

    client = service_client(Path(tempfile.mkdtemp(prefix="bench-refresh-")))
    config = {**PG, "database": database}
    response = client.post(
        "/connections", json={"name": "bench", "source_type": "postgres", "config": config}
    )
    assert response.status_code == 201, response.get_json()
    body = {"connection_id": "bench", "schema_name": "public", "table_name": "orders", "data": True}
    response = client.post("/refresh", json=body)
    assert response.status_code == 200, response.get_json()
    path = client.get("/connections/bench/tables/public/orders").get_json()["current_path"]
    parquet = f"{file_url_path(path)}/data.parquet"
    print(json.dumps({**response.get_json(), "parquet": parquet}))


def child_pandas(database: str) -> None:
    import time

    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(
        f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{database}"
    )
    started = time.perf_counter()
    frame = pd.read_sql("SELECT * FROM orders", engine)
    with tempfile.TemporaryDirectory() as work:
        frame.to_parquet(Path(work) / "orders.parquet")
    print(json.dumps({"seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
