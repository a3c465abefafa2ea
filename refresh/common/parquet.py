"""Writing a stream of Arrow batches into Parquet files with bounded memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from refresh.storage.manifest import part_name

# Readers skip and parallelise by row group: groups of a few hundred thousand rows keep the
# statistics useful and the per-group overhead negligible. The byte cap keeps a wide table's
# buffered group far below the worker's memory budget: the group waits in the drivers' buffers
# and is encoded whole, so its size is what a wide table's refresh peaks at (the cap was halved
# when the wide reference table went over 400 MB: bench/README.md, "Figures behind the code").
ROW_GROUP_ROWS = 131_072
ROW_GROUP_BYTES = 32 * 1024 * 1024
# A version's files roll over at about this size (encoded), checked after each row group: big
# enough that a reader opens few files, small enough that an incremental refresh that must
# rewrite a file rewrites little (bench/README.md, "Figures behind the code").
FILE_BYTES = 64 * 1024 * 1024
# A table smaller than this, written as one row group, has no dictionaries: choosing them costs
# more than they save, and its file is smaller without (bench/README.md, "Figures behind the
# code": 1,000 and 10,000 rows of orders).
SMALL_TABLE_ROWS = 16_384
# A column is dictionary encoded when its first row group has at most rows / 4 distinct values.
DICTIONARY_MAX_DISTINCT_SHARE = 4
# Counting distinct values of a whole group costs as much as encoding it for wide tables of
# unique values (uuids, json, long text); the first rows show most such columns at a glance.
DICTIONARY_PROBE_ROWS = 8_192
DICTIONARY_PROBE_MAX_DISTINCT = 3 * DICTIONARY_PROBE_ROWS // 4


@dataclass(frozen=True)
class WrittenFile:
    name: str
    rows: int
    bytes: int
    # [min, max] of each column asked for (None, None when it holds no value).
    stats: dict[str, tuple[object, object]] = field(default_factory=dict)


def write_parquet_files(
    batches: Iterable[pa.RecordBatch],
    directory: Path,
    schema: pa.Schema,
    first_number: int = 0,
    stats_columns: Sequence[str] = (),
    at_least_one: bool = True,
) -> list[WrittenFile]:
    """Write every batch as zstd Parquet files ``part_name(first_number)``, ... in ``directory``,
    a new file every ``FILE_BYTES`` or so; an empty stream gives one valid empty file when
    ``at_least_one``, else none.

    Sources yield batches of their own size; they are gathered into row groups of about
    ``ROW_GROUP_ROWS`` so the file layout does not depend on the driver's batching. A writer
    opens at its first row group, whose values choose the columns worth dictionary encoding.
    """
    files: list[WrittenFile] = []
    current: _File | None = None
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = 0

    def write_group(last: bool = False) -> None:
        nonlocal current, pending_rows, pending_bytes
        group = pa.Table.from_batches(pending, schema)
        if current is None:
            name = part_name(first_number + len(files))
            whole = last and not files  # the whole stream is this group
            dictionary = not (whole and group.num_rows < SMALL_TABLE_ROWS)
            current = _File(directory / name, schema, group, stats_columns, dictionary)
        current.write(group)
        pending.clear()
        pending_rows = pending_bytes = 0
        if current.size() >= FILE_BYTES:
            files.append(current.close())
            current = None

    try:
        for batch in batches:
            if not batch.num_rows:
                continue
            pending.append(batch)
            pending_rows += batch.num_rows
            pending_bytes += batch.nbytes
            if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                write_group()
        if pending or (current is None and not files and at_least_one):
            write_group(last=True)
        if current is not None:
            files.append(current.close())
            current = None
    finally:
        if current is not None:
            current.abandon()
    return files


class _File:
    """One Parquet file being written, and the statistics of the columns asked for."""

    def __init__(
        self,
        path: Path,
        schema: pa.Schema,
        sample: pa.Table,
        stats_columns: Sequence[str],
        dictionary: bool,
    ) -> None:
        self.path = path
        self.sink = pa.OSFile(str(path), "wb")
        self.writer = _open(self.sink, schema, sample if dictionary else None)
        self.rows = 0
        self.stats: dict[str, tuple[object, object]] = dict.fromkeys(stats_columns, (None, None))

    def write(self, group: pa.Table) -> None:
        if group.num_rows:
            self.writer.write_table(group, row_group_size=group.num_rows)
        self.rows += group.num_rows
        for name, (low, high) in self.stats.items():
            bounds = pc.min_max(group.column(name))
            self.stats[name] = (
                _extreme(min, low, bounds["min"].as_py()),
                _extreme(max, high, bounds["max"].as_py()),
            )

    def size(self) -> int:
        return self.sink.tell()

    def close(self) -> WrittenFile:
        self.writer.close()
        self.sink.close()
        return WrittenFile(self.path.name, self.rows, self.path.stat().st_size, self.stats)

    def abandon(self) -> None:
        self.writer.close()
        self.sink.close()


def _extreme(pick: Callable[[object, object], object], a: object, b: object) -> object:
    if a is None:
        return b
    if b is None:
        return a
    return pick(a, b)


def _open(sink: pa.NativeFile, schema: pa.Schema, sample: pa.Table | None) -> pq.ParquetWriter:
    """A zstd writer, with dictionaries for the columns that repeat in ``sample`` (None: none)."""
    dictionary = False if sample is None else _dictionary_columns(sample)
    return pq.ParquetWriter(sink, schema, compression="zstd", use_dictionary=dictionary)


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
