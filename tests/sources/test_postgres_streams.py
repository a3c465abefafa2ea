"""PostgreSQL tables read by parallel COPY streams: one snapshot, all types, failures, interrupt."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient

import refresh.sources.postgres as postgres_module
from refresh.sources import build_source
from refresh.sources.base import DiscoveredTable, Source, SourceError
from tests.support.api import assert_error, refresh, register, table_info
from tests.support.backends import Backend
from tests.support.proxy import pausable_proxy
from tests.support.reference import create_reference_table, expected_rows
from tests.support.services import Database, PostgresServer
from tests.support.sources import BackgroundRead, read_batches, read_rows

STREAMS = 4
DEADLINE_SECONDS = 20


@pytest.fixture
def small_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Split tables of a few pages, so that small test tables are read by several streams."""
    monkeypatch.setattr(postgres_module, "MIN_RANGE_PAGES", 1)


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every ADBC connection the source opens (the streams), in order."""
    opened: list[object] = []
    connect = postgres_module.adbc_connect

    @contextmanager
    def counting(*args: Any, **kwargs: Any) -> Iterator[object]:
        with connect(*args, **kwargs) as connection:
            opened.append(connection)
            yield connection

    monkeypatch.setattr(postgres_module, "adbc_connect", counting)
    return opened


def source(db: Database, streams: int = STREAMS, connect_timeout: float = 5) -> Source:
    return build_source("postgres", db.config(), None, connect_timeout, read_streams=streams)


def only_table(pg: Source, name: str) -> DiscoveredTable:
    [table] = pg.discover(only=[("public", name)])
    return table


def stream_backends(postgres: PostgresServer, db: Database) -> list[tuple[int, str, str]]:
    """(pid, state, last query) of the source's stream connections to ``db``."""
    with postgres.connect(db) as conn:
        return conn.execute(
            "SELECT pid, state, query FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'refresh-service'",
            (db.database,),
        ).fetchall()


def padded_table(conn: psycopg.Connection, name: str) -> None:
    """A table of 500 rows of about 900 bytes: several pages, split when ranges are small."""
    conn.execute(f"CREATE TABLE {name} (id int, pad text)")
    conn.execute(f"INSERT INTO {name} SELECT g, repeat('x', 900) FROM generate_series(1, 500) g")


def poll(condition: Callable[[], bool], what: str, seconds: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)


@pytest.mark.parametrize(("name", "rows"), [("orders", 20_000), ("wide", 3_000)])
def test_every_type_of_the_reference_tables_reads_back_exactly(
    small_ranges: None,
    connections: list[object],
    postgres: PostgresServer,
    pg_source: Database,
    name: str,
    rows: int,
) -> None:
    create_reference_table(pg_source, name, rows)
    pg = source(pg_source)
    table = only_table(pg, name)

    copy = read_rows(pg, table)

    assert len(connections) == STREAMS  # read in ranges, by parallel streams
    assert len(copy) == rows
    assert sorted(copy, key=lambda row: row["id"]) == expected_rows(postgres, pg_source, table)


def test_rows_changed_during_a_parallel_read_are_seen_as_of_one_snapshot(
    small_ranges: None,
    monkeypatch: pytest.MonkeyPatch,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    with postgres.connect(pg_source) as conn:
        # About 8 rows per page: 250 pages, split into 16 ranges of about 125 rows.
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL)")
        conn.execute("INSERT INTO t SELECT g, g, repeat('x', 900) FROM generate_series(1, 2000) g")
        conn.execute("VACUUM ANALYZE t")
    # Every stream but the first connects only once the rows have changed.
    changed = threading.Event()
    connect = postgres_module.adbc_connect
    opening: list[None] = []
    connected: list[object] = []

    @contextmanager
    def gated(*args: Any, **kwargs: Any) -> Iterator[object]:
        opening.append(None)
        if len(opening) > 1:
            changed.wait()
        with connect(*args, **kwargs) as connection:
            connected.append(connection)
            yield connection

    monkeypatch.setattr(postgres_module, "adbc_connect", gated)
    pg = source(pg_source)
    reading = BackgroundRead(pg, only_table(pg, "t"), hold=True)
    reading.wait_for_first_batch(DEADLINE_SECONDS)

    with postgres.connect(pg_source) as conn, conn.transaction():
        conn.execute("UPDATE t SET v = v + 100000")  # new row versions go to new pages
        conn.execute("DELETE FROM t WHERE id % 10 = 0")
        conn.execute("INSERT INTO t SELECT g, g, 'new' FROM generate_series(2001, 2100) g")
    changed.set()

    # The held consumer keeps the first stream waiting (16 ranges do not fit in its buffer)
    # until every late stream has taken ranges (it is copying one, or took the last): what they
    # read, they read after the change.
    def late_streams_copying() -> bool:
        queries = [query for _, _, query in stream_backends(postgres, pg_source)]
        return len(connected) == STREAMS and all(query.startswith("COPY") for query in queries)

    poll(late_streams_copying, "every stream copying a range")
    reading.release()
    copy = reading.finish(DEADLINE_SECONDS)

    assert sorted(zip(copy["id"].to_pylist(), copy["v"].to_pylist(), strict=True)) == [
        (i, i) for i in range(1, 2001)
    ]


def test_a_failing_stream_fails_the_whole_read_and_stops_the_others(
    small_ranges: None, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, amount numeric, pad text)")
        conn.execute("INSERT INTO t SELECT g, g, repeat('x', 900) FROM generate_series(1, 2000) g")
        # Only the range holding the last page has a value that does not fit decimal128(38, 9).
        conn.execute("INSERT INTO t VALUES (2001, 1.0123456789, 'x')")
    pg = source(pg_source)
    table = only_table(pg, "t")

    with pytest.raises(SourceError, match='column "amount"'):
        read_batches(pg, table)

    poll(lambda: not stream_backends(postgres, pg_source), "every stream connection closed")


def test_a_lost_stream_connection_fails_the_read(
    small_ranges: None, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, pad text)")
        conn.execute("INSERT INTO t SELECT g, repeat('x', 900) FROM generate_series(1, 2000) g")
    pg = source(pg_source)
    reading = BackgroundRead(pg, only_table(pg, "t"), hold=True)
    reading.wait_for_first_batch(DEADLINE_SECONDS)

    with postgres.connect(pg_source) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND application_name = 'refresh-service'",
            (pg_source.database,),
        )
    reading.release()

    with pytest.raises(SourceError, match=r"terminat|server closed|connection"):
        reading.finish(DEADLINE_SECONDS)


@pytest.mark.parametrize("streams", [1, STREAMS])
def test_a_connection_lost_before_its_first_statement_fails_the_read(
    small_ranges: None,
    monkeypatch: pytest.MonkeyPatch,
    postgres: PostgresServer,
    pg_source: Database,
    streams: int,
) -> None:
    """A host that drops a connection between its handshake and its first statement (a
    network cut, a restart) fails the read; ADBC PostgreSQL 1.8.0 aborted the process there."""
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, pad text)")
        conn.execute("INSERT INTO t SELECT g, repeat('x', 900) FROM generate_series(1, 2000) g")
    connect = postgres_module.adbc_connect

    @contextmanager
    def dropped(*args: Any, **kwargs: Any) -> Iterator[object]:
        with connect(*args, **kwargs) as connection:
            with postgres.connect(pg_source) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name = 'refresh-service'",
                    (pg_source.database,),
                )
            yield connection

    monkeypatch.setattr(postgres_module, "adbc_connect", dropped)
    pg = source(pg_source, streams=streams)

    with pytest.raises(SourceError, match=r"terminat|server closed|connection"):
        read_batches(pg, only_table(pg, "t"))


def test_a_table_described_for_a_read_is_split_as_a_table_the_read_plans_itself(
    small_ranges: None, connections: list[object], postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        padded_table(conn, "t")
        pages = conn.execute("SELECT pg_relation_size('t') / 8192").fetchone()[0]
    pg = source(pg_source)
    described, [discovered] = only_table(pg, "t"), pg.discover()
    assert (described.split_pages, discovered.split_pages) == (pages, None)

    for table in (described, discovered):
        connections.clear()
        assert sorted(row["id"] for row in read_rows(pg, table)) == list(range(1, 501))
        assert len(connections) == STREAMS


def test_views_partitioned_tables_and_materialized_views_are_read_whole(
    small_ranges: None, connections: list[object], postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        padded_table(conn, "base")
        conn.execute("CREATE VIEW v AS SELECT id FROM base")
        conn.execute("CREATE MATERIALIZED VIEW mv AS SELECT id, pad FROM base")
        conn.execute("CREATE TABLE parted (id int, pad text) PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (250)")
        conn.execute("CREATE TABLE parted_high PARTITION OF parted FOR VALUES FROM (250) TO (600)")
        conn.execute("INSERT INTO parted SELECT id, pad FROM base")

    for name, streams in [("v", 1), ("parted", 1), ("mv", STREAMS)]:
        pg = source(pg_source)  # a source keeps its connection: each table starts afresh
        connections.clear()
        rows = read_rows(pg, only_table(pg, name))
        assert sorted(row["id"] for row in rows) == list(range(1, 501)), name
        assert len(connections) == streams, name


def test_a_source_keeps_its_connections_from_one_table_to_the_next(
    connections: list[object], postgres: PostgresServer, pg_source: Database
) -> None:
    """A batch reads many small tables with one source: one connection serves them all."""
    with postgres.connect(pg_source) as conn:
        for n in range(3):
            conn.execute(f"CREATE TABLE t{n} AS SELECT g AS id FROM generate_series(1, 100) g")
    with source(pg_source) as pg:
        tables = pg.discover()
        for table in tables:
            assert len(read_rows(pg, table)) == 100
        assert len(connections) == 1
        assert len(stream_backends(postgres, pg_source)) == 1
    poll(lambda: not stream_backends(postgres, pg_source), "the connection closed with the source")


def test_a_read_given_up_midway_leaves_its_connection_and_the_next_read_works(
    connections: list[object], postgres: PostgresServer, pg_source: Database
) -> None:
    """A consumer that stops after one batch (a failed Parquet write) leaves a COPY unfinished
    on the source's kept connection: the next read opens another and reads its table whole."""
    with postgres.connect(pg_source) as conn:
        conn.execute(
            "CREATE TABLE big AS SELECT g AS id, repeat('x', 100) AS pad"
            " FROM generate_series(1, 200000) g"
        )
        conn.execute("CREATE TABLE small AS SELECT g AS id FROM generate_series(1, 100) g")
    with source(pg_source, streams=1) as pg:
        with pg.read(only_table(pg, "big")) as batches:
            first = next(batches)
        assert 0 < first.num_rows < 200000
        assert len(read_rows(pg, only_table(pg, "small"))) == 100
        assert len(connections) == 2


@pytest.fixture
def four_streams(environ: dict[str, str], small_ranges: None) -> None:
    """The service under test reads with four streams (the app is built after this)."""
    environ["SOURCE_READ_STREAMS"] = str(STREAMS)


def test_a_failing_stream_publishes_nothing(
    four_streams: None,
    client: FlaskClient,
    cache: Backend,
    postgres: PostgresServer,
    pg_source: Database,
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, amount numeric, pad text)")
        conn.execute("INSERT INTO t SELECT g, g, repeat('x', 900) FROM generate_series(1, 2000) g")
    register(client, "pg", "postgres", pg_source.config())
    assert refresh(client, "pg", "public", "t")["rows_synced"] == 2000
    previous = table_info(client, "pg", "public", "t")["current_path"]
    with postgres.connect(pg_source) as conn:
        conn.execute("INSERT INTO t VALUES (2001, 1.0123456789, 'x')")

    body = {"connection_id": "pg", "schema_name": "public", "table_name": "t", "data": True}
    message = assert_error(client.post("/refresh", json=body), 502, "SOURCE_UNAVAILABLE")

    assert 'column "amount"' in message
    info = table_info(client, "pg", "public", "t")
    assert info["current_path"] == previous
    assert [v["status"] for v in info["versions"]] == ["failed", "current"]
    assert cache.read(previous).num_rows == 2000
    assert len(cache.versions()) == 1  # the failed attempt left nothing behind


def test_interrupt_ends_a_read_whose_host_froze(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        # Rows as fast as the server can make them, for far longer than the test runs.
        conn.execute(
            "CREATE VIEW endless AS SELECT a * 1000000 + b AS g"
            " FROM generate_series(0, 999999) a, generate_series(1, 1000000) b"
        )
    with pausable_proxy(pg_source.host, pg_source.port) as proxy:
        via_proxy = Database(pg_source.host, proxy.port, pg_source.user, pg_source.database)
        pg = source(via_proxy, connect_timeout=2)
        reading = BackgroundRead(pg, only_table(pg, "endless"), hold=True)
        reading.wait_for_first_batch(DEADLINE_SECONDS)
        proxy.pause()
        reading.release()  # the reader drains what arrived, then blocks: the host is frozen

        interrupting = threading.Thread(target=pg.interrupt, daemon=True)
        started = time.monotonic()
        interrupting.start()
        with pytest.raises(SourceError, match="interrupted"):
            reading.finish(timeout=5)
        assert time.monotonic() - started < 5
        interrupting.join(timeout=5)  # bounded by the connect timeout, even though frozen
        assert not interrupting.is_alive()


def test_interrupt_cancels_the_query_on_the_server(
    postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE VIEW slow AS SELECT 1 AS x FROM pg_sleep(3600)")
    pg = source(pg_source)
    reading = BackgroundRead(pg, only_table(pg, "slow"))

    def copy_running() -> bool:
        return any("slow" in query and state == "active" for _, state, query in running())

    def running() -> list[tuple[int, str, str]]:
        return stream_backends(postgres, pg_source)

    poll(copy_running, "the COPY of the slow view running")
    pg.interrupt()
    pg.interrupt()  # idempotent

    with pytest.raises(SourceError, match="interrupted"):
        reading.finish(timeout=5)
    poll(lambda: not copy_running(), "the COPY cancelled on the server")


def test_interrupt_cancels_a_read_waiting_for_a_lock_while_planning(
    small_ranges: None, postgres: PostgresServer, pg_source: Database
) -> None:
    with postgres.connect(pg_source) as conn:
        conn.execute("CREATE TABLE t (id int, pad text)")
        conn.execute("INSERT INTO t SELECT g, repeat('x', 900) FROM generate_series(1, 2000) g")
    pg = source(pg_source)
    [table] = pg.discover()  # not described for a read: the read plans its split itself

    def waiting_for_the_lock() -> bool:
        with postgres.connect(pg_source) as conn:
            return bool(
                conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = %s AND wait_event_type = 'Lock'",
                    (pg_source.database,),
                ).fetchone()[0]
            )

    with postgres.connect(pg_source) as locker, locker.transaction():
        locker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")  # as an ALTER TABLE would
        reading = BackgroundRead(pg, table)
        poll(waiting_for_the_lock, "the read waiting for the lock")

        pg.interrupt()

        with pytest.raises(SourceError, match="interrupted"):
            reading.finish(timeout=5)
        poll(lambda: not waiting_for_the_lock(), "the waiting query cancelled")
