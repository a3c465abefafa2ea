"""Where a batch of a connection-wide refresh spends its time: one batch, in this process.

    python -m bench.profile_batch [--tables 500] [--rows 1000] [--threads 2] [--rounds 3]
                                  [--source postgres|mysql|duckdb|sqlite] [--batch N]
                                  [--cache-url s3://bucket/prefix]
    py-spy record --native -o batch.txt --format raw -- .venv/bin/python -m bench.profile_batch

Builds (or reuses) a source of ``--tables`` tables of ``--rows`` rows: a PostgreSQL database of
copies of the reference ``orders`` table, or a MariaDB database, a DuckDB or a SQLite file (kept
in the temporary directory) of tables with the same columns and generated rows. Registers it with
a PostgreSQL catalog and a filesystem cache, caches every table once, then refreshes them all
(or the first ``--batch`` of them: a batch of a large source) as ONE batch, ``--rounds`` times,
exactly as a work horse does (``refresh.data_refresh.refresh_tables``, outcomes recorded in a
Redis of its own); ``--cache-url`` puts the cache on S3 (``S3_ENDPOINT_URL`` and the ``AWS_*``
variables as the service reads them) instead of a temporary directory. Prints the wall and CPU
time per table; under py-spy (every thread, native frames) it shows where they go. The profiles
in bench/README.md come from it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.common import PG, private_redis, scratch_database, service_client
from bench.connection_refresh import fill
from bench.native_refresh import MYSQL, fill_mysql


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, help="refresh only this many of the tables")
    parser.add_argument("--cache-url", help="CACHE_URL (default: a temporary directory)")
    parser.add_argument(
        "--source", choices=["postgres", "mysql", "duckdb", "sqlite"], default="postgres"
    )
    args = parser.parse_args()

    from refresh.api.context import EXTENSION, JOBS
    from refresh.data_refresh import refresh_tables
    from workers import progress
    from workers.queues import connect

    config, settings = source_config(args.source, args.tables, args.rows)
    with (
        scratch_database("rs_bench_profile_catalog") as catalog,
        tempfile.TemporaryDirectory(prefix="bench-profile-") as work,
        private_redis() as redis_url,
    ):
        catalog_url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{catalog}"
        client = service_client(
            Path(work), catalog_url=catalog_url, cache_url=args.cache_url, **settings
        )
        created = client.post(
            "/connections", json={"name": "bench", "source_type": args.source, "config": config}
        )
        assert created.status_code == 201, created.get_json()
        rt = client.application.extensions[EXTENSION]
        tables = [(t["schema_name"], t["table_name"]) for t in _tables(client)][: args.batch]
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


def source_config(kind: str, tables: int, rows: int) -> tuple[dict[str, object], dict[str, str]]:
    """The benchmark source's connection config, and the settings the service needs for it."""
    if kind == "postgres":
        with scratch_database(f"rs_bench_profile_{tables}x{rows}", keep=True) as database:
            fill(database, tables, rows)
        return {**PG, "database": database, "schemas": ["public"]}, {}
    if kind == "mysql":
        return {**MYSQL, "database": fill_mysql(tables, rows)}, {}
    path = file_source(kind, tables, rows)
    return {"path": str(path)}, {"FILE_SOURCES_DIR": str(path.parent)}


def file_source(kind: str, tables: int, rows: int) -> Path:
    """A DuckDB or SQLite file of ``tables`` tables with the columns of ``orders`` and ``rows``
    generated rows each, made once and kept."""
    path = Path(tempfile.gettempdir()) / "rs_bench_profile" / f"{tables}x{rows}.{kind}"
    if path.exists():
        return path
    print(f"creating {tables} {kind} tables of {rows:,} rows in {path} ...", file=sys.stderr)
    path.parent.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    if kind == "duckdb":
        _fill_duckdb(partial, tables, rows)
    else:
        _fill_sqlite(partial, tables, rows)
    partial.rename(path)
    return path


def _fill_duckdb(path: Path, tables: int, rows: int) -> None:
    import duckdb

    with duckdb.connect(str(path)) as con:
        con.execute(
            "CREATE TABLE template AS SELECT i::BIGINT AS id, (i % 100000)::INTEGER AS customer_id,"
            " TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_seconds(i) AS created_at,"
            " ((i % 100000) / 100)::DECIMAL(12, 2) AS amount, 'status-' || (i % 5) AS status,"
            " CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END AS note,"
            " i % 2 = 0 AS paid, i / 7.0 AS weight"
            f" FROM range({rows}) r(i)"
        )
        for number in range(tables):
            con.execute(f"CREATE TABLE t{number:04d} AS FROM template")
        con.execute("DROP TABLE template")


def _fill_sqlite(path: Path, tables: int, rows: int) -> None:
    import sqlite3

    columns = (
        "id INTEGER PRIMARY KEY, customer_id INTEGER, created_at TIMESTAMP, amount DECIMAL(12, 2),"
        " status TEXT, note TEXT, paid BOOLEAN, weight REAL"
    )
    with sqlite3.connect(path) as con:
        con.execute(f"CREATE TEMP TABLE template ({columns})")
        con.execute(
            "INSERT INTO template WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r"
            f" WHERE i < {rows - 1}) SELECT i, i % 100000, datetime(1767225600 + i, 'unixepoch'),"
            " printf('%.2f', (i % 100000) / 100.0), 'status-' || (i % 5),"
            " CASE WHEN i % 3 = 0 THEN NULL ELSE 'note ' || i END, i % 2 = 0, i / 7.0 FROM r"
        )
        for number in range(tables):
            con.execute(f"CREATE TABLE t{number:04d} ({columns})")
            con.execute(f"INSERT INTO t{number:04d} SELECT * FROM template")
    con.close()


def _tables(client: object) -> list[dict]:
    return client.get("/connections/bench/tables").get_json()["tables"]  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
