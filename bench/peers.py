"""The peers the data refresh is measured against, run in their own virtualenv (.venv-peers).

    .venv-peers/bin/python bench/peers.py PEER DATABASE TABLE|SCHEMA WORKDIR

Prints one JSON line: ``seconds`` and ``cpu_seconds`` (user + sys of this process) of the copy
alone, and ``parquet``, a glob of the files written. Imports nothing of the service: the peers'
libraries (DuckDB 1.4.4 with duckdb-ext-postgres, dlt with connectorx, pandas for the naive
baseline) are not the service's, and live only in .venv-peers (``bench/requirements-peers.txt``);
bench/README.md says what each recipe does.
"""

from __future__ import annotations

import glob
import json
import os
import site
import sys
import time
from collections.abc import Callable
from typing import Any

PG = "host=127.0.0.1 port=5432 user=postgres"
PG_URL = "postgresql://postgres@127.0.0.1:5432"


def duckdb_copy(database: str, table: str, work: str) -> str:
    """DuckDB's postgres scanner: one COPY statement to zstd Parquet."""
    con = _duckdb_attached(database)
    out = f"{work}/duckdb.parquet"
    con.execute(
        f"COPY (SELECT * FROM pg.public.{table}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)"
    )
    return out


def duckdb_database_copy(database: str, schema: str, work: str) -> str:
    """One DuckDB process, ATTACH once, then one COPY per table of ``schema``: the peer of a
    connection-wide refresh (bench/README.md). Timed as a whole process."""
    con = _duckdb_attached(database)
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = 'pg' AND schema_name = ? "
        "ORDER BY table_name",
        [schema],
    ).fetchall()
    for (table,) in tables:
        con.execute(
            f"COPY (SELECT * FROM pg.{schema}.{table}) TO '{work}/{table}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    return f"{work}/*.parquet"


def _duckdb_attached(database: str) -> Any:
    """A DuckDB connection with the postgres extension loaded by path, ``database`` as ``pg``."""
    import duckdb

    extension = glob.glob(
        site.getsitepackages()[0] + "/duckdb_ext/extensions/*/*/postgres_scanner.duckdb_extension"
    )[0]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{PG} dbname={database}' AS pg (TYPE postgres, READ_ONLY)")
    return con


def dlt_copy(database: str, table: str, work: str) -> str:
    """dlt's sql_table with the connectorx backend, Arrow stream in chunks of 100k rows."""
    import dlt
    from dlt.sources.sql_database import sql_table

    one = sql_table(
        credentials=f"{PG_URL}/{database}",
        table=table,
        backend="connectorx",
        chunk_size=100_000,
        backend_kwargs={"return_type": "arrow_stream", "batch_size": 100_000},
    )
    _dlt_to_parquet(dlt, one, work)
    return f"{work}/dlt/d/{table}/*.parquet"


def dlt_database_copy(database: str, schema: str, work: str) -> str:
    """dlt's sql_database source (pyarrow backend): every table of ``schema``, for mode 4.

    dlt's default round-robin extraction opens every table's cursor at once, which exceeds
    PostgreSQL's 100 connections at 200 tables; FIFO extraction reads them one after the other.
    """
    os.environ["EXTRACT__NEXT_ITEM_MODE"] = "fifo"
    import dlt
    from dlt.sources.sql_database import sql_database

    source = sql_database(credentials=f"{PG_URL}/{database}", schema=schema, backend="pyarrow")
    _dlt_to_parquet(dlt, source, work)
    return f"{work}/dlt/d/*/*.parquet"


def _dlt_to_parquet(dlt: Any, source: object, work: str) -> None:
    """Run a dlt pipeline of ``source`` into Parquet files under ``work/dlt/d/<table>/``."""
    pipeline = dlt.pipeline(
        pipeline_name="bench",
        pipelines_dir=f"{work}/pipelines",
        destination=dlt.destinations.filesystem(bucket_url=f"file://{work}/dlt"),
        dataset_name="d",
    )
    pipeline.run(source, loader_file_format="parquet")


def pandas_copy(database: str, table: str, work: str) -> str:
    """The naive baseline: ``pandas.read_sql`` of the whole table, then ``DataFrame.to_parquet``."""
    import pandas as pd
    from sqlalchemy import create_engine

    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}")
    out = f"{work}/{table}.parquet"
    pd.read_sql(f"SELECT * FROM {table}", engine).to_parquet(out)
    return out


PEERS: dict[str, Callable[[str, str, str], str]] = {
    "duckdb": duckdb_copy,
    "duckdb-database": duckdb_database_copy,
    "dlt": dlt_copy,
    "dlt-database": dlt_database_copy,
    "pandas": pandas_copy,
}


def main() -> None:
    peer, database, table, work = sys.argv[1:5]
    cpu_before, started = sum(os.times()[:2]), time.perf_counter()
    try:
        parquet = PEERS[peer](database, table, work)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # connectorx panics (BaseException) on types it lacks
        # Reported beside the others: a peer that cannot copy the table.
        print(json.dumps({"error": f"{type(error).__name__}: {error}".splitlines()[0][:200]}))
        return
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - started,
                "cpu_seconds": sum(os.times()[:2]) - cpu_before,
                "parquet": parquet,
            }
        )
    )


if __name__ == "__main__":
    main()
