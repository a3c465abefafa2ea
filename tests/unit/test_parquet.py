"""Parquet files as readers see them: row groups, dictionary choice, empty tables, roll-over to
a new file, the statistics manifests keep."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from refresh.common import parquet
from refresh.common.parquet import ROW_GROUP_ROWS, write_parquet_files

SCHEMA = pa.schema([("id", pa.int64()), ("status", pa.string()), ("note", pa.string())])


def batches(rows: int, size: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, rows, size):
        ids = list(range(start, min(start + size, rows)))
        yield pa.record_batch(
            [ids, [("new", "paid")[i % 2] for i in ids], [f"note {i}" for i in ids]],
            schema=SCHEMA,
        )


def test_row_groups_do_not_depend_on_the_drivers_batch_size(tmp_path: Path) -> None:
    rows = 3 * ROW_GROUP_ROWS + 5
    [written] = write_parquet_files(batches(rows, 1024), tmp_path, SCHEMA)
    assert written.name == "part-00000.parquet"
    meta = pq.ParquetFile(tmp_path / written.name).metadata
    assert written.rows == rows
    assert written.bytes == (tmp_path / written.name).stat().st_size
    assert meta.num_row_groups == 4
    assert {meta.row_group(i).num_rows for i in range(3)} == {ROW_GROUP_ROWS}
    assert meta.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(tmp_path / written.name)
    assert table.column("id").to_pylist() == list(range(rows))


def test_only_repeating_columns_are_dictionary_encoded(tmp_path: Path) -> None:
    [written] = write_parquet_files(batches(50_000, 10_000), tmp_path, SCHEMA)
    group = pq.ParquetFile(tmp_path / written.name).metadata.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(3)}
    assert "RLE_DICTIONARY" in encodings["status"]
    assert "RLE_DICTIONARY" not in encodings["note"]
    assert "RLE_DICTIONARY" not in encodings["id"]


def test_a_small_table_has_no_dictionaries(tmp_path: Path) -> None:
    rows = parquet.SMALL_TABLE_ROWS - 1
    [written] = write_parquet_files(batches(rows, 1024), tmp_path, SCHEMA)
    group = pq.ParquetFile(tmp_path / written.name).metadata.row_group(0)
    assert not any("RLE_DICTIONARY" in group.column(i).encodings for i in range(3))
    assert pq.read_table(tmp_path / written.name).column("status").to_pylist()[:2] == [
        "new",
        "paid",
    ]


def test_an_empty_stream_gives_a_readable_empty_file(tmp_path: Path) -> None:
    [written] = write_parquet_files(iter([]), tmp_path, SCHEMA)
    assert written.rows == 0
    table = pq.read_table(tmp_path / written.name)
    assert table.num_rows == 0
    assert table.schema == SCHEMA


def test_an_empty_stream_may_give_no_file(tmp_path: Path) -> None:
    assert write_parquet_files(iter([]), tmp_path, SCHEMA, at_least_one=False) == []
    assert list(tmp_path.iterdir()) == []


def test_files_roll_over_at_their_size_and_keep_their_statistics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parquet, "FILE_BYTES", 1)  # a new file after every row group
    rows = 2 * ROW_GROUP_ROWS + 7

    written = write_parquet_files(batches(rows, 4096), tmp_path, SCHEMA, 3, ["id", "status"])

    assert [f.name for f in written] == [f"part-0000{n}.parquet" for n in (3, 4, 5)]
    assert [f.rows for f in written] == [ROW_GROUP_ROWS, ROW_GROUP_ROWS, 7]
    assert written[1].stats == {
        "id": (ROW_GROUP_ROWS, 2 * ROW_GROUP_ROWS - 1),
        "status": ("new", "paid"),
    }
    table = pq.read_table(tmp_path)
    assert sorted(table.column("id").to_pylist()) == list(range(rows))
