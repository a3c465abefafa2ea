"""Schema refresh of a PostgreSQL database with many tables, beside table-by-table reflection.

    python -m bench.schema_refresh [--tables 10000] [--columns 10] [--keep] [--catalog URL]

Measured in the same run, on the same database:

- the service: ``POST /refresh {"connection_id"}`` through the API, first when every table is
  new to the catalog, then again when nothing changed (the steady state of a cron job);
- the per-table way: SQLAlchemy's inspector, ``get_columns`` once per table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect

from bench.common import PG, psql, scratch_database, service_client

COLUMN_TYPES = [
    "int",
    "bigint",
    "text",
    "numeric(12,2)",
    "timestamptz",
    "boolean",
    "double precision",
    "date",
    "varchar(40)",
    "jsonb",
]


def create_tables(database: str, tables: int, columns: int) -> None:
    """In chunks: one transaction creating thousands of tables runs out of lock slots."""
    definition = ", ".join(f"c{i} {COLUMN_TYPES[i % len(COLUMN_TYPES)]}" for i in range(columns))
    chunks = [
        f"DO $$ BEGIN FOR i IN {start}..{min(start + 499, tables)} LOOP "
        f"EXECUTE format('CREATE TABLE t%s ({definition})', i); END LOOP; END $$"
        for start in range(1, tables + 1, 500)
    ]
    psql(database, *(arg for chunk in chunks for arg in ("-c", chunk)))


def time_service(database: str, catalog_url: str | None) -> tuple[float, float, dict]:
    with tempfile.TemporaryDirectory(prefix="bench-schema-") as work:
        client = service_client(Path(work), catalog_url)
        config = {**PG, "database": database}
        body = {"name": "many", "source_type": "postgres", "config": config, "skip_discovery": True}
        assert client.post("/connections", json=body).status_code == 201
        timings = []
        for _ in range(2):
            started = time.perf_counter()
            response = client.post("/refresh", json={"connection_id": "many"})
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.get_json()
        client.delete("/connections/many")
        return timings[0], timings[1], response.get_json()


def time_inspector(database: str) -> tuple[float, int]:
    engine = create_engine(
        f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{database}"
    )
    started = time.perf_counter()
    inspector = inspect(engine)
    columns = sum(len(inspector.get_columns(name)) for name in inspector.get_table_names())
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds, columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", type=int, default=10_000)
    parser.add_argument("--columns", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the database")
    parser.add_argument("--catalog", help="catalog DATABASE_URL (default: a fresh SQLite file)")
    args = parser.parse_args()

    name = f"rs_bench_schema_{args.tables}x{args.columns}"
    with scratch_database(name, keep=args.keep) as database:
        existing = psql(
            database, "-tAc", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        )
        if existing.strip() != str(args.tables):
            print(f"creating {args.tables:,} tables ...", file=sys.stderr)
            create_tables(database, args.tables, args.columns)
        first, again, body = time_service(database, args.catalog)
        per_table, columns = time_inspector(database)

    print(f"{args.tables:,} tables, {columns:,} columns; catalog: {args.catalog or 'SQLite'}")
    print(f"{'path':52} {'seconds':>8} {'vs inspector':>13}")
    rows = [
        (f"service: POST /refresh, first ({body['tables_discovered']:,} tables)", first),
        ("service: POST /refresh, again (no changes)", again),
        ("SQLAlchemy inspector, get_columns per table", per_table),
    ]
    for label, seconds in rows:
        print(f"{label:52} {seconds:>8.2f} {per_table / seconds:>12.1f}x")


if __name__ == "__main__":
    main()
