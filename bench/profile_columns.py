"""Where the CPU of a PostgreSQL refresh goes, column by column, on the reference tables.

    python -m bench.profile_columns [--rows 1000000] [--wide-rows 1000000] [--db-prefix rs_bench]

For each column of ``orders`` and ``wide`` alone, as the service reads it (``_select_item``: text
for string-mapped types and numerics):

- server: the PostgreSQL backend producing ``COPY (SELECT col) TO STDOUT (FORMAT binary)`` into
  psql and /dev/null (wall time; psql itself is negligible), and the same for the column as
  stored (``native``): the difference is the server's cost of the ``::text`` conversion;
- decode: CPU of ADBC turning the COPY stream into Arrow; cast: CPU of ``cast_batch`` (exact
  types, range checks); encode: CPU of Parquet encoding + zstd with the writer's settings.

One column alone pays the per-row costs (libpq's message per row, the COPY framing) that all
columns share in a real refresh, so the columns do not add up to the whole table: the first
line, the table read whole, is the reference.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq
from adbc_driver_manager import AdbcConnection

from bench.common import PG, psql
from bench.data_refresh import reference_table
from refresh.common.parquet import ROW_GROUP_ROWS, _dictionary_columns
from refresh.sources import build_source
from refresh.sources.base import DiscoveredTable
from refresh.sources.convert import cast_batch
from refresh.sources.postgres import _quote, _select_item, adbc_connect, adbc_query

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of orders")
    parser.add_argument("--wide-rows", type=int, default=1_000_000, help="rows of wide")
    parser.add_argument("--db-prefix", default="rs_bench")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    for name, rows in (("orders", args.rows), ("wide", args.wide_rows)):
        with reference_table(name, rows, args) as database:
            profile(database, name, rows)


def profile(database: str, name: str, rows: int) -> None:
    source = build_source("postgres", {**PG, "database": database}, None, 10)
    [table] = source.discover(only=[("public", name)])
    print(f"\n{name}: {rows:,} rows; seconds (server: wall of the backend, others: CPU)")
    print(f"{'column':14} {'type':28} {'server':>7} {'native':>7} {'decode':>7} "
          f"{'cast':>6} {'encode':>7} {'MB':>5}")  # fmt: skip
    with adbc_connect(source._adbc_uri(), autocommit=True) as connection:
        whole = ", ".join(_select_item(column) for column in table.columns)
        native = ", ".join(_quote(column.name) for column in table.columns)
        line(connection, database, name, table, whole, native, "(whole table)", "")
        for column in table.columns:
            one = DiscoveredTable(table.schema_name, table.table_name, (column,))
            line(connection, database, name, one, _select_item(column), _quote(column.name),
                 column.name, column.native_type)  # fmt: skip


def line(
    connection: AdbcConnection,
    database: str,
    name: str,
    table: DiscoveredTable,
    select: str,
    native: str,
    label: str,
    native_type: str,
) -> None:
    server = copy_seconds(database, f"SELECT {select} FROM {_quote(name)}")
    stored = copy_seconds(database, f"SELECT {native} FROM {_quote(name)}")
    schema = table.arrow_schema()
    decode, batches = cpu(lambda: read(connection, f"SELECT {select} FROM {_quote(name)}"))
    cast, batches = cpu(lambda: [cast_batch(batch, schema) for batch in batches])
    data = pa.Table.from_batches(batches, schema)
    encode, _ = cpu(lambda: encode_parquet(data))
    print(f"{label:14} {native_type[:28]:28} {server:7.2f} {stored:7.2f} {decode:7.2f} "
          f"{cast:6.2f} {encode:7.2f} {data.nbytes / 1e6:5.0f}")  # fmt: skip


def read(connection: AdbcConnection, select: str) -> list[pa.RecordBatch]:
    with adbc_query(connection, select) as reader:
        return list(reader)


def encode_parquet(data: pa.Table) -> None:
    """The writer's settings (refresh.common.parquet), into memory."""
    sample = data.slice(0, ROW_GROUP_ROWS)
    with pq.ParquetWriter(
        io.BytesIO(), data.schema, compression="zstd", use_dictionary=_dictionary_columns(sample)
    ) as writer:
        writer.write_table(data, row_group_size=ROW_GROUP_ROWS)


def cpu(work: Callable[[], T]) -> tuple[float, T]:
    before = sum(os.times()[:2])
    result = work()
    return sum(os.times()[:2]) - before, result


def copy_seconds(database: str, select: str) -> float:
    """Best of two: the server producing the COPY stream, psql discarding it."""
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        copy = f"COPY ({select}) TO STDOUT (FORMAT binary)"
        psql(database, "-c", copy, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


if __name__ == "__main__":
    main()
