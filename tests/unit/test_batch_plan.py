"""How a connection-wide refresh splits its tables into batch jobs."""

from __future__ import annotations

from dataclasses import replace

from refresh.connection_refresh import (
    MIN_BATCH_BYTES,
    PARQUET_BYTES_PER_SOURCE_BYTE,
    TABLE_OVERHEAD_BYTES,
    UNKNOWN_TABLE_BYTES,
    TableToRefresh,
    plan_batches,
)

MB = 1024 * 1024


def tables(*sizes: int | None) -> list[TableToRefresh]:
    return [TableToRefresh("public", f"t{n:03d}", size) for n, size in enumerate(sizes)]


def names(batches: list[list[TableToRefresh]]) -> list[list[str]]:
    return [[t.table_name for t in batch] for batch in batches]


def test_many_small_tables_share_one_batch() -> None:
    batches = plan_batches(tables(*[40_000] * 1000), slots=2)
    assert len(batches) == 2  # 1000 x (40 kB + overhead): about 100 MB, two of the minimum size
    assert sorted(len(b) for b in batches) == [500, 500]


def test_a_tiny_connection_is_one_batch() -> None:
    assert names(plan_batches(tables(10, 20, None), slots=4)) == [["t000", "t001", "t002"]]


def test_a_big_table_gets_a_batch_of_its_own() -> None:
    batches = plan_batches(tables(5 * 1024 * MB, *[1 * MB] * 200), slots=2)
    big = [b for b in batches if any(t.table_name == "t000" for t in b)]
    assert names(big) == [["t000"]]
    assert sum(len(b) for b in batches) == 201


def test_batches_balance_their_cost_and_keep_the_catalog_order() -> None:
    sizes = [(n % 7 + 1) * 10 * MB for n in range(100)]
    batches = plan_batches(tables(*sizes), slots=4)
    assert len(batches) == 8  # at least two per slot: slots finishing early take the rest
    costs = [sum(t.cost for t in batch) for batch in batches]
    assert max(costs) - min(costs) <= 70 * MB  # within the biggest table
    for batch in batches:
        assert [t.table_name for t in batch] == sorted(t.table_name for t in batch)
    assert sorted(t.table_name for b in batches for t in b) == [f"t{n:03d}" for n in range(100)]


def test_a_batch_is_never_smaller_than_the_minimum_unless_the_tables_are() -> None:
    batches = plan_batches(tables(*[MB] * 100), slots=8)
    total = sum(t.cost for t in tables(*[MB] * 100))
    assert total < 2 * MIN_BATCH_BYTES
    assert len(batches) == 2


def test_tables_never_cached_count_as_a_standard_size() -> None:
    (only,) = tables(None)
    assert only.cost == TABLE_OVERHEAD_BYTES + UNKNOWN_TABLE_BYTES
    assert plan_batches([], slots=2) == []


def test_tables_never_cached_count_as_the_source_says_and_a_version_outweighs_it() -> None:
    # 1,000 small uncached tables: two batches of the minimum size (four at the standard size)
    small = [replace(t, source_bytes=160 * 1024) for t in tables(*[None] * 1000)]
    assert len(plan_batches(small, slots=2)) == 2

    # an uncached table the source calls big gets a batch of its own
    big = replace(tables(None)[0], table_name="big", source_bytes=10 * 1024 * MB)
    batches = plan_batches([big, *small], slots=2)
    assert [b for b in batches if big in b] == [[big]]

    cached = replace(tables(MB)[0], source_bytes=10 * 1024 * MB)
    assert cached.cost == TABLE_OVERHEAD_BYTES + MB
    assert (
        replace(tables(None)[0], source_bytes=100 * MB).cost
        == TABLE_OVERHEAD_BYTES + 100 * MB * PARQUET_BYTES_PER_SOURCE_BYTE
    )
