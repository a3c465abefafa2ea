"""Writing a stream of Arrow batches into one Parquet file with bounded memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Readers skip and parallelise by row group: groups of a few hundred thousand rows keep the
# statistics useful and the per-group overhead negligible. The byte cap keeps a wide table's
# buffered group far below the worker's memory budget: the group waits in the drivers' buffers
# and is encoded whole, so its size is what a wide table's refresh peaks at (the cap was halved
# when the wide reference table went over 400 MB: bench/README.md, "Figures behind the code").
ROW_GROUP_ROWS = 131_072
ROW_GROUP_BYTES = 32 * 1024 * 1024
# A column is dictionary encoded when its first row group has at most rows / 4 distinct values.
DICTIONARY_MAX_DISTINCT_SHARE = 4
# Counting distinct values of a whole group costs as much as encoding it for wide tables of
# unique values (uuids, json, long text); the first rows show most such columns at a glance.
DICTIONARY_PROBE_ROWS = 8_192
DICTIONARY_PROBE_MAX_DISTINCT = 3 * DICTIONARY_PROBE_ROWS // 4


@dataclass(frozen=True)
class WrittenFile:
    rows: int
    bytes: int


def write_parquet(batches: Iterable[pa.RecordBatch], path: Path, schema: pa.Schema) -> WrittenFile:
    """Write every batch to ``path`` as zstd Parquet; an empty stream gives a valid empty file.

    Sources yield batches of their own size; they are gathered into row groups of about
    ``ROW_GROUP_ROWS`` so the file layout does not depend on the driver's batching. The writer
    opens at the first row group, whose values choose the columns worth dictionary encoding.
    """
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            pending_bytes += batch.nbytes
            rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                group = pa.Table.from_batches(pending, schema)
                writer = writer or _open(path, schema, group)
                writer.write_table(group, row_group_size=pending_rows)
                pending.clear()
                pending_rows = pending_bytes = 0
        group = pa.Table.from_batches(pending, schema)
        writer = writer or _open(path, schema, group)
        if pending:
            writer.write_table(group, row_group_size=pending_rows)
    finally:
        if writer is not None:
            writer.close()
    return WrittenFile(rows=rows, bytes=path.stat().st_size)


def _open(path: Path, schema: pa.Schema, sample: pa.Table) -> pq.ParquetWriter:
    # A file of one small group (a small table, most of a connection's) is written with the
    # writer's own choice: there, choosing costs more than it saves.
    dictionary = sample.num_rows <= DICTIONARY_PROBE_ROWS or _dictionary_columns(sample)
    return pq.ParquetWriter(path, schema, compression="zstd", use_dictionary=dictionary)


def _dictionary_columns(sample: pa.Table) -> list[str]:
    """Columns with few distinct values in ``sample``.

    Parquet writers try a dictionary for every column and give up on high-cardinality ones only
    after paying for it: limiting it to the columns that repeat makes writing faster and the file
    smaller. A column whose first rows are nearly all distinct is ruled out on those rows alone,
    which makes the choice cheap on wide tables of unique values (bench/README.md, "Figures
    behind the code").
    """
    limit = max(1, sample.num_rows // DICTIONARY_MAX_DISTINCT_SHARE)
    return [
        name
        for name, column in zip(sample.column_names, sample.columns, strict=True)
        if not pa.types.is_boolean(column.type)
        and pc.count_distinct(column.slice(0, DICTIONARY_PROBE_ROWS)).as_py()
        <= DICTIONARY_PROBE_MAX_DISTINCT
        and pc.count_distinct(column).as_py() <= limit
    ]
