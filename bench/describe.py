"""What describing tables for a read costs as the source grows, on PostgreSQL and MariaDB.

    python -m bench.describe [--tables 1000 10000] [--engines postgres mysql] [--rounds 20]

Every data refresh first describes its tables at the source (``Source.discover(only=...)``: the
live columns, so a read never misses an added column): one table for a refresh in the request
(mode 3), up to 16 at a time for a batch of a connection-wide refresh. This times those two
descriptions, and a full discovery (a schema refresh), on sources of ``--tables`` tables of ten
columns each (the benchmark databases of ``bench.schema_refresh``, created once and kept). A
description should cost what its tables cost, whatever the size of the rest of the source.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import pymysql

from bench.common import PG, psql, scratch_database
from bench.native_refresh import MYSQL
from bench.schema_refresh import COLUMN_TYPES, create_tables
from refresh.sources import build_source
from refresh.sources.base import Source

MYSQL_TYPES = ["int", "bigint", "text", "decimal(12,2)", "datetime(6)", "boolean", "double",
               "date", "varchar(40)", "json"]  # fmt: skip


def postgres_source(tables: int) -> Source:
    with scratch_database(f"rs_bench_schema_{tables}x10", keep=True) as database:
        count = psql(database, "-tAc", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        if count.strip() != str(tables):
            print(f"creating {tables:,} PostgreSQL tables ...", file=sys.stderr)
            create_tables(database, tables, len(COLUMN_TYPES))
    config = {**PG, "database": database, "schemas": ["public"]}
    return build_source("postgres", config, None, connect_timeout=10)


def mysql_source(tables: int) -> Source:
    database = f"rs_bench_describe_{tables}"
    definition = ", ".join(f"c{i} {kind}" for i, kind in enumerate(MYSQL_TYPES) if i)
    with pymysql.connect(**MYSQL, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        cur.execute(
            "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (database,)
        )
        [[count]] = cur.fetchall()
        if count != tables:
            print(f"creating {tables:,} MariaDB tables ...", file=sys.stderr)
            for number in range(1, tables + 1):
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {database}.t{number} "
                    f"(c0 int PRIMARY KEY, {definition})"
                )
    return build_source("mysql", {**MYSQL, "database": database}, None, connect_timeout=10)


def median_ms(call: Callable[[], object], rounds: int) -> float:
    call()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--engines", nargs="+", choices=["postgres", "mysql"],
                        default=["postgres", "mysql"])  # fmt: skip
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    makers = {"postgres": postgres_source, "mysql": mysql_source}
    print(f"{'source':28} {'1 table':>10} {'16 tables':>10} {'all tables':>11}")
    for engine in args.engines:
        for tables in args.tables:
            with makers[engine](tables) as source:
                one, sixteen, whole = timings(source, tables, args.rounds)
            label = f"{engine}, {tables:,} tables"
            print(f"{label:28} {one:>8.1f} ms {sixteen:>7.1f} ms {whole / 1000:>9.2f} s")


def timings(source: Source, tables: int, rounds: int) -> tuple[float, float, float]:
    """Describing one table, 16 tables spread over the source, and every table (ms)."""
    every = source.discover()
    assert len(every) == tables, len(every)
    names = [table.key for table in every[:: tables // 16]][:16]
    one = median_ms(lambda: source.discover(only=names[:1]), rounds)
    sixteen = median_ms(lambda: source.discover(only=names), rounds)
    return one, sixteen, median_ms(source.discover, max(1, rounds // 10))


if __name__ == "__main__":
    main()
