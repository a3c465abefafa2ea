"""MySQL/MariaDB source against the real server: discovery, exact types, reads, errors, secrets."""

from __future__ import annotations

import gc
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from datetime import time as clock
from decimal import Decimal

import pyarrow as pa
import pymysql
import pytest

from refresh.sources import build_source
from refresh.sources.base import Column, DiscoveredTable, Source, SourceError
from refresh.sources.mysql import READ_BATCH_ROWS
from tests.support.mysql_readers import process_state, reader_processes, zygotes
from tests.support.paths import ROOT
from tests.support.proxy import pausable_proxy
from tests.support.services import Database, MariaDBServer
from tests.support.source_kinds import wait_until_reading
from tests.support.sources import by_key, read_rows, types_of

TEXT = "line1\nline2, \"double\" 'single' `tick` café 日本"


def source(db: Database, password: str | None = None, **config: object) -> Source:
    return build_source("mysql", db.config(**config), password, connect_timeout=5)


def one_table(mariadb: MariaDBServer, db: Database, create: str) -> tuple[Source, DiscoveredTable]:
    """A source of ``db`` after ``create`` made its one table, and that table."""
    with mariadb.connect(db) as conn, conn.cursor() as cur:
        cur.execute(create)
    my = source(db)
    [table] = my.discover()
    return my, table


def quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def test_discovery_covers_the_database_views_and_honours_filters(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    other = mariadb.create_database(f"other_{secrets.token_hex(3)}")
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t1 (id int PRIMARY KEY, name text NOT NULL)")
        cur.execute("CREATE TABLE t2 (x bigint)")
        cur.execute("CREATE VIEW v1 AS SELECT id FROM t1")
        cur.execute(f"CREATE TABLE {quoted(other.database)}.t3 (y int)")
    db = mysql_source.database

    tables = by_key(source(mysql_source).discover())

    assert set(tables) == {(db, "t1"), (db, "t2"), (db, "v1")}
    assert tables[db, "t1"].columns == (
        Column("id", pa.int32(), False, "int(11)"),
        Column("name", pa.string(), False, "text"),
    )
    both = source(mysql_source, schemas=[db, other.database, "mysql"]).discover()
    assert {t.key for t in both} == {(db, "t1"), (db, "t2"), (db, "v1"), (other.database, "t3")}
    only = [(db, "t1"), (other.database, "t3"), (db, "gone"), (db, "T1")]
    assert {t.key for t in source(mysql_source).discover(only=only)} == {(db, "t1")}


def test_tables_whose_names_differ_in_case_keep_their_own_primary_keys(
    mysql_source: Database, mariadb: MariaDBServer
) -> None:
    """Table names are case-sensitive on Linux, while information_schema compares them without
    case: one table's key must not be taken for the other's."""
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE Keyed (Id int, b int, PRIMARY KEY (Id))")
        cur.execute("CREATE TABLE keyed (id int, B int)")
    db = mysql_source.database

    for tables in (
        source(mysql_source).discover(),
        source(mysql_source).discover(only=[(db, "keyed"), (db, "Keyed")]),
    ):
        assert {t.key: t.primary_key for t in tables} == {(db, "Keyed"): ("Id",), (db, "keyed"): ()}


EXPECTED_TYPES = {
    "i1": pa.int8(),
    "u1": pa.uint8(),
    "i2": pa.int16(),
    "u3": pa.uint32(),
    "i4": pa.int32(),
    "u8": pa.uint64(),
    "flag": pa.int8(),
    "amount": pa.decimal128(14, 2),
    "wide": pa.decimal256(65, 30),
    "f4": pa.float32(),
    "f8": pa.float64(),
    "d": pa.date32(),
    "dt": pa.timestamp("us"),
    "ts": pa.timestamp("us", tz="UTC"),
    "t": pa.time64("us"),
    "y": pa.int16(),
    "ch": pa.string(),
    "vc": pa.string(),
    "txt": pa.string(),
    "bl": pa.binary(),
    "bin": pa.binary(),
    "vb": pa.binary(),
    "bits": pa.binary(),
    "e": pa.string(),
    "s": pa.string(),
    "j": pa.string(),
}


def test_every_type_maps_exactly_and_reads_back_equal(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        # Written from a +05:00 session: TIMESTAMP must come back as the same instant, in UTC.
        cur.execute("SET time_zone = '+05:00'")
        cur.execute(
            """CREATE TABLE everything (
                i1 tinyint, u1 tinyint unsigned, i2 smallint, u3 mediumint unsigned, i4 int,
                u8 bigint unsigned, flag bool, amount decimal(14, 2), wide decimal(65, 30),
                f4 float, f8 double, d date, dt datetime(6), ts timestamp(6) NULL, t time(6),
                y year, ch char(3), vc varchar(40), txt text, bl blob, bin binary(3),
                vb varbinary(8), bits bit(10), e enum('sad', 'happy'), s set('a', 'b', 'c'),
                j json)"""
        )
        cur.execute(
            """INSERT INTO everything VALUES (
                -128, 255, -32768, 16777215, -2147483648, 18446744073709551615, 1,
                12345678901.23, 12345678901234567890123456789012345.123456789012345678901234567891,
                1.5, 0.1, '2024-02-29', '2024-02-29 23:59:59.999999',
                '2024-06-01 05:00:00.123456', '23:59:59.999999', 2024, 'ab', 'varchar', %s,
                x'00ff10', x'0102', x'', b'1000000001', 'happy', 'a,c', '{"a": [1, 2]}')""",
            (TEXT,),
        )
        cur.execute("INSERT INTO everything () VALUES ()")
    my = source(mysql_source)
    [table] = my.discover()
    assert types_of(table) == EXPECTED_TYPES

    rows = read_rows(my, table)

    assert rows[0] == {
        "i1": -128,
        "u1": 255,
        "i2": -32768,
        "u3": 16777215,
        "i4": -2147483648,
        "u8": 18446744073709551615,
        "flag": 1,
        "amount": Decimal("12345678901.23"),
        "wide": Decimal("12345678901234567890123456789012345.123456789012345678901234567891"),
        "f4": 1.5,
        "f8": 0.1,
        "d": date(2024, 2, 29),
        "dt": datetime(2024, 2, 29, 23, 59, 59, 999999),
        "ts": datetime(2024, 6, 1, 0, 0, 0, 123456, tzinfo=UTC),
        "t": clock(23, 59, 59, 999999),
        "y": 2024,
        "ch": "ab",
        "vc": "varchar",
        "txt": TEXT,
        "bl": b"\x00\xff\x10",
        "bin": b"\x01\x02\x00",  # binary(n) pads with zero bytes
        "vb": b"",
        "bits": b"\x02\x01",
        "e": "happy",
        "s": "a,c",
        "j": '{"a": [1, 2]}',
    }
    assert rows[1] == dict.fromkeys(EXPECTED_TYPES)


@pytest.mark.parametrize("value", ["25:00:00", "-00:00:01"])
def test_time_outside_a_day_fails_naming_the_column(
    mariadb: MariaDBServer, mysql_source: Database, value: str
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id int, opening time)")
        cur.execute("INSERT INTO t VALUES (1, '10:00:00'), (2, %s)", (value,))
    my = source(mysql_source)
    [table] = my.discover()

    with pytest.raises(SourceError, match='column "opening": expected a time of day'):
        read_rows(my, table)


@pytest.mark.parametrize(
    ("column_type", "value"),
    [
        ("datetime", "0000-00-00 00:00:00"),
        ("date", "0000-00-00"),
        ("timestamp NULL", "0000-00-00 00:00:00"),
        ("date", "2024-00-10"),
        ("datetime(6)", "2024-05-00 12:00:00.5"),
        ("date", "2024-02-30"),
    ],
)
def test_zero_or_impossible_date_fails_naming_the_column(
    mariadb: MariaDBServer, mysql_source: Database, column_type: str, value: str
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        # MariaDB's default SQL mode takes zero dates; impossible days need ALLOW_INVALID_DATES.
        cur.execute("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        cur.execute(f"CREATE TABLE t (id int, fine date, d {column_type})")
        cur.execute("INSERT INTO t SELECT seq, '2024-01-01', '2024-01-01' FROM seq_1_to_40000")
        cur.execute("UPDATE t SET d = %s WHERE id = 30000", (value,))
    my = source(mysql_source)
    [table] = my.discover()

    with pytest.raises(SourceError, match=r'column "d": .* is not a valid date') as failed:
        read_rows(my, table)

    assert str(failed.value).startswith(f'column "d": \'{value[:10]}')


@pytest.mark.parametrize("collation", ["utf8mb4_bin", "utf8mb4_unicode_ci", "latin1_swedish_ci"])
def test_text_reads_exactly_whatever_its_collation(
    mariadb: MariaDBServer, mysql_source: Database, collation: str
) -> None:
    charset = collation.split("_", 1)[0]
    text = "café" if charset == "latin1" else TEXT
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(
            f"""CREATE TABLE t (c char(4), vc varchar(60), tt tinytext, t text, mt mediumtext,
                    lt longtext, e enum('café', 'x'), s set('café', 'x'))
                CHARACTER SET {charset} COLLATE {collation}"""
        )
        cur.execute(
            "INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, 'café', 'café,x')",
            ("café", text, text, text, text, text),
        )
        cur.execute("INSERT INTO t () VALUES ()")
    my = source(mysql_source)
    [table] = my.discover()

    rows = read_rows(my, table)

    assert rows[0] == {
        "c": "café", "vc": text, "tt": text, "t": text, "mt": text, "lt": text,
        "e": "café", "s": "café,x",
    }  # fmt: skip
    assert rows[1] == dict.fromkeys(rows[0])


# Every decimal128 and decimal256 width edge, scale 0 to the largest MySQL allows (30), read
# through MySQL's own text.
DECIMALS = [(1, 0), (1, 1), (18, 4), (28, 10), (29, 0), (38, 0), (38, 30), (39, 0), (65, 30)]


def test_decimals_are_exact_at_every_precision_and_scale(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    extremes = [Decimal(f"{'9' * (p - s)}.{'9' * s}" if s else "9" * p) for p, s in DECIMALS]
    columns = ", ".join(f"d{p}_{s} decimal({p}, {s})" for p, s in DECIMALS)
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE TABLE t ({columns})")
        cur.execute(f"INSERT INTO t VALUES ({', '.join(['%s'] * len(DECIMALS))})", extremes)
        cur.execute(
            f"INSERT INTO t VALUES ({', '.join(['%s'] * len(DECIMALS))})",
            [v.copy_negate() for v in extremes],
        )
    my = source(mysql_source)
    [table] = my.discover()

    rows = read_rows(my, table)

    assert [list(row.values()) for row in rows] == [extremes, [v.copy_negate() for v in extremes]]
    for (p, s), kind in zip(DECIMALS, types_of(table).values(), strict=True):
        assert (kind.precision, kind.scale) == (p, s)


# PyMySQL reports a half-read stream from __del__ hooks: "error" turns that report into a failure.
@pytest.mark.filterwarnings("error")
def test_abandoned_stream_is_interrupted_cleanly(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    my, table = one_table(
        mariadb, mysql_source, "CREATE TABLE big AS SELECT seq AS id FROM seq_1_to_200000"
    )

    with my.read(table) as batches:
        assert next(batches).num_rows == READ_BATCH_ROWS
    gc.collect()

    assert [t.table_name for t in my.discover()] == ["big"]  # the server is still fine


@pytest.fixture
def mysql_user(mariadb: MariaDBServer, mysql_source: Database) -> object:
    user, password = f"rs_{secrets.token_hex(4)}", f"pw_{secrets.token_hex(8)}"
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        cur.execute(f"GRANT SELECT ON {quoted(mysql_source.database)}.* TO %s@'%%'", (user,))
        cur.execute("CREATE TABLE t (i int)")
    yield Database(mysql_source.host, mysql_source.port, user, mysql_source.database), password
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute("DROP USER %s@'%%'", (user,))


def test_wrong_password_is_a_source_error_without_the_password(
    mysql_user: tuple[Database, str],
) -> None:
    db, password = mysql_user
    wrong = password[::-1]
    assert [t.table_name for t in source(db, password).discover()] == ["t"]
    table = DiscoveredTable(db.database, "t", (Column("i", pa.int32(), True, "int(11)"),))

    with pytest.raises(SourceError, match="Access denied") as discovering:
        source(db, wrong).discover()
    with pytest.raises(SourceError, match="Access denied") as reading:
        read_rows(source(db, wrong), table)

    for error in (discovering.value, reading.value):
        assert wrong not in str(error)
        assert error.__cause__ is None


def test_connections_share_one_tls_context(mysql_source: Database) -> None:
    my = source(mysql_source)
    with my.connect() as first, my.connect() as second:
        assert first.ctx is second.ctx  # built once: it costs more than the rest of a handshake


def test_session_is_read_only(mysql_source: Database) -> None:
    with (
        source(mysql_source).connect() as conn,
        conn.cursor() as cur,
        pytest.raises(pymysql.OperationalError, match="READ ONLY"),
    ):
        cur.execute("CREATE TABLE nope (i int)")


def test_connect_timeout_bounds_a_server_that_never_answers(silent_port: int) -> None:
    silent = Database("127.0.0.1", silent_port, "root", "mysql")
    my = build_source("mysql", silent.config(), None, connect_timeout=1)
    table = DiscoveredTable("mysql", "t", (Column("i", pa.int32(), True, "int(11)"),))

    for attempt in (my.discover, lambda: read_rows(my, table)):
        started = time.monotonic()
        with pytest.raises(SourceError, match="timed out"):
            attempt()
        assert time.monotonic() - started < 3


SLOW_VIEW = "CREATE VIEW slow AS SELECT seq, SLEEP(0.1) AS s FROM seq_1_to_1000000"


def running_reads(mariadb: MariaDBServer, db: Database) -> list[int]:
    """Ids of the sessions running one of the service's reads in ``db``."""
    with mariadb.connect(db) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE DB = %s AND INFO LIKE '%%refresh-service read%%' AND ID <> CONNECTION_ID()",
            (db.database,),
        )
        return [row[0] for row in cur.fetchall()]


def poll(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def read_in_thread(my: Source, table: DiscoveredTable) -> tuple[threading.Thread, list]:
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_rows(my, table)
        except BaseException as error:
            outcome.append(error)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, outcome


def test_interrupt_kills_the_query_on_the_server(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    my, table = one_table(mariadb, mysql_source, SLOW_VIEW)
    reader, outcome = read_in_thread(my, table)
    poll(lambda: running_reads(mariadb, mysql_source))

    my.interrupt()
    reader.join(5)

    assert not reader.is_alive()
    [error] = outcome
    assert isinstance(error, SourceError)
    assert "interrupted" in str(error)
    poll(lambda: not running_reads(mariadb, mysql_source))


def test_interrupt_ends_a_read_from_a_frozen_host(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(SLOW_VIEW)
    with pausable_proxy(mysql_source.host, mysql_source.port) as proxy:
        my = source(mysql_source, port=proxy.port)
        [table] = my.discover()
        reader, outcome = read_in_thread(my, table)
        wait_until_reading(my)
        poll(lambda: running_reads(mariadb, mysql_source))
        proxy.pause()
        try:
            # From another thread, as the stall watchdog does: its KILL QUERY cannot get through
            # the frozen host, and takes up to the connect timeout to give up.
            threading.Thread(target=my.interrupt, daemon=True).start()
            reader.join(5)

            assert not reader.is_alive(), "the read did not end after interrupt()"
            [error] = outcome
            assert isinstance(error, SourceError)
            assert "interrupted" in str(error)
        finally:
            proxy.resume()
            with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
                for thread_id in running_reads(mariadb, mysql_source):
                    cur.execute("KILL QUERY %s", (thread_id,))


# 30 MB: enough to fill the reader's pipe many times over.
BIG_TABLE = "CREATE TABLE big AS SELECT seq AS id, REPEAT('x', 100) AS pad FROM seq_1_to_300000"


def test_reader_is_paused_while_nobody_reads_and_loses_no_row(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    my, table = one_table(mariadb, mysql_source, BIG_TABLE)

    with my.read(table) as batches:
        ids = next(batches).column("id").to_pylist()
        [reader] = reader_processes()
        # connectorx would go on reading into memory; the full pipe gets it paused instead.
        poll(lambda: process_state(reader) == "T")
        for batch in batches:
            ids += batch.column("id").to_pylist()

    assert sorted(ids) == list(range(1, 300_001))


def test_password_reaches_the_reader_on_stdin_only(
    mariadb: MariaDBServer, mysql_user: tuple[Database, str]
) -> None:
    db, password = mysql_user
    with mariadb.connect(db) as conn, conn.cursor() as cur:
        cur.execute(BIG_TABLE)
    my = source(db, password)
    [table] = my.discover(only=[(db.database, "big")])

    with my.read(table) as batches:
        next(batches)
        [reader] = reader_processes()
        poll(lambda: process_state(reader) == "T")  # still there: paused, as nobody reads
        for what in ("cmdline", "environ"):
            with open(f"/proc/{reader}/{what}", "rb") as exposed:
                assert password.encode() not in exposed.read()


READ_THEN_HANG = """
import json, sys
from refresh.sources import build_source
source = build_source("mysql", json.loads(sys.argv[1]), None, connect_timeout=5)
[table] = source.discover()
with source.read(table) as batches:
    next(batches)
    print("reading", flush=True)
    sys.stdin.read()
"""


class Script:
    """Python running ``code`` in a process (and process group) of its own, given ``db``'s
    config as its argument, playing a worker; killed at the end of the ``with`` block. The test
    reads what it prints, line by line, and tells it to go on with an empty line."""

    def __init__(self, code: str, db: Database) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(db.config())],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.pid = self.process.pid

    def line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().rstrip("\n")

    def go_on(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("\n")
        self.process.stdin.flush()

    def __enter__(self) -> Script:
        return self

    def __exit__(self, *_: object) -> None:
        self.process.kill()
        self.process.wait()


def test_paused_reader_dies_with_a_killed_worker(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(BIG_TABLE)
    with Script(READ_THEN_HANG, mysql_source) as worker:
        assert worker.line() == "reading"
        [zygote] = zygotes(worker.pid)
        [reader] = reader_processes(worker.pid)
        poll(lambda: process_state(reader) == "T")

        os.kill(worker.pid, signal.SIGKILL)

        for pid in (reader, zygote):  # PID 1 may not reap them at once
            poll(lambda pid=pid: process_state(pid) in ("gone", "Z"))
        poll(lambda: not running_reads(mariadb, mysql_source))


THREE_ROWS, ROWS = (
    "CREATE TABLE t AS SELECT seq AS id FROM seq_1_to_3",
    [{"id": i} for i in (1, 2, 3)],
)


def test_a_reader_zygote_that_died_is_replaced(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    my, table = one_table(mariadb, mysql_source, THREE_ROWS)
    assert read_rows(my, table) == ROWS
    [zygote] = zygotes()

    os.kill(zygote, signal.SIGKILL)
    poll(lambda: process_state(zygote) in ("gone", "Z"))

    assert read_rows(my, table) == ROWS
    assert zygotes() != [zygote]


READ_IN_A_HORSE = """
import json, os, sys
from refresh.sources import build_source
from refresh.sources.cx_process import prepare
prepare()  # as a worker does before it forks its work horses
source = build_source("mysql", json.loads(sys.argv[1]), None, connect_timeout=5)
tables = {table.table_name: table for table in source.discover()}
def rows(name):
    with source.read(tables[name]) as batches:
        return sum(batch.num_rows for batch in batches)
horse = os.fork()
if horse == 0:
    print("horse", rows("t"), flush=True)
    with source.read(tables["big"]) as batches:
        next(batches)
        print("reading", flush=True)
        sys.stdin.read()
    os._exit(0)
print(horse, flush=True)
sys.stdin.readline()  # the horse was killed
print("worker", rows("t"), flush=True)
"""


def test_work_horses_share_the_zygote_which_kills_the_reader_of_one_killed(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(THREE_ROWS)
        cur.execute(BIG_TABLE)
    with Script(READ_IN_A_HORSE, mysql_source) as worker:
        lines = {worker.line() for _ in range(3)}
        [horse] = [int(line) for line in lines if line.isdigit()]
        assert lines - {str(horse)} == {"horse 3", "reading"}
        [zygote] = zygotes(worker.pid)  # the worker's: the horse started none
        assert zygotes(horse) == []
        [reader] = reader_processes(worker.pid)
        poll(lambda: process_state(reader) == "T")  # paused: nobody reads it

        os.kill(horse, signal.SIGKILL)

        poll(lambda: process_state(reader) in ("gone", "Z"))
        poll(lambda: not running_reads(mariadb, mysql_source))
        assert process_state(zygote) not in ("gone", "Z")
        worker.go_on()
        assert worker.line() == "worker 3"


READ_THROUGH_A_STOP = """
import json, signal, sys
from refresh.sources import build_source
signal.signal(signal.SIGTERM, lambda *_: print("stopping", flush=True))  # as a worker does
source = build_source("mysql", json.loads(sys.argv[1]), None, connect_timeout=5)
[table] = source.discover()
with source.read(table) as batches:
    rows = next(batches).num_rows
    print("reading", flush=True)
    sys.stdin.readline()
    rows += sum(batch.num_rows for batch in batches)
print(rows, flush=True)
"""


def test_a_stop_signal_to_the_worker_s_process_group_lets_its_reads_finish(
    mariadb: MariaDBServer, mysql_source: Database
) -> None:
    """SIGTERM (honcho stopping the worker's group, Heroku every process of the dyno) is for
    the worker, which lets its running tables finish: the zygote and the readers go on."""
    with mariadb.connect(mysql_source) as conn, conn.cursor() as cur:
        cur.execute(BIG_TABLE)
    with Script(READ_THROUGH_A_STOP, mysql_source) as worker:
        assert worker.line() == "reading"

        os.killpg(worker.pid, signal.SIGTERM)
        assert worker.line() == "stopping"
        worker.go_on()

        assert worker.line() == "300000"
