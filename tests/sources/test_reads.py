"""Read behaviour every source shares, run once per source: quoting, streaming, incremental
reads, interrupting."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime

import pytest

from refresh.sources.base import BATCH_ROWS, Since, SourceError
from tests.support.source_kinds import KINDS, SourceKind, wait_until_reading
from tests.support.sources import WEIRD_NAMES, by_key, read_batches, read_rows

each_source = pytest.mark.parametrize("kind", KINDS, indirect=True)
# The sources whose interrupt stops a read blocked inside the driver (ADBC's SQLite driver has
# no cancel: it stops at batch boundaries, tested in test_sqlite.py).
cancellable = pytest.mark.parametrize(
    "kind", ["postgres", "mysql", "duckdb", "sqlalchemy"], indirect=True
)

INTERRUPT_SECONDS = 5


@each_source
def test_hostile_identifiers_are_quoted_everywhere(kind: SourceKind) -> None:
    q, table_name = kind.quote, 'x"; DROP TABLE y; --'
    kind.execute(
        f"CREATE TABLE {q('y')} (i INTEGER)",
        f"CREATE TABLE {q(table_name)} ({', '.join(f'{q(n)} TEXT' for n in WEIRD_NAMES)})",
        rows=(
            f"INSERT INTO {q(table_name)} VALUES ({', '.join('?' * len(WEIRD_NAMES))})",
            [tuple(WEIRD_NAMES)],
        ),
    )
    src = kind.source()

    [table] = src.discover(only=[(kind.schema, table_name)])

    assert [c.name for c in table.columns] == WEIRD_NAMES
    assert read_rows(src, table) == [dict(zip(WEIRD_NAMES, WEIRD_NAMES, strict=True))]
    assert (kind.schema, "y") in by_key(src.discover())


@each_source
def test_large_table_is_streamed_in_batches_of_bounded_size(kind: SourceKind) -> None:
    kind.integers("big", 200_000)
    src = kind.source()
    [table] = src.discover()

    batches = read_batches(src, table)

    assert len(batches) > 1
    assert max(b.num_rows for b in batches) <= BATCH_ROWS
    assert sum(b.num_rows for b in batches) == 200_000
    ids = [i for b in batches for i in b.column(0).to_pylist()]
    assert sorted(ids) == list(range(1, 200_001))


@each_source
@pytest.mark.parametrize(
    ("column", "bound", "ids"),
    [
        ("id", 3, [3, 4, 5, 6]),
        ("stamp", datetime(2026, 12, 5, 10, 3), [3, 4, 5]),  # NULL is never at or past a bound
        ("day", date(2026, 12, 3), [3, 4, 5]),
    ],
)
def test_an_incremental_read_sends_the_rows_from_its_bound(
    kind: SourceKind, column: str, bound: object, ids: list[int]
) -> None:
    q = kind.quote
    kind.execute(
        f"CREATE TABLE {q('t')} (id INTEGER, stamp {kind.timestamp_type}, day DATE)",
        rows=(
            f"INSERT INTO {q('t')} VALUES (?, ?, ?)",
            [(n, datetime(2026, 12, 5, 10, n), date(2026, 12, n)) for n in range(1, 6)]
            + [(6, None, None)],
        ),
    )
    with kind.source() as src:  # closed: its kept connections end with the test
        [table] = src.discover(only=[(kind.schema, "t")])
        rows = read_rows(src, table, Since(column, bound))  # type: ignore[arg-type]

    # Exactly these here (a source may send more: the refresh filters again), ties included.
    assert sorted(row["id"] for row in rows) == ids


@each_source
def test_empty_table_reads_as_no_rows(kind: SourceKind) -> None:
    kind.execute(f"CREATE TABLE {kind.quote('empty')} (id INTEGER, t TEXT)")
    src = kind.source()
    [table] = src.discover()

    assert read_rows(src, table) == []


@cancellable
def test_interrupt_stops_a_read_blocked_in_a_long_query(kind: SourceKind) -> None:
    kind.slow_view("slow")
    src = kind.source()
    [table] = src.discover(only=[(kind.schema, "slow")])
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_rows(src, table)
        except BaseException as error:
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    wait_until_reading(src)
    interrupted = time.monotonic()
    while reader.is_alive() and time.monotonic() - interrupted < INTERRUPT_SECONDS:
        src.interrupt()  # repeated, as a watchdog may: idempotent
        reader.join(0.2)

    assert not reader.is_alive(), "the read did not end after interrupt()"
    [error] = outcome
    assert isinstance(error, SourceError)
    assert "interrupted" in str(error)


@each_source
def test_a_read_started_after_an_interrupt_fails_at_once(kind: SourceKind) -> None:
    kind.integers("t", 10)
    src = kind.source()
    [table] = src.discover()

    src.interrupt()

    with pytest.raises(SourceError, match="interrupted"):
        read_rows(src, table)
