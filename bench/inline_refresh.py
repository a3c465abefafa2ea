"""What a single-table refresh (mode 3) adds to its data: a small table, refreshed in the request.

    python -m bench.inline_refresh [--rows 15000] [--rounds 20] [--catalog sqlite|postgres] [--keep]

The reference ``orders`` table with ``--rows`` rows in PostgreSQL, and the API with the embedded
defaults in this process (a SQLite catalog, or a PostgreSQL one), the connection registered and
the table refreshed once. Then, interleaved ``--rounds`` times:

- ``POST /refresh`` for the table (mode 3), as a user's request runs it;
- the data alone: the service's own PostgreSQL source and Parquet writer, a fresh connection
  each time as a request opens one, describing and reading the table into a scratch directory.

Medians. The difference is what a refresh costs beyond its data: looking up the table, the
claim, the version directory, its manifest and fsyncs, the publish and queueing the old version.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import PG, ensure_orders, scratch_database, service_client

TABLE = ("public", "orders")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=15_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--catalog", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--keep", action="store_true", help="keep the source database")
    args = parser.parse_args()

    from refresh.api.context import EXTENSION, JOBS
    from refresh.common.parquet import write_parquet_files
    from refresh.sources import build_source

    with (
        scratch_database(f"rs_bench_inline_{args.rows}", keep=args.keep) as source,
        scratch_database("rs_bench_inline_catalog") as catalog,
        tempfile.TemporaryDirectory(prefix="bench-inline-") as work,
    ):
        ensure_orders(source, args.rows)
        catalog_url = (
            f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{catalog}"
            if args.catalog == "postgres"
            else None
        )
        client = service_client(Path(work), catalog_url=catalog_url)
        config = {**PG, "database": source}
        created = client.post(
            "/connections", json={"name": "bench", "source_type": "postgres", "config": config}
        )
        assert created.status_code == 201, created.get_json()
        request = {"connection_id": "bench", "schema_name": TABLE[0], "table_name": TABLE[1]}
        settings = client.application.extensions[EXTENSION].settings

        def refresh() -> float:
            started = time.perf_counter()
            response = client.post("/refresh", json={**request, "data": True})
            assert response.status_code == 200, response.get_json()
            assert response.get_json()["rows_synced"] == args.rows
            return time.perf_counter() - started

        def data_alone(number: int) -> float:
            directory = Path(work, f"alone-{number}")
            directory.mkdir()
            started = time.perf_counter()
            with build_source(
                "postgres",
                config,
                None,
                settings.source_connect_timeout_seconds,
                settings.source_read_streams,
            ) as source_now:
                [table] = source_now.discover(only=[TABLE])
                with source_now.read(table) as batches:
                    [written] = write_parquet_files(batches, directory, table.arrow_schema())
            seconds = time.perf_counter() - started
            assert written.rows == args.rows
            return seconds

        refresh()
        data_alone(-1)
        requests, alone = [], []
        for number in range(args.rounds):
            requests.append(refresh())
            alone.append(data_alone(number))
        client.application.extensions[JOBS].close()

    request_ms = statistics.median(requests) * 1000
    alone_ms = statistics.median(alone) * 1000
    print(
        f"orders, {args.rows:,} rows, {args.catalog} catalog, medians of {args.rounds} "
        f"(process {os.getpid()}):\n"
        f"POST /refresh (mode 3)   {request_ms:7.1f} ms\n"
        f"the data alone           {alone_ms:7.1f} ms\n"
        f"what the refresh adds    {request_ms - alone_ms:7.1f} ms"
    )


if __name__ == "__main__":
    main()
