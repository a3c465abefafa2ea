"""Writing a stream of Arrow batches into one Parquet file with bounded memory."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Readers skip and parallelise by row group: groups of a few hundred thousand rows keep the
# statistics useful and the per-group overhead negligible. The byte cap keeps a wide table's
# buffered group far below the worker's memory budget.
ROW_GROUP_ROWS = 262_144
ROW_GROUP_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class WrittenFile:
    rows: int
    bytes: int


def write_parquet(batches: Iterable[pa.RecordBatch], path: Path, schema: pa.Schema) -> WrittenFile:
    """Write every batch to ``path`` as zstd Parquet; an empty stream gives a valid empty file.

    Sources yield batches of their own size; they are gathered into row groups of about
    ``ROW_GROUP_ROWS`` so the file layout does not depend on the driver's batching.
    """
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:

        def flush() -> None:
            writer.write_table(pa.Table.from_batches(pending, schema), row_group_size=pending_rows)
            pending.clear()

        for batch in batches:
            pending.append(batch)
            pending_rows += batch.num_rows
            pending_bytes += batch.nbytes
            rows += batch.num_rows
            if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                flush()
                pending_rows = pending_bytes = 0
        if pending:
            flush()
    return WrittenFile(rows=rows, bytes=path.stat().st_size)
